"""The directory in memory: users, permissions, departments, units and who works where."""

from __future__ import annotations

import os
import types
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

import attrs

from convstats.errors import DataFormatError
from convstats.model import UserRecord
from convstats_adapters import documents as doc
from convstats_adapters.documents import Document
from convstats_adapters.files import REPORT_COLLECTIONS, load_collections

__all__ = ["DIRECTORY_COLLECTIONS", "MemoryDirectory"]

#: The collections a directory is read from: every collection the reports read but the rooms.
DIRECTORY_COLLECTIONS: Final = tuple(name for name in REPORT_COLLECTIONS if name != doc.ROOMS)


def _pairs(documents: Iterable[Document], key: str, value: str) -> dict[str, frozenset[str]]:
    # Only ids can equal the id a caller is looked up by, as in a MongoDB query.
    index: defaultdict[str, set[str]] = defaultdict(set)
    for document in documents:
        owner, item = doc.document_id(document.get(key)), doc.document_id(document.get(value))
        if owner is not None and item is not None:
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
class MemoryDirectory:
    """Rocket.Chat's users, permissions and departments in memory; a ``Directory``.

    ``collections`` maps collection names to documents as ``pymongo`` or ``mongoexport``
    give them; the rooms, if present, are not read, and missing collections are empty. A
    directory does not change: to follow a changed workspace, build a new one (the
    collections are small) and give it to the store (``MemoryStore.replace_directory``).
    Safe to read from any number of threads.
    """

    _users: dict[str, Document] = attrs.field(repr=False)
    #: Each user's hashed login tokens, read once: a sign-in is then one set look-up.
    _login_tokens: dict[str, frozenset[str]] = attrs.field(repr=False)
    _permissions: dict[str, Document] = attrs.field(repr=False)
    _departments: dict[str, Document] = attrs.field(repr=False)
    _has_units: bool = attrs.field(repr=False)
    _monitored: dict[str, frozenset[str]] = attrs.field(repr=False)
    _agent_departments: dict[str, frozenset[str]] = attrs.field(repr=False)
    #: Users' string names by id, read once: a report labels every row with one.
    _names: Mapping[str, str] = attrs.field(repr=False)
    #: Departments' names, as stored, by id (only departments with a name field).
    _department_names: dict[Any, Any] = attrs.field(repr=False)

    def __init__(self, collections: Mapping[str, Iterable[Document]] | None = None) -> None:
        collections = collections or {}
        users = _by_id(collections.get(doc.USERS, ()), doc.USERS)
        every_department = list(collections.get(doc.DEPARTMENTS, ()))
        departments = _by_id(every_department, doc.DEPARTMENTS)
        self.__attrs_init__(
            users=users,
            login_tokens={
                user_id: hashes
                for user_id, user in users.items()
                if (hashes := doc.login_token_hashes(user))
            },
            permissions=_by_id(collections.get(doc.PERMISSIONS, ()), doc.PERMISSIONS),
            departments=departments,
            # Any document, whatever its _id, as MongoDB finds one for {type: "u"}.
            has_units=any(doc.is_unit(department) for department in every_department),
            monitored=_pairs(collections.get(doc.UNIT_MONITORS, ()), "monitorId", "unitId"),
            agent_departments=_pairs(
                collections.get(doc.DEPARTMENT_AGENTS, ()), "agentId", "departmentId"
            ),
            # Read-only: agent_names answers this very mapping, not a copy per query.
            names=types.MappingProxyType(
                {
                    user_id: user["name"]
                    for user_id, user in users.items()
                    if isinstance(user.get("name"), str)
                }
            ),
            department_names={
                department_id: doc.freeze(department["name"])
                for department_id, department in departments.items()
                if "name" in department
            },
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> MemoryDirectory:
        """Read a JSON file or a ``mongoexport`` directory's directory collections.

        Only :data:`DIRECTORY_COLLECTIONS` are read; the rooms file is never opened. Raises
        :class:`~convstats.errors.DataFormatError` naming the path for unreadable files and
        for data no database could hold (two documents with one ``_id``).
        """
        collections = load_collections(path, collections=DIRECTORY_COLLECTIONS)
        try:
            return cls(collections)
        except ValueError as error:
            raise DataFormatError(os.fspath(path), str(error)) from None

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`."""
        user = self._users.get(user_id)
        return None if user is None else doc.user_record(user_id, user)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.user_with_token`."""
        if hashed_token not in self._login_tokens.get(user_id, frozenset()):
            return None
        return self.get_user(user_id)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.Directory.agent_names`: every user's string name."""
        return self._names

    def department_names(self, keys: Collection[Any]) -> Mapping[Any, Any]:
        """See :meth:`convstats.ports.Directory.department_names`."""
        return doc.department_names_of(keys, self._department_names)

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
        for department_id, department in self._departments.items():
            if not units.isdisjoint(doc.department_ancestors(department)) or (
                include_own and department_id in units
            ):
                found.add(department_id)
        return frozenset(found)
