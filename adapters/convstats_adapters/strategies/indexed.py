"""The indexed strategy: sorted creation times per visibility partition and agent."""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from convstats.errors import MissingDependency
from convstats.model import AgentCounts, TimeWindow, Visibility
from convstats_adapters.rooms import served_agent
from convstats_adapters.strategies.table import NEVER, FactTable

__all__ = ["COLUMN_SLOTS_PER_GROUP", "IndexedStrategy"]

Room = Mapping[str, Any]

#: How many column slots numpy counts in the time the index takes for one group (two
#: bisections and the bookkeeping around them in Python), measured on the benchmark
#: machine: about 1 µs a group against about 2.5 ns a slot. See ``benchmarks/README.md``.
COLUMN_SLOTS_PER_GROUP = 400


class IndexedStrategy:
    """The fact columns plus, for each partition and agent, the sorted creation times.

    A query judges each partition once and, for each (partition, agent) group it admits,
    bisects for the window's two ends: O(groups * log rooms), whatever the number of rooms
    in the window. Memory: the 16-byte columns (kept for updates) and 8 bytes a room in the
    index. An update moves one time stamp between two groups.

    With ``columnar_fallback`` (the ``auto`` strategy), a query whose admitted groups are
    many for the rooms held (more than one per :data:`COLUMN_SLOTS_PER_GROUP` slots) is
    answered from the columns with numpy instead: the index wins on many rooms per group,
    the columns on many groups and few rooms.
    """

    def __init__(self, *, columnar_fallback: bool = False) -> None:
        self._table = FactTable()
        #: Per partition code: agent code → sorted creation times (ms). Empty groups are dropped.
        self._index: list[dict[int, array[int]]] = []
        self._columnar_fallback = columnar_fallback
        #: Which structure answered the last query: ``"index"`` or ``"columns"``.
        self.last_plan = ""

    # -- changes ---------------------------------------------------------------------------

    def load(self, rooms: Iterable[tuple[object, Room]]) -> None:
        """See :meth:`CountingStrategy.load`; sorts each group once."""
        table = self._table
        new = table.load(rooms)
        groups: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        first = new.start
        for ts, partition, agent in zip(
            table.ts[first:], table.partition[first:], table.agent[first:], strict=True
        ):
            if ts != NEVER:
                groups[partition, agent].append(ts)
        for (partition, agent), times in groups.items():
            by_agent = self._partition(partition)
            held = by_agent.get(agent)
            if held is not None:
                times.extend(held)
            times.sort()
            by_agent[agent] = array("q", times)

    def put(self, key: object, room: Room) -> None:
        """See :meth:`CountingStrategy.put`."""
        self.remove(key)
        slot = self._table.add(key, room)
        self._enter(slot)

    def remove(self, key: object) -> bool:
        """See :meth:`CountingStrategy.remove`."""
        slot = self._table.slots.get(key)
        if slot is None:
            return False
        self._leave(slot)
        self._table.release(key)
        return True

    def set_served_by(self, key: object, agent: Mapping[str, Any] | None) -> None:
        """See :meth:`CountingStrategy.set_served_by`."""
        table = self._table
        slot = table.slots[key]
        served = None if agent is None else served_agent({"servedBy": dict(agent)})
        self._leave(slot)
        table.agent[slot] = table.agent_code(served)
        self._enter(slot)

    def _partition(self, code: int) -> dict[int, array[int]]:
        while len(self._index) <= code:
            self._index.append({})
        return self._index[code]

    def _enter(self, slot: int) -> None:
        table = self._table
        ts = table.ts[slot]
        if ts != NEVER:
            by_agent = self._partition(table.partition[slot])
            insort(by_agent.setdefault(table.agent[slot], array("q")), ts)

    def _leave(self, slot: int) -> None:
        table = self._table
        ts = table.ts[slot]
        if ts == NEVER:
            return
        by_agent = self._index[table.partition[slot]]
        agent = table.agent[slot]
        times = by_agent[agent]
        # Equal time stamps in one group are interchangeable: removing any one of them is right.
        del times[bisect_left(times, ts)]
        if not times:
            del by_agent[agent]

    def __contains__(self, key: object) -> bool:
        return key in self._table.slots

    def __len__(self) -> int:
        return len(self._table)

    # -- queries ---------------------------------------------------------------------------

    def count(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """See :meth:`CountingStrategy.count`."""
        table = self._table
        admitted = table.admitted(visibility)
        if self._columnar_fallback:
            pairs = zip(self._index, admitted, strict=False)
            groups = sum(len(by_agent) for by_agent, ok in pairs if ok)
            if groups * COLUMN_SLOTS_PER_GROUP > len(table.ts):
                try:
                    from convstats_adapters.strategies.columnar import count_columns

                    counts = count_columns(table, window, visibility)
                except MissingDependency:
                    # numpy went away (or never imported); the index is always right.
                    self._columnar_fallback = False
                else:
                    self.last_plan = "columns"
                    return counts
        self.last_plan = "index"
        start, end = window.start_ms, window.end_ms
        per_code: dict[int, int] = {}
        # The index has no entry yet for partitions first seen on rooms that never count.
        if start < end:
            for by_agent, ok in zip(self._index, admitted, strict=False):
                if not ok:
                    continue
                for agent, times in by_agent.items():
                    found = bisect_left(times, end) - bisect_left(times, start)
                    if found:
                        per_code[agent] = per_code.get(agent, 0) + found
        unassigned = per_code.pop(0, 0)
        agent_ids = table.agent_ids
        per_agent = {str(agent_ids[code]): found for code, found in per_code.items()}
        return AgentCounts(per_agent=per_agent, unassigned=unassigned)

    def footprint(self) -> Mapping[str, int]:
        """See :meth:`CountingStrategy.footprint`."""
        index = sys.getsizeof(self._index) + sum(
            sys.getsizeof(by_agent) + sum(sys.getsizeof(times) for times in by_agent.values())
            for by_agent in self._index
        )
        return {**self._table.footprint(), "index": index}
