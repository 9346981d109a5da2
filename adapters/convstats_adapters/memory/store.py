"""The in-memory store: Rocket.Chat collections held in Python, for files and tests."""

from __future__ import annotations

import itertools
import os
import threading
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from convstats.errors import DataFormatError
from convstats.model import AgentCounts, TimeWindow, UserRecord, Visibility
from convstats_adapters import documents as doc
from convstats_adapters.documents import Document
from convstats_adapters.files import load_collections
from convstats_adapters.memory import counting, loader
from convstats_adapters.memory.counting import Plan
from convstats_adapters.memory.table import FactTable

__all__ = ["MemoryStore"]


def _pairs(documents: Iterable[Document], key: str, value: str) -> dict[str, frozenset[str]]:
    # Only string ids can equal the string a caller is looked up by, as in a MongoDB query.
    index: defaultdict[str, set[str]] = defaultdict(set)
    for document in documents:
        owner, item = document.get(key), document.get(value)
        if isinstance(owner, str) and isinstance(item, str):
            index[owner].add(item)
    return {owner: frozenset(items) for owner, items in index.items()}


def _by_id(documents: Iterable[Document], collection: str) -> dict[str, Document]:
    index: dict[str, Document] = {}
    for document in documents:
        document_id = doc.document_id(document.get("_id"))
        if document_id is None:
            continue  # never equal to the string id a look-up asks for
        if document_id in index:
            raise ValueError(f"two documents of {collection} have the _id {document_id!r}")
        index[document_id] = dict(document)
    return index


@attrs.define(init=False, eq=False)
class MemoryStore:
    """Rocket.Chat collections in memory; a ``RoomStore`` and a ``Directory``.

    ``collections`` maps collection names to documents as ``pymongo`` or ``mongoexport``
    give them (dates as datetimes); missing collections are empty. Rooms can be added,
    replaced and removed afterwards (:meth:`put_room`, :meth:`remove_room`,
    :meth:`set_served_by`) without a rebuild; the other collections are fixed at
    construction. Each room is held as its creation time, its (partition, agent) group and
    a fingerprint of its id, under 32 bytes a room (see
    :mod:`convstats_adapters.memory.table`).

    ``strategy`` names how rooms are counted (all give the same answers; see
    :mod:`convstats_adapters.memory.counting` and :meth:`explain`): ``"scan"``,
    ``"columnar"`` (extra ``columnar``), ``"indexed"`` or ``"auto"``, the default.

    Safe for updates concurrent with queries, from any number of threads: one lock is held by
    each update and each count, so a query sees the rooms before or after every update, never
    half way through one, and no update is lost. An update therefore waits for a count that is
    running (a scan of a million rooms takes about a second; the index, under a millisecond).
    Each update changes :attr:`data_version`, so that a cached report sees it at once.
    """

    #: Fixed at construction: the table keeps the structures this strategy reads.
    strategy: str = attrs.field(on_setattr=attrs.setters.frozen)
    _table: FactTable = attrs.field(repr=False)
    _users: dict[str, Document] = attrs.field(repr=False)
    #: Each user's hashed login tokens, read once: a sign-in is then one set look-up.
    _login_tokens: dict[str, frozenset[str]] = attrs.field(repr=False)
    _permissions: dict[str, Document] = attrs.field(repr=False)
    _departments: tuple[Document, ...] = attrs.field(repr=False)
    #: The departments are fixed at construction, and every restricted request asks this.
    _has_units: bool = attrs.field(repr=False, init=False)
    _monitored: dict[str, frozenset[str]] = attrs.field(repr=False)
    _agent_departments: dict[str, frozenset[str]] = attrs.field(repr=False)
    _anonymous: Iterator[int] = attrs.field(repr=False, factory=itertools.count)
    # One lock rather than a readers-writer scheme: counting is Python or numpy work that the
    # interpreter lock serialises anyway (benchmarks/README.md#updates-concurrent-with-queries).
    _lock: threading.Lock = attrs.field(repr=False, eq=False, factory=threading.Lock)
    # Held by an update while it waits for the lock, and passed through by every count before
    # it takes the lock: without it, threads counting without pause retake the lock the
    # moment it is released, and an update can wait for hundreds of counts.
    _turnstile: threading.Lock = attrs.field(repr=False, eq=False, factory=threading.Lock)
    _version: int = attrs.field(repr=False, eq=False, default=0)

    #: Users' string names by id, read once: a report labels every row with one.
    _names: dict[str, str] = attrs.field(repr=False, factory=dict)

    def __init__(
        self,
        collections: Mapping[str, Iterable[Document]] | None = None,
        *,
        strategy: str = "auto",
    ) -> None:
        counting.check_strategy(strategy)
        collections = collections or {}
        data = {
            name: [dict(document) for document in documents]
            for name, documents in collections.items()
            if name != doc.ROOMS
        }
        users = _by_id(data.get(doc.USERS, ()), doc.USERS)
        self.__attrs_init__(
            strategy=strategy,
            table=FactTable(indexed=counting.needs_index(strategy)),
            users=users,
            login_tokens={
                user_id: hashes
                for user_id, user in users.items()
                if (hashes := doc.login_token_hashes(user))
            },
            permissions=_by_id(data.get(doc.PERMISSIONS, ()), doc.PERMISSIONS),
            departments=tuple(data.get(doc.DEPARTMENTS, ())),
            monitored=_pairs(data.get(doc.UNIT_MONITORS, ()), "monitorId", "unitId"),
            agent_departments=_pairs(
                data.get(doc.DEPARTMENT_AGENTS, ()), "agentId", "departmentId"
            ),
        )
        self._has_units = any(doc.is_unit(department) for department in self._departments)
        self._names = {
            user_id: user["name"]
            for user_id, user in self._users.items()
            if isinstance(user.get("name"), str)
        }
        # Rooms go straight to the table: copying millions of documents first would cost
        # more than the build itself.
        self._table.load((self._key(room), room) for room in collections.get(doc.ROOMS, ()))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, strategy: str = "auto") -> MemoryStore:
        """Load a JSON file or a ``mongoexport`` directory (see ``files.load_collections``).

        With msgspec installed (extra ``fast``) a directory's plain ``rocketchat_room.json``
        is streamed by :func:`convstats_adapters.memory.loader.read_export`: the same rooms,
        a few megabytes of text at a time; a gzipped one is read by the reference loader.

        Raises :class:`~convstats.errors.DataFormatError` naming the path for unreadable
        files and for data no database could hold (two documents with one ``_id``).
        """
        counting.check_strategy(strategy)
        if loader.fast_loader_available() and loader.streamable_rooms(Path(path)) is not None:
            # Rooms stream straight into the table; no document is held for them.
            export = loader.read_export(path, indexed=counting.needs_index(strategy))
            try:
                store = cls(export.collections, strategy=strategy)
            except ValueError as error:
                raise DataFormatError(os.fspath(path), str(error)) from None
            store._table = export.rooms
            store._anonymous = itertools.count(export.anonymous)
            return store
        collections = load_collections(path)
        try:
            return cls(collections, strategy=strategy)
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

        With ``agent=None`` the room loses its ``servedBy``. Raises :class:`KeyError` for an
        unknown room.
        """
        served = None if agent is None else doc.served_agent({"servedBy": agent})
        key = doc.id_key(room_id)
        with self._turnstile, self._lock:
            self._table.set_agent(key, served)
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

    def footprint(self) -> Mapping[str, int]:
        """Bytes held for the rooms, by component (a diagnostic for benchmarks).

        Exact for the machine arrays, an estimate (``sys.getsizeof``) for Python objects
        shared with the caller, such as ``_id`` strings.
        """
        with self._lock:
            return self._table.footprint()

    def explain(self, window: TimeWindow, visibility: Visibility) -> Plan:
        """Which plan :meth:`count_conversations` takes for this query (nothing is counted)."""
        with self._lock:
            return counting.explain(self.strategy, self._table, visibility)

    # -- RoomStore -------------------------------------------------------------------------

    def count_conversations(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """See :meth:`convstats.ports.RoomStore.count_conversations`."""
        # Behind an update that waits for the lock, rather than ahead of it (see _turnstile).
        with self._turnstile:
            pass
        with self._lock:
            return counting.count(self.strategy, self._table, window, visibility)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.RoomStore.agent_names`."""
        names = self._names
        return {agent_id: names[agent_id] for agent_id in agent_ids if agent_id in names}

    # -- Directory -------------------------------------------------------------------------

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`."""
        user = self._users.get(user_id)
        return None if user is None else doc.user_record(user_id, user)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.user_with_token`."""
        if hashed_token not in self._login_tokens.get(user_id, frozenset()):
            return None
        return self.get_user(user_id)

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        """See :meth:`convstats.ports.Directory.permission_roles`."""
        document = self._permissions.get(permission)
        return None if document is None else doc.string_set(document.get("roles"))

    def has_units(self) -> bool:
        """See :meth:`convstats.ports.Directory.has_units`."""
        return self._has_units

    def monitored_units(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.monitored_units`."""
        return self._monitored.get(user_id, frozenset())

    def agent_departments(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.agent_departments`."""
        return self._agent_departments.get(user_id, frozenset())

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.departments_under`."""
        units = frozenset(unit_ids)
        found: set[str] = set()
        for department in self._departments:
            department_id = department.get("_id")
            if not isinstance(department_id, str):
                continue
            if not units.isdisjoint(doc.department_ancestors(department)) or (
                include_own and department_id in units
            ):
                found.add(department_id)
        return frozenset(found)
