"""How the in-memory store counts: plans, the strategies that choose one, and the fold.

One function a plan, and the fold from groups to a report's rows, each in pure Python and
in numpy side by side.

========== ===========================================================================
``scan``     one Python pass over every room's facts; the reference
``columnar`` a few vectorised numpy passes over the columns (extra ``columnar``)
``indexed``  two bisections of the time-sorted rooms, then two rows of per-group
             checkpoint counts and the short runs of rooms around them
``auto``     the index (the default)
========== ===========================================================================

All give exactly the same counts; :func:`explain` says which plan a strategy takes. A query
counts the rooms of the window per group (partition, raw key) of its grouping's column,
keeps the groups whose partition the visibility admits (decided once per partition), and
folds them into the report's rows (:class:`~convstats_adapters.memory.table.Fold`).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import chain
from types import ModuleType
from typing import Any

from convstats.errors import MissingDependency
from convstats.model import GroupCounts, Grouping, TimeWindow, TotalMode, Visibility
from convstats_adapters.memory.table import (
    NOWHERE,
    UNSPECIFIED_ROW,
    VOID,
    Column,
    Facet,
    FactTable,
    Fold,
    numpy_or_none,
    numpy_type,
    window_groups_python,
)

__all__ = [
    "STRATEGY_NAMES",
    "Plan",
    "check_strategy",
    "count",
    "explain",
    "load_numpy",
    "needs_index",
]


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


# -- per group: the rooms of a window ------------------------------------------------------


def count_scan(table: FactTable, column: Column, window: TimeWindow) -> Counter[int]:
    """Per group, by looking at every room's facts, one at a time."""
    start, end = window.start_ms, window.end_ms
    per_group: Counter[int] = Counter()
    for ts, group in chain(
        zip(table.base_ts, column.base, strict=True),
        zip(table.extra_ts, column.extra, strict=True),
    ):
        if start <= ts < end:
            per_group[group] += 1
    return per_group


def count_columns(table: FactTable, column: Column, window: TimeWindow, groups: int) -> Any:
    """Per group, in a few vectorised passes: time mask, then a bincount of the groups.

    Costs a pass over every room whatever the window.
    """
    np = load_numpy()
    per_group = np.zeros(groups, dtype=np.int64)
    for times, codes in ((table.base_ts, column.base), (table.extra_ts, column.extra)):
        if times:
            # Zero-copy views, gone when this call returns: an array with an exported
            # buffer cannot grow.
            ts = np.frombuffer(times, dtype=np.int64)
            hits = (ts >= window.start_ms) & (ts < window.end_ms)
            found = np.bincount(np.frombuffer(codes, dtype=numpy_type(codes))[hits])
            per_group[: len(found)] += found
    return per_group


def count_index(
    table: FactTable, column: Column, window: TimeWindow, groups: int
) -> Counter[int] | Any:
    """Per group, from the checkpoints: O(groups + block) whatever the number of rooms held."""
    assert column.checkpoints is not None
    start, end = window.start_ms, window.end_ms
    np = numpy_or_none()
    if np is None:
        per_group = window_groups_python(table, column, start, end) if start < end else Counter()
        for ts, group in zip(table.extra_ts, column.extra, strict=True):
            if start <= ts < end:
                per_group[group] += 1
        return per_group
    per_group = np.zeros(groups, dtype=np.int64)
    if start < end:
        base = _window_groups(np, table, column, start, end)
        per_group[: len(base)] += base
        if table.extra_ts:
            ts = np.frombuffer(table.extra_ts, dtype=np.int64)
            codes = np.frombuffer(column.extra, dtype=np.int32)[(ts >= start) & (ts < end)]
            per_group += np.bincount(codes, minlength=groups)
    return per_group


def _window_groups(np: ModuleType, table: FactTable, column: Column, start: int, end: int) -> Any:
    """Per group, the base rooms created in ``[start, end)``."""
    ts = np.frombuffer(table.base_ts, dtype=np.int64) if table.base_ts else np.zeros(0, "int64")
    groups = np.frombuffer(column.base, dtype=numpy_type(column.base))
    width, block, size = column.width, column.block, len(ts)
    low, high = (int(at) for at in ts.searchsorted((start, end)))
    if high - low <= block:
        return np.bincount(groups[low:high], minlength=width)
    assert column.checkpoints is not None
    rows = np.frombuffer(column.checkpoints, dtype=np.int32).reshape(-1, width)

    def before(place: int) -> Any:
        # From the nearer checkpoint: at most half a block of rooms is looked at.
        row = place // block
        if place - row * block <= block // 2 or (row + 1) * block > size:
            return rows[row] + np.bincount(groups[row * block : place], minlength=width)
        return rows[row + 1] - np.bincount(groups[place : (row + 1) * block], minlength=width)

    return before(high) - before(low)


# -- per row: the groups a visibility admits, folded ---------------------------------------


def _fold_python(
    facet: Facet, fold: Fold, per_group: Mapping[int, int], admitted: list[bool]
) -> GroupCounts:
    group_partition, by_group = facet.group_partition, fold.by_group
    per_row: Counter[int] = Counter()
    rooms = 0
    for group, found in per_group.items():
        if group == VOID or not found or not admitted[group_partition[group]]:
            continue
        rooms += found
        for row, times in by_group[group]:
            per_row[row] += found * times
    unspecified = per_row.pop(UNSPECIFIED_ROW, 0)
    per_row.pop(NOWHERE, None)
    rows = fold.rows
    found_rows = [(rows[row], value) for row, value in per_row.items() if value]
    return GroupCounts(
        keys=[key for key, _ in found_rows],
        values=[value for _, value in found_rows],
        unspecified=unspecified,
        rooms=rooms,
    )


def _fold_numpy(
    np: ModuleType,
    facet: Facet,
    fold: Fold,
    per_group: Any,
    visibility: Visibility,
    admitted: list[bool],
) -> GroupCounts:
    if visibility.restricted:
        # VOID's partition is -1: the False appended here.
        by_partition = np.array([*admitted, False], dtype=bool)
        per_group = per_group * by_partition[np.frombuffer(facet.group_partition, np.int32)]
    per_group[VOID] = 0
    rooms = int(per_group.sum())
    rows = np.frombuffer(fold.pair_row, dtype=np.int32)
    if fold.single:
        weights = per_group  # one pair a group, in group order
    else:
        weights = per_group[np.frombuffer(fold.pair_group, dtype=np.int32)]
        weights *= np.frombuffer(fold.pair_times, dtype=np.int32)
    per_row = np.bincount(rows, weights=weights, minlength=len(fold.rows)).astype(np.int64)
    found = np.flatnonzero(per_row[2:]) + 2  # past UNSPECIFIED_ROW and NOWHERE
    return GroupCounts(
        keys=fold.row_array(np)[found].tolist(),
        values=per_row[found].tolist(),
        unspecified=int(per_row[UNSPECIFIED_ROW]),
        rooms=rooms,
    )


# -- strategies ----------------------------------------------------------------------------

_CHOOSERS: dict[str, Callable[[FactTable], Plan]] = {
    "scan": lambda table: Plan.SCAN,
    "columnar": lambda table: Plan.COLUMNS,
    "indexed": lambda table: Plan.INDEX,
    # The index, always: choosing the columns for few rooms and many groups bought nothing
    # measurable (benchmarks/README.md#the-auto-rule).
    "auto": lambda table: Plan.INDEX,
}
#: The strategy names a store accepts.
STRATEGY_NAMES = tuple(sorted(_CHOOSERS))


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


def explain(name: str, table: FactTable) -> Plan:
    """The plan strategy ``name`` takes to count ``table``."""
    return _CHOOSERS[name](table)


def count(
    name: str,
    table: FactTable,
    grouping: Grouping,
    window: TimeWindow,
    visibility: Visibility,
    mode: TotalMode,
) -> GroupCounts:
    """Count ``table`` for ``grouping``'s report in ``mode``, by the plan ``name`` chooses."""
    plan = explain(name, table)
    facet, column = table.codes.facets[grouping], table.columns[grouping]
    admitted = table.codes.admitted(visibility)
    fold = facet.fold(mode)
    if plan is Plan.SCAN:
        return _fold_python(facet, fold, count_scan(table, column, window), admitted)
    counter = count_columns if plan is Plan.COLUMNS else count_index
    per_group = counter(table, column, window, facet.groups)
    if isinstance(per_group, Counter):
        return _fold_python(facet, fold, per_group, admitted)
    return _fold_numpy(load_numpy(), facet, fold, per_group, visibility, admitted)
