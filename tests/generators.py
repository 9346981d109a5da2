"""Hypothesis generators of Rocket.Chat data, shaped like real workspaces, messy cases included.

Dates are UTC with millisecond precision, as BSON keeps them. Ids come from small pools so
that agents, departments and units collide and overlap the way real workspaces do.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bson import ObjectId
from hypothesis import strategies as st

from convstats.model import TimeWindow, Visibility
from convstats.sorting import Sort, SortField

UTC = timezone.utc
#: Rooms are created in [EPOCH, EPOCH + SPAN); windows reach a little beyond on both sides.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=60)

AGENTS = tuple(f"agent-{n}" for n in range(6))
#: Agents whose ids are ObjectIds in some documents: an ObjectId id is its 24-hex string.
OBJECT_ID_AGENTS = ("65f1a0000000000000000001", "65f1a0000000000000000002")
OTHER_USERS = ("manager-1", "monitor-1", "monitor-2", "nobody-1")
UNITS = ("unit-1", "unit-2")
DEPARTMENTS = ("dep-1", "dep-2", "dep-3", "dep-4")
NAMES = ("Ana", "ana", "Bo", "Zed", "Ünal", "", "Ana")  # duplicates and case on purpose
TAGS = ("vip", "bug", "Vip", "refund")
#: A field left out of a document.
MISSING = "<missing>"
ROLES = ("admin", "livechat-manager", "livechat-monitor", "livechat-agent", "user", "bot")


def instants(
    lower: datetime = EPOCH, upper: datetime = EPOCH + SPAN
) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes at millisecond precision in ``[lower, upper]``."""
    span_ms = int((upper - lower) / timedelta(milliseconds=1))
    return st.integers(0, span_ms).map(lambda ms: lower + timedelta(milliseconds=ms))


def _served_by() -> st.SearchStrategy[Any]:
    agent = st.sampled_from(AGENTS)
    return st.one_of(
        st.fixed_dictionaries({"_id": agent, "username": st.sampled_from(("ana", "bo", "old"))}),
        st.just(None),
        st.fixed_dictionaries({"username": st.just("ghost")}),  # no _id
        st.fixed_dictionaries({"_id": st.integers(0, 3)}),  # an id that is not a string
        st.fixed_dictionaries({"_id": st.sampled_from(OBJECT_ID_AGENTS).map(ObjectId)}),
        st.just("agent-0"),  # not an object at all
    )


def _sources() -> st.SearchStrategy[Any]:
    kinds = st.sampled_from(("widget", "email", "app", "sms"))
    return st.one_of(
        st.fixed_dictionaries({"type": kinds}),
        st.fixed_dictionaries({"type": kinds, "alias": st.sampled_from(("WhatsApp", "Kiosk"))}),
        st.fixed_dictionaries({"alias": st.just("Kiosk")}),  # no type
        st.fixed_dictionaries({"type": kinds, "alias": st.none()}),  # null is not missing
        st.sampled_from(
            (
                None,
                {},
                {"type": None},
                {"type": 5},
                {"type": ["widget"]},
                [{"type": "widget"}],  # an array: its field paths are arrays
                "widget",
            )
        ),
    )


def _tags() -> st.SearchStrategy[Any]:
    tag = st.sampled_from(TAGS)
    return st.one_of(
        st.lists(tag, max_size=3),  # repeats included
        tag,  # a scalar is one element
        st.sampled_from(
            (None, [None], [5, "vip"], [[]], ["vip", []], [["vip"]], [{"n": 1}], [True, 1])
        ),
    )


def _states() -> st.SearchStrategy[dict[str, Any]]:
    """``open``, ``onHold`` and ``metrics`` of every type, each sometimes missing."""
    odd = st.sampled_from((True, False, "true", 1, 0, None, MISSING))
    metrics = st.one_of(
        st.just(MISSING),
        st.fixed_dictionaries({"chatDuration": st.sampled_from((0, 12, 0.5, None, "", False))}),
        st.sampled_from(({}, None, [{"chatDuration": 7}], [{}], [])),
    )
    return st.fixed_dictionaries({"open": odd, "onHold": odd, "metrics": metrics}).map(
        lambda fields: {name: value for name, value in fields.items() if value != MISSING}
    )


def _ts() -> st.SearchStrategy[Any]:
    return st.one_of(
        instants(),
        instants(),
        instants().map(lambda ts: ts.replace(tzinfo=None)),  # a naive date means UTC
        instants().map(lambda ts: ts.isoformat()),  # a string is not a date
    )


@st.composite
def rooms(draw: st.DrawFn, room_id: str) -> dict[str, Any]:
    """One ``rocketchat_room`` document; optional fields are sometimes absent or odd."""
    room: dict[str, Any] = {"_id": room_id}
    t = draw(st.sampled_from(("l", "l", "l", "l", "c", "d", None, "missing")))
    if t != "missing":
        room["t"] = t
    if draw(st.integers(0, 19)):
        room["ts"] = draw(_ts())
    if draw(st.booleans()):
        room["servedBy"] = draw(_served_by())
    department = draw(st.sampled_from((*DEPARTMENTS, "dep-gone", "unit-1", None, 7, "missing")))
    if department != "missing":
        room["departmentId"] = department
    ancestors = draw(
        st.one_of(
            st.just("missing"),
            st.lists(st.sampled_from(UNITS), max_size=2, unique=True),
            st.sampled_from(UNITS),  # a scalar is matched as itself
        )
    )
    if ancestors != "missing":
        room["departmentAncestors"] = ancestors
    room.update(draw(_states()))
    if draw(st.integers(0, 3)):
        room["source"] = draw(_sources())
    if draw(st.booleans()):
        room["tags"] = draw(_tags())
    return room


@st.composite
def users(draw: st.DrawFn) -> list[dict[str, Any]]:
    """``users`` documents: some agents deleted, names missing, null, empty or shared."""
    documents = []
    for user_id in AGENTS + OTHER_USERS + OBJECT_ID_AGENTS:
        if draw(st.integers(0, 4)) == 0:
            continue  # a deleted user
        stored_id: Any = user_id
        if user_id in OBJECT_ID_AGENTS and draw(st.booleans()):
            stored_id = ObjectId(user_id)
        user: dict[str, Any] = {"_id": stored_id, "username": user_id.replace("-", "")}
        name = draw(st.one_of(st.sampled_from(NAMES), st.none(), st.just("missing")))
        if name != "missing":
            user["name"] = name
        user["roles"] = draw(st.lists(st.sampled_from(ROLES), max_size=2, unique=True))
        user["active"] = draw(st.booleans())
        documents.append(user)
    return documents


@st.composite
def workspaces(draw: st.DrawFn, max_rooms: int = 40) -> dict[str, list[dict[str, Any]]]:
    """A whole workspace: rooms, users, permissions, units, departments and their people."""
    count = draw(st.integers(0, max_rooms))
    departments: list[dict[str, Any]] = []
    if draw(st.booleans()):
        # MongoDB matches {type: "u"} on an array holding "u" too: such a document is a unit.
        kinds = st.sampled_from(("u", ["u"], ["x", "u"]))
        departments += [{"_id": unit, "name": unit, "type": draw(kinds)} for unit in UNITS]
    for department in DEPARTMENTS:
        ancestors = draw(st.lists(st.sampled_from(UNITS), max_size=2, unique=True))
        document: dict[str, Any] = {"_id": department, "ancestors": ancestors}
        # Two departments of one name, one without a name, one named null or not a string.
        name = draw(st.sampled_from((department, department, "Support", MISSING, None, 7)))
        if name != MISSING:
            document["name"] = name
        departments.append(document)
    people = AGENTS + OTHER_USERS
    collections: dict[str, list[dict[str, Any]]] = {
        "rocketchat_room": [draw(rooms(f"room-{n}")) for n in range(count)],
        "users": draw(users()),
        "rocketchat_livechat_department": departments,
        "rocketchat_livechat_unit_monitors": [
            {"_id": f"um-{n}", "monitorId": monitor, "unitId": unit}
            for n, (monitor, unit) in enumerate(
                draw(
                    st.lists(st.tuples(st.sampled_from(people), st.sampled_from(UNITS)), max_size=4)
                )
            )
        ],
        "rocketchat_livechat_department_agents": [
            {"_id": f"da-{n}", "agentId": agent, "departmentId": department}
            for n, (agent, department) in enumerate(
                draw(
                    st.lists(
                        st.tuples(st.sampled_from(people), st.sampled_from(DEPARTMENTS)),
                        max_size=4,
                    )
                )
            )
        ],
    }
    if draw(st.booleans()):
        roles = draw(st.lists(st.sampled_from(ROLES), max_size=3, unique=True))
        collections["rocketchat_permissions"] = [{"_id": "view-livechat-reports", "roles": roles}]
    return collections


@st.composite
def counted_workspaces(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """A workspace whose rooms are all livechat rooms of :data:`SPAN`: many rooms per report."""
    collections = draw(workspaces(max_rooms=30))
    for room in collections["rocketchat_room"]:
        room["t"] = "l"
        room["ts"] = draw(instants())
    return collections


#: A window holding every room of :func:`counted_workspaces`.
EVERY_ROOM = TimeWindow(EPOCH, EPOCH + SPAN + timedelta(milliseconds=1))


def windows() -> st.SearchStrategy[TimeWindow]:
    """Windows around the rooms' span, empty ones (start == end) included."""
    reach = timedelta(days=3)
    return st.builds(
        lambda start, length: TimeWindow(start, start + length),
        instants(EPOCH - reach, EPOCH + SPAN),
        st.one_of(
            st.just(timedelta(0)),
            st.integers(0, 70 * 86_400_000).map(lambda ms: timedelta(milliseconds=ms)),
        ),
    )


def visibilities() -> st.SearchStrategy[Visibility]:
    """Unrestricted, or restricted to some units and departments (rooms without one or not)."""
    restricted = st.builds(
        Visibility,
        restricted=st.just(True),
        unit_ids=st.frozensets(st.sampled_from(UNITS)),
        department_ids=st.frozensets(st.sampled_from((*DEPARTMENTS, "unit-1"))),
        rooms_without_department=st.booleans(),
    )
    return st.one_of(st.just(Visibility.everything()), restricted)


def sorts() -> st.SearchStrategy[Sort]:
    """Any valid sort: some of the fields in any order, each ascending or descending."""
    return st.lists(
        st.tuples(st.sampled_from(SortField), st.sampled_from((1, -1))),
        max_size=3,
        unique_by=lambda key: key[0],
    ).map(lambda keys: Sort(tuple(keys)))


def sort_parameters() -> st.SearchStrategy[str]:
    """Valid ``sort`` query strings, aliases included."""
    names = {
        SortField.LABEL: ("name", "label"),
        SortField.VALUE: ("total", "value"),
        SortField.AGENT_ID: ("_id",),
    }
    return sorts().flatmap(
        lambda sort: st.tuples(*(st.sampled_from(names[field]) for field, _ in sort.keys)).map(
            lambda keys: (
                "{"
                + ", ".join(f'"{key}": {d}' for key, (_, d) in zip(keys, sort.keys, strict=True))
                + "}"
            )
        )
    )
