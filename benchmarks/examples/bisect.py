"""An example counting strategy: the times of each group's rooms, sorted, and two bisections.

Copy this file to start your own contender, then race it::

    python -m benchmarks --strategy benchmarks.examples.bisect:count --rooms 100k,1M

``count`` has the signature ``MemoryStore(strategy=…)`` takes
(``convstats_adapters.memory.counting.CountGroups``): given the store's table, one
grouping's column, a window and the number of groups, it returns the rooms of the window
per group code. The store folds those into the report's rows, applies the caller's
visibility, and the harness checks every answer against the reference before timing it.

How it counts: once per state of the base (``table.version``), each base room gets the key
``group * span + (time - first time)``, where ``span`` is one more than the milliseconds
from the first room to the last; sorting the keys orders the rooms by group and, within a
group, by time. The rooms of group ``g`` in ``[start, end)`` then lie between two
bisections, made for every group at once by one ``numpy.searchsorted``: O(groups * log
rooms) a query, whatever the window, and 8 bytes a room beside what the store holds. The
overlay (rooms changed since the base was built) is counted as it is, at each call.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from convstats.model import TimeWindow
from convstats_adapters.memory.table import Column, FactTable, numpy_type

NEVER = 2**63 - 1  # the time of a room that never counts (its group is VOID)
# What was derived from each column's base, gone with the column.
_derived: weakref.WeakKeyDictionary[Column, tuple[int, int, int, Any]] = weakref.WeakKeyDictionary()


def _keys(table: FactTable, column: Column) -> tuple[int, int, Any]:
    """The first time, the span and the sorted keys of the base, once per state of it."""
    found = _derived.get(column)
    if found is not None and found[0] == table.version:
        return found[1], found[2], found[3]
    times = np.frombuffer(table.base_ts, dtype=np.int64) if table.base_ts else np.zeros(0, "int64")
    groups = np.frombuffer(column.base, dtype=numpy_type(column.base)).astype(np.int64)
    dated = times[times < NEVER]
    origin = int(dated[0]) if len(dated) else 0
    span = int(dated[-1]) - origin + 1 if len(dated) else 1
    if column.width * span >= 2**62:
        raise ValueError(f"{column.width} groups over {span} ms do not fit a 64-bit key")
    keys = np.sort(groups * span + np.clip(times - origin, 0, span - 1))
    _derived[column] = (table.version, origin, span, keys)
    return origin, span, keys


def count(table: FactTable, column: Column, window: TimeWindow, groups: int) -> Any:
    """Per group code, the rooms created in ``window``: bisections per group, then the overlay."""
    origin, span, keys = _keys(table, column)
    start = min(max(window.start_ms - origin, 0), span)
    end = min(max(window.end_ms - origin, 0), span)
    base = np.arange(min(groups, column.width), dtype=np.int64) * span
    per_group = np.zeros(groups, dtype=np.int64)
    per_group[: len(base)] = np.searchsorted(keys, base + end) - np.searchsorted(keys, base + start)
    if table.extra_ts:
        ts = np.frombuffer(table.extra_ts, dtype=np.int64)
        hits = np.frombuffer(column.extra, dtype=np.int32)[
            (ts >= window.start_ms) & (ts < window.end_ms)
        ]
        per_group += np.bincount(hits, minlength=groups)
    return per_group
