"""Aggregation strategies of the in-memory store: the same counts at different costs.

A strategy is told of every room the store gains or loses and answers
:meth:`~convstats.ports.RoomStore.count_conversations`; the store picks one by name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from convstats.model import AgentCounts, TimeWindow, Visibility

from convstats_adapters.rooms import created_ms, served_agent

__all__ = ["STRATEGIES", "CountingStrategy", "ScanStrategy"]

Room = Mapping[str, Any]


class CountingStrategy(Protocol):
    """What the in-memory store asks of a strategy.

    The store owns the documents; ``rooms`` maps each room's key to its current document.
    ``added`` and ``removed`` are called for every change after construction (a replaced
    document is removed, then added), so a strategy that keeps its own structures stays
    consistent without a rebuild.
    """

    def added(self, key: object, room: Room) -> None:
        """A room was stored under ``key``."""
        ...

    def removed(self, key: object, room: Room) -> None:
        """The room stored under ``key`` was removed."""
        ...

    def count(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """Answer ``count_conversations`` for the rooms stored now."""
        ...


class ScanStrategy:
    """The reference: one pass over the documents, each judged as SPEC §2 says.

    No build, no extra memory; a query costs one look at every room. The other strategies
    are tested against it.
    """

    def __init__(self, rooms: Mapping[object, Room]) -> None:
        self._rooms = rooms

    def added(self, key: object, room: Room) -> None:
        """Nothing to do: the scan reads the documents themselves."""

    def removed(self, key: object, room: Room) -> None:
        """Nothing to do: the scan reads the documents themselves."""

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


#: Strategy constructors by name; each takes the store's live ``{key: document}`` mapping.
STRATEGIES: dict[str, Callable[[Mapping[object, Room]], CountingStrategy]] = {
    "scan": ScanStrategy,
}
