"""What a Rocket.Chat document means: every rule the stores read documents by, in one place.

Collection and field names, which BSON type counts, how an array matches: the in-memory
store applies these functions to documents, and the MongoDB store restates each of them in
its query language (see :mod:`convstats_adapters.mongo`, which names the function each
clause mirrors). When the two stores disagree on an odd document, this module is where to
look. See docs/behaviour.md#reading-rocketchat-documents.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Hashable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from convstats.model import Partition, UserRecord, epoch_ms

__all__ = [
    "DEPARTMENTS",
    "DEPARTMENT_AGENTS",
    "LIVECHAT",
    "LOGIN_TOKEN_HASHES",
    "PERMISSIONS",
    "ROOMS",
    "UNIT",
    "UNIT_MONITORS",
    "USERS",
    "Document",
    "created_ms",
    "department_ancestors",
    "document_id",
    "elements",
    "hash_login_token",
    "id_key",
    "is_active",
    "is_array",
    "is_unit",
    "login_token_hashes",
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
#: Where a ``users`` document keeps its login tokens, hashed: every session's resume token
#: and every personal access token is an entry ``{hashedToken, …}`` of this array.
LOGIN_TOKEN_HASHES: Final = "services.resume.loginTokens.hashedToken"


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

    ``departmentId`` counts when it is a string. Only a room without the field has no
    department, as upstream's ``{departmentId: {$exists: false}}`` has it: ``null``, like any
    other value that is not a string (a number, an array), is a department no caller is
    admitted by. ``departmentAncestors`` matches by its :func:`elements` that are strings.
    """
    department = room.get("departmentId")
    return Partition(
        department_id=department if isinstance(department, str) else None,
        ancestors=frozenset(_strings(room.get("departmentAncestors"))),
        departmentless="departmentId" not in room,
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


def is_active(user: Document) -> bool:
    """Whether a ``users`` document is an active user: anything but ``active: false``.

    Rocket.Chat writes ``active: false`` when it deactivates a user; a document without the
    field (an import, an old workspace) is a user who may sign in.
    """
    return user.get("active") is not False


def user_record(user_id: str, document: Document) -> UserRecord:
    """The :class:`UserRecord` of a ``users`` document: string roles, a string name or none."""
    name = document.get("name")
    return UserRecord(
        id=user_id,
        roles=string_set(document.get("roles")),
        name=name if isinstance(name, str) else None,
        active=is_active(document),
    )


def hash_login_token(token: str) -> str:
    """The ``hashedToken`` Rocket.Chat stores for a login token.

    The base64 (standard alphabet, padded) of the SHA-256 of the token's UTF-8 bytes, as
    Meteor's ``Accounts._hashLoginToken`` computes it. A lone surrogate, which UTF-8 cannot
    encode, is hashed as U+FFFD, as Node.js encodes it.
    """
    try:
        data = token.encode("utf-8")
    except UnicodeEncodeError:
        data = token.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def login_token_hashes(user: Document) -> frozenset[str]:
    """The string values a query on :data:`LOGIN_TOKEN_HASHES` matches in a ``users`` document.

    The path is followed as MongoDB follows a dotted path: through documents, and through
    the documents an array on the way holds; the value at its end matches as itself or by an
    array's :func:`elements`. Only strings can equal a hashed token.
    """
    return frozenset(
        value
        for value in _path_values(user, tuple(LOGIN_TOKEN_HASHES.split(".")))
        if isinstance(value, str)
    )


def _path_values(value: object, path: tuple[str, ...]) -> Iterator[object]:
    if not path:
        yield from elements(value)
        return
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        if head in value:
            yield from _path_values(value[head], rest)
    elif is_array(value):
        for item in value:  # type: ignore[attr-defined]
            if isinstance(item, Mapping) and head in item:
                yield from _path_values(item[head], rest)


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in elements(value) if isinstance(item, str))
