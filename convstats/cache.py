"""An optional in-process result cache, bounded in time and size (docs/behaviour.md#caching)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import attrs

__all__ = ["TTLCache"]

V = TypeVar("V")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _size(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number of entries >= 1, got {value!r}")


@attrs.define(kw_only=True)
class TTLCache(Generic[V]):
    """Remembers computed values for ``ttl`` seconds of ``clock``, and ``maxsize`` values at most.

    Upstream keeps each report for 60 s keyed on the request and the caller's visibility, and
    never invalidates; here :meth:`invalidate` drops everything at once. When a new value
    would make more than ``maxsize``, the least recently used one is forgotten. A lookup never
    passes over the other values (each expired or evicted one is dropped once), so a hit and
    a miss cost a constant time however many are held. A value is never served once ``ttl``
    seconds have passed since its computation began, however often it is used.

    A cache serves one owner, the store whose reports it holds (see :meth:`bind`), so that two
    stores never see each other's answers. Safe to share between threads: two threads that
    miss the same key at the same moment may both compute it, and the answer whose
    computation began last is kept.
    """

    ttl: float = attrs.field(default=60.0, validator=_positive)
    maxsize: int = attrs.field(default=1024, validator=_size)
    clock: Callable[[], float] = time.monotonic
    # Least recently used first: eviction takes the first entry, a hit moves its entry last.
    _entries: OrderedDict[Hashable, tuple[float, V]] = attrs.field(init=False, factory=OrderedDict)
    _owner: object | None = attrs.field(init=False, default=None, repr=False)
    _hits: int = attrs.field(init=False, default=0, repr=False)
    _misses: int = attrs.field(init=False, default=0, repr=False)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def bind(self, owner: object) -> None:
        """Reserve the cache for ``owner``'s values; binding the same owner again does nothing.

        Raises :class:`ValueError` when the cache is already bound to another object: values
        computed from one store must never answer for another. The binding outlives
        :meth:`invalidate`.
        """
        if self._owner is owner:
            return
        with self._lock:
            if self._owner is None:
                self._owner = owner
            elif self._owner is not owner:
                raise ValueError(
                    "this cache already holds the answers of another store "
                    f"({type(self._owner).__name__}); give each store a TTLCache of its own"
                )

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """Return the live value for ``key``, or compute, remember and return it.

        An exception from ``compute`` propagates and nothing is remembered.
        """
        entries = self._entries
        with self._lock:
            now = self.clock()
            entry = entries.get(key)
            if entry is not None:
                if entry[0] > now:
                    entries.move_to_end(key)
                    self._hits += 1
                    return entry[1]
                del entries[key]
            self._misses += 1
        value = compute()
        # Counted from before the computation, so that no answer outlives ttl from the data.
        expires = now + self.ttl
        with self._lock:
            held = entries.get(key)
            if held is None or held[0] <= expires:
                entries[key] = (expires, value)
                entries.move_to_end(key)
            while len(entries) > self.maxsize:
                entries.popitem(last=False)
            # Expired values at the least recently used end are dropped now, each once; one
            # that was used recently goes when it is asked for again or reaches that end.
            while entries:
                oldest = next(iter(entries))
                if entries[oldest][0] > now:
                    break
                del entries[oldest]
        return value

    @property
    def hits(self) -> int:
        """How many times :meth:`get_or_compute` answered with a remembered value."""
        return self._hits

    @property
    def misses(self) -> int:
        """How many times :meth:`get_or_compute` had to compute its value."""
        return self._misses

    def invalidate(self) -> None:
        """Forget every remembered value."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
