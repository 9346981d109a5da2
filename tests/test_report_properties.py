"""Properties of every report: no room lost in this reading, upstream's body in upstream's."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import given

from convstats import Conversations, Grouping, TimeWindow, TotalMode, Visibility
from convstats.http import json_value, report_body
from convstats.sorting import bson_order
from convstats_adapters.documents import partition
from convstats_adapters.memory import MemoryStore
from tests import upstream
from tests.generators import EVERY_ROOM, counted_workspaces, visibilities, windows, workspaces

Collections = dict[str, list[dict[str, Any]]]


def counted(collections: Collections, window: TimeWindow, visibility: Visibility) -> list[Any]:
    """The rooms every report counts: livechat rooms of the window the caller may see."""
    rooms = []
    for room in collections["rocketchat_room"]:
        ts = room.get("ts")
        dated = room.get("t") == "l" and isinstance(ts, datetime) and window.contains(ts)
        if dated and visibility.admits(partition(room)):
            rooms.append(room)
    return rooms


def bodies(store: MemoryStore, window: TimeWindow, visibility: Visibility, mode: TotalMode) -> Any:
    return {
        grouping: report_body(
            Conversations(store=store, grouping=grouping, total_mode=mode).report(
                window, visibility=visibility
            )
        )
        for grouping in Grouping
    }


def string_tags(room: dict[str, Any]) -> set[str]:
    tags = room.get("tags")
    items = tags if isinstance(tags, list) else [tags]
    return {item for item in items if isinstance(item, str)}


@given(collections=workspaces(), window=windows(), visibility=visibilities())
def test_no_room_is_lost_in_this_reading(
    collections: Collections, window: TimeWindow, visibility: Visibility
) -> None:
    """total = sum(values) + unspecified, and each visible room counts once (tags: a tag)."""
    rooms = counted(collections, window, visibility)
    answers = bodies(MemoryStore(collections), window, visibility, TotalMode.CONVSTATS)
    for grouping, body in answers.items():
        values = [datum["value"] for datum in body["data"]]
        assert body["total"] == sum(values) + body["unspecified"], grouping
        assert all(type(datum["label"]) is str for datum in body["data"]), grouping
    for grouping in (Grouping.STATUS, Grouping.SOURCE, Grouping.DEPARTMENT, Grouping.AGENT):
        assert answers[grouping]["total"] == len(rooms), grouping
    status = answers[Grouping.STATUS]
    assert status["unspecified"] == 0
    assert sorted(datum["label"] for datum in status["data"]) == [
        "Closed",
        "On_Hold",
        "Open",
        "Queued",
    ]
    tagged = sum(max(1, len(string_tags(room))) for room in rooms)
    assert answers[Grouping.TAGS]["total"] == tagged


@given(collections=workspaces(), window=windows(), visibility=visibilities())
def test_upstreams_reading_is_its_aggregations(
    collections: Collections, window: TimeWindow, visibility: Visibility
) -> None:
    """Upstream's reading of every report is its aggregation, restated in tests/upstream.py."""
    assert_upstreams_reading(collections, window, visibility)


@given(collections=counted_workspaces(), visibility=visibilities())
def test_upstreams_reading_of_many_odd_rooms(
    collections: Collections, visibility: Visibility
) -> None:
    """The same, on workspaces where every room is counted: odd values meet in one report."""
    assert_upstreams_reading(collections, EVERY_ROOM, visibility)


def assert_upstreams_reading(
    collections: Collections, window: TimeWindow, visibility: Visibility
) -> None:
    rooms = counted(collections, window, visibility)
    departments = collections.get("rocketchat_livechat_department", [])
    expected = {
        Grouping.STATUS: upstream.by_status(rooms),
        Grouping.SOURCE: upstream.by_source(rooms),
        Grouping.DEPARTMENT: upstream.by_department(rooms, departments),
        Grouping.TAGS: upstream.by_tags(rooms),
        Grouping.AGENT: upstream.by_agent(rooms, collections.get("users", [])),
    }
    answers = bodies(MemoryStore(collections), window, visibility, TotalMode.ROCKETCHAT)
    for grouping, oracle in expected.items():
        found = answers[grouping]
        assert found["total"] == oracle["total"], grouping
        assert found.get("unspecified") == oracle.get("unspecified"), grouping
        assert upstream.multiset(found["data"]) == upstream.multiset(oracle["data"]), grouping
        values = [datum["value"] for datum in found["data"]]
        if grouping in (Grouping.STATUS, Grouping.SOURCE):
            assert values == sorted(values, reverse=True), grouping
        elif grouping is Grouping.AGENT:  # upstream's default sort: {"name": 1}
            labels = [bson_order(datum["label"]) for datum in found["data"]]
            assert labels == sorted(labels), grouping
        else:  # upstream's default sort: {"total": 1}
            assert values == sorted(values), grouping
        json.dumps(found, default=json_value)  # every label is JSON


@given(collections=workspaces(), window=windows(), visibility=visibilities())
def test_by_agent_upstream_adds_a_row_for_rooms_served_by_no_agent(
    collections: Collections, window: TimeWindow, visibility: Visibility
) -> None:
    """Upstream's by-agent adds rows for rooms served by no agent, keyed by servedBy._id."""
    store = MemoryStore(collections)
    ours = bodies(store, window, visibility, TotalMode.CONVSTATS)[Grouping.AGENT]
    theirs = bodies(store, window, visibility, TotalMode.ROCKETCHAT)[Grouping.AGENT]
    strings = [datum for datum in theirs["data"] if isinstance(datum["label"], str)]
    others = [datum for datum in theirs["data"] if not isinstance(datum["label"], str)]
    assert strings == ours["data"]
    moved = sum(datum["value"] for datum in others)
    assert theirs["unspecified"] == ours["unspecified"] - moved
    assert theirs["total"] == ours["total"] - theirs["unspecified"]
