"""Each room as three machine integers, with an optional index of creation times per group."""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Hashable, Iterable

from convstats.model import Partition, Visibility
from convstats_adapters.documents import Document, created_ms, partition, served_agent

__all__ = ["NEVER", "NO_PARTITION", "UNASSIGNED", "FactTable"]

#: The creation time of a slot that never counts: a room that is not a dated livechat room,
#: or a freed slot. Beyond every window, since a datetime ends in the year 9999.
NEVER = 2**63 - 1
#: The partition code of a slot that never counts.
NO_PARTITION = -1
#: The agent code of a room without an agent.
UNASSIGNED = 0


class FactTable:
    """Rooms as parallel columns: creation time (int64 ms), agent code, partition code.

    Agents and visibility partitions are numbered in order of appearance and never
    renumbered, so a code stays valid for the table's life. A room's slot is found by key for
    updates; freed slots are reused. Every change goes through :meth:`load`, :meth:`put`,
    :meth:`remove` and :meth:`set_agent`, which keep the columns and, when the table is
    ``indexed``, the per-(partition, agent) sorted creation times consistent.
    """

    def __init__(self, *, indexed: bool) -> None:
        self.ts = array("q")
        self.agent = array("i")
        self.partition = array("i")
        self.slots: dict[Hashable, int] = {}
        self._free: list[int] = []
        #: Agent id by code; code 0 is "no agent".
        self.agent_ids: list[str | None] = [None]
        self._agent_codes: dict[str | None, int] = {None: UNASSIGNED}
        #: Partition by code, for ``Visibility.admits``.
        self.partitions: list[Partition] = []
        self._partition_codes: dict[Partition, int] = {}
        #: Per partition code: agent code → sorted creation times (ms); ``None`` unless
        #: ``indexed``. Empty groups are dropped.
        self.index: list[dict[int, array[int]]] | None = [] if indexed else None

    def __len__(self) -> int:
        return len(self.slots)

    def __contains__(self, key: object) -> bool:
        return key in self.slots

    # -- codes -------------------------------------------------------------------------------

    def agent_code(self, agent: str | None) -> int:
        """The code of an agent id (``None``: no agent), numbering a new one."""
        code = self._agent_codes.get(agent)
        if code is None:
            code = self._agent_codes[agent] = len(self.agent_ids)
            self.agent_ids.append(agent)
        return code

    def _partition_code(self, key: Partition) -> int:
        code = self._partition_codes.get(key)
        if code is None:
            code = self._partition_codes[key] = len(self.partitions)
            self.partitions.append(key)
        return code

    def _facts(self, room: Document) -> tuple[int, int, int]:
        ts = created_ms(room)
        if ts is None:
            return NEVER, UNASSIGNED, NO_PARTITION
        return ts, self.agent_code(served_agent(room)), self._partition_code(partition(room))

    # -- changes -----------------------------------------------------------------------------

    def load(self, rooms: Iterable[tuple[Hashable, Document]]) -> None:
        """Append many new rooms at once (the initial build); each index group is sorted once.

        Raises :class:`ValueError` when a key is already held or appears twice.
        """
        slots, facts = self.slots, self._facts
        ts_column, agent_column, partition_column = self.ts, self.agent, self.partition
        first = len(ts_column)
        for key, room in rooms:
            if key in slots:
                raise ValueError(f"two rooms have the _id {key!r}")
            ts, agent, code = facts(room)
            slots[key] = len(ts_column)
            ts_column.append(ts)
            agent_column.append(agent)
            partition_column.append(code)
        if self.index is not None:
            self._index_bulk(first)

    def _index_bulk(self, first: int) -> None:
        groups: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        for ts, code, agent in zip(
            self.ts[first:], self.partition[first:], self.agent[first:], strict=True
        ):
            if ts != NEVER:
                groups[code, agent].append(ts)
        for (code, agent), times in groups.items():
            by_agent = self._by_agent(code)
            held = by_agent.get(agent)
            if held is not None:
                times.extend(held)
            times.sort()
            by_agent[agent] = array("q", times)

    def put(self, key: Hashable, room: Document) -> None:
        """Insert the room under ``key``, replacing the room held there."""
        self.remove(key)
        ts, agent, code = self._facts(room)
        if self._free:
            slot = self._free.pop()
            self.ts[slot], self.agent[slot], self.partition[slot] = ts, agent, code
        else:
            slot = len(self.ts)
            self.ts.append(ts)
            self.agent.append(agent)
            self.partition.append(code)
        self.slots[key] = slot
        self._enter(slot)

    def remove(self, key: Hashable) -> bool:
        """Forget the room under ``key``; return whether there was one."""
        slot = self.slots.pop(key, None)
        if slot is None:
            return False
        self._leave(slot)
        self.ts[slot], self.agent[slot], self.partition[slot] = NEVER, UNASSIGNED, NO_PARTITION
        self._free.append(slot)
        return True

    def set_agent(self, key: Hashable, agent: str | None) -> None:
        """Make the room under ``key`` count for ``agent`` (``None``: no agent).

        Raises :class:`KeyError` when no room is held under ``key``.
        """
        slot = self.slots[key]
        self._leave(slot)
        self.agent[slot] = self.agent_code(agent)
        self._enter(slot)

    def _by_agent(self, code: int) -> dict[int, array[int]]:
        assert self.index is not None
        while len(self.index) <= code:
            self.index.append({})
        return self.index[code]

    def _enter(self, slot: int) -> None:
        ts = self.ts[slot]
        if self.index is not None and ts != NEVER:
            by_agent = self._by_agent(self.partition[slot])
            insort(by_agent.setdefault(self.agent[slot], array("q")), ts)

    def _leave(self, slot: int) -> None:
        ts = self.ts[slot]
        if self.index is None or ts == NEVER:
            return
        by_agent = self.index[self.partition[slot]]
        agent = self.agent[slot]
        times = by_agent[agent]
        # Equal time stamps in one group are interchangeable: removing any one of them is right.
        del times[bisect_left(times, ts)]
        if not times:
            del by_agent[agent]

    # -- reading -----------------------------------------------------------------------------

    def admitted(self, visibility: Visibility) -> list[bool]:
        """Per partition code, whether ``visibility`` admits its rooms (one decision each)."""
        if not visibility.restricted:
            return [True] * len(self.partitions)
        return [visibility.admits(key) for key in self.partitions]

    def footprint(self) -> dict[str, int]:
        """Bytes of the columns, of the index, of the key lookup, and of the code tables."""
        keys = sum(sys.getsizeof(key) for key in self.slots)
        slot_numbers = sum(sys.getsizeof(slot) for slot in self.slots.values())
        codes = (
            sys.getsizeof(self.agent_ids)
            + sys.getsizeof(self._agent_codes)
            + sum(sys.getsizeof(agent) for agent in self.agent_ids)
            + sys.getsizeof(self.partitions)
            + sys.getsizeof(self._partition_codes)
        )
        sizes = {
            "columns": sys.getsizeof(self.ts)
            + sys.getsizeof(self.agent)
            + sys.getsizeof(self.partition)
            + sys.getsizeof(self._free),
            "codes": codes,
            "id map": sys.getsizeof(self.slots) + slot_numbers + keys,
        }
        if self.index is not None:
            sizes["index"] = sys.getsizeof(self.index) + sum(
                sys.getsizeof(by_agent) + sum(sys.getsizeof(times) for times in by_agent.values())
                for by_agent in self.index
            )
        return sizes
