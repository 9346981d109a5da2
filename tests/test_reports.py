"""The reports of the Reports page beside by-agent: by status, source, department and tags.

Every store answers them alike (the contract, on the ``workspace`` fixture), in this
project's reading and in upstream's; each difference between the two readings is pinned
on the bundled sample.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from convstats import (
    ABSENT,
    Conversations,
    ConversationsEndpoint,
    DepartmentRow,
    Grouping,
    OperatorAuthority,
    RocketChatAuthority,
    SourceRow,
    Status,
    StatusRow,
    TagRow,
    TimeWindow,
    TotalMode,
    Visibility,
)
from convstats.http import report_body
from convstats.sorting import parse_sort
from convstats_adapters.files import decode_value
from convstats_adapters.memory import MemoryStore
from tests.builders import room

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
WINDOW = TimeWindow(T0, T0 + timedelta(days=1))
OURS, UPSTREAM = TotalMode.CONVSTATS, TotalMode.ROCKETCHAT


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def served(agent: str) -> dict[str, Any]:
    return {"_id": agent, "username": agent}


WORKSPACE: dict[str, list[dict[str, Any]]] = {
    "rocketchat_room": [
        # open and served, widget, department Sales, two tags
        room(
            "r1",
            at(1),
            "ana",
            open=True,
            source={"type": "widget"},
            departmentId="sales",
            tags=["vip", "billing"],
        ),
        # closed with its duration, an app with an alias, a tag repeated
        room(
            "r2",
            at(2),
            "ana",
            source={"type": "app", "alias": "WhatsApp"},
            departmentId="help",
            metrics={"chatDuration": 120},
            tags=["bug", "bug"],
        ),
        # closed without a duration (in no status upstream), a null alias, the other "Support"
        room(
            "r3",
            at(3),
            "bo",
            source={"type": "widget", "alias": None},
            departmentId="desk",
            tags=[],
        ),
        # queued: open without an agent; no source at all; no department; no tags
        room("r4", at(4), open=True),
        # on hold
        room(
            "r5",
            at(5),
            "bo",
            open=True,
            onHold=True,
            source={"type": "email"},
            departmentId="gone",
            tags="vip",
        ),
        # reopened with its old duration (Open and Closed upstream); a null source
        room(
            "r6",
            at(6),
            "ana",
            open=True,
            metrics={"chatDuration": 5},
            source=None,
            departmentId=None,
            tags=None,
        ),
        # servedBy null and open: queued in both readings; a source without a type
        room("r7", at(7), open=True, servedBy=None, source={"alias": "Kiosk"}, tags=[5, "vip"]),
        # out of the window and not a livechat room: never counted
        room("r8", at(30), "ana", source={"type": "widget"}, tags=["vip"]),
        {"_id": "r9", "t": "c", "ts": at(1), "source": {"type": "widget"}, "tags": ["vip"]},
    ],
    "users": [
        {"_id": "ana", "name": "Ana", "roles": ["livechat-agent"]},
        {"_id": "bo", "name": "Bo", "roles": ["livechat-agent"]},
        {"_id": "lead", "name": "Lead", "roles": ["livechat-manager"]},
        {"_id": "mon", "name": "Mon", "roles": ["livechat-monitor"]},
    ],
    "rocketchat_livechat_department": [
        {"_id": "eu", "name": "Europe", "type": "u"},
        {"_id": "sales", "name": "Sales", "ancestors": ["eu"]},
        {"_id": "help", "name": "Support", "ancestors": []},
        {"_id": "desk", "name": "Support", "ancestors": []},
    ],
    "rocketchat_livechat_unit_monitors": [{"_id": "m1", "monitorId": "mon", "unitId": "eu"}],
}


def body(
    store: Any,
    grouping: Grouping,
    mode: TotalMode = OURS,
    *,
    sort: str | None = None,
    visibility: Visibility | None = None,
) -> dict[str, Any]:
    reports = Conversations(store=store, grouping=grouping, total_mode=mode)
    report = reports.report(
        WINDOW,
        sort=parse_sort(sort, reports_default(grouping)) if sort else None,
        visibility=visibility or Visibility.everything(),
    )
    return report_body(report)


def reports_default(grouping: Grouping) -> Any:
    from convstats.sorting import default_sort

    return default_sort(grouping)


def rows(response: dict[str, Any]) -> list[tuple[Any, int]]:
    return [(datum.get("label", "<none>"), datum["value"]) for datum in response["data"]]


# -- the contract, on every store --------------------------------------------------------------


def test_by_status_places_each_room_once(workspace):
    """Each room is Closed, On_Hold, Queued or Open, in that precedence, once."""
    answer = body(workspace(WORKSPACE), Grouping.STATUS)
    assert rows(answer) == [("Closed", 2), ("Open", 2), ("Queued", 2), ("On_Hold", 1)]
    assert (answer["total"], answer["unspecified"]) == (7, 0)


def test_by_status_upstream_overlaps_and_misses(workspace):
    """Upstream's buckets overlap (reopened) and miss (closed without a duration)."""
    answer = body(workspace(WORKSPACE), Grouping.STATUS, UPSTREAM)
    assert sorted(rows(answer), key=lambda row: (-row[1], row[0])) == [
        ("Closed", 2),  # r2, r6
        ("Open", 2),  # r1, r6
        ("Queued", 2),  # r4, r7
        ("On_Hold", 1),
    ]
    assert answer == {"total": 7, "data": answer["data"], "success": True}
    assert [datum["value"] for datum in answer["data"]] == [2, 2, 2, 1]


def test_by_source_keys_rows_by_string_type_and_alias(workspace):
    """The alias labels a row, else the type; no source, or neither as a string, is apart."""
    answer = body(workspace(WORKSPACE), Grouping.SOURCE)
    assert rows(answer) == [("widget", 2), ("Kiosk", 1), ("WhatsApp", 1), ("email", 1)]
    assert (answer["total"], answer["unspecified"]) == (7, 2)  # r4 (none), r6 (null)
    report = Conversations(store=workspace(WORKSPACE), grouping=Grouping.SOURCE).report(WINDOW)
    assert report.rows[0] == SourceRow(type="widget", alias=None, label="widget", value=2)
    assert SourceRow(type=None, alias="Kiosk", label="Kiosk", value=1) in report.rows


def test_by_source_upstream_keeps_a_null_alias_apart_and_drops_rooms_without_source(workspace):
    """Upstream keeps a null alias apart, gives a null source no label, drops no source."""
    answer = body(workspace(WORKSPACE), Grouping.SOURCE, UPSTREAM)
    assert sorted(rows(answer), key=str) == sorted(
        [("widget", 1), ("widget", 1), ("WhatsApp", 1), ("email", 1), ("Kiosk", 1), ("<none>", 1)],
        key=str,
    )
    assert answer["total"] == 6
    assert "unspecified" not in answer
    report = Conversations(
        store=workspace(WORKSPACE), grouping=Grouping.SOURCE, total_mode=UPSTREAM
    ).report(WINDOW)
    assert SourceRow(type=ABSENT, alias=ABSENT, label=ABSENT, value=1) in report.rows


def test_by_department_keeps_departments_apart_by_id(workspace):
    """Departments stay apart by id, a deleted one keeps its id, a null one is unspecified."""
    answer = body(workspace(WORKSPACE), Grouping.DEPARTMENT)
    assert rows(answer) == [("Sales", 1), ("Support", 1), ("Support", 1), ("gone", 1)]
    assert (answer["total"], answer["unspecified"]) == (7, 3)  # r4, r7 missing; r6 null
    report = Conversations(store=workspace(WORKSPACE), grouping=Grouping.DEPARTMENT).report(WINDOW)
    assert [row.department_id for row in report.rows] == ["sales", "desk", "help", "gone"]
    assert isinstance(report.rows[0], DepartmentRow)


def test_by_department_upstream_merges_names_and_drops_the_nameless(workspace):
    """Upstream regroups by name and drops rooms of a deleted or null department."""
    answer = body(workspace(WORKSPACE), Grouping.DEPARTMENT, UPSTREAM, sort='{"total": -1}')
    assert rows(answer) == [("Support", 2), ("Sales", 1)]
    assert (answer["total"], answer["unspecified"]) == (3, 2)


def test_by_tags_counts_each_distinct_string_tag_once(workspace):
    """A room counts once in each of its string tags; without one it is apart."""
    answer = body(workspace(WORKSPACE), Grouping.TAGS, sort='{"total": -1, "name": 1}')
    assert rows(answer) == [("vip", 3), ("billing", 1), ("bug", 1)]
    assert (answer["total"], answer["unspecified"]) == (5 + 3, 3)  # r3 [], r4, r6 null
    report = Conversations(store=workspace(WORKSPACE), grouping=Grouping.TAGS).report(WINDOW)
    assert TagRow(tag="vip", label="vip", value=3) in report.rows


def test_by_tags_upstream_counts_elements(workspace):
    """Upstream counts every element, a repeated one twice, and tags: null nowhere."""
    answer = body(workspace(WORKSPACE), Grouping.TAGS, UPSTREAM, sort='{"total": -1}')
    assert sorted(rows(answer), key=str) == sorted(
        [("vip", 3), ("bug", 2), ("billing", 1), (5, 1)], key=str
    )
    assert (answer["total"], answer["unspecified"]) == (7, 2)  # r3 [], r4 missing


def test_the_reports_see_what_the_caller_sees(workspace):
    """A monitor's reports count the rooms of its unit and those without a department."""
    store = workspace(WORKSPACE)
    authority = RocketChatAuthority(directory=store)
    visibility = authority.visibility(authority.authenticate("mon"))
    assert rows(body(store, Grouping.DEPARTMENT, visibility=visibility)) == [("Sales", 1)]
    status = body(store, Grouping.STATUS, visibility=visibility)
    assert status["total"] == 3  # r1 (Sales), r4 and r7 (no department)


def test_by_status_and_by_source_take_a_sort_and_ignore_it(workspace):
    """Even an invalid sort is no 400 for them, as upstream never parses it."""
    store = workspace(WORKSPACE)
    for grouping in (Grouping.STATUS, Grouping.SOURCE):
        endpoint = ConversationsEndpoint(
            reports=Conversations(store=store, grouping=grouping),
            authority=OperatorAuthority(),
        )
        plain = endpoint.handle({"start": "2024-03-01", "end": "2024-03-02"}, None)
        sorted_ = endpoint.handle(
            {"start": "2024-03-01", "end": "2024-03-02", "sort": "not json"}, None
        )
        assert (plain.status, sorted_.status) == (200, 200)
        assert plain.body == sorted_.body


def test_status_rows_are_typed(workspace):
    """By-status rows carry their Status."""
    report = Conversations(store=workspace(WORKSPACE), grouping=Grouping.STATUS).report(WINDOW)
    assert report.rows[1] == StatusRow(status=Status.OPEN, label="Open", value=2)


def test_an_empty_window_has_four_zero_rows_here_and_none_upstream(workspace):
    """By-status lists the four states for an empty window; upstream's lists none."""
    store = workspace(WORKSPACE)
    empty = TimeWindow(T0 - timedelta(days=3), T0 - timedelta(days=2))
    ours = Conversations(store=store, grouping=Grouping.STATUS).report(empty)
    theirs = Conversations(store=store, grouping=Grouping.STATUS, total_mode=UPSTREAM).report(empty)
    assert [row.value for row in ours.rows] == [0, 0, 0, 0]
    assert report_body(theirs) == {"total": 0, "data": [], "success": True}


# -- each difference between the readings, pinned on the sample --------------------------------

SAMPLE = MemoryStore.from_path("examples/sample")
SPRING = TimeWindow(T0, datetime(2024, 4, 15, tzinfo=UTC))


def sample(grouping: Grouping, mode: TotalMode, sort: str | None = None) -> dict[str, Any]:
    report = Conversations(store=SAMPLE, grouping=grouping, total_mode=mode).report(
        SPRING, sort=parse_sort(sort) if sort else None
    )
    return report_body(report)


def test_sample_upstream_merges_the_two_support_departments():
    """Two departments named Support are two rows here and one row upstream."""
    ours = rows(sample(Grouping.DEPARTMENT, OURS))
    theirs = dict(rows(sample(Grouping.DEPARTMENT, UPSTREAM)))
    support = [value for label, value in ours if label == "Support"]
    assert len(support) == 2
    assert theirs["Support"] == sum(support)


def test_sample_upstream_drops_a_deleted_department():
    """The rooms of a department that no longer exists keep its id as label here only."""
    ours = dict(rows(sample(Grouping.DEPARTMENT, OURS)))
    theirs = sample(Grouping.DEPARTMENT, UPSTREAM)
    assert ours["dep-retired"] == 2
    assert "dep-retired" not in dict(rows(theirs))
    assert theirs["total"] == sum(value for _, value in rows(theirs))


def test_sample_upstream_drops_a_null_department_from_unspecified_too():
    """A room whose departmentId is null is unspecified here and nowhere upstream."""
    ours, theirs = sample(Grouping.DEPARTMENT, OURS), sample(Grouping.DEPARTMENT, UPSTREAM)
    assert ours["unspecified"] == theirs["unspecified"] + 1


def test_sample_upstream_counts_rooms_without_a_source_nowhere():
    """A room without a source is unspecified here; upstream has no unspecified at all."""
    ours, theirs = sample(Grouping.SOURCE, OURS), sample(Grouping.SOURCE, UPSTREAM)
    assert ours["unspecified"] == 2  # one without a source, one with a null source
    assert "unspecified" not in theirs
    assert ours["total"] == theirs["total"] + 1  # the null source is a row upstream


def test_sample_upstream_keeps_a_null_alias_apart_and_labels_a_null_source_with_nothing():
    """Upstream has two widget rows (alias missing, alias null) and a row without a label."""
    theirs = sample(Grouping.SOURCE, UPSTREAM)
    assert [datum["label"] for datum in theirs["data"] if "label" in datum].count("widget") == 2
    assert {"value": 1} in theirs["data"]
    ours = sample(Grouping.SOURCE, OURS)
    assert [datum["label"] for datum in ours["data"]].count("widget") == 1


def test_sample_upstream_counts_a_repeated_tag_twice():
    """The room tagged bug twice counts once here and twice upstream."""
    ours, theirs = (
        dict(rows(sample(Grouping.TAGS, OURS))),
        dict(rows(sample(Grouping.TAGS, UPSTREAM))),
    )
    assert theirs["bug"] == ours["bug"] + 1


def test_sample_upstream_tags_total_is_the_rows():
    """Here total adds the untagged rooms; upstream's is the sum of its rows."""
    ours, theirs = sample(Grouping.TAGS, OURS), sample(Grouping.TAGS, UPSTREAM)
    assert ours["total"] == sum(value for _, value in rows(ours)) + ours["unspecified"]
    assert theirs["total"] == sum(value for _, value in rows(theirs))


def test_sample_upstream_status_buckets_overlap_and_miss():
    """Upstream's status buckets overlap and miss where this reading's place a room once."""
    ours, theirs = sample(Grouping.STATUS, OURS), sample(Grouping.STATUS, UPSTREAM)
    assert sum(value for _, value in rows(ours)) == ours["total"] == 420
    assert theirs["total"] == 420
    closed_here, closed_there = dict(rows(ours))["Closed"], dict(rows(theirs))["Closed"]
    # Four closed without a duration are Closed here only; three reopened with theirs are
    # Closed upstream only.
    assert closed_here - 4 == closed_there - 3


def test_sample_by_agent_upstream_keeps_a_null_servedby_as_a_row():
    """The rooms whose servedBy is null are unspecified here, a row labelled null upstream.

    Otherwise the agents' rows are the same, and only this reading's total adds the rest.
    """
    ours, theirs = sample(Grouping.AGENT, OURS), sample(Grouping.AGENT, UPSTREAM)
    [nameless] = [datum for datum in theirs["data"] if datum["label"] is None]
    assert nameless["value"] > 0
    assert [datum for datum in theirs["data"] if datum is not nameless] == ours["data"]
    assert theirs["unspecified"] == ours["unspecified"] - nameless["value"]
    assert theirs["total"] == sum(value for _, value in rows(theirs))
    assert ours["total"] == theirs["total"] + theirs["unspecified"]


@pytest.mark.parametrize("grouping", list(Grouping))
def test_sample_every_report_keeps_every_room_in_this_reading(grouping):
    """total = sum of the rows + unspecified, in every report of this project's reading."""
    ours = sample(grouping, OURS)
    assert ours["total"] == sum(value for _, value in rows(ours)) + ours["unspecified"]


def test_upstream_by_agent_writes_stored_ids_as_rocketchat_writes_them():
    """A servedBy._id that is no agent id is a label of any JSON type, written as JSON."""
    ids = [True, {"a": 1}, decode_value({"$date": "2024-03-01T05:00:00Z"}), Decimal("1.5")]
    ids += [float("nan"), 7.0, None]
    rooms = [room(f"r{n}", at(1), servedBy={"_id": value}) for n, value in enumerate(ids)]
    store = MemoryStore({"rocketchat_room": rooms})
    report = Conversations(store=store, grouping=Grouping.AGENT, total_mode=UPSTREAM).report(WINDOW)
    body = json.loads(json.dumps(report_body(report), allow_nan=False))
    labels = [datum["label"] for datum in body["data"]]
    expected = [True, {"a": 1}, "2024-03-01T05:00:00.000Z", {"$numberDecimal": "1.5"}]
    expected += [None, 7, None]  # NaN is null, as JavaScript writes it; 7.0 is 7
    assert sorted(map(json.dumps, labels)) == sorted(map(json.dumps, expected))
