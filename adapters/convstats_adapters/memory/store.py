"""The in-memory store: the room engine (:class:`MemoryRooms`) beside a directory."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from convstats.errors import DataFormatError
from convstats.model import (
    ABSENT,
    GroupCounts,
    Grouping,
    TimeWindow,
    TotalMode,
    UserRecord,
    Visibility,
)
from convstats_adapters import documents as doc
from convstats_adapters.documents import Document
from convstats_adapters.files import load_collections
from convstats_adapters.memory import counting, loader
from convstats_adapters.memory.counting import Plan
from convstats_adapters.memory.directory import MemoryDirectory
from convstats_adapters.memory.table import GROUPINGS, DuplicateRooms, FactTable, held_groupings

__all__ = ["MemoryRooms", "MemoryStore", "StrategyChoice"]

#: What ``strategy=`` takes: a built-in name, a :class:`~.counting.Strategy`, or a function.
StrategyChoice: TypeAlias = "str | counting.Strategy | counting.CountGroups"


@attrs.define(init=False, eq=False)
class MemoryRooms:
    """Rooms in memory, counted for every report of the Reports page; a ``RoomStore``.

    ``rooms`` are ``rocketchat_room`` documents as ``pymongo`` or ``mongoexport`` give them
    (dates as datetimes). Rooms can be added, replaced and removed afterwards
    (:meth:`put_room`, :meth:`remove_room`, :meth:`set_served_by`) without a rebuild. Each
    room is held as its creation time and, for each report, the group it counts in, with a
    fingerprint of its id, under 40 bytes a room (see :mod:`convstats_adapters.memory.table`).

    ``strategy`` says how rooms are counted (all give the same answers; see
    :mod:`convstats_adapters.memory.counting` and :meth:`explain`): ``"scan"``,
    ``"columnar"`` (extra ``columnar``), ``"indexed"`` or ``"auto"``, the default; or a
    counting function of your own (:data:`~convstats_adapters.memory.counting.CountGroups`),
    or a :class:`~convstats_adapters.memory.counting.Strategy`. :attr:`strategy` is its name.

    ``groupings`` are the reports the store can answer (by default all five); the facts of
    the others are not held, which saves about a byte or two a room each (a by-agent store
    holds under 32 bytes a room), and asking for them raises :class:`ValueError`.

    Safe for updates concurrent with queries, from any number of threads: one lock is held by
    each update and each count, so a query sees the rooms before or after every update, never
    half way through one, and no update is lost. An update therefore waits for a count that is
    running (a scan of a million rooms takes about a second; the index, under a millisecond).
    Each update changes :attr:`data_version`, so that a cached report sees it at once.
    """

    #: Fixed at construction: the table keeps the structures this strategy reads.
    strategy: str = attrs.field(on_setattr=attrs.setters.frozen)
    _counting: counting.Strategy = attrs.field(repr=False, on_setattr=attrs.setters.frozen)
    _table: FactTable = attrs.field(repr=False)
    _anonymous: Iterator[int] = attrs.field(repr=False)
    # One lock rather than a readers-writer scheme: counting is Python or numpy work that the
    # interpreter lock serialises anyway (benchmarks/README.md#updates-concurrent-with-queries).
    _lock: threading.Lock = attrs.field(repr=False, factory=threading.Lock)
    # Held by an update while it waits for the lock, and passed through by every count before
    # it takes the lock: without it, threads counting without pause retake the lock the
    # moment it is released, and an update can wait for hundreds of counts.
    _turnstile: threading.Lock = attrs.field(repr=False, factory=threading.Lock)
    _version: int = attrs.field(repr=False, default=0)

    def __init__(
        self,
        rooms: Iterable[Document] = (),
        *,
        strategy: StrategyChoice = "auto",
        groupings: Iterable[Grouping] = GROUPINGS,
    ) -> None:
        chosen = counting.resolve(strategy)
        self.__attrs_init__(
            strategy=chosen.name,
            counting=chosen,
            table=FactTable(indexed=chosen.indexed, groupings=groupings),
            anonymous=itertools.count(),
        )
        # Rooms go straight to the table: copying millions of documents first would cost
        # more than the build itself.
        self._table.load((self._key(room), room) for room in rooms)

    @classmethod
    def from_table(
        cls, table: FactTable, *, strategy: StrategyChoice, anonymous: int = 0
    ) -> MemoryRooms:
        """The rooms of a table a loader built (:mod:`convstats_adapters.memory.loader`).

        ``anonymous`` rooms had no ``_id`` (keys ``("<no _id>", 0)`` onwards). Raises
        :class:`ValueError` when the table lacks the structures ``strategy`` reads.
        """
        chosen = counting.resolve(strategy)
        if chosen.indexed and not table.indexed:
            raise ValueError(f"the table was not built for the {chosen.name!r} strategy")
        rooms = cls(strategy=chosen, groupings=table.groupings)
        rooms._table, rooms._anonymous = table, itertools.count(anonymous)
        return rooms

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        strategy: StrategyChoice = "auto",
        groupings: Iterable[Grouping] = GROUPINGS,
    ) -> MemoryRooms:
        """The rooms of a JSON file or a ``mongoexport`` directory; nothing else is read.

        With msgspec installed (extra ``fast``) a directory's ``rocketchat_room.json`` or
        ``.json.gz`` (JSON Lines or one array) is streamed by
        :func:`convstats_adapters.memory.loader.read_rooms`: the same rooms, or the same
        error, a few megabytes of text at a time; anything else is read by
        :func:`convstats_adapters.files.load_collections`, and a large load without msgspec
        first warns which extra makes it faster
        (:class:`~convstats_adapters.memory.loader.FastLoaderHint`). Raises
        :class:`~convstats.errors.DataFormatError` naming the path for unreadable files and
        for two rooms with one ``_id`` (from a directory, its rooms file and the line of the
        second).
        """
        chosen = counting.resolve(strategy)
        groupings = held_groupings(groupings)  # the caller's error, before any data is read
        if loader.fast_loader_available() and loader.streamable_rooms(Path(path)) is not None:
            # Rooms stream straight into the table; no document is held for them.
            read = loader.read_rooms(path, indexed=chosen.indexed, groupings=groupings)
            return cls.from_table(read.table, strategy=chosen, anonymous=read.anonymous)
        loader.hint_fast_loader(Path(path))
        rooms = load_collections(path, collections=(doc.ROOMS,)).get(doc.ROOMS, [])
        try:
            return cls(rooms, strategy=chosen, groupings=groupings)
        except DuplicateRooms as error:
            raise loader.duplicate_room_error(path, error) from None
        except ValueError as error:
            raise DataFormatError(os.fspath(path), str(error)) from None

    def _key(self, room: Document) -> Hashable:
        # A room without an _id still counts; it gets a key no real _id can equal.
        if "_id" not in room:
            return ("<no _id>", next(self._anonymous))
        return doc.id_key(room["_id"])

    # -- changes ---------------------------------------------------------------------------

    def put_room(self, room: Document) -> None:
        """Insert a room, or replace the stored room with the same ``_id``."""
        with self._turnstile, self._lock:
            self._table.put(self._key(room), room)
            self._version += 1

    def remove_room(self, room_id: object) -> bool:
        """Remove the room with ``_id == room_id``; return whether there was one."""
        key = doc.id_key(room_id)
        with self._turnstile, self._lock:
            removed = self._table.remove(key)
            if removed:
                self._version += 1
        return removed

    def set_served_by(self, room_id: object, agent: Mapping[str, Any] | None) -> None:
        """Transfer a room to ``agent`` (``{"_id": …, "username": …}``), or return it to the queue.

        With ``agent=None`` the room loses its ``servedBy``. Its agent and its status change
        in every report at once. Raises :class:`KeyError` for an unknown room.
        """
        key = doc.id_key(room_id)
        with self._turnstile, self._lock:
            self._table.set_served_by(key, ABSENT if agent is None else agent)
            self._version += 1

    def __contains__(self, room_id: object) -> bool:
        key = doc.id_key(room_id)
        with self._lock:
            return key in self._table

    @property
    def data_version(self) -> int:
        """Counts the changes made to the rooms; see :class:`convstats.ports.Versioned`."""
        # Read without the lock: an update changes it under the lock, after the rooms.
        return self._version

    @property
    def room_count(self) -> int:
        """How many rooms the store holds."""
        with self._lock:
            return len(self._table)

    @property
    def groupings(self) -> tuple[Grouping, ...]:
        """The reports the store can answer (see :class:`MemoryRooms`)."""
        return self._table.groupings

    def footprint(self) -> Mapping[str, int]:
        """Bytes held for the rooms, by component (a diagnostic for benchmarks).

        Exact for the machine arrays, an estimate (``sys.getsizeof``) for Python objects
        shared with the caller, such as ``_id`` strings.
        """
        with self._lock:
            return self._table.footprint()

    def explain(self, window: TimeWindow, visibility: Visibility) -> Plan:
        """Which plan :meth:`count_groups` takes for this query (nothing is counted)."""
        with self._lock:
            return counting.explain(self._counting, self._table)

    # -- RoomStore -------------------------------------------------------------------------

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        """See :meth:`convstats.ports.RoomStore.count_groups`."""
        # Behind an update that waits for the lock, rather than ahead of it (see _turnstile).
        with self._turnstile:
            pass
        with self._lock:
            return counting.count(self._counting, self._table, grouping, window, visibility, mode)


@attrs.define(init=False, eq=False)
class MemoryStore:
    """A whole workspace in memory: :class:`MemoryRooms` and a :class:`MemoryDirectory`.

    ``collections`` maps collection names to documents as ``pymongo`` or ``mongoexport``
    give them (dates as datetimes); missing collections are empty. It is a
    :class:`~convstats.ports.Workspace` and :class:`~convstats.ports.Versioned`: the rooms
    change through :meth:`put_room`, :meth:`remove_room` and :meth:`set_served_by`, the
    directory by :meth:`replace_directory`, and either change moves :attr:`data_version`.
    ``strategy`` and ``groupings`` are the rooms' (see :class:`MemoryRooms`).
    """

    rooms: MemoryRooms
    _directory: MemoryDirectory = attrs.field(repr=False)
    _directory_changes: int = attrs.field(repr=False, default=0)

    def __init__(
        self,
        collections: Mapping[str, Iterable[Document]] | None = None,
        *,
        strategy: StrategyChoice = "auto",
        groupings: Iterable[Grouping] = GROUPINGS,
    ) -> None:
        collections = collections or {}
        directory = MemoryDirectory(collections)
        self.__attrs_init__(
            rooms=MemoryRooms(
                collections.get(doc.ROOMS, ()), strategy=strategy, groupings=groupings
            ),
            directory=directory,
        )

    @classmethod
    def of(cls, rooms: MemoryRooms, directory: MemoryDirectory) -> MemoryStore:
        """The store of rooms and a directory built apart (a loader's, a mirror's)."""
        store = cls.__new__(cls)
        store.__attrs_init__(rooms=rooms, directory=directory)
        return store

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        strategy: StrategyChoice = "auto",
        groupings: Iterable[Grouping] = GROUPINGS,
    ) -> MemoryStore:
        """Load a JSON file or a ``mongoexport`` directory (see ``files.load_collections``).

        The directory's collections are read by :meth:`MemoryDirectory.from_path`, the rooms
        by :meth:`MemoryRooms.from_path` (streamed with the extra ``fast``). Raises
        :class:`~convstats.errors.DataFormatError` naming the path for unreadable files and
        for data no database could hold (two documents with one ``_id``).
        """
        counting.check_strategy(strategy)
        directory = MemoryDirectory.from_path(path)
        rooms = MemoryRooms.from_path(path, strategy=strategy, groupings=groupings)
        return cls.of(rooms, directory)

    @property
    def directory(self) -> MemoryDirectory:
        """The users, permissions and departments the store answers from."""
        return self._directory

    def replace_directory(self, directory: MemoryDirectory) -> None:
        """Answer from ``directory`` from now on (a workspace whose users or units changed)."""
        self._directory = directory
        self._directory_changes += 1

    # -- the rooms -------------------------------------------------------------------------

    @property
    def strategy(self) -> str:
        """How the rooms are counted (see :class:`MemoryRooms`)."""
        return self.rooms.strategy

    @property
    def data_version(self) -> int:
        """Moves with every change of the rooms or the directory (``Versioned``)."""
        # Both only grow, so their sum never takes an earlier value again.
        return self.rooms.data_version + self._directory_changes

    @property
    def room_count(self) -> int:
        """How many rooms the store holds."""
        return self.rooms.room_count

    @property
    def groupings(self) -> tuple[Grouping, ...]:
        """The reports the store can answer (see :class:`MemoryRooms`)."""
        return self.rooms.groupings

    def put_room(self, room: Document) -> None:
        """See :meth:`MemoryRooms.put_room`."""
        self.rooms.put_room(room)

    def remove_room(self, room_id: object) -> bool:
        """See :meth:`MemoryRooms.remove_room`."""
        return self.rooms.remove_room(room_id)

    def set_served_by(self, room_id: object, agent: Mapping[str, Any] | None) -> None:
        """See :meth:`MemoryRooms.set_served_by`."""
        self.rooms.set_served_by(room_id, agent)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self.rooms

    def footprint(self) -> Mapping[str, int]:
        """See :meth:`MemoryRooms.footprint`."""
        return self.rooms.footprint()

    def explain(self, window: TimeWindow, visibility: Visibility) -> Plan:
        """See :meth:`MemoryRooms.explain`."""
        return self.rooms.explain(window, visibility)

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        """See :meth:`convstats.ports.RoomStore.count_groups`."""
        return self.rooms.count_groups(grouping, window, visibility, mode)

    # -- the directory ---------------------------------------------------------------------

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`."""
        return self._directory.get_user(user_id)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.user_with_token`."""
        return self._directory.user_with_token(user_id, hashed_token)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.Directory.agent_names`."""
        return self._directory.agent_names(agent_ids)

    def department_names(self, keys: Collection[Any]) -> Mapping[Any, Any]:
        """See :meth:`convstats.ports.Directory.department_names`."""
        return self._directory.department_names(keys)

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        """See :meth:`convstats.ports.Directory.permission_roles`."""
        return self._directory.permission_roles(permission)

    def has_units(self) -> bool:
        """See :meth:`convstats.ports.Directory.has_units`."""
        return self._directory.has_units()

    def monitored_units(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.monitored_units`."""
        return self._directory.monitored_units(user_id)

    def agent_departments(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.agent_departments`."""
        return self._directory.agent_departments(user_id)

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.departments_under`."""
        return self._directory.departments_under(unit_ids, include_own=include_own)
