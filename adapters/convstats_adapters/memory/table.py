"""Rooms in creation-time order as machine columns, with the changes since beside them.

A room's facts are its creation time (int64 milliseconds, :data:`NEVER` when it never
counts) and, for each report's grouping (:class:`~convstats.model.Grouping`), its *group*:
the pair (visibility partition, raw key) it counts for, where the raw key is what
:func:`convstats_adapters.documents.raw_key` reads of the room for that report (its agent,
its status facts, its source, its department, its tags). Each grouping is a
:class:`Facet` of codes and a column of group codes.

The bulk of the rooms, the *base*, is held sorted by time: 8 bytes of time and 1, 2 (or 4)
bytes of group code a room and a grouping (as few as the groups allow), an
:class:`~convstats_adapters.memory.ids.IdIndex` from ids to places (16 bytes a room), and,
for the strategies that read it, cumulative counts per group at every ``block``-th place
(:attr:`Column.checkpoints`, under 2 bytes a room and a grouping), so that the rooms of any
window are counted from two rows of them and two short runs of groups.

Changes do not move the base: a removed or changed base room leaves a *void* place (group
:data:`VOID` in every column, which never counts) and a changed or new room goes to the
*overlay*, a small table of its own with a dict from keys to slots. When the overlay and the
void places grow past a share of the base, both are folded into a new base
(:meth:`FactTable.compact`).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import pairwise
from types import ModuleType
from typing import Any, Final

from convstats.model import ABSENT, Grouping, Partition, TotalMode, Visibility
from convstats_adapters import documents as doc
from convstats_adapters.documents import Document, created_ms, partition
from convstats_adapters.memory.ids import IdIndex, fingerprint, fingerprints, plain_key

__all__ = [
    "GROUPINGS",
    "NEVER",
    "NOWHERE",
    "NO_PARTITION",
    "UNNAMED",
    "UNSPECIFIED_ROW",
    "VOID",
    "Codes",
    "Column",
    "DuplicateRooms",
    "Facet",
    "FactTable",
    "Fold",
    "RoomColumns",
]

#: Every grouping, in the order a room's groups are listed.
GROUPINGS: Final = tuple(Grouping)

#: The creation time of a room that never counts: not a dated livechat room. Beyond every
#: window, since a datetime ends in the year 9999.
NEVER = 2**63 - 1
#: The partition code of a room that never counts.
NO_PARTITION = -1
#: The group of rooms that never count, and of the places of removed base rooms.
VOID = 0
#: The rows of every :class:`Fold`: rooms counted apart, and rooms counted nowhere.
UNSPECIFIED_ROW = 0
NOWHERE = 1

#: The smallest distance between two checkpoints (a power of two).
MIN_BLOCK = 1024
#: A block is also at least this many times the groups, so that the checkpoints (4 bytes a
#: group a block) cost at most ``4 / BLOCK_PER_GROUP`` bytes a room.
BLOCK_PER_GROUP = 2
#: The overlay and the void places are folded into the base when they exceed this many, or
#: a 64th of the base, whichever is more.
COMPACT_MIN = 4096
#: Visibilities whose admitted partitions a table remembers.
_ADMITTED_CACHE = 64

_VOID_KEY: Final = object()  # the raw key of VOID's group, in every facet
_NUMPY_TYPES: Final = {"B": "uint8", "H": "uint16", "i": "int32"}


def numpy_or_none() -> ModuleType | None:
    """The numpy module when it can be imported (extra ``columnar``), else ``None``."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def numpy_type(codes: array[int]) -> str:
    """The numpy dtype of an array of group codes."""
    return _NUMPY_TYPES[codes.typecode]


#: The key of a :class:`DuplicateRooms` that knows only a fingerprint.
UNNAMED: Any = object()


class DuplicateRooms(ValueError):
    """Two rooms have the same ``_id``; ``rows`` are their places in the order they came in.

    The first row is ``-1`` when the room was held before the load. ``key`` is the id, or
    :data:`UNNAMED` when a bulk load holds only its fingerprint.
    """

    def __init__(self, rows: tuple[int, int], key: Hashable = UNNAMED) -> None:
        shown = "the same _id" if key is UNNAMED else f"the _id {key!r}"
        super().__init__(f"two rooms have {shown}")
        self.rows = rows
        self.key = key


def _pair(partition_code: int, raw_code: int) -> int:
    return (partition_code + 1) << 32 | raw_code


class Facet:
    """One grouping's numbers: raw keys and groups, in order of appearance, never renumbered.

    Raw code 0 and group :data:`VOID` belong to the rooms that never count.
    """

    def __init__(self, grouping: Grouping) -> None:
        self.grouping = grouping
        #: Raw key by code (what :func:`~convstats_adapters.documents.raw_key` read).
        self.raw_keys: list[Any] = [_VOID_KEY]
        self._raw_codes: dict[Any, int] = {_VOID_KEY: 0}
        #: Per group code, its partition code and raw code.
        self.group_partition = array("i", [NO_PARTITION])
        self.group_raw = array("i", [0])
        # Keyed by one int rather than a pair: a tuple key costs 60 bytes more a group.
        self._group_codes: dict[int, int] = {_pair(NO_PARTITION, 0): VOID}
        self._folds: dict[TotalMode, Fold] = {}

    @property
    def groups(self) -> int:
        """How many groups are numbered, :data:`VOID` included."""
        return len(self.group_raw)

    def raw(self, key: Any) -> int:
        """The code of a raw key, numbering a new one."""
        code = self._raw_codes.get(key)
        if code is None:
            code = self._raw_codes[key] = len(self.raw_keys)
            self.raw_keys.append(key)
        return code

    def group(self, partition_code: int, raw_code: int) -> int:
        """The code of the group (partition, raw key), numbering a new one."""
        pair = _pair(partition_code, raw_code)
        code = self._group_codes.get(pair)
        if code is None:
            code = self._group_codes[pair] = len(self.group_raw)
            self.group_partition.append(partition_code)
            self.group_raw.append(raw_code)
        return code

    def group_of(self, partition_code: int, key: Any) -> int:
        """The code of the group (partition, raw key), numbering what is new."""
        # No cache of (partition, key) pairs: its tuples would cost more than the look-up.
        return self.group(partition_code, self.raw(key))

    def fold(self, mode: TotalMode) -> Fold:
        """How this facet's groups become the rows of its report in ``mode``, up to date."""
        found = self._folds.get(mode)
        if found is None:
            found = self._folds[mode] = Fold(self.grouping, mode)
        found.extend(self)
        return found

    def nbytes(self) -> int:
        """Bytes of the code tables (an estimate for the Python objects)."""
        return (
            sys.getsizeof(self.raw_keys)
            + sys.getsizeof(self._raw_codes)
            + sum(sys.getsizeof(key) for key in self.raw_keys)
            + sys.getsizeof(self.group_partition)
            + sys.getsizeof(self.group_raw)
            + sys.getsizeof(self._group_codes)
            + sum(fold.nbytes() for fold in self._folds.values())
        )


class Fold:
    """Where each group of a facet counts in one reading: its rows and how many times.

    Row :data:`UNSPECIFIED_ROW` holds the rooms counted apart, :data:`NOWHERE` those counted
    nowhere; the others are the report's rows, keyed by :attr:`rows`. A group places in
    ``pair_row[i]`` ``pair_times[i]`` times for each ``i`` with ``pair_group[i]`` its code.
    When every group places once, in its own pair (:attr:`single`), ``pair_row`` is indexed
    by group.
    """

    def __init__(self, grouping: Grouping, mode: TotalMode) -> None:
        self.grouping, self.mode = grouping, mode
        self.rows: list[Any] = [doc.UNSPECIFIED, None]
        self._row_codes: dict[Any, int] = {}
        self.pair_group = array("i")
        self.pair_row = array("i")
        self.pair_times = array("i")
        self.single = True
        #: The same pairs by group, ``(row, times)``, for counting in pure Python.
        self.by_group: list[tuple[tuple[int, int], ...]] = []
        #: Groups of the facet folded so far.
        self.done = 0
        self._by_raw: dict[int, tuple[tuple[int, int], ...]] = {}
        self._row_array: Any = None

    def extend(self, facet: Facet) -> None:
        """Fold the groups the facet numbered since the last call."""
        for group in range(self.done, facet.groups):
            raw = facet.group_raw[group]
            pairs = self._by_raw.get(raw)
            if pairs is None:
                pairs = self._by_raw[raw] = self._placed(facet.raw_keys[raw])
            if len(pairs) != 1 or pairs[0][1] != 1:
                self.single = False
            self.by_group.append(pairs)
            for row, times in pairs:
                self.pair_group.append(group)
                self.pair_row.append(row)
                self.pair_times.append(times)
        self.done = facet.groups

    def _placed(self, raw_key: Any) -> tuple[tuple[int, int], ...]:
        if raw_key is _VOID_KEY:
            return ((NOWHERE, 1),)
        placement = doc.rows_of(self.grouping, raw_key, self.mode)
        if placement is doc.UNSPECIFIED:
            return ((UNSPECIFIED_ROW, 1),)
        if not placement:
            return ((NOWHERE, 1),)
        return tuple((self._row(key), times) for key, times in placement)

    def _row(self, key: Any) -> int:
        code = self._row_codes.get(key)
        if code is None:
            code = self._row_codes[key] = len(self.rows)
            self.rows.append(key)
        return code

    def row_array(self, np: ModuleType) -> Any:
        """:attr:`rows` as a numpy object array, to pick many keys in one operation."""
        cached = self._row_array
        if cached is None or len(cached) != len(self.rows):
            cached = self._row_array = np.array(self.rows, dtype=object)
        return cached

    def nbytes(self) -> int:
        """Bytes of the fold's tables (an estimate for the Python objects)."""
        return (
            sys.getsizeof(self.rows)
            + sys.getsizeof(self._row_codes)
            + sys.getsizeof(self.pair_group)
            + sys.getsizeof(self.pair_row)
            + sys.getsizeof(self.pair_times)
            + sys.getsizeof(self.by_group)
            + sys.getsizeof(self._by_raw)
        )


class Codes:
    """Numbers for partitions (shared) and for each grouping's raw keys and groups.

    ``groupings`` are those held, in :data:`GROUPINGS` order.
    """

    def __init__(self, groupings: Sequence[Grouping] = GROUPINGS) -> None:
        #: Partition by code, for ``Visibility.admits``.
        self.partitions: list[Partition] = []
        self._partition_codes: dict[Partition, int] = {}
        #: One facet per grouping held, in :data:`GROUPINGS` order.
        self.facets: dict[Grouping, Facet] = {grouping: Facet(grouping) for grouping in groupings}
        self._readers = tuple(
            (doc.raw_key_reader(grouping), facet) for grouping, facet in self.facets.items()
        )
        #: A room's groups when it never counts: VOID in every grouping held.
        self.voids: tuple[int, ...] = (VOID,) * len(self.facets)
        #: Partition codes by the raw fields they are read from, when those are hashable.
        self._places: dict[tuple[Any, Any], int] = {}
        self._admitted: OrderedDict[tuple[Visibility, int], list[bool]] = OrderedDict()

    def partition(self, key: Partition) -> int:
        """The code of a partition, numbering a new one."""
        code = self._partition_codes.get(key)
        if code is None:
            code = self._partition_codes[key] = len(self.partitions)
            self.partitions.append(key)
        return code

    def facts(self, room: Document) -> tuple[int, tuple[int, ...]]:
        """A room document's creation time and groups (``NEVER`` and VOIDs when it never counts)."""
        ts = created_ms(room)
        if ts is None:
            return NEVER, self.voids
        place = self._place(room)
        return ts, tuple([facet.group_of(place, read(room)) for read, facet in self._readers])

    def _place(self, room: Document) -> int:
        ancestors = room.get("departmentAncestors", _VOID_KEY)
        if type(ancestors) is list:
            ancestors = tuple(ancestors)
        fields = (room.get("departmentId", _VOID_KEY), ancestors)
        try:
            return self._places[fields]
        except KeyError:
            code = self._places[fields] = self.partition(partition(room))
        except TypeError:  # an array of ancestors: read it each time
            code = self.partition(partition(room))
        return code

    def admitted(self, visibility: Visibility) -> list[bool]:
        """Per partition code, whether ``visibility`` admits its rooms (decided once each)."""
        if not visibility.restricted:
            return [True] * len(self.partitions)
        key = (visibility, len(self.partitions))
        found = self._admitted.get(key)
        if found is None:
            found = self._admitted[key] = [visibility.admits(p) for p in self.partitions]
            while len(self._admitted) > _ADMITTED_CACHE:
                self._admitted.popitem(last=False)
        return found

    def nbytes(self) -> int:
        """Bytes of the code tables (an estimate for the Python objects)."""
        return (
            sys.getsizeof(self.partitions)
            + sys.getsizeof(self._partition_codes)
            + sys.getsizeof(self._places)
            + sum(facet.nbytes() for facet in self.facets.values())
        )


class RoomColumns:
    """Rooms gathered for a bulk build, in arrival order: id, creation time and groups.

    A string id is kept as its :func:`~convstats_adapters.memory.ids.fingerprint` (and, with
    ``keep_names``, by reference, to name a duplicate); any other key exactly, in
    :attr:`others`. ``groups`` holds each room's group codes in the order of the groupings
    held (:attr:`Codes.facets`), one room after the other (row ``r``'s group in the ``k``-th
    of ``n`` groupings at ``r * n + k``).
    """

    def __init__(self, *, keep_names: bool = False) -> None:
        self.first = array("q")
        self.second = array("i")
        self.ts = array("q")
        self.groups = array("i")
        #: Non-string keys, by the row they came in at.
        self.others: dict[Hashable, int] = {}
        self.names: list[str | None] | None = [] if keep_names else None
        #: The first repeated non-string key, with its two rows.
        self.duplicate: DuplicateRooms | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, key: Hashable, ts: int, groups: Sequence[int]) -> None:
        """Append one room; a duplicate key is refused when the table is built."""
        key = plain_key(key)
        row = len(self.ts)
        if type(key) is str:
            one, two = fingerprint(key)
        else:
            if key in self.others:
                # Raised when the table is built, as for string ids: a reader first reports
                # any bad line after this one, as the reference does.
                if self.duplicate is None:
                    self.duplicate = DuplicateRooms((self.others[key], row), key)
            else:
                self.others[key] = row
            one = two = 0
            key = None
        self.first.append(one)
        self.second.append(two)
        self.ts.append(ts)
        self.groups.extend(groups)
        if self.names is not None:
            self.names.append(key)

    def extend_strings(
        self, keys: list[str], ts: array[int], groups: array[int], np: ModuleType | None
    ) -> None:
        """Append rooms whose ids are all plain strings, their columns given as arrays.

        ``groups`` is laid out as :attr:`groups` is.
        """
        one, two = fingerprints(keys, np)
        self.first.extend(one)
        self.second.extend(two)
        self.ts.extend(ts)
        self.groups.extend(groups)
        if self.names is not None:
            self.names.extend(keys)

    def extend(self, other: RoomColumns, offset: int) -> list[DuplicateRooms]:
        """Append ``other``'s rooms after these (``offset`` rows); return repeated keys."""
        repeats = []
        self.first.extend(other.first)
        self.second.extend(other.second)
        self.ts.extend(other.ts)
        self.groups.extend(other.groups)
        for key, row in other.others.items():
            if key in self.others:
                repeats.append(DuplicateRooms((-1, row), key))
            else:
                self.others[key] = offset + row
        return repeats

    def name(self, row: int) -> Hashable:
        """The key of ``row``, or :data:`UNNAMED` when only its fingerprint is kept."""
        for key, at in self.others.items():
            if at == row:
                return key
        name = None if self.names is None else self.names[row]
        return UNNAMED if name is None else name


class Column:
    """One grouping's group codes of the base and of the overlay, and its checkpoints.

    ``checkpoints`` holds per-group counts of the base places before ``k * block``, row ``k``
    of width ``width``; ``None`` unless the table is indexed.
    """

    def __init__(self, indexed: bool) -> None:
        self.base: array[int] = array("B")
        self.extra = array("i")
        self.checkpoints: array[int] | None = array("i") if indexed else None
        self.block = MIN_BLOCK
        self.width = 0

    def nbytes(self) -> dict[str, int]:
        """Bytes of the column's arrays and of its checkpoints."""
        sizes = {"columns": sys.getsizeof(self.base) + sys.getsizeof(self.extra)}
        if self.checkpoints is not None:
            sizes["index"] = sys.getsizeof(self.checkpoints)
        return sizes


def held_groupings(groupings: Iterable[Grouping]) -> tuple[Grouping, ...]:
    """``groupings`` in :data:`GROUPINGS` order, once each; a ``ValueError`` for none."""
    held = set(groupings)
    ordered = tuple(grouping for grouping in GROUPINGS if grouping in held)
    if not ordered:
        raise ValueError("a table must hold at least one grouping")
    return ordered


class FactTable:
    """The rooms' facts: a time-sorted base, an id index, a column a grouping, an overlay.

    Every change goes through :meth:`load`, :meth:`put`, :meth:`remove` and
    :meth:`set_served_by`, which keep the base, its checkpoints (when ``indexed``) and the
    overlay consistent. Keys are what :func:`convstats_adapters.documents.id_key` makes.
    ``groupings`` are the reports whose facts the table holds (by default all five).

    :attr:`version` takes a new value whenever the base changes (a rebuild, or a place made
    void), so that a counting strategy may keep what it derives from the base keyed by it.
    """

    def __init__(self, *, indexed: bool, groupings: Iterable[Grouping] = GROUPINGS) -> None:
        self.indexed = indexed
        #: The groupings held, in :data:`GROUPINGS` order.
        self.groupings: tuple[Grouping, ...] = held_groupings(groupings)
        self.version = 0
        self.codes = Codes(self.groupings)
        # -- the base, sorted by creation time
        self.base_ts = array("q")
        self.ids = IdIndex.empty()
        #: Base places whose room was removed or changed (their groups are now VOID).
        self.void: set[int] = set()
        self.columns: dict[Grouping, Column] = {
            grouping: Column(indexed) for grouping in self.groupings
        }
        # -- the overlay
        self.extra_ts = array("q")
        self.extra_slots: dict[Hashable, int] = {}
        self._extra_free: list[int] = []

    def __len__(self) -> int:
        return len(self.base_ts) - len(self.void) + len(self.extra_slots)

    def __contains__(self, key: object) -> bool:
        key = plain_key(key)
        return key in self.extra_slots or self._base_place(key) is not None

    def _base_place(self, key: Hashable) -> int | None:
        place = self.ids.find(key)
        return None if place is None or place in self.void else place

    # -- bulk building ---------------------------------------------------------------------

    def load(self, rooms: Iterable[tuple[Hashable, Document]]) -> None:
        """Add many new rooms at once (the initial build), as one new base.

        Raises :class:`DuplicateRooms` (a :class:`ValueError`) when a key is already held
        or appears twice.
        """
        columns = RoomColumns(keep_names=True)
        facts, add = self.codes.facts, columns.add
        for key, room in rooms:
            ts, groups = facts(room)
            add(key, ts, groups)
        self.load_columns(columns)

    def load_columns(
        self, columns: RoomColumns, on_step: Callable[[str], None] | None = None
    ) -> None:
        """Add the rooms of ``columns`` (coded by :attr:`codes`) and rebuild the base.

        ``on_step`` is told what the build does as it goes (``"sorting by time"``, …), so
        that a long build can be shown moving.
        """
        self._rebuild(columns, on_step)

    def compact(self) -> None:
        """Fold the overlay and the void places into a new base."""
        self._rebuild(RoomColumns())

    def _rebuild(self, new: RoomColumns, on_step: Callable[[str], None] | None = None) -> None:
        repeats: list[DuplicateRooms] = [] if new.duplicate is None else [new.duplicate]
        if not self.base_ts and not self.extra_slots:
            # The initial build: nothing held to merge with, and no copy of the columns.
            merged, held = new, 0
        else:
            merged = self._live_columns()
            held = len(merged)
            repeats += merged.extend(new, held)
        widths = [facet.groups for facet in self.codes.facets.values()]
        try:
            built = _build(merged, widths, self.indexed, bool(repeats), on_step or _quiet)
        except DuplicateRooms as error:
            first, second = error.rows
            repeats.append(DuplicateRooms((max(first - held, -1), second - held)))
        if repeats:
            # The first repeat in arrival order is named, as a one-by-one load names it.
            found = min(repeats, key=lambda repeat: repeat.rows[1])
            key = found.key if found.key is not UNNAMED else new.name(found.rows[1])
            raise DuplicateRooms(found.rows, key)
        self.base_ts, self.ids, facet_columns = built
        self.version += 1
        for column, (base, checkpoints, block, width) in zip(
            self.columns.values(), facet_columns, strict=True
        ):
            column.base, column.checkpoints, column.block, column.width = (
                base,
                checkpoints,
                block,
                width,
            )
            column.extra = array("i")
        self.void = set()
        self.extra_ts = array("q")
        self.extra_slots, self._extra_free = {}, []

    def _live_columns(self) -> RoomColumns:
        """Every room held, as columns: the live base places, then the overlay."""
        live = RoomColumns()
        base_ts, void = self.base_ts, self.void
        bases = [column.base for column in self.columns.values()]
        for one, two, place in self.ids.entries():
            if place not in void:
                live.first.append(one)
                live.second.append(two)
                live.ts.append(base_ts[place])
                live.groups.extend([base[place] for base in bases])
        for key, place in self.ids.others.items():
            if place not in void:
                live.add(key, base_ts[place], [base[place] for base in bases])
        extras = [column.extra for column in self.columns.values()]
        for key, slot in self.extra_slots.items():
            live.add(key, self.extra_ts[slot], [extra[slot] for extra in extras])
        return live

    # -- changes ---------------------------------------------------------------------------

    def put(self, key: Hashable, room: Document) -> None:
        """Insert the room under ``key``, replacing the room held there."""
        key = plain_key(key)
        self.remove(key)
        self._add_extra(key, *self.codes.facts(room))

    def remove(self, key: Hashable) -> bool:
        """Forget the room under ``key``; return whether there was one."""
        key = plain_key(key)
        slot = self.extra_slots.pop(key, None)
        if slot is not None:
            self.extra_ts[slot] = NEVER
            for column in self.columns.values():
                column.extra[slot] = VOID
            self._extra_free.append(slot)
            return True
        place = self._base_place(key)
        if place is None:
            return False
        self._void(place)
        self._maybe_compact()
        return True

    def set_served_by(self, key: Hashable, served_by: Any) -> None:
        """Make the room under ``key`` have ``served_by`` as its ``servedBy`` (``ABSENT``: none).

        Its agent and its status facts change; nothing else of it does. Raises
        :class:`KeyError` when no room is held under ``key``.
        """
        key = plain_key(key)
        slot = self.extra_slots.get(key)
        if slot is not None:
            groups = [column.extra[slot] for column in self.columns.values()]
            if groups[0] != VOID:
                changed = self._served(groups, served_by)
                for column, group in zip(self.columns.values(), changed, strict=True):
                    column.extra[slot] = group
            return
        place = self._base_place(key)
        if place is None:
            raise KeyError(key)
        groups = [column.base[place] for column in self.columns.values()]
        if groups[0] == VOID:
            return  # a room that never counts keeps never counting
        ts = self.base_ts[place]
        self._void(place)
        self._add_extra(key, ts, self._served(groups, served_by))

    def _served(self, groups: Sequence[int], served_by: Any) -> tuple[int, ...]:
        changed = []
        for facet, group in zip(self.codes.facets.values(), groups, strict=True):
            raw: Any
            if facet.grouping is Grouping.AGENT:
                raw = doc.raw_key(
                    Grouping.AGENT, {} if served_by is ABSENT else {"servedBy": served_by}
                )
            elif facet.grouping is Grouping.STATUS:
                raw = doc.with_served_by(facet.raw_keys[facet.group_raw[group]], served_by)
            else:
                changed.append(group)
                continue
            changed.append(facet.group(facet.group_partition[group], facet.raw(raw)))
        return tuple(changed)

    def _add_extra(self, key: Hashable, ts: int, groups: Sequence[int]) -> None:
        columns = self.columns.values()
        if self._extra_free:
            slot = self._extra_free.pop()
            self.extra_ts[slot] = ts
            for column, group in zip(columns, groups, strict=True):
                column.extra[slot] = group
        else:
            slot = len(self.extra_ts)
            self.extra_ts.append(ts)
            for column, group in zip(columns, groups, strict=True):
                column.extra.append(group)
        self.extra_slots[key] = slot
        self._maybe_compact()

    def _void(self, place: int) -> None:
        self.void.add(place)
        self.version += 1
        for column in self.columns.values():
            group = column.base[place]
            if group == VOID:
                continue
            column.base[place] = VOID
            checkpoints = column.checkpoints
            if checkpoints is not None:
                width = column.width
                for row in range(place // column.block + 1, len(checkpoints) // width):
                    checkpoints[row * width + group] -= 1

    def _maybe_compact(self) -> None:
        changed = len(self.extra_slots) + len(self._extra_free) + len(self.void)
        if changed > max(COMPACT_MIN, len(self.base_ts) // 64):
            self.compact()

    # -- reading ---------------------------------------------------------------------------

    def facts(self) -> dict[Hashable, tuple[int, Partition | None, tuple[Any, ...] | None]]:
        """Every room's creation time, partition and raw keys, by key (a diagnostic for tests).

        A string id is named by ``("<fingerprint>", first, second)``, its fingerprint; a room
        that never counts has ``(NEVER, None, None)``.
        """
        codes = self.codes
        facets = list(codes.facets.values())

        def fact(ts: int, groups: Sequence[int]) -> tuple[int, Partition | None, Any]:
            if groups[0] == VOID:
                return NEVER, None, None
            partition_code = facets[0].group_partition[groups[0]]
            raw = tuple(
                facet.raw_keys[facet.group_raw[group]]
                for facet, group in zip(facets, groups, strict=True)
            )
            return ts, codes.partitions[partition_code], raw

        bases = [column.base for column in self.columns.values()]
        extras = [column.extra for column in self.columns.values()]
        found: dict[Hashable, tuple[int, Partition | None, Any]] = {}
        for one, two, place in self.ids.entries():
            if place not in self.void:
                groups = [base[place] for base in bases]
                found["<fingerprint>", one, two] = fact(self.base_ts[place], groups)
        for key, place in self.ids.others.items():
            if place not in self.void:
                found[key] = fact(self.base_ts[place], [base[place] for base in bases])
        for key, slot in self.extra_slots.items():
            name = ("<fingerprint>", *fingerprint(key)) if type(key) is str else key
            found[name] = fact(self.extra_ts[slot], [extra[slot] for extra in extras])
        return found

    def footprint(self) -> dict[str, int]:
        """Bytes of the columns, of the checkpoints, of the id look-up, and of the codes."""
        sizes = {
            "columns": sys.getsizeof(self.base_ts) + sys.getsizeof(self.extra_ts),
            "codes": self.codes.nbytes(),
            "id map": self.ids.nbytes()
            + sys.getsizeof(self.void)
            + sys.getsizeof(self.extra_slots)
            + sys.getsizeof(self._extra_free),
        }
        for column in self.columns.values():
            for part, size in column.nbytes().items():
                sizes[part] = sizes.get(part, 0) + size
        return sizes


_FacetBuilt = tuple["array[int]", "array[int] | None", int, int]
_Built = tuple["array[int]", IdIndex, list[_FacetBuilt]]


def _block_for(groups: int) -> int:
    block = MIN_BLOCK
    while block < BLOCK_PER_GROUP * groups:
        block *= 2
    return block


def _typecode(groups: int) -> str:
    """The narrowest array type for group codes below ``groups``."""
    if groups <= 0x100:
        return "B"
    return "H" if groups <= 0x10000 else "i"


def _quiet(step: str) -> None:
    pass


def _build(
    columns: RoomColumns,
    widths: Sequence[int],
    indexed: bool,
    checking: bool = False,
    on_step: Callable[[str], None] = _quiet,
) -> _Built:
    """Sort ``columns`` by time into a base: times, id index, and each grouping's column.

    Raises :class:`DuplicateRooms` for the repeated string id that came in first (by the
    row of its repeat); ``checking`` stops after that check.
    """
    np = numpy_or_none()
    if np is None:
        return _build_python(columns, widths, indexed and not checking, on_step)
    return _build_numpy(np, columns, widths, indexed and not checking, on_step)


def _machine(np: ModuleType, values: Any, code: str) -> array[int]:
    """``values`` (a numpy array) as an ``array`` of exactly its size, copied once."""
    out = array(code, [0]) * len(values)
    if len(values):
        np.frombuffer(out, dtype=values.dtype)[:] = values
    return out


def _build_numpy(
    np: ModuleType,
    columns: RoomColumns,
    widths: Sequence[int],
    indexed: bool,
    on_step: Callable[[str], None],
) -> _Built:
    size = len(columns)
    if not size:
        empty = [
            (
                array(_typecode(width)),
                array("i", [0]) * width if indexed else None,
                _block_for(width),
                width,
            )
            for width in widths
        ]
        return array("q"), IdIndex.empty(), empty
    on_step("sorting by time")
    ts = np.frombuffer(columns.ts, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    base_ts = _machine(np, ts[order], "q")
    place = np.empty(size, dtype=np.int32)
    place[order] = np.arange(size, dtype=np.int32)

    strings = np.ones(size, dtype=bool)
    if columns.others:
        strings[list(columns.others.values())] = False
    rows = np.flatnonzero(strings).astype(np.int32)
    del strings
    on_step("indexing the ids")
    first = np.frombuffer(columns.first, dtype=np.int64)[rows]
    by_first = np.argsort(first, kind="stable")
    first, rows = first[by_first], rows[by_first]
    second = np.frombuffer(columns.second, dtype=np.int32)[rows]
    del by_first
    # Equal first hashes are rare; the same id twice has equal second hashes too.
    repeats: list[tuple[int, int]] = []
    for at in np.flatnonzero(first[1:] == first[:-1]).tolist():
        seen: dict[int, int] = {}
        for index in np.flatnonzero(first == first[at]).tolist():
            row = int(rows[index])
            other = seen.setdefault(int(second[index]), row)
            if other != row:
                repeats.append((min(other, row), max(other, row)))
    if repeats:
        raise DuplicateRooms(min(repeats, key=lambda pair: pair[1]))
    ids = IdIndex(
        _machine(np, first, "q"),
        _machine(np, second, "i"),
        _machine(np, place[rows], "i"),
        {key: int(place[row]) for key, row in columns.others.items()},
    )
    del first, second, rows, place

    built = []
    every = np.frombuffer(columns.groups, dtype=np.int32).reshape(size, len(widths))
    for at, width in enumerate(widths):
        on_step(f"grouping {at + 1} of {len(widths)}")
        code = _typecode(width)
        sorted_groups = every[order, at].astype(_NUMPY_TYPES[code])
        block = _block_for(width)
        checkpoints = None
        if indexed:
            blocks = size // block
            counts = np.zeros((blocks + 1, width), dtype=np.int32)
            # Block by block: one pass of n int64 codes would cost 8 bytes a room for a moment.
            for row in range(blocks):
                found = np.bincount(sorted_groups[row * block : (row + 1) * block], minlength=width)
                np.add(counts[row], found, out=counts[row + 1])
            checkpoints = _machine(np, counts.reshape(-1), "i")
        built.append((_machine(np, sorted_groups, code), checkpoints, block, width))
    return base_ts, ids, built


def _build_python(
    columns: RoomColumns, widths: Sequence[int], indexed: bool, on_step: Callable[[str], None]
) -> _Built:
    on_step("sorting by time")
    ts = columns.ts
    order = sorted(range(len(ts)), key=ts.__getitem__)
    base_ts = array("q", [ts[row] for row in order])
    place = [0] * len(order)
    for at, row in enumerate(order):
        place[row] = at
    others = set(columns.others.values())
    entries = sorted(
        (one, two, row)
        for row, (one, two) in enumerate(zip(columns.first, columns.second, strict=True))
        if row not in others
    )
    # Sorted by fingerprint and then row: a repeat follows the first room of its id.
    repeats = [
        (row, next_row)
        for (one, two, row), (next_one, next_two, next_row) in pairwise(entries)
        if (one, two) == (next_one, next_two)
    ]
    if repeats:
        raise DuplicateRooms(min(repeats, key=lambda pair: pair[1]))
    ids = IdIndex(
        array("q", [entry[0] for entry in entries]),
        array("i", [entry[1] for entry in entries]),
        array("i", [place[entry[2]] for entry in entries]),
        {key: place[row] for key, row in columns.others.items()},
    )
    built = []
    groups, stride = columns.groups, len(widths)
    for at, width in enumerate(widths):
        base = array(_typecode(width), [groups[row * stride + at] for row in order])
        block = _block_for(width)
        checkpoints = None
        if indexed:
            checkpoints = array("i")
            running = [0] * width
            for at, group in enumerate(base):
                if at % block == 0:
                    checkpoints.extend(running)
                running[group] += 1
            if len(base) % block == 0:
                checkpoints.extend(running)
        built.append((base, checkpoints, block, width))
    return base_ts, ids, built


def window_groups_python(table: FactTable, column: Column, start: int, end: int) -> Counter[int]:
    """Per group of ``column``, the base rooms created in ``[start, end)``, from checkpoints."""
    base_ts, base = table.base_ts, column.base
    low, high = bisect_left(base_ts, start), bisect_left(base_ts, end)
    checkpoints = column.checkpoints
    block, width = column.block, column.width
    if checkpoints is None or high - low <= block:
        return Counter(base[low:high])
    first_row, last_row = -(-low // block), high // block
    found: Counter[int] = Counter(base[low : first_row * block])
    found.update(base[last_row * block : high])
    last, first = last_row * width, first_row * width
    for group in range(width):
        between = checkpoints[last + group] - checkpoints[first + group]
        if between:
            found[group] += between
    return found
