"""Adapters for convstats: the in-memory store and the MongoDB store.

The MongoDB store needs the ``mongo`` extra (``pip install 'convstats[mongo]'``) and is
imported from :mod:`convstats_adapters.mongo`.
"""

from convstats_adapters.memory import MemoryStore

__all__ = ["MemoryStore"]
