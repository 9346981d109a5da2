"""What a Rocket.Chat document means: every rule the stores read documents by, in one place.

Collection and field names, which BSON type counts, how an array matches: the in-memory
store applies these functions to documents, and the MongoDB store restates each of them in
its query language (see :mod:`convstats_adapters.mongo`, which names the function each
clause mirrors). When the two stores disagree on an odd document, this module is where to
look. See docs/behaviour.md#reading-rocketchat-documents.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any, Final

from convstats.model import Partition, UserRecord, epoch_ms

__all__ = [
    "DEPARTMENTS",
    "DEPARTMENT_AGENTS",
    "LIVECHAT",
    "PERMISSIONS",
    "READ_FIELDS",
    "ROOMS",
    "UNIT",
    "UNIT_MONITORS",
    "USERS",
    "USER_FIELDS",
    "Document",
    "created_ms",
    "department_ancestors",
    "document_id",
    "elements",
    "id_key",
    "is_array",
    "is_unit",
    "partition",
    "served_agent",
    "string_set",
    "user_record",
]

Document = Mapping[str, Any]

ROOMS: Final = "rocketchat_room"
USERS: Final = "users"
PERMISSIONS: Final = "rocketchat_permissions"
DEPARTMENTS: Final = "rocketchat_livechat_department"
UNIT_MONITORS: Final = "rocketchat_livechat_unit_monitors"
DEPARTMENT_AGENTS: Final = "rocketchat_livechat_department_agents"

#: A room's ``t`` for an omnichannel (livechat) conversation.
LIVECHAT: Final = "l"
#: A department document's ``type`` for a unit.
UNIT: Final = "u"
#: The fields of a room the report reads; nothing else decides whether or for whom it counts.
READ_FIELDS: Final = ("t", "ts", "servedBy", "departmentId", "departmentAncestors")
#: The fields of a ``users`` document any reader of the directory looks at; a loader may keep
#: only these.
USER_FIELDS: Final = ("_id", "name", "roles")


def is_array(value: object) -> bool:
    """Whether ``value`` is a BSON array: a list, or a tuple (which BSON stores as an array)."""
    return isinstance(value, (list, tuple))


def elements(value: object) -> tuple[object, ...]:
    """What a MongoDB query matches a field by: an array's elements, or a scalar itself.

    ``{f: x}`` and ``{f: {$in: [...]}}`` match a document whose ``f`` is ``x`` or an array
    holding ``x``; a missing field has no elements.
    """
    if is_array(value):
        return tuple(value)  # type: ignore[arg-type]
    return (value,)


def document_id(value: object) -> str | None:
    """An id as the report names it: a string as itself, an ObjectId as its 24-hex string.

    Any other value (a number, null, a document) is no id: it never equals the string a
    look-up asks for.
    """
    if isinstance(value, str):
        return value
    # An ObjectId can only exist where bson (pymongo's) has been imported.
    bson = sys.modules.get("bson")
    if bson is not None and isinstance(value, bson.ObjectId):
        return str(value)
    return None


def id_key(value: object) -> Hashable:
    """A room's ``_id`` as a dict key, equal exactly when MongoDB holds the two ids equal.

    Strings and numbers are themselves (``1 == 1.0`` in both); booleans stay apart from
    numbers; documents and arrays compare by their contents; any other unhashable value by
    its type and repr.
    """
    if isinstance(value, bool):
        return ("<bool>", value)
    if isinstance(value, Mapping):
        return ("<document>", tuple((key, id_key(item)) for key, item in value.items()))
    if is_array(value):
        return ("<array>", tuple(id_key(item) for item in value))  # type: ignore[attr-defined]
    try:
        hash(value)
    except TypeError:
        return ("<value>", type(value).__name__, repr(value))
    return value


def served_agent(room: Document) -> str | None:
    """The agent a room counts for: the :func:`document_id` of ``servedBy._id``, else ``None``.

    ``servedBy`` may be any mapping (a driver's raw document as well as a dict); an array
    ``servedBy`` or ``_id`` is no agent.
    """
    served_by = room.get("servedBy")
    if isinstance(served_by, Mapping):
        return document_id(served_by.get("_id"))
    return None


def created_ms(room: Document) -> int | None:
    """A livechat room's ``ts`` in epoch milliseconds, or ``None`` when the room never counts.

    Only rooms whose ``t`` is the string ``"l"`` (not an array holding it) and whose ``ts`` is
    a date can fall in a window; a naive ``ts`` (as a driver without ``tz_aware`` returns it)
    is UTC.
    """
    if room.get("t") != LIVECHAT:
        return None
    ts = room.get("ts")
    if not isinstance(ts, datetime):
        return None
    return epoch_ms(ts)


def partition(room: Document) -> Partition:
    """The room's visibility partition.

    ``departmentId`` counts when it is a string; a missing or null one means the room has no
    department; any other value (a number, an array) is a department no caller is admitted
    by. ``departmentAncestors`` matches by its :func:`elements` that are strings.
    """
    department = room.get("departmentId")
    return Partition(
        department_id=department if isinstance(department, str) else None,
        ancestors=frozenset(_strings(room.get("departmentAncestors"))),
        departmentless=department is None,
    )


def department_ancestors(department: Document) -> frozenset[str]:
    """The units a ``rocketchat_livechat_department`` document lies under (its ``ancestors``)."""
    return frozenset(_strings(department.get("ancestors")))


def is_unit(department: Document) -> bool:
    """Whether a department document is a unit: ``type`` is ``"u"`` or an array holding it."""
    return UNIT in elements(department.get("type"))


def string_set(value: object) -> frozenset[str]:
    """The string items of an array field (``roles``); empty for anything but an array."""
    if not is_array(value):
        return frozenset()
    return frozenset(item for item in value if isinstance(item, str))  # type: ignore[attr-defined]


def user_record(user_id: str, document: Document) -> UserRecord:
    """The :class:`UserRecord` of a ``users`` document: string roles, a string name or none."""
    name = document.get("name")
    return UserRecord(
        id=user_id,
        roles=string_set(document.get("roles")),
        name=name if isinstance(name, str) else None,
    )


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in elements(value) if isinstance(item, str))
