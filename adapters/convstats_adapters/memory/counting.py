"""How the in-memory store counts: one function a plan, and the strategies that choose one.

========== ===========================================================================
``scan``     one Python pass over every room's facts; the reference
``columnar`` a few vectorised numpy passes over the columns (extra ``columnar``)
``indexed``  two bisections of the time-sorted rooms, then two rows of per-group
             checkpoint counts and the short runs of rooms around them
``auto``     the index, or the columns when numpy is installed and the rooms are few
             for the groups a query admits
========== ===========================================================================

All give exactly the same counts; :func:`explain` says which plan a strategy takes for a
query. Each counts groups (partition, agent) first and then adds the admitted groups up
per agent.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import chain
from types import ModuleType
from typing import Any

from convstats.errors import MissingDependency
from convstats.model import AgentCounts, TimeWindow, Visibility
from convstats_adapters.memory.table import (
    UNASSIGNED,
    VOID,
    FactTable,
    numpy_or_none,
    window_groups_python,
)

__all__ = [
    "COLUMN_SLOTS_PER_GROUP",
    "STRATEGY_NAMES",
    "Plan",
    "count",
    "explain",
    "load_numpy",
    "needs_index",
]

#: ``auto`` counts from the columns when the rooms held are fewer than this many times the
#: groups a query admits: the index's cost grows with the groups (a few vectorised passes
#: over them and over at most one block of rooms), the columns' with the rooms. Measured on
#: the benchmark machine; see ``benchmarks/README.md``.
COLUMN_SLOTS_PER_GROUP = 2


class Plan(enum.Enum):
    """Which structure answers a query."""

    SCAN = "scan"
    COLUMNS = "columns"
    INDEX = "index"


def load_numpy() -> ModuleType:
    """Import numpy, or raise :class:`~convstats.errors.MissingDependency` naming the extra."""
    np = numpy_or_none()
    if np is None:
        raise MissingDependency("numpy", "columnar")
    return np


def count_scan(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count by looking at every room's facts, one at a time."""
    start, end = window.start_ms, window.end_ms
    admitted = table.codes.admitted_groups(visibility)
    per_group: Counter[int] = Counter()
    for ts, group in chain(
        zip(table.base_ts, table.base_group, strict=True),
        zip(table.extra_ts, table.extra_group, strict=True),
    ):
        if start <= ts < end and admitted[group]:
            per_group[group] += 1
    return _fold_python(table, per_group, admitted)


def count_columns(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count in a few vectorised passes: time mask, bincount of groups, sum per agent.

    Costs a pass over every room whatever the window.
    """
    np = load_numpy()
    per_group = np.zeros(table.codes.groups, dtype=np.int64)
    for times, groups in ((table.base_ts, table.base_group), (table.extra_ts, table.extra_group)):
        if times:
            # Zero-copy views, gone when this call returns: an array with an exported
            # buffer cannot grow.
            ts = np.frombuffer(times, dtype=np.int64)
            hits = (ts >= window.start_ms) & (ts < window.end_ms)
            codes = np.frombuffer(groups, dtype=_DTYPES[groups.typecode])[hits]
            found = np.bincount(codes, minlength=len(per_group))
            per_group[: len(found)] += found
    return _fold_numpy(np, table, per_group, visibility)


def count_index(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count from the checkpoints: O(groups + block) whatever the number of rooms held."""
    assert table.checkpoints is not None
    start, end = window.start_ms, window.end_ms
    np = numpy_or_none()
    if np is None:
        per_group = window_groups_python(table, start, end) if start < end else Counter()
        for ts, group in zip(table.extra_ts, table.extra_group, strict=True):
            if start <= ts < end:
                per_group[group] += 1
        return _fold_python(table, per_group, table.codes.admitted_groups(visibility))
    per_group = np.zeros(table.codes.groups, dtype=np.int64)
    if start < end:
        base = _window_groups(np, table, start, end)
        per_group[: len(base)] += base
        if table.extra_ts:
            ts = np.frombuffer(table.extra_ts, dtype=np.int64)
            codes = np.frombuffer(table.extra_group, dtype=np.int32)[(ts >= start) & (ts < end)]
            per_group += np.bincount(codes, minlength=len(per_group))
    return _fold_numpy(np, table, per_group, visibility)


_DTYPES = {"H": "uint16", "i": "int32"}


def _window_groups(np: ModuleType, table: FactTable, start: int, end: int) -> Any:
    """Per group, the base rooms created in ``[start, end)``."""
    ts = np.frombuffer(table.base_ts, dtype=np.int64) if table.base_ts else np.zeros(0, "int64")
    groups = np.frombuffer(table.base_group, dtype=_DTYPES[table.base_group.typecode])
    width, block, size = table.checkpoint_groups, table.block, len(ts)
    low, high = (int(at) for at in ts.searchsorted((start, end)))
    if high - low <= block:
        return np.bincount(groups[low:high], minlength=width)
    assert table.checkpoints is not None
    rows = np.frombuffer(table.checkpoints, dtype=np.int32).reshape(-1, width)

    def before(place: int) -> Any:
        # From the nearer checkpoint: at most half a block of rooms is looked at.
        row = place // block
        if place - row * block <= block // 2 or (row + 1) * block > size:
            return rows[row] + np.bincount(groups[row * block : place], minlength=width)
        return rows[row + 1] - np.bincount(groups[place : (row + 1) * block], minlength=width)

    return before(high) - before(low)


def _fold_python(
    table: FactTable, per_group: Mapping[int, int], admitted: list[bool]
) -> AgentCounts:
    group_agent = table.codes.group_agent
    per_code: Counter[int] = Counter()
    for group, found in per_group.items():
        if admitted[group]:
            per_code[group_agent[group]] += found
    agent_ids = table.codes.agent_ids
    return AgentCounts(
        per_agent={
            str(agent_ids[code]): found
            for code, found in per_code.items()
            if code != UNASSIGNED and found
        },
        unspecified=per_code.get(UNASSIGNED, 0),
    )


def _fold_numpy(
    np: ModuleType, table: FactTable, per_group: Any, visibility: Visibility
) -> AgentCounts:
    codes = table.codes
    if visibility.restricted:
        by_partition = np.array([*table.admitted(visibility), False], dtype=bool)
        # VOID's partition is -1: the False appended above.
        per_group = per_group * by_partition[np.frombuffer(codes.group_partition, np.int32)]
    per_group[VOID] = 0
    per_agent = np.bincount(
        np.frombuffer(codes.group_agent, dtype=np.int32),
        weights=per_group,
        minlength=len(codes.agent_ids),
    ).astype(np.int64)
    found = np.flatnonzero(per_agent)
    if found.size and found[0] == UNASSIGNED:  # sorted, and UNASSIGNED is code 0
        found = found[1:]
    return AgentCounts(
        per_agent=dict(
            zip(codes.agent_id_array(np)[found].tolist(), per_agent[found].tolist(), strict=True)
        ),
        unspecified=int(per_agent[UNASSIGNED]),
    )


def _admitted_groups(np: ModuleType, table: FactTable, visibility: Visibility) -> int:
    if not visibility.restricted:
        return table.codes.groups - 1
    by_partition = np.array([*table.admitted(visibility), False], dtype=bool)
    return int(np.count_nonzero(by_partition[np.frombuffer(table.codes.group_partition, np.int32)]))


def _auto(table: FactTable, visibility: Visibility) -> Plan:
    np = numpy_or_none()
    if np is None or table.checkpoints is None:
        return Plan.INDEX
    groups = _admitted_groups(np, table, visibility)
    slots = len(table.base_ts) + len(table.extra_ts)
    return Plan.COLUMNS if slots < COLUMN_SLOTS_PER_GROUP * groups else Plan.INDEX


_CHOOSERS: dict[str, Callable[[FactTable, Visibility], Plan]] = {
    "scan": lambda table, visibility: Plan.SCAN,
    "columnar": lambda table, visibility: Plan.COLUMNS,
    "indexed": lambda table, visibility: Plan.INDEX,
    "auto": _auto,
}
#: The strategy names a store accepts.
STRATEGY_NAMES = tuple(sorted(_CHOOSERS))

_COUNTERS: dict[Plan, Callable[[FactTable, TimeWindow, Visibility], AgentCounts]] = {
    Plan.SCAN: count_scan,
    Plan.COLUMNS: count_columns,
    Plan.INDEX: count_index,
}


def check_strategy(name: str) -> None:
    """Refuse a strategy the store cannot use.

    Raises :class:`ValueError` for an unknown name and
    :class:`~convstats.errors.MissingDependency` for ``columnar`` without numpy.
    """
    if name not in _CHOOSERS:
        known = ", ".join(STRATEGY_NAMES)
        raise ValueError(f"unknown strategy {name!r}; choose one of: {known}")
    if name == "columnar":
        load_numpy()


def needs_index(name: str) -> bool:
    """Whether the strategy reads the per-group index (which the table must then keep)."""
    return name in ("indexed", "auto")


def explain(name: str, table: FactTable, visibility: Visibility) -> Plan:
    """The plan strategy ``name`` takes to count ``table`` for ``visibility``."""
    return _CHOOSERS[name](table, visibility)


def count(name: str, table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count ``table`` with the plan strategy ``name`` chooses."""
    return _COUNTERS[explain(name, table, visibility)](table, window, visibility)
