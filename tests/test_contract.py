"""The store contract: every adapter gives the same counts, names, users and scopes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bson import ObjectId

from convstats import (
    Conversations,
    ConversationsByAgent,
    ConversationsByAgentEndpoint,
    Grouping,
    MonitorRule,
    RocketChatAuthority,
    TimeWindow,
    TotalMode,
    Visibility,
)
from convstats.authz import hash_login_token
from convstats.http import report_body
from convstats.model import UserRecord
from convstats.ports import Directory, RoomStore
from tests.builders import by_agent, room, served
from tests.builders import named as names_of

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


WORKSPACE: dict[str, list[dict[str, Any]]] = {
    "rocketchat_room": [
        room("r1", at(1), servedBy=served("ana"), departmentId="sales", departmentAncestors=["eu"]),
        room("r2", at(2), servedBy=served("ana"), departmentId="support", open=True),
        room("r3", at(3), servedBy=served("bo"), departmentId="support", onHold=True),
        room("r4", at(4), servedBy=served("twin-1")),
        room(
            "r5", at(5), servedBy=served("twin-2"), departmentId="sales", departmentAncestors=["eu"]
        ),
        room("r6", at(6), servedBy=served("gone")),  # the agent's user was deleted
        room("r7", at(7), servedBy=served("nameless")),
        room("r8", at(8)),  # never taken
        room("r9", at(9), servedBy=None, departmentId="support"),  # upstream edge: null servedBy
        room("r10", at(10), servedBy={"username": "stale"}, departmentId="sales"),  # no _id
        room("r11", at(11), servedBy=served("empty")),
        {"_id": "r12", "t": "c", "ts": at(12), "servedBy": served("ana")},  # not livechat
        {"_id": "r13", "ts": at(13), "servedBy": served("ana")},  # no type
        room("r14", at(-1), servedBy=served("ana")),  # before the window
        room("r15", at(48), servedBy=served("ana")),  # exactly at the end: excluded
        {"_id": "r16", "t": "l", "ts": "2024-03-01T05:00:00Z", "servedBy": served("bo")},
        room("r17", at(0), servedBy=served("bo"), departmentId="sales"),  # exactly at the start
    ],
    "users": [
        {"_id": "ana", "name": "Ana", "username": "ana", "roles": ["livechat-agent"]},
        {"_id": "bo", "name": "bo", "username": "bo", "roles": ["livechat-agent"], "active": False},
        {"_id": "twin-1", "name": "Sam", "roles": ["livechat-agent"]},
        {"_id": "twin-2", "name": "Sam", "roles": ["bot"]},
        {"_id": "nameless", "name": None, "roles": ["livechat-agent"]},
        {"_id": "empty", "name": "", "roles": ["livechat-agent"]},
        {"_id": "boss", "name": "Boss", "roles": ["admin"]},
        {"_id": "lead", "name": "Lead", "roles": ["livechat-manager"]},
        {"_id": "mon", "name": "Mon", "roles": ["livechat-monitor"]},
        {"_id": "plain", "name": "Plain", "roles": ["user"]},
    ],
    "rocketchat_livechat_department": [
        {"_id": "eu", "name": "Europe", "type": "u"},
        {"_id": "sales", "name": "Sales", "ancestors": ["eu"]},
        {"_id": "support", "name": "Support", "ancestors": []},
    ],
    "rocketchat_livechat_unit_monitors": [{"_id": "m1", "monitorId": "mon", "unitId": "eu"}],
    "rocketchat_livechat_department_agents": [],
}

WINDOW = TimeWindow(T0, T0 + timedelta(days=2))


def test_adapters_conform_to_the_ports(workspace):
    """Every adapter is both a RoomStore and a Directory."""
    store = workspace(WORKSPACE)
    assert isinstance(store, RoomStore)
    assert isinstance(store, Directory)


def test_counts_follow_the_room_rules(workspace):
    """Only livechat rooms with a date ts inside the half-open window count, per servedBy._id."""
    counts = by_agent(workspace(WORKSPACE), WINDOW, Visibility.everything())
    assert dict(counts.per_agent) == {
        "ana": 2,
        "bo": 2,
        "twin-1": 1,
        "twin-2": 1,
        "gone": 1,
        "nameless": 1,
        "empty": 1,
    }
    assert counts.unspecified == 3  # r8 (no servedBy), r9 (null), r10 (no _id)


def test_names_are_strings_only(workspace):
    """agent_names answers string names, the empty one included, and nothing for others."""
    asked = ["ana", "gone", "nameless", "empty", "twin-2"]
    names = workspace(WORKSPACE).agent_names(asked)
    assert names_of(names, asked) == {"ana": "Ana", "empty": "", "twin-2": "Sam"}


def test_report_labels_and_default_order(workspace):
    """Labels are names else ids, twins stay two rows, and rows sort by label code point."""
    report = ConversationsByAgent(store=workspace(WORKSPACE)).report(WINDOW)
    assert [(row.label, row.agent_id, row.value) for row in report.rows] == [
        ("", "empty", 1),
        ("Ana", "ana", 2),
        ("Sam", "twin-1", 1),
        ("Sam", "twin-2", 1),
        ("bo", "bo", 2),
        ("gone", "gone", 1),
        ("nameless", "nameless", 1),
    ]
    assert report.unspecified == 3
    assert report.total == 12


def test_rocketchat_total_mode(workspace):
    """In Rocket.Chat compatibility mode total leaves the unassigned conversations out.

    Upstream's unassigned are the rooms without a servedBy field (r8); a servedBy that names
    no agent (r9's null, r10's without _id) is one more row, keyed and labelled null.
    """
    reports = ConversationsByAgent(store=workspace(WORKSPACE), total_mode=TotalMode.ROCKETCHAT)
    body = report_body(reports.report(WINDOW))
    assert {"label": None, "value": 2} in body["data"]
    assert body["total"] == 11
    assert body["unspecified"] == 1


def test_directory_reads_users_and_permissions(workspace):
    """Users come back with their string roles; absent permission documents are None."""
    store = workspace(WORKSPACE)
    user = store.get_user("bo")
    assert user is not None
    assert user.roles == frozenset({"livechat-agent"})
    assert user.name == "bo"
    assert store.get_user("nobody") is None
    assert store.permission_roles("view-livechat-reports") is None
    assert store.has_units()
    assert store.monitored_units("mon") == frozenset({"eu"})
    assert store.agent_departments("mon") == frozenset()
    assert store.departments_under(["eu"], include_own=False) == frozenset({"sales"})
    assert store.departments_under(["eu"], include_own=True) == frozenset({"sales", "eu"})


def test_permission_override_is_read(workspace):
    """A rocketchat_permissions document replaces the default grant."""
    permission = {"_id": "view-livechat-reports", "roles": ["user"]}
    data = {**WORKSPACE, "rocketchat_permissions": [permission]}
    assert workspace(data).permission_roles("view-livechat-reports") == frozenset({"user"})


@pytest.mark.parametrize(
    ("rule", "expected_rows", "expected_unspecified"),
    [
        # current: rooms of Sales (under unit eu) and rooms without a department
        (
            MonitorRule.CURRENT,
            {"ana": 1, "bo": 1, "twin-1": 1, "twin-2": 1, "gone": 1, "nameless": 1, "empty": 1},
            2,
        ),
        # legacy: rooms of Sales only
        (MonitorRule.LEGACY, {"ana": 1, "bo": 1, "twin-2": 1}, 1),
    ],
)
def test_monitor_scope(workspace, rule, expected_rows, expected_unspecified):
    """A monitor sees the rooms of the units it monitors, under the chosen rule."""
    store = workspace(WORKSPACE)
    endpoint = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store),
        authority=RocketChatAuthority(directory=store, monitor_rule=rule),
    )
    params = {"start": "2024-03-01T00:00:00Z", "end": "2024-03-03T00:00:00Z", "sort": '{"_id": 1}'}
    response = endpoint.handle(params, "mon")
    assert response.status == 200
    labels = {"ana": "Ana", "bo": "bo", "twin-1": "Sam", "twin-2": "Sam", "empty": ""}
    assert response.body["data"] == [
        {"label": labels.get(agent, agent), "value": value}
        for agent, value in sorted(expected_rows.items())
    ]
    assert response.body["unspecified"] == expected_unspecified


@pytest.mark.parametrize("user", ["boss", "lead"])
def test_admins_and_managers_see_everything(workspace, user):
    """Admins and managers are never restricted, units or not."""
    store = workspace(WORKSPACE)
    endpoint = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store), authority=RocketChatAuthority(directory=store)
    )
    response = endpoint.handle({"start": "2024-03-01", "end": "2024-03-03"}, user)
    assert response.status == 200
    assert response.body["total"] == 12


def test_non_members_are_refused(workspace):
    """A user without a granted role gets upstream's 403, an unknown one its 401."""
    store = workspace(WORKSPACE)
    endpoint = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store), authority=RocketChatAuthority(directory=store)
    )
    params = {"start": "2024-03-01", "end": "2024-03-03"}
    assert endpoint.handle(params, "plain").status == 403
    assert endpoint.handle(params, "stranger").status == 401


def test_an_object_id_agent_is_its_hexadecimal_string(workspace):
    """An agent id stored as an ObjectId counts, and is labelled, as its 24-hex string."""
    agent, named = ObjectId("65f1a0000000000000000001"), ObjectId("65f1a0000000000000000002")
    store = workspace(
        {
            "rocketchat_room": [
                room("r1", at(1), servedBy={"_id": agent}),
                room("r2", at(2), servedBy={"_id": named}),
                room("r3", at(3), servedBy={"_id": str(named)}),
            ],
            "users": [{"_id": str(agent), "name": "By string"}, {"_id": named, "name": "By id"}],
        }
    )
    counts = by_agent(store, WINDOW, Visibility.everything())
    assert counts.per_agent == {str(agent): 1, str(named): 2}
    assert counts.unspecified == 0
    asked = [str(agent), str(named)]
    assert names_of(store.agent_names(asked), asked) == {
        str(agent): "By string",
        str(named): "By id",
    }
    assert store.get_user(str(named)) is not None


def test_an_object_id_user_is_found_by_its_lower_case_hexadecimal_string_only(workspace):
    """A user stored under an ObjectId signs in by its lower-case 24-hex id, in every store."""
    user = ObjectId("65f1a00000000000000000ab")
    store = workspace({"rocketchat_room": [], "users": [{"_id": user, "roles": ["admin"]}]})
    assert store.get_user(str(user)) is not None
    assert store.get_user(str(user).upper()) is None


UNIT_ID = ObjectId("65f1b0000000000000000001")
SALES_ID = ObjectId("65f1b0000000000000000002")


def test_object_id_departments_units_and_ancestors_are_their_hexadecimal_strings(workspace):
    """A monitor of an ObjectId unit sees alike whether ids are ObjectIds or an export's strings."""
    unit, sales = str(UNIT_ID), str(SALES_ID)
    as_ids = {
        "rocketchat_room": [
            room("r1", at(1), "ana", departmentId=SALES_ID, departmentAncestors=[UNIT_ID]),
            room("r2", at(2), "ana", departmentId=SALES_ID),
            room("r3", at(3), "bo", departmentId=sales, departmentAncestors=unit),
            room("r4", at(4), "bo", departmentId="other"),
        ],
        "users": WORKSPACE["users"],
        "rocketchat_livechat_department": [
            {"_id": UNIT_ID, "name": "Unit", "type": "u"},
            {"_id": SALES_ID, "name": "Sales", "ancestors": [UNIT_ID]},
            {"_id": "other", "name": "Other", "ancestors": []},
        ],
        "rocketchat_livechat_unit_monitors": [{"_id": "m1", "monitorId": "mon", "unitId": UNIT_ID}],
    }
    for data in (as_ids, _as_strings(as_ids)):
        store = workspace(data)
        authority = RocketChatAuthority(directory=store)
        visibility = authority.visibility(authority.authenticate("mon"))
        assert visibility.unit_ids == {unit}
        assert visibility.department_ids == {sales, unit}  # the current rule: the unit too
        counts = by_agent(store, WINDOW, visibility)
        assert (dict(counts.per_agent), counts.unspecified) == ({"ana": 2, "bo": 1}, 0)
        report = Conversations(store=store, grouping=Grouping.DEPARTMENT).report(WINDOW)
        assert [(row.department_id, row.label, row.value) for row in report.rows] == [
            ("other", "Other", 1),
            (sales, "Sales", 3),
        ]


def _as_strings(value: Any) -> Any:
    """``value`` with every ObjectId replaced by its hexadecimal string, as an export has it."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {name: _as_strings(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_strings(item) for item in value]
    return value


@pytest.mark.parametrize("kind", ["u", ["u"], ["x", "u"]])
def test_a_unit_is_matched_as_mongodb_matches_its_type(workspace, kind):
    """A department whose type is "u", or an array holding it, is a unit and scopes a monitor."""
    data = {
        **WORKSPACE,
        "rocketchat_livechat_department": [
            {"_id": "eu", "name": "Europe", "type": kind},
            {"_id": "sales", "name": "Sales", "ancestors": ["eu"]},
        ],
    }
    store = workspace(data)
    assert store.has_units()
    reports = ConversationsByAgent(store=store)
    endpoint = ConversationsByAgentEndpoint(
        reports=reports, authority=RocketChatAuthority(directory=store)
    )
    monitor = endpoint.handle({"start": "2024-03-01", "end": "2024-03-03"}, "mon").body
    everything = endpoint.handle({"start": "2024-03-01", "end": "2024-03-03"}, "boss").body
    assert monitor["total"] < everything["total"]


def test_no_unit_without_the_type(workspace):
    """Departments whose type is not "u" (or absent, or a nested array) are no units."""
    store = workspace(
        {
            "rocketchat_livechat_department": [
                {"_id": "a", "type": "d"},
                {"_id": "b", "type": [["u"]]},
                {"_id": "c"},
            ]
        }
    )
    assert not store.has_units()


def _endpoint(store, rule=MonitorRule.CURRENT):
    return ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store),
        authority=RocketChatAuthority(directory=store, monitor_rule=rule),
    )


TWO_DAYS = {"start": "2024-03-01T00:00:00Z", "end": "2024-03-03T00:00:00Z"}


def test_a_null_department_is_a_department_field(workspace):
    """A room with departmentId null reaches a monitor only through its ancestors."""
    data = {
        **WORKSPACE,
        "rocketchat_room": [
            *WORKSPACE["rocketchat_room"],
            room("null", at(20), "ana", departmentId=None),
            room("null-under-eu", at(21), "bo", departmentId=None, departmentAncestors=["eu"]),
        ],
    }
    before = _endpoint(workspace(WORKSPACE)).handle(TWO_DAYS, "mon").body
    after = _endpoint(workspace(data)).handle(TWO_DAYS, "mon").body
    assert after["total"] == before["total"] + 1
    rows = {row["label"]: row["value"] for row in after["data"]}
    assert rows["bo"] == {row["label"]: row["value"] for row in before["data"]}["bo"] + 1
    everything = _endpoint(workspace(data)).handle(TWO_DAYS, "boss").body
    assert everything["total"] == 14


def test_an_agent_holding_the_permission_sees_its_departments(workspace):
    """Under the current rule an agent granted the report sees its departments' rooms only."""
    data = {
        **WORKSPACE,
        "rocketchat_permissions": [
            {
                "_id": "view-livechat-reports",
                "roles": ["admin", "livechat-manager", "livechat-monitor", "livechat-agent"],
            }
        ],
        "rocketchat_livechat_department_agents": [{"agentId": "ana", "departmentId": "support"}],
    }
    store = workspace(data)
    current = _endpoint(store).handle({**TWO_DAYS, "sort": '{"_id": 1}'}, "ana").body
    # support's rooms (r2, r3, r9) and the rooms without a department (r4, r6, r7, r8, r11)
    assert current["data"] == [
        {"label": "Ana", "value": 1},
        {"label": "bo", "value": 1},
        {"label": "", "value": 1},
        {"label": "gone", "value": 1},
        {"label": "nameless", "value": 1},
        {"label": "Sam", "value": 1},
    ]
    assert current["unspecified"] == 2
    legacy = _endpoint(store, MonitorRule.LEGACY).handle(TWO_DAYS, "ana").body
    assert legacy["total"] == 12


def _token_entry(token: str, **fields: Any) -> dict[str, Any]:
    return {"hashedToken": hash_login_token(token), **fields}


TOKEN_USERS: dict[str, list[dict[str, Any]]] = {
    "users": [
        {
            "_id": "ana",
            "name": "Ana",
            "roles": ["livechat-manager"],
            "services": {
                "resume": {
                    "loginTokens": [
                        _token_entry("ana-session", when=T0),
                        _token_entry(
                            "ana-pat",
                            type="personalAccessToken",
                            name="reports",
                            createdAt=T0,
                            lastTokenPart="-pat",
                            bypassTwoFactor=False,
                        ),
                    ]
                }
            },
        },
        {
            "_id": "bo",
            "name": "Bo",
            "roles": ["admin"],
            "active": False,
            "services": {"resume": {"loginTokens": [_token_entry("bo-session", when=T0)]}},
        },
        {"_id": "cy", "name": "Cy", "roles": ["user"]},
        {"_id": ObjectId("65f1a0000000000000000009"), "name": "Oid", "roles": ["admin"]},
    ]
}
TOKEN_USERS["users"][3]["services"] = {
    "resume": {"loginTokens": [_token_entry("oid-session", when=T0)]}
}


@pytest.mark.parametrize(
    ("user_id", "token", "expected"),
    [
        ("ana", "ana-session", UserRecord("ana", ["livechat-manager"], "Ana")),
        ("ana", "ana-pat", UserRecord("ana", ["livechat-manager"], "Ana")),  # a personal token
        ("bo", "bo-session", UserRecord("bo", ["admin"], "Bo", active=False)),
        (
            "65f1a0000000000000000009",
            "oid-session",
            UserRecord("65f1a0000000000000000009", ["admin"], "Oid"),
        ),
        ("ana", "bo-session", None),  # another user's token
        ("bo", "ana-session", None),
        ("ana", "ana-sessio", None),
        ("ana", "", None),
        ("cy", "ana-session", None),  # a user without tokens
        ("nobody", "ana-session", None),
    ],
)
def test_user_with_token_matches_the_users_own_hashed_tokens(workspace, user_id, token, expected):
    """user_with_token answers the user only for one of its own tokens, deactivated or not."""
    store = workspace(TOKEN_USERS)
    assert store.user_with_token(user_id, hash_login_token(token)) == expected


def test_user_with_token_takes_the_hash_never_the_token(workspace):
    """The plain token is no hashed token: looking it up as one finds nobody."""
    store = workspace(TOKEN_USERS)
    assert store.user_with_token("ana", "ana-session") is None


@pytest.mark.parametrize(
    ("services", "matches"),
    [
        ({"resume": {"loginTokens": {"hashedToken": "H"}}}, True),  # a document, not an array
        ({"resume": {"loginTokens": [{"hashedToken": ["x", "H"]}]}}, True),  # array value
        ({"resume": [{"loginTokens": [{"hashedToken": "H"}]}]}, True),  # an array on the way
        ({"resume": {"loginTokens": [{"hashedToken": "h"}]}}, False),  # case matters
        ({"resume": {"loginTokens": [{"token": "H"}]}}, False),
        ({"resume": {"loginTokens": ["H"]}}, False),  # an entry that is no document
        ({"resume": {"loginTokens": [{"hashedToken": None}]}}, False),
        ({"resume": {"hashedToken": "H"}}, False),
        ({"resume": "H"}, False),
        ("H", False),
    ],
)
def test_user_with_token_reads_the_array_as_mongodb_matches_it(workspace, services, matches):
    """Tokens are found as MongoDB finds services.resume.loginTokens.hashedToken, odd shapes too."""
    store = workspace({"users": [{"_id": "u", "roles": ["admin"], "services": services}]})
    assert (store.user_with_token("u", "H") is not None) is matches


def test_get_user_says_whether_the_user_is_active(workspace):
    """Only active: false deactivates a user; a missing or other value leaves it active."""
    store = workspace(
        {
            "users": [
                {"_id": "off", "active": False},
                {"_id": "on", "active": True},
                {"_id": "unset"},
                {"_id": "null", "active": None},
                {"_id": "zero", "active": 0},
            ]
        }
    )
    assert [store.get_user(user).active for user in ("off", "on", "unset", "null", "zero")] == [
        False,
        True,
        True,
        True,
        True,
    ]
