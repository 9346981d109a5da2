"""How the in-memory store counts: one function a plan, and the strategies that choose one.

========== ===========================================================================
``scan``     one Python pass over every room's facts; the reference
``columnar`` a few vectorised numpy passes over the columns (extra ``columnar``)
``indexed``  two bisections per (partition, agent) group of the sorted creation times
``auto``     the index, or the columns when numpy is installed and groups are many for
             the rooms held
========== ===========================================================================

All give exactly the same counts; :func:`explain` says which plan a strategy takes for a
query.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from types import ModuleType

from convstats.errors import MissingDependency
from convstats.model import AgentCounts, TimeWindow, Visibility
from convstats_adapters.memory.table import NEVER, UNASSIGNED, FactTable

__all__ = [
    "COLUMN_SLOTS_PER_GROUP",
    "STRATEGY_NAMES",
    "Plan",
    "count",
    "explain",
    "load_numpy",
    "needs_index",
]

#: How many column slots numpy counts in the time the index takes for one group (two
#: bisections and the bookkeeping around them in Python), measured on the benchmark
#: machine: about 1 µs a group against about 2.5 ns a slot. See ``benchmarks/README.md``.
COLUMN_SLOTS_PER_GROUP = 400


class Plan(enum.Enum):
    """Which structure answers a query."""

    SCAN = "scan"
    COLUMNS = "columns"
    INDEX = "index"


def load_numpy() -> ModuleType:
    """Import numpy, or raise :class:`~convstats.errors.MissingDependency` naming the extra."""
    try:
        import numpy
    except ImportError as error:
        raise MissingDependency("numpy", "columnar") from error
    return numpy


def _numpy_or_none() -> ModuleType | None:
    try:
        return load_numpy()
    except MissingDependency:
        return None


def count_scan(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count by looking at every room's facts, one at a time."""
    start, end = window.start_ms, window.end_ms
    admitted = table.admitted(visibility)
    per_code: Counter[int] = Counter()
    for ts, code, agent in zip(table.ts, table.partition, table.agent, strict=True):
        if ts != NEVER and start <= ts < end and admitted[code]:
            per_code[agent] += 1
    return _answer(table, per_code)


def count_columns(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count in a few vectorised passes: time mask, partition mask, bincount.

    Costs a pass over every slot whatever the window; the partitions are judged once each.
    """
    np = load_numpy()
    # Zero-copy views of the arrays; they must not outlive this call, because an array
    # with an exported buffer cannot grow.
    ts = np.frombuffer(table.ts, dtype=np.int64)
    hits = np.flatnonzero((ts >= window.start_ms) & (ts < window.end_ms))
    if visibility.restricted and hits.size:
        admitted = np.array(table.admitted(visibility), dtype=bool)
        partitions = np.frombuffer(table.partition, dtype=np.intc)[hits]
        hits = hits[admitted[partitions]]
    agents = np.frombuffer(table.agent, dtype=np.intc)[hits]
    counts = np.bincount(agents, minlength=len(table.agent_ids))
    nonzero = np.flatnonzero(counts).tolist()
    return _answer(table, {code: int(counts[code]) for code in nonzero})


def count_index(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count by bisecting each admitted group's sorted creation times for the window's ends.

    O(groups * log rooms), whatever the number of rooms in the window.
    """
    assert table.index is not None
    start, end = window.start_ms, window.end_ms
    per_code: dict[int, int] = {}
    if start < end:
        # The index has no entry yet for partitions first seen on rooms that never count.
        for by_agent, ok in zip(table.index, table.admitted(visibility), strict=False):
            if not ok:
                continue
            for agent, times in by_agent.items():
                found = bisect_left(times, end) - bisect_left(times, start)
                if found:
                    per_code[agent] = per_code.get(agent, 0) + found
    return _answer(table, per_code)


def _answer(table: FactTable, per_code: dict[int, int] | Counter[int]) -> AgentCounts:
    agent_ids = table.agent_ids
    return AgentCounts(
        per_agent={
            str(agent_ids[code]): found
            for code, found in per_code.items()
            if code != UNASSIGNED and found
        },
        unspecified=per_code.get(UNASSIGNED, 0),
    )


def _auto(table: FactTable, visibility: Visibility) -> Plan:
    if _numpy_or_none() is None or table.index is None:
        return Plan.INDEX
    admitted = table.admitted(visibility)
    groups = sum(len(by_agent) for by_agent, ok in zip(table.index, admitted, strict=False) if ok)
    return Plan.COLUMNS if groups * COLUMN_SLOTS_PER_GROUP > len(table.ts) else Plan.INDEX


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
