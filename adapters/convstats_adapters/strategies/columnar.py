"""The columnar strategy: the fact columns counted in bulk with numpy (extra ``columnar``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from convstats.errors import MissingDependency
from convstats.model import AgentCounts, TimeWindow, Visibility
from convstats_adapters.rooms import served_agent
from convstats_adapters.strategies.table import FactTable

__all__ = ["ColumnarStrategy", "count_columns", "load_numpy"]

Room = Mapping[str, Any]


def load_numpy() -> ModuleType:
    """Import numpy, or raise :class:`~convstats.errors.MissingDependency` naming the extra."""
    try:
        import numpy
    except ImportError as error:
        raise MissingDependency("numpy", "columnar") from error
    return numpy


def count_columns(table: FactTable, window: TimeWindow, visibility: Visibility) -> AgentCounts:
    """Count a fact table in a few vectorised passes: time mask, partition mask, bincount.

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
    agent_ids = table.agent_ids
    per_agent = {
        agent_ids[code]: int(counts[code]) for code in (np.flatnonzero(counts[1:]) + 1).tolist()
    }
    return AgentCounts(per_agent=per_agent, unassigned=int(counts[0]))


class ColumnarStrategy:
    """Rooms as three integer columns (16 bytes a room), counted in bulk.

    A query is a few numpy passes over all the columns, so its cost grows with the rooms
    held, not with the agents or partitions; an update rewrites one slot.
    """

    def __init__(self) -> None:
        self._table = FactTable()

    def load(self, rooms: Iterable[tuple[object, Room]]) -> None:
        """See :meth:`CountingStrategy.load`."""
        self._table.load(rooms)

    def put(self, key: object, room: Room) -> None:
        """See :meth:`CountingStrategy.put`."""
        self._table.release(key)
        self._table.add(key, room)

    def remove(self, key: object) -> bool:
        """See :meth:`CountingStrategy.remove`."""
        return self._table.release(key) is not None

    def set_served_by(self, key: object, agent: Mapping[str, Any] | None) -> None:
        """See :meth:`CountingStrategy.set_served_by`."""
        table = self._table
        slot = table.slots[key]
        served = None if agent is None else served_agent({"servedBy": dict(agent)})
        table.agent[slot] = table.agent_code(served)

    def __contains__(self, key: object) -> bool:
        return key in self._table.slots

    def __len__(self) -> int:
        return len(self._table)

    def count(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """See :meth:`CountingStrategy.count`."""
        return count_columns(self._table, window, visibility)

    def footprint(self) -> Mapping[str, int]:
        """See :meth:`CountingStrategy.footprint`."""
        return self._table.footprint()
