"""Adapters for convstats: the stores it reads (memory, MongoDB) and the command line.

The MongoDB store needs the ``mongo`` extra (``pip install 'convstats[mongo]'``) and is
imported from :mod:`convstats_adapters.mongo`.
"""

from convstats_adapters.memory import MemoryStore

__all__ = ["MemoryStore"]
