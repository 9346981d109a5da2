"""Rooms in creation-time order as two machine columns, with the changes since beside them.

A room's facts are its creation time (int64 milliseconds, :data:`NEVER` when it never
counts) and its *group*: the pair (visibility partition, agent) it counts for. The bulk of
the rooms, the *base*, is held sorted by time: 8 bytes of time and 2 (or 4) bytes of group
code a room, an :class:`~convstats_adapters.memory.ids.IdIndex` from ids to places (16
bytes a room), and, for the strategies that read it, cumulative counts per group at every
``block``-th place (:attr:`FactTable.checkpoints`, under 2 bytes a room), so that the rooms
of any window are counted from two rows of them and two short runs of groups.

Changes do not move the base: a removed or changed base room leaves a *void* place (group
:data:`VOID`, which never counts) and a changed or new room goes to the *overlay*, a small
table of its own with a dict from keys to slots. When the overlay and the void places grow
past a share of the base, both are folded into a new base (:meth:`FactTable.compact`).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Hashable, Iterable
from itertools import pairwise
from types import ModuleType
from typing import Any

from convstats.model import Partition, Visibility
from convstats_adapters.documents import Document, created_ms, partition, served_agent
from convstats_adapters.memory.ids import IdIndex, fingerprint, fingerprints, plain_key

__all__ = [
    "NEVER",
    "NO_PARTITION",
    "UNASSIGNED",
    "UNNAMED",
    "VOID",
    "Codes",
    "DuplicateRooms",
    "FactTable",
    "RoomColumns",
]

#: The creation time of a room that never counts: not a dated livechat room. Beyond every
#: window, since a datetime ends in the year 9999.
NEVER = 2**63 - 1
#: The partition code of a room that never counts.
NO_PARTITION = -1
#: The agent code of a room without an agent.
UNASSIGNED = 0
#: The group of rooms that never count, and of the places of removed base rooms.
VOID = 0

#: The smallest distance between two checkpoints (a power of two).
MIN_BLOCK = 1024
#: A block is also at least this many times the groups, so that the checkpoints (4 bytes a
#: group a block) cost at most ``4 / BLOCK_PER_GROUP`` bytes a room.
BLOCK_PER_GROUP = 2
#: The overlay and the void places are folded into the base when they exceed this many, or
#: a 64th of the base, whichever is more.
COMPACT_MIN = 4096


def numpy_or_none() -> ModuleType | None:
    """The numpy module when it can be imported (extra ``columnar``), else ``None``."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


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


def _pair(partition_code: int, agent_code: int) -> int:
    return (partition_code + 1) << 32 | agent_code


class Codes:
    """Numbers for agents, partitions and groups, in order of appearance, never renumbered."""

    def __init__(self) -> None:
        #: Agent id by code; code 0 is "no agent".
        self.agent_ids: list[str | None] = [None]
        self._agent_codes: dict[str | None, int] = {None: UNASSIGNED}
        #: Partition by code, for ``Visibility.admits``.
        self.partitions: list[Partition] = []
        self._partition_codes: dict[Partition, int] = {}
        #: Per group code, its partition code and agent code; group 0 is :data:`VOID`.
        self.group_partition = array("i", [NO_PARTITION])
        self.group_agent = array("i", [UNASSIGNED])
        # Keyed by one int rather than a pair: a tuple key costs 60 bytes more a group.
        self._group_codes: dict[int, int] = {_pair(NO_PARTITION, UNASSIGNED): VOID}
        self._agent_array: Any = None

    def agent(self, agent: str | None) -> int:
        """The code of an agent id (``None``: no agent), numbering a new one."""
        code = self._agent_codes.get(agent)
        if code is None:
            code = self._agent_codes[agent] = len(self.agent_ids)
            self.agent_ids.append(agent)
        return code

    def partition(self, key: Partition) -> int:
        """The code of a partition, numbering a new one."""
        code = self._partition_codes.get(key)
        if code is None:
            code = self._partition_codes[key] = len(self.partitions)
            self.partitions.append(key)
        return code

    def group(self, partition_code: int, agent_code: int) -> int:
        """The code of the group (partition, agent), numbering a new one."""
        pair = _pair(partition_code, agent_code)
        code = self._group_codes.get(pair)
        if code is None:
            code = self._group_codes[pair] = len(self.group_agent)
            self.group_partition.append(partition_code)
            self.group_agent.append(agent_code)
        return code

    def agent_id_array(self, np: ModuleType) -> Any:
        """:attr:`agent_ids` as a numpy object array, to pick many ids in one operation."""
        cached = self._agent_array
        if cached is None or len(cached) != len(self.agent_ids):
            cached = self._agent_array = np.array(self.agent_ids, dtype=object)
        return cached

    @property
    def groups(self) -> int:
        """How many groups are numbered, :data:`VOID` included."""
        return len(self.group_agent)

    def facts(self, room: Document) -> tuple[int, int]:
        """A room document's creation time and group (``NEVER, VOID`` when it never counts)."""
        ts = created_ms(room)
        if ts is None:
            return NEVER, VOID
        return ts, self.group(self.partition(partition(room)), self.agent(served_agent(room)))

    def admitted_groups(self, visibility: Visibility) -> list[bool]:
        """Per group code, whether ``visibility`` admits its rooms; :data:`VOID` never."""
        if visibility.restricted:
            by_partition = [visibility.admits(key) for key in self.partitions]
            admitted = [by_partition[code] for code in self.group_partition[1:]]
        else:
            admitted = [True] * (len(self.group_agent) - 1)
        return [False, *admitted]

    def nbytes(self) -> int:
        """Bytes of the code tables (an estimate for the Python objects)."""
        return (
            sys.getsizeof(self.agent_ids)
            + sys.getsizeof(self._agent_codes)
            + sum(sys.getsizeof(agent) for agent in self.agent_ids)
            + sys.getsizeof(self.partitions)
            + sys.getsizeof(self._partition_codes)
            + sys.getsizeof(self.group_partition)
            + sys.getsizeof(self.group_agent)
            + sys.getsizeof(self._group_codes)
        )


class RoomColumns:
    """Rooms gathered for a bulk build, in arrival order: id, creation time and group.

    A string id is kept as its :func:`~convstats_adapters.memory.ids.fingerprint` (and, with
    ``keep_names``, by reference, to name a duplicate); any other key exactly, in
    :attr:`others`.
    """

    def __init__(self, *, keep_names: bool = False) -> None:
        self.first = array("q")
        self.second = array("i")
        self.ts = array("q")
        self.group = array("i")
        #: Non-string keys, by the row they came in at.
        self.others: dict[Hashable, int] = {}
        self.names: list[str | None] | None = [] if keep_names else None
        #: The first repeated non-string key, with its two rows.
        self.duplicate: DuplicateRooms | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, key: Hashable, ts: int, group: int) -> None:
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
        self.group.append(group)
        if self.names is not None:
            self.names.append(key)

    def extend_strings(
        self, keys: list[str], ts: array[int], group: array[int], np: ModuleType | None
    ) -> None:
        """Append rooms whose ids are all plain strings, their columns given as arrays."""
        one, two = fingerprints(keys, np)
        self.first.extend(one)
        self.second.extend(two)
        self.ts.extend(ts)
        self.group.extend(group)
        if self.names is not None:
            self.names.extend(keys)

    def name(self, row: int) -> Hashable:
        """The key of ``row``, or :data:`UNNAMED` when only its fingerprint is kept."""
        for key, at in self.others.items():
            if at == row:
                return key
        name = None if self.names is None else self.names[row]
        return UNNAMED if name is None else name


class FactTable:
    """The rooms' facts: a time-sorted base, an id index, checkpoints and an overlay.

    Every change goes through :meth:`load`, :meth:`put`, :meth:`remove` and
    :meth:`set_agent`, which keep the base, its checkpoints (when ``indexed``) and the
    overlay consistent. Keys are what :func:`convstats_adapters.documents.id_key` makes.
    """

    def __init__(self, *, indexed: bool) -> None:
        self.indexed = indexed
        self.codes = Codes()
        # -- the base, sorted by creation time
        self.base_ts = array("q")
        self.base_group = array("H")
        self.ids = IdIndex.empty()
        #: Base places whose room was removed or changed (their group is now VOID).
        self.void: set[int] = set()
        #: Per-group counts of the base places before ``k * block``, row ``k`` of width
        #: ``checkpoint_groups``; ``None`` unless ``indexed``.
        self.checkpoints: array[int] | None = array("i") if indexed else None
        self.block = MIN_BLOCK
        self.checkpoint_groups = 0
        # -- the overlay
        self.extra_ts = array("q")
        self.extra_group = array("i")
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
            ts, group = facts(room)
            add(key, ts, group)
        self.load_columns(columns)

    def load_columns(self, columns: RoomColumns) -> None:
        """Add the rooms of ``columns`` (coded by :attr:`codes`) and rebuild the base."""
        self._rebuild(columns)

    def compact(self) -> None:
        """Fold the overlay and the void places into a new base."""
        self._rebuild(RoomColumns())

    def _rebuild(self, new: RoomColumns) -> None:
        repeats: list[DuplicateRooms] = [] if new.duplicate is None else [new.duplicate]
        if not self.base_ts and not self.extra_slots:
            # The initial build: nothing held to merge with, and no copy of the columns.
            merged, held = new, 0
        else:
            merged = self._live_columns()
            held = len(merged)
            merged.first.extend(new.first)
            merged.second.extend(new.second)
            merged.ts.extend(new.ts)
            merged.group.extend(new.group)
            for key, row in new.others.items():
                if key in merged.others:
                    repeats.append(DuplicateRooms((-1, row), key))
                else:
                    merged.others[key] = held + row
        try:
            built = _build(merged, self.codes.groups, self.indexed, bool(repeats))
        except DuplicateRooms as error:
            first, second = error.rows
            repeats.append(DuplicateRooms((max(first - held, -1), second - held)))
        if repeats:
            # The first repeat in arrival order is named, as a one-by-one load names it.
            found = min(repeats, key=lambda repeat: repeat.rows[1])
            key = found.key if found.key is not UNNAMED else new.name(found.rows[1])
            raise DuplicateRooms(found.rows, key)
        (
            self.base_ts,
            self.base_group,
            self.ids,
            self.checkpoints,
            self.block,
            self.checkpoint_groups,
        ) = built
        self.void = set()
        self.extra_ts, self.extra_group = array("q"), array("i")
        self.extra_slots, self._extra_free = {}, []

    def _live_columns(self) -> RoomColumns:
        """Every room held, as columns: the live base places, then the overlay."""
        live = RoomColumns()
        base_ts, base_group, void = self.base_ts, self.base_group, self.void
        for one, two, place in self.ids.entries():
            if place not in void:
                live.first.append(one)
                live.second.append(two)
                live.ts.append(base_ts[place])
                live.group.append(base_group[place])
        for key, place in self.ids.others.items():
            if place not in void:
                live.add(key, base_ts[place], base_group[place])
        for key, slot in self.extra_slots.items():
            live.add(key, self.extra_ts[slot], self.extra_group[slot])
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
            self.extra_ts[slot], self.extra_group[slot] = NEVER, VOID
            self._extra_free.append(slot)
            return True
        place = self._base_place(key)
        if place is None:
            return False
        self._void(place)
        self._maybe_compact()
        return True

    def set_agent(self, key: Hashable, agent: str | None) -> None:
        """Make the room under ``key`` count for ``agent`` (``None``: no agent).

        Raises :class:`KeyError` when no room is held under ``key``.
        """
        key = plain_key(key)
        codes = self.codes
        slot = self.extra_slots.get(key)
        if slot is not None:
            group = self.extra_group[slot]
            if group != VOID:
                self.extra_group[slot] = codes.group(
                    codes.group_partition[group], codes.agent(agent)
                )
            return
        place = self._base_place(key)
        if place is None:
            raise KeyError(key)
        group = self.base_group[place]
        if group == VOID:
            return  # a room that never counts keeps never counting
        ts = self.base_ts[place]
        self._void(place)
        self._add_extra(key, ts, codes.group(codes.group_partition[group], codes.agent(agent)))

    def _add_extra(self, key: Hashable, ts: int, group: int) -> None:
        if self._extra_free:
            slot = self._extra_free.pop()
            self.extra_ts[slot], self.extra_group[slot] = ts, group
        else:
            slot = len(self.extra_ts)
            self.extra_ts.append(ts)
            self.extra_group.append(group)
        self.extra_slots[key] = slot
        self._maybe_compact()

    def _void(self, place: int) -> None:
        group = self.base_group[place]
        self.void.add(place)
        if group == VOID:
            return
        self.base_group[place] = VOID
        checkpoints = self.checkpoints
        if checkpoints is not None:
            width = self.checkpoint_groups
            for row in range(place // self.block + 1, len(checkpoints) // width):
                checkpoints[row * width + group] -= 1

    def _maybe_compact(self) -> None:
        changed = len(self.extra_slots) + len(self._extra_free) + len(self.void)
        if changed > max(COMPACT_MIN, len(self.base_ts) // 64):
            self.compact()

    # -- reading ---------------------------------------------------------------------------

    def admitted(self, visibility: Visibility) -> list[bool]:
        """Per partition code, whether ``visibility`` admits its rooms (one decision each)."""
        if not visibility.restricted:
            return [True] * len(self.codes.partitions)
        return [visibility.admits(key) for key in self.codes.partitions]

    def facts(self) -> dict[Hashable, tuple[int, str | None, Partition | None]]:
        """Every room's creation time, agent and partition, by key (a diagnostic for tests).

        A string id is named by ``("<fingerprint>", first, second)``, its fingerprint; a room
        that never counts has ``(NEVER, None, None)``.
        """
        codes = self.codes

        def fact(ts: int, group: int) -> tuple[int, str | None, Partition | None]:
            if group == VOID:
                return NEVER, None, None
            agent = codes.agent_ids[codes.group_agent[group]]
            return ts, agent, codes.partitions[codes.group_partition[group]]

        found: dict[Hashable, tuple[int, str | None, Partition | None]] = {}
        for one, two, place in self.ids.entries():
            if place not in self.void:
                found["<fingerprint>", one, two] = fact(self.base_ts[place], self.base_group[place])
        for key, place in self.ids.others.items():
            if place not in self.void:
                found[key] = fact(self.base_ts[place], self.base_group[place])
        for key, slot in self.extra_slots.items():
            name = ("<fingerprint>", *fingerprint(key)) if type(key) is str else key
            found[name] = fact(self.extra_ts[slot], self.extra_group[slot])
        return found

    def footprint(self) -> dict[str, int]:
        """Bytes of the columns, of the checkpoints, of the id look-up, and of the codes."""
        sizes = {
            "columns": sys.getsizeof(self.base_ts)
            + sys.getsizeof(self.base_group)
            + sys.getsizeof(self.extra_ts)
            + sys.getsizeof(self.extra_group),
            "codes": self.codes.nbytes(),
            "id map": self.ids.nbytes()
            + sys.getsizeof(self.void)
            + sys.getsizeof(self.extra_slots)
            + sys.getsizeof(self._extra_free),
        }
        if self.checkpoints is not None:
            sizes["index"] = sys.getsizeof(self.checkpoints)
        return sizes


_Built = tuple["array[int]", "array[int]", IdIndex, "array[int] | None", int, int]


def _block_for(groups: int) -> int:
    block = MIN_BLOCK
    while block < BLOCK_PER_GROUP * groups:
        block *= 2
    return block


def _build(columns: RoomColumns, groups: int, indexed: bool, checking: bool = False) -> _Built:
    """Sort ``columns`` by time into a base: columns, id index and checkpoints.

    Raises :class:`DuplicateRooms` for the repeated string id that came in first (by the
    row of its repeat); ``checking`` stops after that check.
    """
    np = numpy_or_none()
    block = _block_for(groups)
    # Two bytes a group code while they fit.
    code = "H" if groups <= 0xFFFF else "i"
    if np is None:
        return _build_python(columns, groups, indexed and not checking, block, code)
    return _build_numpy(np, columns, groups, indexed and not checking, block, code)


def _machine(np: ModuleType, values: Any, code: str) -> array[int]:
    """``values`` (a numpy array) as an ``array`` of exactly its size, copied once."""
    out = array(code, [0]) * len(values)
    if len(values):
        np.frombuffer(out, dtype=values.dtype)[:] = values
    return out


def _build_numpy(
    np: ModuleType, columns: RoomColumns, groups: int, indexed: bool, block: int, code: str
) -> _Built:
    size = len(columns)
    if not size:
        empty = IdIndex.empty()
        checkpoints = array("i", [0]) * groups if indexed else None
        return array("q"), array(code), empty, checkpoints, block, groups
    ts = np.frombuffer(columns.ts, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    base_ts = _machine(np, ts[order], "q")
    sorted_groups = np.frombuffer(columns.group, dtype=np.int32)[order]
    sorted_groups = sorted_groups.astype(np.uint16 if code == "H" else np.int32)
    base_group = _machine(np, sorted_groups, code)
    place = np.empty(size, dtype=np.int32)
    place[order] = np.arange(size, dtype=np.int32)
    del order

    strings = np.ones(size, dtype=bool)
    if columns.others:
        strings[list(columns.others.values())] = False
    rows = np.flatnonzero(strings).astype(np.int32)
    del strings
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

    checkpoints = None
    if indexed:
        blocks = size // block
        counts = np.zeros((blocks + 1, groups), dtype=np.int32)
        # Block by block: one pass of n int64 codes would cost 8 bytes a room for a moment.
        for row in range(blocks):
            found = np.bincount(sorted_groups[row * block : (row + 1) * block], minlength=groups)
            np.add(counts[row], found, out=counts[row + 1])
        checkpoints = _machine(np, counts.reshape(-1), "i")
    return base_ts, base_group, ids, checkpoints, block, groups


def _build_python(
    columns: RoomColumns, groups: int, indexed: bool, block: int, code: str
) -> _Built:
    ts, group = columns.ts, columns.group
    order = sorted(range(len(ts)), key=ts.__getitem__)
    base_ts = array("q", [ts[row] for row in order])
    base_group = array(code, [group[row] for row in order])
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
    checkpoints = None
    if indexed:
        checkpoints = array("i")
        running = [0] * groups
        for at, code_of in enumerate(base_group):
            if at % block == 0:
                checkpoints.extend(running)
            running[code_of] += 1
        if len(base_group) % block == 0:
            checkpoints.extend(running)
    return base_ts, base_group, ids, checkpoints, block, groups


def window_groups_python(table: FactTable, start: int, end: int) -> Counter[int]:
    """Per group, the base rooms created in ``[start, end)``, read from the checkpoints."""
    base_ts, base_group = table.base_ts, table.base_group
    low, high = bisect_left(base_ts, start), bisect_left(base_ts, end)
    checkpoints = table.checkpoints
    block, width = table.block, table.checkpoint_groups
    if checkpoints is None or high - low <= block:
        return Counter(base_group[low:high])
    first_row, last_row = -(-low // block), high // block
    found: Counter[int] = Counter(base_group[low : first_row * block])
    found.update(base_group[last_row * block : high])
    last, first = last_row * width, first_row * width
    for group in range(width):
        between = checkpoints[last + group] - checkpoints[first + group]
        if between:
            found[group] += between
    return found
