"""What a Rocket.Chat document means: every rule the stores read documents by, in one place.

Collection and field names, which BSON type counts, how an array matches: the in-memory
store applies these functions to documents, and the MongoDB store restates each of them in
its query language (see :mod:`convstats_adapters.mongo`, which names the function each
clause mirrors). When the two stores disagree on an odd document, this module is where to
look. See docs/behaviour.md#reading-rocketchat-documents.
"""

from __future__ import annotations

import enum
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final, TypeAlias

from convstats.model import (
    ABSENT,
    FrozenBool,
    FrozenDocument,
    Grouping,
    Partition,
    Status,
    TotalMode,
    UserRecord,
    epoch_ms,
)
from convstats.sorting import bson_order

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
    "department_names_of",
    "document_id",
    "elements",
    "field",
    "freeze",
    "id_key",
    "is_active",
    "is_array",
    "is_unit",
    "login_token_hashes",
    "partition",
    "raw_key",
    "raw_key_reader",
    "rows_of",
    "served_agent",
    "status_facts",
    "string_set",
    "truthy",
    "user_record",
    "with_served_by",
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

    The one rule for every id the reports read (users, agents, departments, units,
    ancestors, monitors): Rocket.Chat writes strings, an export writes an ObjectId as
    ``{"$oid": …}``, which the loaders read as its lower-case hexadecimal string, and the
    MongoDB store matches an id both ways (see ``mongo._id_forms``). Any other value (a
    number, null, a document) is no id: it never equals the string a look-up asks for.
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

    ``departmentId`` counts when it is an id (:func:`document_id`: a string, or an ObjectId
    as its hexadecimal string). Only a room without the field has no department, as
    upstream's ``{departmentId: {$exists: false}}`` has it: ``null``, like any other value
    that is not an id (a number, an array), is a department no caller is admitted by.
    ``departmentAncestors`` matches by its :func:`elements` that are ids.
    """
    return Partition(
        department_id=document_id(room.get("departmentId")),
        ancestors=frozenset(_ids(room.get("departmentAncestors"))),
        departmentless="departmentId" not in room,
    )


def department_ancestors(department: Document) -> frozenset[str]:
    """The units a ``rocketchat_livechat_department`` document lies under (its ``ancestors``)."""
    return frozenset(_ids(department.get("ancestors")))


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


def _ids(value: object) -> Iterator[str]:
    for item in elements(value):
        found = document_id(item)
        if found is not None:
            yield found


# -- the facts the reports group by (docs/behaviour.md#the-reports) -------------------------


def field(document: Document, path: str) -> Any:
    """The value of a dotted field path as a MongoDB aggregation expression reads it.

    ``"$a.b"`` is ``a.b`` through documents; through an array it is the array of the ``b``
    of each element that is a document holding it (elements of other kinds, and documents
    without it, are skipped). :data:`~convstats.model.ABSENT` when there is no value.
    """
    value: Any = document
    for name in path.split("."):
        value = _field_step(value, name)
        if value is ABSENT:
            break
    return value


def _field_step(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name, ABSENT)
    if is_array(value):
        return [item[name] for item in value if isinstance(item, Mapping) and name in item]
    return ABSENT


def truthy(value: Any) -> bool:
    """Whether a MongoDB aggregation expression holds ``value`` true (``$cond``, ``$and``).

    False for a missing value, ``null``, ``false`` and a zero of any numeric type; true for
    everything else: other numbers (NaN too), strings (the empty one too), documents, arrays
    (the empty one too), dates.
    """
    if value is ABSENT or value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, (int, float, Decimal)):
        return value != 0
    decimal128 = _bson_type("Decimal128")
    if decimal128 is not None and isinstance(value, decimal128):
        return bool(value.to_decimal() != 0)
    return True


def _bson_type(name: str) -> Any:
    # A bson value can only exist where bson (pymongo's) has been imported.
    bson = sys.modules.get("bson")
    return None if bson is None else getattr(bson, name, None)


def freeze(value: Any) -> Any:
    """A stored value as a report keys and labels by it: hashable, one form per BSON value.

    Arrays become tuples, documents :class:`~convstats.model.FrozenDocument` and booleans
    :class:`~convstats.model.FrozenBool` (which ``true`` and ``1`` are not); an ObjectId
    is its hexadecimal string (:func:`document_id`), a 64-bit integer an int, a Decimal128 a
    Decimal, a naive date UTC. Two values are equal exactly when ``$group`` holds them equal,
    except that an ObjectId equals its hexadecimal string, as an export writes it.
    """
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bool):
        return FrozenBool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (float, Decimal)):
        return value
    if isinstance(value, Mapping):
        return FrozenDocument(tuple((str(name), freeze(item)) for name, item in value.items()))
    if is_array(value):
        return tuple(freeze(item) for item in value)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    identifier = document_id(value)
    if identifier is not None:
        return identifier
    decimal128 = _bson_type("Decimal128")
    if decimal128 is not None and isinstance(value, decimal128):
        return value.to_decimal()
    try:
        hash(value)
    except TypeError:
        return (f"<{type(value).__name__}>", repr(value))
    return value


# The facts of a room that decide its status, as bits of one small number.
OPEN: Final = 1  # open is true
ON_HOLD: Final = 2  # onHold is true
HELD: Final = 4  # onHold is truthy
SERVED: Final = 8  # servedBy is truthy
UNSERVED: Final = 16  # servedBy is missing or null
AGENT: Final = 32  # servedBy._id is an agent id (served_agent)
TIMED: Final = 64  # metrics.chatDuration is truthy


def status_facts(room: Document) -> int:
    """The facts of ``room`` that both readings of by-status decide by, as bits."""
    facts = OPEN if room.get("open") is True else 0
    held = room.get("onHold", ABSENT)
    if held is True:
        facts |= ON_HOLD | HELD
    elif truthy(held):
        facts |= HELD
    metrics = room.get("metrics", ABSENT)
    # A plain document first: the usual shape, read without walking a path.
    duration = (
        metrics.get("chatDuration", ABSENT)
        if type(metrics) is dict
        else field(room, "metrics.chatDuration")
    )
    if truthy(duration):
        facts |= TIMED
    return with_served_by(facts, room.get("servedBy", ABSENT))


def with_served_by(facts: int, served_by: Any) -> int:
    """``facts`` of a room whose ``servedBy`` is now ``served_by`` (``ABSENT``: unset)."""
    facts &= ~(SERVED | UNSERVED | AGENT)
    if served_by is ABSENT or served_by is None:
        return facts | UNSERVED
    if truthy(served_by):
        facts |= SERVED
    if isinstance(served_by, Mapping) and document_id(served_by.get("_id")) is not None:
        facts |= AGENT  # served_agent's rule
    return facts


def _statuses(facts: int, mode: TotalMode) -> tuple[Status, ...]:
    if mode is TotalMode.CONVSTATS:
        # Exactly one state: Rocket.Chat unsets open when it closes a room.
        if not facts & OPEN:
            return (Status.CLOSED,)
        if facts & ON_HOLD:
            return (Status.ON_HOLD,)
        return (Status.OPEN,) if facts & AGENT else (Status.QUEUED,)
    # Upstream's four $cond sums, which may overlap or miss.
    found = []
    if facts & OPEN and not facts & HELD and facts & SERVED:
        found.append(Status.OPEN)
    if facts & TIMED:
        found.append(Status.CLOSED)
    if facts & OPEN and facts & UNSERVED:
        found.append(Status.QUEUED)
    if facts & ON_HOLD:
        found.append(Status.ON_HOLD)
    return tuple(found)


class Unspecified(enum.Enum):
    """The answer of :func:`rows_of` for a room the reading counts apart."""

    UNSPECIFIED = "unspecified"


UNSPECIFIED: Final = Unspecified.UNSPECIFIED

#: Where a room goes in a report: its rows, each with how many times it counts there (an
#: empty tuple: nowhere), or ``UNSPECIFIED``.
Placement: TypeAlias = "tuple[tuple[Any, int], ...] | Unspecified"


def _source_key(room: Document) -> Any:
    if "source" not in room:
        return ABSENT
    return (freeze(field(room, "source.type")), freeze(field(room, "source.alias")))


def _source_rows(key: Any, mode: TotalMode) -> Placement:
    if mode is TotalMode.ROCKETCHAT:
        # Only rooms with a source field; grouped by the pair as it is, missing != null.
        return () if key is ABSENT else ((key, 1),)
    if key is ABSENT:
        return UNSPECIFIED
    kind, alias = (value if isinstance(value, str) else None for value in key)
    if kind is None and alias is None:
        return UNSPECIFIED
    return (((kind, alias), 1),)


def _department_key(room: Document) -> Any:
    return freeze(room["departmentId"]) if "departmentId" in room else ABSENT


def _department_rows(key: Any, mode: TotalMode) -> Placement:
    if mode is TotalMode.ROCKETCHAT:
        return UNSPECIFIED if key is ABSENT else ((key, 1),)
    return ((key, 1),) if isinstance(key, str) else UNSPECIFIED


def _tags_key(room: Document) -> Any:
    if "tags" not in room:
        return ABSENT
    tags = freeze(room["tags"])
    # Either reading counts the elements whatever their order: one key for each multiset
    # keeps the groups of rooms with the same tags in any order one.
    return tuple(sorted(tags, key=bson_order)) if isinstance(tags, tuple) else tags


def _tag_rows(key: Any, mode: TotalMode) -> Placement:
    if mode is TotalMode.ROCKETCHAT:
        # {tags: {$exists: true, $ne: []}}, then $unwind: an array by its elements (a
        # repeated one counts again), a scalar as itself, null nowhere. {$eq: []} also
        # matches an array holding [], so such a room is unspecified.
        if key is ABSENT or key == () or (isinstance(key, tuple) and () in key):
            return UNSPECIFIED
        if key is None:
            return ()
        items = key if isinstance(key, tuple) else (key,)
        return tuple(Counter(items).items())
    tags = dict.fromkeys(item for item in elements(key) if isinstance(item, str))
    return tuple((tag, 1) for tag in tags) if tags else UNSPECIFIED


#: The tag of a by-agent raw key whose ``servedBy`` names no agent: ``(NO_AGENT, _id)``.
NO_AGENT: Final = "<no agent>"


def _agent_key(room: Document) -> Any:
    if "servedBy" not in room:
        return None
    agent = served_agent(room)
    if agent is not None:
        return agent
    # A servedBy that names no agent: upstream groups the room by its servedBy._id as it is.
    found = freeze(field(room, "servedBy._id"))
    return (NO_AGENT, None if found is ABSENT else found)


def _agent_rows(key: Any, mode: TotalMode) -> Placement:
    if isinstance(key, str):
        return ((key, 1),)
    if mode is TotalMode.ROCKETCHAT and key is not None:
        # Upstream's $match keeps every room with a servedBy field and groups it by its
        # servedBy._id: null (no _id, a null servedBy) is a row of its own.
        return ((key[1], 1),)
    return UNSPECIFIED


def _status_rows(key: Any, mode: TotalMode) -> Placement:
    return tuple((status, 1) for status in _statuses(key, mode))


#: Per grouping, what of a room its report reads (a hashable "raw key"), which both readings
#: then place in rows by :func:`rows_of`.
_RAW_KEYS: Final[dict[Grouping, Callable[[Document], Any]]] = {
    Grouping.STATUS: status_facts,
    Grouping.SOURCE: _source_key,
    Grouping.DEPARTMENT: _department_key,
    Grouping.TAGS: _tags_key,
    Grouping.AGENT: _agent_key,
}
_ROWS: Final[dict[Grouping, Callable[[Any, TotalMode], Placement]]] = {
    Grouping.STATUS: _status_rows,
    Grouping.SOURCE: _source_rows,
    Grouping.DEPARTMENT: _department_rows,
    Grouping.TAGS: _tag_rows,
    Grouping.AGENT: _agent_rows,
}


def raw_key_reader(grouping: Grouping) -> Callable[[Document], Any]:
    """The function :func:`raw_key` applies for ``grouping``, to apply it to many rooms."""
    return _RAW_KEYS[grouping]


def raw_key(grouping: Grouping, room: Document) -> Any:
    """What of ``room`` the report of ``grouping`` reads, as one hashable value.

    - status: :func:`status_facts`;
    - source: ``ABSENT`` without a ``source`` field, else the pair of
      :func:`field` ``source.type`` and ``source.alias``, each :func:`freeze`-d (``ABSENT``
      when missing);
    - department: the :func:`freeze`-d ``departmentId`` (``ABSENT`` when missing);
    - tags: the :func:`freeze`-d ``tags`` (``ABSENT`` when missing), an array's elements
      sorted in BSON order;
    - agent: :func:`served_agent`; ``None`` without a ``servedBy`` field, and
      ``(NO_AGENT, servedBy._id)`` (``None`` when missing) for a ``servedBy`` naming no agent.
    """
    return _RAW_KEYS[grouping](room)


def rows_of(grouping: Grouping, key: Any, mode: TotalMode) -> Placement:
    """Where a room whose :func:`raw_key` is ``key`` counts in ``grouping``'s report.

    The rows as ``((row key, times), …)`` (a tag repeated in a room counts twice in
    upstream's reading; an empty tuple is nowhere), or ``UNSPECIFIED``. This project's
    reading places every room once (by-tags: once in each distinct string tag); upstream's
    drops and overlaps as its aggregations do (docs/behaviour.md#the-reports).
    """
    return _ROWS[grouping](key, mode)


def department_names_of(keys: Iterable[Any], names: Mapping[str, Any]) -> dict[Any, Any]:
    """The name each by-department key names, from ``names`` (department id -> stored name).

    A key is a department id, or a :func:`freeze`-d ``departmentId`` of upstream's reading:
    an id names its department, a tuple (an array, which ``$lookup`` matches by its
    elements) what its first element naming a department names, anything else nothing.
    Keys that name nothing are left out.
    """
    found: dict[Any, Any] = {}
    for key in keys:
        if isinstance(key, tuple):
            named = next((item for item in key if isinstance(item, str) and item in names), None)
            if named is not None:
                found[key] = names[named]
        elif isinstance(key, str) and key in names:
            found[key] = names[key]
    return found
