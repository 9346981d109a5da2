"""Which place holds a room: its id's fingerprint in sorted machine arrays, not a dict.

A dict from a million id strings to slot numbers costs about 125 bytes a room (its hash
table, an ``int`` per slot, and the strings it keeps alive). Here a string id is held as a
96-bit fingerprint, two keyed hashes (Python's own SipHash of the id, and of the id behind
a prefix), in sorted arrays: 16 bytes a room with its place. Two ids are taken to be the same
room only when both hashes agree; for ten million distinct ids the chance that any two of
them share both is about 10^-15. Ids that are not strings (numbers, documents, ``None``)
are rare and kept exactly, in a dict.

The hashes are Python's, salted per process (``PYTHONHASHSEED``): an index lives and dies
within one process and is never written anywhere.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Hashable, Iterator, Sequence
from types import ModuleType

__all__ = ["IdIndex", "fingerprint", "fingerprints", "plain_key"]

#: Puts the second hash on a different input than the first.
_SALT = "\x00convstats\x00"
_LOW = 0xFFFFFFFF
_SIGN = 0x80000000


def _low32(value: int) -> int:
    """The low 32 bits of ``value`` as a signed int, to fit an ``array("i")``."""
    return ((value & _LOW) ^ _SIGN) - _SIGN


def plain_key(key: Hashable) -> Hashable:
    """``key``, with a ``str`` subclass made a plain ``str`` (BSON knows only strings)."""
    if isinstance(key, str) and type(key) is not str:
        return str.__str__(key)
    return key


def fingerprint(key: str) -> tuple[int, int]:
    """The two hashes a string id is held by: 64 bits, and 32 bits of a salted second."""
    return hash(key), _low32(hash(_SALT + key))


def fingerprints(keys: Sequence[str], np: ModuleType | None) -> tuple[array[int], array[int]]:
    """:func:`fingerprint` of many ids at once, as two arrays (``"q"`` and ``"i"``)."""
    first = array("q", map(hash, keys))
    salted = map(hash, map(_SALT.__add__, keys))
    if np is None:
        return first, array("i", map(_low32, salted))
    second = np.fromiter(salted, dtype=np.int64, count=len(keys))
    low = array("i")
    low.frombytes(second.astype(np.int32).tobytes())  # two's-complement wrap: the low bits
    return first, low


class IdIndex:
    """An immutable map from room keys to places, built once from many keys.

    ``first``, ``second`` and ``place`` are parallel arrays sorted by ``first``; ``others``
    holds the keys that are not strings. :meth:`find` costs one bisection.
    """

    def __init__(
        self,
        first: array[int],
        second: array[int],
        place: array[int],
        others: dict[Hashable, int],
    ) -> None:
        self.first, self.second, self.place, self.others = first, second, place, others

    @classmethod
    def empty(cls) -> IdIndex:
        """An index of no keys."""
        return cls(array("q"), array("i"), array("i"), {})

    def __len__(self) -> int:
        return len(self.first) + len(self.others)

    def find(self, key: Hashable) -> int | None:
        """The place of ``key`` (made by :func:`plain_key`), or ``None``."""
        if type(key) is not str:
            return self.others.get(key)
        one, two = fingerprint(key)
        first, second = self.first, self.second
        at, size = bisect_left(first, one), len(first)
        while at < size and first[at] == one:
            if second[at] == two:
                return self.place[at]
            at += 1
        return None

    def entries(self) -> Iterator[tuple[int, int, int]]:
        """``(first, second, place)`` of every string key."""
        return zip(self.first, self.second, self.place, strict=True)

    def nbytes(self) -> int:
        """Bytes held: the arrays, and the dict of other keys (an estimate)."""
        return (
            sys.getsizeof(self.first)
            + sys.getsizeof(self.second)
            + sys.getsizeof(self.place)
            + sys.getsizeof(self.others)
            + sum(sys.getsizeof(key) for key in self.others)
        )
