"""The reference strategy: the documents themselves, judged one by one at each query."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from convstats.model import AgentCounts, TimeWindow, Visibility
from convstats_adapters.rooms import READ_FIELDS, created_ms, served_agent

__all__ = ["ScanStrategy"]

Room = Mapping[str, Any]


def _own(value: Any) -> Any:
    # Documents and arrays are copied all the way down; scalars are immutable.
    if isinstance(value, Mapping):
        return {key: _own(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_own(item) for item in value)
    return value


def _snapshot(room: Room) -> dict[str, Any]:
    return {field: _own(room[field]) for field in READ_FIELDS if field in room}


class ScanStrategy:
    """One pass over the documents, each judged as SPEC §2 says.

    No derived structure; a query costs one look at every room. Each room is held as a
    private deep copy of the fields the report reads (``rooms.READ_FIELDS``), so that later
    changes to the caller's documents, nested ones included, do not leak in.
    The other strategies are tested against it.
    """

    def __init__(self) -> None:
        self._rooms: dict[object, dict[str, Any]] = {}

    def load(self, rooms: Iterable[tuple[object, Room]]) -> None:
        """See :meth:`CountingStrategy.load`."""
        held = self._rooms
        for key, room in rooms:
            if key in held:
                raise ValueError(f"two rooms have the _id {key!r}")
            held[key] = _snapshot(room)

    def put(self, key: object, room: Room) -> None:
        """See :meth:`CountingStrategy.put`."""
        self._rooms[key] = _snapshot(room)

    def remove(self, key: object) -> bool:
        """See :meth:`CountingStrategy.remove`."""
        return self._rooms.pop(key, None) is not None

    def set_served_by(self, key: object, agent: Mapping[str, Any] | None) -> None:
        """See :meth:`CountingStrategy.set_served_by`."""
        room = dict(self._rooms[key])
        if agent is None:
            room.pop("servedBy", None)
        else:
            room["servedBy"] = _own(agent)
        self._rooms[key] = room

    def __contains__(self, key: object) -> bool:
        return key in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)

    def count(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """Count by looking at every room."""
        start, end = window.start_ms, window.end_ms
        per_agent: Counter[str] = Counter()
        unassigned = 0
        for room in self._rooms.values():
            ts = created_ms(room)
            if ts is None or not start <= ts < end:
                continue
            if not visibility.admits(room.get("departmentId"), room.get("departmentAncestors")):
                continue
            agent = served_agent(room)
            if agent is None:
                unassigned += 1
            else:
                per_agent[agent] += 1
        return AgentCounts(per_agent=dict(per_agent), unassigned=unassigned)

    def footprint(self) -> Mapping[str, int]:
        """The key table and the copies of the read fields (their top level)."""
        return {
            "id map": sys.getsizeof(self._rooms),
            "documents": sum(sys.getsizeof(room) for room in self._rooms.values()),
        }
