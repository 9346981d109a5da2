"""Aggregation strategies of the in-memory store: the same counts at different costs.

A strategy holds the rooms of a :class:`~convstats_adapters.memory.MemoryStore` in whatever
form suits it and answers :meth:`~convstats.ports.RoomStore.count_conversations`; the store
picks one by name (:data:`STRATEGY_NAMES`, built by :func:`make_strategy`).

========== =========================================================================
``scan``   the documents themselves, one pass per query; the reference
``columnar`` three integer columns per room, counted in bulk with numpy (extra ``columnar``)
``indexed`` the columns plus sorted creation times per partition and agent; bisection
``auto``   the index, answering each query from the index or the columns, whichever is cheaper
========== =========================================================================
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from convstats.model import AgentCounts, TimeWindow, Visibility

__all__ = [
    "STRATEGY_NAMES",
    "CountingStrategy",
    "make_strategy",
    "numpy_available",
]

Room = Mapping[str, Any]

#: The names :func:`make_strategy` accepts.
STRATEGY_NAMES = ("auto", "columnar", "indexed", "scan")


class CountingStrategy(Protocol):
    """What the in-memory store asks of a strategy.

    A strategy owns the rooms: keys are room ``_id`` values (or a stand-in the store makes for
    a room without one). Every change goes through :meth:`put`, :meth:`remove` and
    :meth:`set_served_by`, so a strategy that keeps derived structures keeps them consistent
    without a rebuild. Answers are exactly those of the scan strategy for the same rooms.
    """

    def load(self, rooms: Iterable[tuple[object, Room]]) -> None:
        """Add many rooms at once (the initial build).

        Raises :class:`ValueError` when a key is already held or appears twice.
        """
        ...

    def put(self, key: object, room: Room) -> None:
        """Insert the room under ``key``, replacing the room held there."""
        ...

    def remove(self, key: object) -> bool:
        """Forget the room under ``key``; return whether there was one."""
        ...

    def set_served_by(self, key: object, agent: Mapping[str, Any] | None) -> None:
        """Set the room's ``servedBy`` to ``agent``, or drop it with ``None``.

        Raises :class:`KeyError` when no room is held under ``key``.
        """
        ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...

    def count(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """Answer ``count_conversations`` for the rooms held now."""
        ...

    def footprint(self) -> Mapping[str, int]:
        """Bytes held, by component (``sys.getsizeof`` of the containers and their items).

        A diagnostic for benchmarks: exact for machine arrays, an estimate for Python objects
        shared with the caller (such as ``_id`` strings).
        """
        ...


def numpy_available() -> bool:
    """Whether numpy can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("numpy") is not None
    except (ImportError, ValueError):
        return False


def make_strategy(name: str) -> CountingStrategy:
    """A new, empty strategy by name.

    Raises :class:`ValueError` for an unknown name and
    :class:`~convstats.errors.MissingDependency` for ``columnar`` without numpy.
    """
    # Imported here so that the scan and the index never import numpy for nothing.
    if name == "scan":
        from convstats_adapters.strategies.scan import ScanStrategy

        return ScanStrategy()
    if name == "columnar":
        from convstats_adapters.strategies.columnar import ColumnarStrategy, load_numpy

        load_numpy()
        return ColumnarStrategy()
    if name == "indexed":
        from convstats_adapters.strategies.indexed import IndexedStrategy

        return IndexedStrategy()
    if name == "auto":
        from convstats_adapters.strategies.indexed import IndexedStrategy

        return IndexedStrategy(columnar_fallback=numpy_available())
    known = ", ".join(STRATEGY_NAMES)
    raise ValueError(f"unknown strategy {name!r}; choose one of: {known}")
