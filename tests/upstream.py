"""Upstream's aggregations of the Reports page, restated in Python from its source.

An oracle for the Rocket.Chat reading, written apart from the library's own rules
(``convstats_adapters.documents``): each function follows one aggregation of
``LivechatRoomsRawEE`` (``getConversationsByStatus`` …) stage by stage, with MongoDB's
semantics for field paths through arrays, truthiness in ``$cond``, equality in ``$group``
and ``$eq``, ``$lookup`` and ``$unwind``. Where upstream's order is arbitrary (ties of its
``$sort``, the order ``$lookup`` returns documents in) the tests compare rows as multisets.
It takes the rooms a report counts (livechat rooms of the window the caller may see).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from bson import ObjectId

MISSING: Any = object()
Room = dict[str, Any]


def path(document: Any, dotted: str) -> Any:
    """``$a.b``: through documents, and through an array to the ``b`` of its documents."""
    value = document
    for name in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(name, MISSING)
        elif isinstance(value, list):
            value = [item[name] for item in value if isinstance(item, dict) and name in item]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def truthy(value: Any) -> bool:
    """How ``$cond``, ``$and`` and ``$or`` read a value."""
    if value is MISSING or value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    return True


def is_true(value: Any) -> bool:
    """``$eq: [value, true]``: only the boolean true equals it (1 is another type)."""
    return value is True


def if_null(value: Any, replacement: Any) -> Any:
    return replacement if value is MISSING or value is None else value


def key(value: Any) -> Any:
    """A value as ``$group`` tells values apart: by type, numbers by their value.

    One deliberate exception, the library's (docs/behaviour.md#the-reports): an ObjectId is
    its hexadecimal string, as an export writes it, so a department stored under an ObjectId
    is found by a room that names it by that string.
    """
    if isinstance(value, ObjectId):
        value = str(value)
    if value is MISSING or value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(key(item) for item in value))
    if isinstance(value, dict):
        return ("document", tuple((name, key(item)) for name, item in value.items()))
    if isinstance(value, datetime):
        return ("date", value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return ("other", repr(value))


def _rows(counts: Iterable[tuple[Any, int]]) -> list[dict[str, Any]]:
    return [
        {"value": value} if label is MISSING else {"label": label, "value": value}
        for label, value in counts
    ]


def by_status(rooms: list[Room]) -> dict[str, Any]:
    """getConversationsByStatus: four $cond sums over the rooms, sorted by value."""
    if not rooms:
        return {"data": [], "total": 0}
    opened = closed = queued = held = 0
    for room in rooms:
        open_ = is_true(room.get("open", MISSING))
        on_hold = room.get("onHold", MISSING)
        served_by = room.get("servedBy", MISSING)
        if (
            open_
            and (not truthy(on_hold) or on_hold is False)
            and truthy(if_null(served_by, False))
        ):
            opened += 1
        if truthy(if_null(path(room, "metrics.chatDuration"), False)):
            closed += 1
        if open_ and if_null(served_by, None) is None:
            queued += 1
        if is_true(on_hold):
            held += 1
    data = [("Open", opened), ("Closed", closed), ("Queued", queued), ("On_Hold", held)]
    data.sort(key=lambda row: -row[1])
    return {"total": len(rooms), "data": _rows(data)}


def by_source(rooms: list[Room]) -> dict[str, Any]:
    """getConversationsBySource: rooms with a source, by {type, alias}; label $ifNull."""
    groups: dict[Any, list[Any]] = {}
    for room in rooms:
        if "source" not in room:
            continue
        kind, alias = path(room, "source.type"), path(room, "source.alias")
        # A field path that finds nothing leaves its field out of the group key.
        group = groups.setdefault(
            (
                "missing" if kind is MISSING else key(kind),
                "missing" if alias is MISSING else key(alias),
            ),
            [kind, alias, 0],
        )
        group[2] += 1
    counts = [(if_null(alias, kind), value) for kind, alias, value in groups.values()]
    counts.sort(key=lambda row: -row[1])
    return {"total": sum(value for _, value in counts), "data": _rows(counts)}


def by_department(rooms: list[Room], departments: list[dict[str, Any]]) -> dict[str, Any]:
    """getConversationsByDepartment: by departmentId, $lookup, then by the first name.

    ``$lookup`` returns the matched departments in an order of its own; here an array is
    read in its elements' order, as the library chose.
    """
    groups: dict[Any, list[Any]] = {}
    for room in rooms:
        if "departmentId" not in room:
            continue
        groups.setdefault(key(room["departmentId"]), [room["departmentId"], 0])[1] += 1
    by_name: dict[Any, list[Any]] = {}
    for department_id, value in groups.values():
        wanted = department_id if isinstance(department_id, list) else [department_id]
        matched = [
            department
            for item in wanted
            for department in departments
            if item is not None and key(department.get("_id", MISSING)) == key(item)
        ]
        names = [department["name"] for department in matched if "name" in department]
        name = names[0] if names else MISSING
        if name is MISSING or name is None:
            continue  # the $match on _id: {$ne: null}
        by_name.setdefault(key(name), [name, 0])[1] += value
    counts = [(name, value) for name, value in by_name.values()]
    unspecified = sum(1 for room in rooms if "departmentId" not in room)
    return {
        "total": sum(value for _, value in counts),
        "data": _rows(counts),
        "unspecified": unspecified,
    }


def by_agent(rooms: list[Room], users: list[dict[str, Any]]) -> dict[str, Any]:
    """getConversationsByAgents: rooms with a servedBy, by servedBy._id, $lookup, name.

    The label is ``$ifNull: ['$agent.name', '$_id']``: the user's name unless missing or
    null, else the id (null for a room whose servedBy has no _id). The library names agents
    by string names only, and reads an ObjectId as its string (the tests' users have string
    or null names).
    """
    groups: dict[Any, list[Any]] = {}
    for room in rooms:
        if "servedBy" not in room:
            continue
        agent = path(room, "servedBy._id")
        agent = None if agent is MISSING else agent
        groups.setdefault(key(agent), [agent, 0])[1] += 1
    rows = []
    for agent, value in groups.values():
        found = [user for user in users if agent is not None and key(user.get("_id")) == key(agent)]
        name = found[0].get("name") if found else None
        rows.append((agent if name is None else name, value))
    unspecified = sum(1 for room in rooms if "servedBy" not in room)
    return {
        "total": sum(value for _, value in rows),
        "data": _rows(rows),
        "unspecified": unspecified,
    }


def _holds_empty_array(value: Any) -> bool:
    """``{tags: {$eq: []}}``: the value is [] or an array holding []."""
    return isinstance(value, list) and (value == [] or any(item == [] for item in value))


def by_tags(rooms: list[Room]) -> dict[str, Any]:
    """getConversationsByTags: rooms with tags other than [], by $tags, $unwind, by tag."""
    counts: Counter[Any] = Counter()
    labels: dict[Any, Any] = {}
    for room in rooms:
        if "tags" not in room or _holds_empty_array(room["tags"]):
            continue
        tags = room["tags"]
        items = tags if isinstance(tags, list) else ([] if tags is None else [tags])
        for item in items:
            counts[key(item)] += 1
            labels.setdefault(key(item), item)
    unspecified = sum(1 for room in rooms if "tags" not in room or _holds_empty_array(room["tags"]))
    rows = [(labels[tag], value) for tag, value in counts.items()]
    return {"total": sum(counts.values()), "data": _rows(rows), "unspecified": unspecified}


def as_json(value: Any) -> Any:
    """A stored value as Rocket.Chat's JSON writes it (integral doubles as integers)."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {name: as_json(item) for name, item in value.items()}
    return value


def multiset(data: list[dict[str, Any]]) -> list[str]:
    """The rows of a body in a canonical order, to compare rows whose order is arbitrary."""
    return sorted(json.dumps(as_json(row), sort_keys=True) for row in data)
