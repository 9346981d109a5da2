"""The in-memory store (:class:`MemoryStore`) and how it counts (:mod:`.counting`)."""

from convstats_adapters.memory.counting import STRATEGY_NAMES, Plan
from convstats_adapters.memory.store import MemoryStore

__all__ = ["STRATEGY_NAMES", "MemoryStore", "Plan"]
