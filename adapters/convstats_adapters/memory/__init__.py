"""The in-memory store: rooms, a directory, and both together.

:class:`MemoryRooms` holds and counts the rooms (:mod:`.counting`), :class:`MemoryDirectory`
the users, permissions and units, and :class:`MemoryStore` is a workspace of the two.
"""

from convstats_adapters.memory.counting import STRATEGY_NAMES, Plan, Strategy
from convstats_adapters.memory.directory import MemoryDirectory
from convstats_adapters.memory.store import MemoryRooms, MemoryStore

__all__ = ["STRATEGY_NAMES", "MemoryDirectory", "MemoryRooms", "MemoryStore", "Plan", "Strategy"]
