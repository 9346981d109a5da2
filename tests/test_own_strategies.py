"""Counting strategies of the user's own, and stores that hold only some of the reports."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from benchmarks.examples import bisect
from hypothesis import given

from convstats import Grouping, TimeWindow, TotalMode, Visibility
from convstats.errors import DataFormatError
from convstats.sorting import Sort
from convstats_adapters.memory import MemoryStore, Plan, Strategy, loader
from convstats_adapters.memory.counting import count_scan
from convstats_adapters.memory.table import Column, FactTable
from tests.builders import every_report, only_rooms, room
from tests.generators import sorts, visibilities, windows, workspaces
from tests.test_fast_loading import reference_loader
from tests.test_strategies import small_blocks, without_numpy

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = TimeWindow(T0, T0 + timedelta(days=1))
EVERYTHING = Visibility.everything()


def as_mapping(table: FactTable, column: Column, window: TimeWindow, groups: int) -> Any:
    """The scan's counts, as the mapping a strategy may return."""
    return dict(count_scan(table, column, window, groups))


def as_short_list(table: FactTable, column: Column, window: TimeWindow, groups: int) -> Any:
    """The scan's counts as a list that stops at the last group counted."""
    found = count_scan(table, column, window, groups)
    return [found.get(group, 0) for group in range(max(found, default=-1) + 1)]


def failing(table: FactTable, column: Column, window: TimeWindow, groups: int) -> Any:
    raise RuntimeError("this strategy cannot count")


def sample_store(**options: Any) -> MemoryStore:
    return MemoryStore(
        only_rooms(
            room("r1", T0, "ana", departmentId="d1", tags=["vip"], source={"type": "email"}),
            room("r2", T0 + timedelta(hours=1), "bo", open=True),
            room("r3", T0 + timedelta(hours=2)),
            room("r4", T0 + timedelta(days=2), "ana"),
        ),
        **options,
    )


def agents(store: MemoryStore, window: TimeWindow = DAY) -> Counter[Any]:
    found = store.count_groups(Grouping.AGENT, window, EVERYTHING)
    return Counter(dict(zip(found.keys, found.values, strict=True)))


@given(data=workspaces(), window=windows(), visibility=visibilities(), sort=sorts())
def test_a_function_of_the_documented_signature_counts_as_the_scan(
    data: dict[str, list[dict[str, Any]]], window: TimeWindow, visibility: Visibility, sort: Sort
) -> None:
    """Any counting function of the documented signature gives every report the scan gives."""
    expected = every_report(MemoryStore(data, strategy="scan"), window, visibility, sort)
    for function in (bisect.count, as_mapping, as_short_list):
        store = MemoryStore(data, strategy=function)
        assert every_report(store, window, visibility, sort) == expected, function
        with small_blocks():
            store = MemoryStore(data, strategy=function)
            assert every_report(store, window, visibility, sort) == expected, function


def test_the_example_strategy_follows_changes_to_the_rooms() -> None:
    """The example keeps what it derives from the base only while the base is unchanged."""
    with small_blocks():
        store, scan = sample_store(strategy=bisect.count), sample_store(strategy="scan")
        for change in (
            lambda s: s.set_served_by("r3", {"_id": "cy"}),
            lambda s: s.remove_room("r1"),
            lambda s: s.put_room(room("r5", T0 + timedelta(hours=3), "ana")),
            lambda s: s.put_room(room("r6", T0 + timedelta(hours=4), "bo")),
            lambda s: s.remove_room("r2"),
        ):
            change(store)
            change(scan)
            assert agents(store) == agents(scan)


def test_a_function_strategy_is_named_by_its_module_and_name() -> None:
    """A store built with a function says which, and explains its plan as the user's own."""
    store = sample_store(strategy=as_mapping)
    assert store.strategy == f"{__name__}:as_mapping"
    assert store.explain(DAY, EVERYTHING) is Plan.CUSTOM
    named = sample_store(strategy=Strategy("mine", as_mapping, indexed=False))
    assert named.strategy == "mine"
    assert agents(named) == agents(sample_store())


def test_a_failing_strategy_fails_the_count() -> None:
    """What a strategy raises reaches the caller of count_groups, never an empty answer."""
    with pytest.raises(RuntimeError, match="cannot count"):
        sample_store(strategy=failing).count_groups(Grouping.AGENT, DAY, EVERYTHING)


@pytest.mark.parametrize(
    "answer",
    [
        lambda groups: {-1: 1},
        lambda groups: {groups: 1},
        lambda groups: {0: 1.5},
        lambda groups: {0: -2},
        lambda groups: {0: True},
        lambda groups: [-1] + [0] * (groups - 1),
        lambda groups: [0.5] * groups,
        lambda groups: [0] * (groups + 1),
    ],
    ids=[
        "negative code", "unknown code", "a fraction", "a negative count", "a boolean",
        "a negative in a list", "fractions in a list", "a list too long",
    ],
)  # fmt: skip
@pytest.mark.parametrize("numpy", [True, False])
def test_counts_that_are_not_rooms_per_group_are_refused(answer: Any, numpy: bool) -> None:
    """A strategy's counts that would place rooms in the wrong rows are a ValueError naming it."""

    def wrong(table: Any, column: Any, window: Any, groups: int) -> Any:
        return answer(groups)

    with contextlib.ExitStack() as stack:
        if not numpy:
            stack.enter_context(without_numpy())
        store = sample_store(strategy=wrong)
        with pytest.raises(ValueError, match="wrong"):
            store.count_groups(Grouping.AGENT, DAY, EVERYTHING)


def test_a_strategy_that_is_not_a_function_is_refused() -> None:
    """Neither a known name nor callable: a TypeError that says what was given."""
    with pytest.raises(TypeError, match="42"):
        MemoryStore(strategy=42)  # type: ignore[arg-type]


def test_an_unindexed_strategy_keeps_no_checkpoints() -> None:
    """A strategy that reads no index gets a table without one, smaller."""
    indexed = sample_store(strategy=Strategy("with", as_mapping))
    plain = sample_store(strategy=Strategy("without", as_mapping, indexed=False))
    assert "index" in indexed.footprint()
    assert "index" not in plain.footprint()


# -- stores of some reports ------------------------------------------------------------------


def test_a_store_of_one_grouping_answers_it_and_refuses_the_others() -> None:
    """A by-agent store answers by-agent as the full store does, and names what it lacks."""
    store, full = sample_store(groupings=[Grouping.AGENT]), sample_store()
    assert store.groupings == (Grouping.AGENT,)
    for mode in TotalMode:
        assert store.count_groups(Grouping.AGENT, DAY, EVERYTHING, mode) == full.count_groups(
            Grouping.AGENT, DAY, EVERYTHING, mode
        )
    with pytest.raises(ValueError, match=r"no 'status' facts.*holds: agent"):
        store.count_groups(Grouping.STATUS, DAY, EVERYTHING)
    store.set_served_by("r3", {"_id": "cy"})
    full.set_served_by("r3", {"_id": "cy"})
    assert agents(store) == agents(full)


def test_a_store_of_fewer_groupings_holds_fewer_bytes() -> None:
    """Each grouping left out is a column less."""
    full, agent = sample_store(), sample_store(groupings=[Grouping.AGENT])
    assert agent.footprint()["columns"] < full.footprint()["columns"]


def test_a_store_of_no_grouping_is_refused() -> None:
    """A store that could answer nothing is an error, not an empty store."""
    with pytest.raises(ValueError, match="at least one grouping"):
        MemoryStore(groupings=[])


@pytest.mark.parametrize("fast", [True, False])
def test_no_grouping_is_the_callers_error_before_any_file_is_read(
    tmp_path: Path, fast: bool
) -> None:
    """from_path refuses groupings=[] as the caller's ValueError, whichever loader would read."""
    (tmp_path / "rocketchat_room.json").write_text('{"_id": "r1", "t": "l"}\n')
    with contextlib.ExitStack() as stack:
        if not fast:
            stack.enter_context(reference_loader())
        with pytest.raises(ValueError, match="at least one grouping") as refused:
            MemoryStore.from_path(tmp_path, groupings=[])
    assert not isinstance(refused.value, DataFormatError)


def test_both_loaders_load_the_groupings_asked_for(tmp_path: Path) -> None:
    """from_path keeps the groupings asked for, through the streaming loader and without it."""
    lines = [
        {"_id": f"r{n}", "t": "l", "ts": {"$date": f"2024-03-01T0{n}:00:00.000Z"}}
        | ({"servedBy": {"_id": f"agent-{n % 2}"}} if n % 3 else {})
        for n in range(6)
    ]
    (tmp_path / "rocketchat_room.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    expected = MemoryStore.from_path(tmp_path).count_groups(Grouping.AGENT, DAY, EVERYTHING)
    assert expected.values
    for fast in (True, False):
        if fast:
            assert loader.fast_loader_available()
            store = MemoryStore.from_path(tmp_path, groupings=[Grouping.AGENT])
        else:
            with reference_loader():
                store = MemoryStore.from_path(tmp_path, groupings=[Grouping.AGENT])
        assert store.rooms.groupings == (Grouping.AGENT,)
        assert store.count_groups(Grouping.AGENT, DAY, EVERYTHING) == expected


def test_rooms_of_the_same_tags_in_another_order_share_a_group() -> None:
    """The order of string tags neither changes a report nor costs a group of its own."""
    store = MemoryStore(
        only_rooms(
            room("r1", T0, tags=["a", "b"]),
            room("r2", T0, tags=["b", "a"]),
            room("r3", T0, tags=["b", "a", "b"]),
        )
    )
    facet = store.rooms._table.codes.facets[Grouping.TAGS]
    assert facet.groups == 3  # VOID, (a, b) and (a, b, b)
    found = store.count_groups(Grouping.TAGS, DAY, EVERYTHING, TotalMode.ROCKETCHAT)
    assert dict(zip(found.keys, found.values, strict=True)) == {"a": 3, "b": 4}
