"""Permissions and the visibility of restricted callers."""

from __future__ import annotations

import pytest
from hypothesis import given

from convstats import (
    ConversationsByAgent,
    MonitorRule,
    OperatorAuthority,
    RocketChatAuthority,
    Visibility,
)
from convstats.errors import AuthenticationRequired, PermissionDenied
from convstats_adapters.documents import partition
from convstats_adapters.memory import MemoryStore
from tests.builders import by_agent
from tests.generators import windows, workspaces

UNITS = [
    {"_id": "u1", "type": "u", "name": "Unit 1"},
    {"_id": "u2", "type": "u", "name": "Unit 2"},
    {"_id": "d1", "name": "D1", "ancestors": ["u1"]},
    {"_id": "d2", "name": "D2", "ancestors": ["u2"]},
    {"_id": "d3", "name": "D3"},
]


def store(**extra):
    users = [
        {"_id": "mon", "roles": ["livechat-monitor"]},
        {"_id": "mon-admin", "roles": ["livechat-monitor", "admin"]},
        {"_id": "mon-manager", "roles": ["livechat-monitor", "livechat-manager"]},
        {"_id": "agent", "roles": ["livechat-agent"]},
        {"_id": "odd", "roles": "admin"},  # not a list: no roles
    ]
    data = {
        "users": users,
        "rocketchat_livechat_department": UNITS,
        "rocketchat_livechat_unit_monitors": [{"monitorId": "mon", "unitId": "u1"}],
        "rocketchat_livechat_department_agents": [{"agentId": "mon", "departmentId": "d3"}],
        **extra,
    }
    return MemoryStore(data)


def test_unknown_or_missing_callers_are_not_authenticated():
    """No user id, or one without a users document, is a 401."""
    authority = RocketChatAuthority(directory=store())
    for user_id in (None, "ghost"):
        with pytest.raises(AuthenticationRequired):
            authority.authenticate(user_id)


def test_default_grant_and_override():
    """Monitors hold the permission by default; a permissions document replaces the grant."""
    default = RocketChatAuthority(directory=store())
    default.authorize(default.authenticate("mon"), "view-livechat-reports")
    with pytest.raises(PermissionDenied):
        default.authorize(default.authenticate("agent"), "view-livechat-reports")
    with pytest.raises(PermissionDenied):
        default.authorize(default.authenticate("odd"), "view-livechat-reports")

    overridden = RocketChatAuthority(
        directory=store(
            rocketchat_permissions=[{"_id": "view-livechat-reports", "roles": ["livechat-agent"]}]
        )
    )
    overridden.authorize(overridden.authenticate("agent"), "view-livechat-reports")
    with pytest.raises(PermissionDenied):
        overridden.authorize(overridden.authenticate("mon"), "view-livechat-reports")


def test_monitor_scope_current_rule():
    """A monitor's units are its monitored units plus its departments; D adds their members."""
    authority = RocketChatAuthority(directory=store())
    visibility = authority.visibility(authority.authenticate("mon"))
    assert visibility == Visibility(
        restricted=True,
        unit_ids={"u1", "d3"},
        department_ids={"d1", "u1", "d3"},
        rooms_without_department=True,
    )


def test_monitor_scope_legacy_rule():
    """The legacy rule keeps only departments under the units and hides department-less rooms."""
    authority = RocketChatAuthority(directory=store(), monitor_rule=MonitorRule.LEGACY)
    visibility = authority.visibility(authority.authenticate("mon"))
    assert visibility == Visibility(
        restricted=True,
        unit_ids={"u1", "d3"},
        department_ids={"d1"},
        rooms_without_department=False,
    )


@pytest.mark.parametrize("user", ["mon-admin", "mon-manager", "odd"])
def test_admins_managers_and_others_are_unrestricted(user):
    """Admins and managers, monitors or not, and callers of no restricted role see everything."""
    for rule in MonitorRule:
        authority = RocketChatAuthority(directory=store(), monitor_rule=rule)
        assert authority.visibility(authority.authenticate(user)) == Visibility.everything()


def test_an_agent_is_restricted_to_its_departments_under_the_current_rule():
    """An agent sees its departments' rooms (current rule) and everything (legacy rule)."""
    data = store(rocketchat_livechat_department_agents=[{"agentId": "agent", "departmentId": "d2"}])
    current = RocketChatAuthority(directory=data)
    assert current.visibility(current.authenticate("agent")) == Visibility(
        restricted=True,
        unit_ids={"d2"},
        department_ids={"d2"},
        rooms_without_department=True,
    )
    legacy = RocketChatAuthority(directory=data, monitor_rule=MonitorRule.LEGACY)
    assert legacy.visibility(legacy.authenticate("agent")) == Visibility.everything()


def test_no_units_means_no_restriction():
    """In a workspace without units a monitor sees everything."""
    monitor = {"_id": "mon", "roles": ["livechat-monitor"]}
    authority = RocketChatAuthority(directory=MemoryStore({"users": [monitor]}))
    assert authority.visibility(authority.authenticate("mon")) == Visibility.everything()


def test_operator_sees_everything():
    """The operator authority lets anyone in and restricts nothing."""
    authority = OperatorAuthority()
    caller = authority.authenticate(None)
    authority.authorize(caller, "view-livechat-reports")
    assert authority.visibility(caller) == Visibility.everything()


@pytest.mark.parametrize(
    ("department_id", "ancestors", "visible"),
    [
        ("d1", None, True),
        ("d2", None, False),
        ("d2", ["u1"], True),  # ancestors decide on their own
        ("d2", "u1", True),  # a scalar is matched as itself
        ("missing", None, True),  # no department field at all
        (None, None, False),  # departmentId: null is a department field, as upstream matches it
        (None, ["u1"], True),
        (7, None, False),  # an odd department id is never a member
    ],
)
def test_visibility_admits(department_id, ancestors, visible):
    """A restricted visibility admits by ancestors, by department, or by having none."""
    visibility = Visibility(restricted=True, unit_ids={"u1"}, department_ids={"d1"})
    document = {"departmentAncestors": ancestors}
    if department_id != "missing":
        document["departmentId"] = department_id
    assert visibility.admits(partition(document)) is visible


@given(workspaces(), windows())
def test_a_monitor_never_sees_more_than_a_manager(data, window):
    """Every monitor's report is, agent by agent, at most the unrestricted report."""
    memory = MemoryStore(data)
    reports = ConversationsByAgent(store=memory)
    everything = by_agent(memory, window, Visibility.everything())
    for rule in MonitorRule:
        authority = RocketChatAuthority(directory=memory, monitor_rule=rule)
        for user in data["users"]:
            if user.get("active") is False:
                continue  # a deactivated user is not signed in at all
            visibility = authority.visibility(authority.authenticate(str(user["_id"])))
            scoped = reports.report(window, visibility=visibility)
            for row in scoped.rows:
                assert row.value <= everything.per_agent[row.agent_id]
            assert scoped.unspecified <= everything.unspecified


def test_a_deactivated_user_is_not_authenticated():
    """A user whose active is false is refused as an unknown one is; a missing active is fine."""
    store = MemoryStore(
        {
            "users": [
                {"_id": "off", "roles": ["admin"], "active": False},
                {"_id": "on", "roles": ["admin"]},
            ]
        }
    )
    authority = RocketChatAuthority(directory=store)
    with pytest.raises(AuthenticationRequired):
        authority.authenticate("off")
    assert authority.authenticate("on").user_id == "on"
