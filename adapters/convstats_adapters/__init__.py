"""Adapters for convstats: the stores it reads (memory, MongoDB) and what drives it.

The drivers are the command line (:mod:`.cli`) and the HTTP service (:mod:`.server`, extra
``server``), which also serves the dashboard page.

The MongoDB store needs the ``mongo`` extra (``pip install 'convstats[mongo]'``) and is
imported from :mod:`convstats_adapters.mongo`.
"""

from convstats_adapters.memory import MemoryDirectory, MemoryRooms, MemoryStore

__all__ = ["MemoryDirectory", "MemoryRooms", "MemoryStore"]
