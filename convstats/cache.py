"""An optional in-process result cache with a time to live (docs/behaviour.md#caching)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import attrs

__all__ = ["TTLCache"]

V = TypeVar("V")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


@attrs.define(kw_only=True)
class TTLCache(Generic[V]):
    """Remembers each computed value for ``ttl`` seconds of ``clock``.

    Upstream keeps each report for 60 s keyed on the request and the caller's visibility, and
    never invalidates; here :meth:`invalidate` drops everything at once. Safe to share between
    threads: two threads that miss the same key at the same moment may both compute it, and
    the later answer is kept; a value is never served past its time to live.
    """

    ttl: float = attrs.field(default=60.0, validator=_positive)
    clock: Callable[[], float] = time.monotonic
    _entries: dict[Hashable, tuple[float, V]] = attrs.field(init=False, factory=dict)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """Return the live value for ``key``, or compute, remember and return it.

        An exception from ``compute`` propagates and nothing is remembered.
        """
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                return entry[1]
        value = compute()
        expires = now + self.ttl
        with self._lock:
            self._evict_expired(now)
            self._entries[key] = (expires, value)
        return value

    def invalidate(self) -> None:
        """Forget every remembered value."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _evict_expired(self, now: float) -> None:
        expired = [key for key, (expires, _) in self._entries.items() if expires <= now]
        for key in expired:
            del self._entries[key]
