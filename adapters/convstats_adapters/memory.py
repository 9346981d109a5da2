"""The in-memory store: Rocket.Chat collections held in Python, for files and tests."""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any

from convstats.errors import DataFormatError
from convstats.model import AgentCounts, TimeWindow, UserRecord, Visibility
from convstats_adapters.extjson import load_collections
from convstats_adapters.schema import (
    DEPARTMENT_AGENTS,
    DEPARTMENTS,
    PERMISSIONS,
    ROOMS,
    UNIT_MONITORS,
    USERS,
    string_set,
    user_record,
)
from convstats_adapters.strategies import STRATEGY_NAMES, CountingStrategy, make_strategy

__all__ = ["MemoryStore"]

Document = dict[str, Any]


def _index_pairs(documents: Iterable[Document], key: str, value: str) -> dict[str, set[str]]:
    # Only string ids can equal the string a caller is looked up by, as in a MongoDB query.
    index: dict[str, set[str]] = defaultdict(set)
    for document in documents:
        owner, item = document.get(key), document.get(value)
        if isinstance(owner, str) and isinstance(item, str):
            index[owner].add(item)
    return index


def _by_id(documents: Iterable[Document], collection: str) -> dict[str, Document]:
    index: dict[str, Document] = {}
    for document in documents:
        document_id = document.get("_id")
        if not isinstance(document_id, str):
            continue  # never equal to the string id a look-up asks for
        if document_id in index:
            raise ValueError(f"two documents of {collection} have the _id {document_id!r}")
        index[document_id] = document
    return index


def id_key(value: object) -> Hashable:
    """An ``_id`` as a dict key, equal exactly when MongoDB holds the two ids equal.

    Strings and numbers are themselves (``1 == 1.0`` in both); booleans stay apart from
    numbers; documents and arrays compare by their contents; any other unhashable value by
    its type and repr.
    """
    if isinstance(value, bool):
        return ("<bool>", value)
    if isinstance(value, Mapping):
        return ("<document>", tuple((key, id_key(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("<array>", tuple(id_key(item) for item in value))
    try:
        hash(value)
    except TypeError:
        return ("<value>", type(value).__name__, repr(value))
    return value


class MemoryStore:
    """Rocket.Chat collections (SPEC §8) in memory; a ``RoomStore`` and a ``Directory``.

    ``collections`` maps collection names to documents as ``pymongo`` or ``mongoexport``
    give them (dates as datetimes); missing collections are empty. Rooms can be added,
    replaced and removed afterwards (:meth:`put_room`, :meth:`remove_room`,
    :meth:`set_served_by`) and every strategy stays consistent without a rebuild; the other
    collections are fixed at construction.

    ``strategy`` names how rooms are held and counted (all give the same answers):
    ``"scan"`` keeps the documents and reads them all at each query; ``"columnar"`` keeps
    three integers a room and counts them with numpy (extra ``columnar``); ``"indexed"``
    adds sorted creation times per partition and agent and bisects; ``"auto"``, the
    default, is the index, answering each query from the columns instead when numpy is
    installed and that is cheaper (see :mod:`convstats_adapters.strategies`). Only
    ``"scan"`` keeps the room documents; the others keep what the report reads of them.
    Not safe for changes concurrent with queries.
    """

    def __init__(
        self,
        collections: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        *,
        strategy: str = "auto",
    ) -> None:
        self.strategy_name = strategy
        self._strategy: CountingStrategy = make_strategy(strategy)
        self._anonymous = itertools.count()
        collections = collections or {}
        # Rooms go straight to the strategy: copying millions of documents first would
        # cost more than the build itself.
        self._strategy.load((self._key(room), room) for room in collections.get(ROOMS, ()))
        data = {
            name: [dict(doc) for doc in docs] for name, docs in collections.items() if name != ROOMS
        }
        self._users = _by_id(data.get(USERS, []), USERS)
        self._permissions = _by_id(data.get(PERMISSIONS, []), PERMISSIONS)
        self._departments: list[Document] = list(data.get(DEPARTMENTS, []))
        self._monitored = _index_pairs(data.get(UNIT_MONITORS, []), "monitorId", "unitId")
        self._agent_departments = _index_pairs(
            data.get(DEPARTMENT_AGENTS, []), "agentId", "departmentId"
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, strategy: str = "auto") -> MemoryStore:
        """Load a JSON file or a ``mongoexport`` directory (see ``load_collections``).

        Raises :class:`~convstats.errors.DataFormatError` naming the path for unreadable
        files and for data no database could hold (two documents with one ``_id``).
        """
        collections = load_collections(path)
        try:
            return cls(collections, strategy=strategy)
        except ValueError as error:
            if strategy not in STRATEGY_NAMES:
                raise
            raise DataFormatError(os.fspath(path), str(error)) from None

    def _key(self, room: Mapping[str, Any]) -> Hashable:
        # A room without an _id still counts; it gets a key no real _id can equal.
        if "_id" not in room:
            return ("<no _id>", next(self._anonymous))
        return id_key(room["_id"])

    # -- changes ---------------------------------------------------------------------------

    def put_room(self, room: Mapping[str, Any]) -> None:
        """Insert a room, or replace the stored room with the same ``_id``."""
        self._strategy.put(self._key(room), room)

    def remove_room(self, room_id: object) -> bool:
        """Remove the room with ``_id == room_id``; return whether there was one."""
        return self._strategy.remove(id_key(room_id))

    def set_served_by(self, room_id: object, agent: Mapping[str, Any] | None) -> None:
        """Transfer a room to ``agent`` (``{"_id": …, "username": …}``), or return it to the queue.

        With ``agent=None`` the room loses its ``servedBy``. Raises :class:`KeyError` for an
        unknown room.
        """
        self._strategy.set_served_by(id_key(room_id), agent)

    @property
    def room_count(self) -> int:
        """How many rooms the store holds."""
        return len(self._strategy)

    def footprint(self) -> Mapping[str, int]:
        """Bytes the strategy holds, by component (a diagnostic; see ``CountingStrategy``)."""
        return self._strategy.footprint()

    # -- RoomStore -------------------------------------------------------------------------

    def count_conversations(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """See :meth:`convstats.ports.RoomStore.count_conversations`."""
        return self._strategy.count(window, visibility)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.RoomStore.agent_names`."""
        names: dict[str, str] = {}
        for agent_id in agent_ids:
            name = self._users.get(agent_id, {}).get("name")
            if isinstance(name, str):
                names[agent_id] = name
        return names

    # -- Directory -------------------------------------------------------------------------

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`."""
        user = self._users.get(user_id)
        return None if user is None else user_record(user_id, user)

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        """See :meth:`convstats.ports.Directory.permission_roles`."""
        document = self._permissions.get(permission)
        return None if document is None else string_set(document.get("roles"))

    def has_units(self) -> bool:
        """See :meth:`convstats.ports.Directory.has_units`."""
        return any(department.get("type") == "u" for department in self._departments)

    def monitored_units(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.monitored_units`."""
        return frozenset(self._monitored.get(user_id, ()))

    def agent_departments(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.agent_departments`."""
        return frozenset(self._agent_departments.get(user_id, ()))

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.departments_under`."""
        units = frozenset(unit_ids)
        found: set[str] = set()
        for department in self._departments:
            department_id = department.get("_id")
            if not isinstance(department_id, str):
                continue
            ancestors = department.get("ancestors")
            if not isinstance(ancestors, (list, tuple)):
                ancestors = [ancestors]
            if not units.isdisjoint(a for a in ancestors if isinstance(a, str)) or (
                include_own and department_id in units
            ):
                found.add(department_id)
        return frozenset(found)
