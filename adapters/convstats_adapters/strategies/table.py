"""Each room as three machine integers: the ground of the columnar and indexed strategies."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from convstats.model import Visibility
from convstats_adapters.rooms import created_ms, department_key, served_agent

__all__ = ["NEVER", "NO_PARTITION", "UNASSIGNED", "FactTable"]

Room = Mapping[str, Any]
PartitionKey = tuple[object, tuple[str, ...]]

#: The creation time of a slot that never counts: a room that is not a dated livechat room,
#: or a freed slot. Beyond every window, since a datetime ends in the year 9999.
NEVER = 2**63 - 1
#: The partition code of a slot that never counts.
NO_PARTITION = -1
#: The agent code of an unassigned room.
UNASSIGNED = 0


class FactTable:
    """Rooms as parallel columns: creation time (int64 ms), agent code, partition code.

    Agents and visibility partitions (:func:`~convstats_adapters.rooms.department_key`) are
    numbered in order of appearance and never renumbered, so a code stays valid for the
    table's life. A room's slot is found by key for updates; freed slots are reused.
    """

    def __init__(self) -> None:
        self.ts = array("q")
        self.agent = array("i")
        self.partition = array("i")
        self.slots: dict[object, int] = {}
        self._free: list[int] = []
        #: Agent id by code; code 0 is "unassigned".
        self.agent_ids: list[str | None] = [None]
        self._agent_codes: dict[str | None, int] = {None: UNASSIGNED}
        #: Raw ``(departmentId, departmentAncestors)`` by partition code, for ``Visibility.admits``.
        self.partitions: list[tuple[object, list[str]]] = []
        self._partition_codes: dict[PartitionKey, int] = {}

    def __len__(self) -> int:
        return len(self.slots)

    def agent_code(self, agent: str | None) -> int:
        """The code of an agent id (``None``: unassigned), numbering a new one."""
        code = self._agent_codes.get(agent)
        if code is None:
            code = self._agent_codes[agent] = len(self.agent_ids)
            self.agent_ids.append(agent)
        return code

    def partition_code(self, key: PartitionKey) -> int:
        """The code of a visibility partition, numbering a new one."""
        code = self._partition_codes.get(key)
        if code is None:
            code = self._partition_codes[key] = len(self.partitions)
            self.partitions.append((key[0], list(key[1])))
        return code

    def facts(self, room: Room) -> tuple[int, int, int]:
        """``(ts, agent code, partition code)`` of a room; ``NEVER`` for one that never counts."""
        ts = created_ms(room)
        if ts is None:
            return NEVER, UNASSIGNED, NO_PARTITION
        return ts, self.agent_code(served_agent(room)), self.partition_code(department_key(room))

    def load(self, rooms: Iterable[tuple[object, Room]]) -> range:
        """Append many new rooms; return their slots. Raises ``ValueError`` for a held key."""
        slots, facts = self.slots, self.facts
        ts_column, agent_column, partition_column = self.ts, self.agent, self.partition
        first = len(ts_column)
        for key, room in rooms:
            if key in slots:
                raise ValueError(f"two rooms have the _id {key!r}")
            ts, agent, partition = facts(room)
            slots[key] = len(ts_column)
            ts_column.append(ts)
            agent_column.append(agent)
            partition_column.append(partition)
        return range(first, len(ts_column))

    def add(self, key: object, room: Room) -> int:
        """Store a room under a new key; return its slot."""
        if key in self.slots:
            raise ValueError(f"two rooms have the _id {key!r}")
        ts, agent, partition = self.facts(room)
        if self._free:
            slot = self._free.pop()
            self.ts[slot], self.agent[slot], self.partition[slot] = ts, agent, partition
        else:
            slot = len(self.ts)
            self.ts.append(ts)
            self.agent.append(agent)
            self.partition.append(partition)
        self.slots[key] = slot
        return slot

    def release(self, key: object) -> int | None:
        """Forget the room under ``key``; return the freed slot (its facts are cleared)."""
        slot = self.slots.pop(key, None)
        if slot is not None:
            self.ts[slot], self.agent[slot], self.partition[slot] = NEVER, UNASSIGNED, NO_PARTITION
            self._free.append(slot)
        return slot

    def admitted(self, visibility: Visibility) -> list[bool]:
        """Per partition code, whether ``visibility`` admits its rooms (one decision each)."""
        if not visibility.restricted:
            return [True] * len(self.partitions)
        admits = visibility.admits
        return [admits(department, ancestors) for department, ancestors in self.partitions]

    def footprint(self) -> dict[str, int]:
        """Bytes of the columns (per room), of the key lookup, and of the code tables."""
        keys = sum(sys.getsizeof(key) for key in self.slots)
        slot_numbers = sum(sys.getsizeof(slot) for slot in self.slots.values())
        codes = (
            sys.getsizeof(self.agent_ids)
            + sys.getsizeof(self._agent_codes)
            + sum(sys.getsizeof(agent) for agent in self.agent_ids)
            + sys.getsizeof(self.partitions)
            + sys.getsizeof(self._partition_codes)
        )
        return {
            "columns": sys.getsizeof(self.ts)
            + sys.getsizeof(self.agent)
            + sys.getsizeof(self.partition)
            + sys.getsizeof(self._free),
            "codes": codes,
            "id map": sys.getsizeof(self.slots) + slot_numbers + keys,
        }
