"""Aggregation strategies of the in-memory store: the same reports as the scan, always."""

from __future__ import annotations

import contextlib
import sys
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from convstats import Grouping, Report, TimeWindow, TotalMode, Visibility
from convstats.errors import MissingDependency
from convstats.ports import RoomStore
from convstats.sorting import Sort
from convstats_adapters.memory import STRATEGY_NAMES, MemoryStore, Plan, ids, table
from tests.builders import counts as count_dict
from tests.builders import every_report, only_rooms, room
from tests.generators import AGENTS, rooms, sorts, visibilities, windows, workspaces

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
ALL_DAY = TimeWindow(T0, T0 + timedelta(days=1))
FAST = [name for name in STRATEGY_NAMES if name != "scan"]


def at(offset: timedelta) -> datetime:
    return T0 + offset


def counts(store: MemoryStore, window: TimeWindow = ALL_DAY, **scope: Any) -> dict[str, int]:
    return count_dict(store, window, **scope)


@contextmanager
def small_blocks() -> Iterator[None]:
    """Checkpoints every 4 rooms and a new base after 3 changes, so small data reaches both."""
    saved = table.MIN_BLOCK, table.BLOCK_PER_GROUP, table.COMPACT_MIN
    table.MIN_BLOCK, table.BLOCK_PER_GROUP, table.COMPACT_MIN = 4, 0, 3
    try:
        yield
    finally:
        table.MIN_BLOCK, table.BLOCK_PER_GROUP, table.COMPACT_MIN = saved


@contextmanager
def without_numpy() -> Iterator[None]:
    """Makes every ``import numpy`` fail, so that the pure-Python paths build and count."""
    saved = sys.modules.get("numpy")
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if saved is None:
            del sys.modules["numpy"]
        else:
            sys.modules["numpy"] = saved


@pytest.fixture(params=STRATEGY_NAMES)
def strategy(request: pytest.FixtureRequest) -> str:
    """Each strategy by name."""
    return str(request.param)


# -- behaviour of each strategy ------------------------------------------------------------


def test_every_strategy_is_a_room_store(strategy: str) -> None:
    """A store is a RoomStore whatever strategy it counts with."""
    store: RoomStore = MemoryStore(strategy=strategy)
    assert isinstance(store, RoomStore)


def test_auto_is_the_default() -> None:
    """A store built without a strategy name uses ``auto``."""
    assert MemoryStore().strategy == "auto"


def test_unknown_strategy_is_refused() -> None:
    """An unknown strategy name is a ValueError that lists the known ones."""
    with pytest.raises(ValueError, match="columnar"):
        MemoryStore(strategy="btree")


def test_window_is_half_open_at_millisecond_precision(strategy: str) -> None:
    """A room at the start counts, one at the end does not, and microseconds are dropped."""
    store = MemoryStore(
        only_rooms(
            room("before", at(-MS), "ana"),
            room("start", at(timedelta(microseconds=999)), "ana"),
            room("last", at(timedelta(days=1) - MS), "bo"),
            room("end", at(timedelta(days=1)), "bo"),
        ),
        strategy=strategy,
    )
    window = TimeWindow(at(timedelta(microseconds=500)), at(timedelta(days=1, microseconds=900)))
    assert counts(store, window) == {"ana": 1, "bo": 1, "<unspecified>": 0}
    assert counts(store, TimeWindow(T0, T0)) == {"<unspecified>": 0}


def test_only_dated_livechat_rooms_count(strategy: str) -> None:
    """Rooms of another type, or without a date ts, never count; a naive ts is UTC."""
    store = MemoryStore(
        only_rooms(
            room("naive", at(MS).replace(tzinfo=None), "ana"),
            room("string", "2024-03-01T01:00:00Z", "ana"),
            {"_id": "no-ts", "t": "l", "servedBy": {"_id": "ana"}},
            {**room("channel", at(MS), "ana"), "t": "c"},
        ),
        strategy=strategy,
    )
    assert counts(store) == {"ana": 1, "<unspecified>": 0}
    assert store.room_count == 4


def test_odd_served_by_counts_as_unassigned(strategy: str) -> None:
    """servedBy null, without _id, with a non-string _id or not an object is unassigned."""
    store = MemoryStore(
        only_rooms(
            room("null", at(MS), servedBy=None),
            room("no-id", at(MS), servedBy={"username": "ghost"}),
            room("int-id", at(MS), servedBy={"_id": 7}),
            room("scalar", at(MS), servedBy="ana"),
            room("missing", at(MS)),
        ),
        strategy=strategy,
    )
    assert counts(store) == {"<unspecified>": 5}


def test_rooms_without_id_all_count(strategy: str) -> None:
    """Rooms without an _id are kept apart and each counts."""
    anonymous = {"t": "l", "ts": at(MS), "servedBy": {"_id": "ana"}}
    store = MemoryStore(only_rooms(dict(anonymous), dict(anonymous)), strategy=strategy)
    store.put_room(dict(anonymous))
    assert counts(store) == {"ana": 3, "<unspecified>": 0}
    assert store.room_count == 3


@pytest.mark.parametrize(("room_id", "shown"), [("r1", "'r1'"), (1, "1"), ({"k": [1]}, "")])
def test_duplicate_ids_are_refused(strategy: str, room_id: Any, shown: str) -> None:
    """Two rooms with the same _id in the initial data are a ValueError naming the id."""
    data = only_rooms(room("r0", at(MS)), room(room_id, at(MS)), room(room_id, at(2 * MS)))
    with pytest.raises(ValueError, match=f"two rooms have the _id {shown}"):
        MemoryStore(data, strategy=strategy)
    if strategy != "columnar":
        with without_numpy(), pytest.raises(ValueError, match="two rooms have the _id"):
            MemoryStore(data, strategy=strategy)


def test_string_subclass_ids_are_strings(strategy: str) -> None:
    """An id that is a str subclass finds the room stored under the equal plain string."""

    class Text(str):
        pass

    store = MemoryStore(only_rooms(room(Text("r1"), at(MS), "ana")), strategy=strategy)
    assert "r1" in store
    store.set_served_by("r1", {"_id": "bo"})
    assert store.remove_room(Text("r1"))
    assert store.room_count == 0


def test_ids_sharing_a_first_hash_are_told_apart_by_the_second() -> None:
    """Keys whose 64-bit hashes collide are still found at their own places."""
    one, two = ids.fingerprint("a")
    other = ids.fingerprint("b")[1]
    index = ids.IdIndex(
        array("q", [one - 1, one, one, one + 1]),
        array("i", [two, other, two, other]),
        array("i", [10, 11, 12, 13]),
        {},
    )
    assert index.find("a") == 12
    assert index.find("c") is None
    assert len(index) == 4


def test_partitions_follow_monitor_scope(strategy: str) -> None:
    """A restricted visibility admits rooms by ancestors, by department and without one."""
    store = MemoryStore(
        only_rooms(
            room("eu", at(MS), "ana", departmentId="sales", departmentAncestors=["eu"]),
            room("scalar", at(MS), "ana", departmentId="other", departmentAncestors="eu"),
            room("support", at(MS), "bo", departmentId="support"),
            room("none", at(MS)),
            room("null", at(MS), "bo", departmentId=None),
            room("odd", at(MS), "bo", departmentId=7, departmentAncestors=[3, "us"]),
        ),
        strategy=strategy,
    )
    assert counts(store, unit_ids={"eu"}, rooms_without_department=False) == {
        "ana": 2,
        "<unspecified>": 0,
    }
    # "null" has a department field (null), so only "none" is a room without a department.
    assert counts(store, department_ids={"support"}) == {"bo": 1, "<unspecified>": 1}
    assert counts(store, unit_ids={"us"}, rooms_without_department=False) == {
        "bo": 1,
        "<unspecified>": 0,
    }
    assert counts(store, department_ids={"7"}, rooms_without_department=False) == {
        "<unspecified>": 0
    }


def test_transfer_counts_for_the_last_agent(strategy: str) -> None:
    """A transferred room counts once, for the agent it was transferred to."""
    store = MemoryStore(only_rooms(room("r1", at(MS), "ana")), strategy=strategy)
    store.set_served_by("r1", {"_id": "bo", "username": "bo"})
    assert counts(store) == {"bo": 1, "<unspecified>": 0}


def test_return_to_queue_and_reopen(strategy: str) -> None:
    """A room returned to the queue is unassigned until an agent takes it again."""
    store = MemoryStore(only_rooms(room("r1", at(MS), "ana")), strategy=strategy)
    store.set_served_by("r1", None)
    assert counts(store) == {"<unspecified>": 1}
    store.set_served_by("r1", {"_id": "ana"})
    assert counts(store) == {"ana": 1, "<unspecified>": 0}
    store.set_served_by("r1", {"username": "ghost"})
    assert counts(store) == {"<unspecified>": 1}


def test_set_served_by_on_an_unknown_room_raises(strategy: str) -> None:
    """Transferring a room the store does not hold is a KeyError."""
    store = MemoryStore(strategy=strategy)
    with pytest.raises(KeyError):
        store.set_served_by("nope", {"_id": "ana"})


def test_removal_and_reinsertion(strategy: str) -> None:
    """A removed room stops counting; put back, it counts again under its new fields."""
    store = MemoryStore(
        only_rooms(room("r1", at(MS), "ana"), room("r2", at(MS), "ana")), strategy=strategy
    )
    assert store.remove_room("r1") is True
    assert store.remove_room("r1") is False
    assert counts(store) == {"ana": 1, "<unspecified>": 0}
    store.put_room(room("r1", at(2 * MS), "bo", departmentId="support"))
    assert counts(store) == {"ana": 1, "bo": 1, "<unspecified>": 0}
    assert store.room_count == 2


def test_put_room_replaces_time_and_department(strategy: str) -> None:
    """Replacing a room moves it out of the window and out of the monitor's scope."""
    store = MemoryStore(
        only_rooms(room("r1", at(MS), "ana", departmentId="sales")), strategy=strategy
    )
    store.put_room(room("r1", at(timedelta(days=2)), "ana", departmentId="sales"))
    assert counts(store) == {"<unspecified>": 0}
    store.put_room(room("r1", at(MS), "ana", departmentId="support"))
    assert counts(store, department_ids={"sales"}) == {"<unspecified>": 0}
    assert counts(store, department_ids={"support"}) == {"ana": 1, "<unspecified>": 0}


def test_changes_to_a_room_that_never_counts(strategy: str) -> None:
    """A room that cannot count can be transferred and replaced, and then counts."""
    store = MemoryStore(only_rooms({"_id": "r1", "t": "c", "ts": at(MS)}), strategy=strategy)
    store.set_served_by("r1", {"_id": "ana"})
    assert counts(store) == {"<unspecified>": 0}
    store.put_room(room("r1", at(MS), "ana"))
    assert counts(store) == {"ana": 1, "<unspecified>": 0}


def test_caller_changes_do_not_leak_into_the_store(strategy: str) -> None:
    """Mutating a document after handing it to the store does not change the counts."""
    document = room("r1", at(MS), "ana")
    store = MemoryStore(only_rooms(document), strategy=strategy)
    document["servedBy"] = {"_id": "bo"}
    assert counts(store) == {"ana": 1, "<unspecified>": 0}


def test_footprint_names_its_components(strategy: str) -> None:
    """Every strategy reports what it holds, in bytes, by component."""
    store = MemoryStore(only_rooms(room("r1", at(MS), "ana")), strategy=strategy)
    footprint = store.footprint()
    assert footprint
    assert all(size > 0 for size in footprint.values())


# -- numpy is optional ---------------------------------------------------------------------


def test_without_numpy_columnar_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numpy, asking for columnar raises MissingDependency naming the extra."""
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(MissingDependency, match=r"convstats\[columnar\]"):
        MemoryStore(strategy="columnar")


def test_without_numpy_auto_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numpy, ``auto`` and ``indexed`` answer as the scan does."""
    monkeypatch.setitem(sys.modules, "numpy", None)
    data = only_rooms(*(room(f"r{n}", at(n * MS), AGENTS[n % 4]) for n in range(20)))
    expected = counts(MemoryStore(data, strategy="scan"))
    assert counts(MemoryStore(data, strategy="auto")) == expected
    assert counts(MemoryStore(data, strategy="indexed")) == expected


def test_auto_survives_numpy_vanishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` built while numpy was importable still answers when the import fails."""
    data = only_rooms(*(room(f"r{n}", at(n * MS), AGENTS[n % 4]) for n in range(20)))
    store = MemoryStore(data, strategy="auto")
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert counts(store) == counts(MemoryStore(data, strategy="scan"))


# -- differential properties ---------------------------------------------------------------


def reports(
    store: MemoryStore, window: TimeWindow, visibility: Visibility, sort: Sort
) -> dict[tuple[Grouping, TotalMode], Report]:
    return every_report(store, window, visibility, sort)


@given(data=workspaces(), window=windows(), visibility=visibilities(), sort=sorts())
def test_every_strategy_reports_as_the_scan(
    data: dict[str, list[dict[str, Any]]], window: TimeWindow, visibility: Visibility, sort: Sort
) -> None:
    """For any workspace, window, scope and sort, every strategy's report is the scan's."""
    expected = reports(MemoryStore(data, strategy="scan"), window, visibility, sort)
    for name in FAST:
        store = MemoryStore(data, strategy=name)
        assert reports(store, window, visibility, sort) == expected, name
        with small_blocks():
            store = MemoryStore(data, strategy=name)
            assert reports(store, window, visibility, sort) == expected, name
    with without_numpy(), small_blocks():
        for name in ("indexed", "auto"):
            store = MemoryStore(data, strategy=name)
            assert reports(store, window, visibility, sort) == expected, name


def _holds(store: MemoryStore, room_id: str) -> bool:
    return room_id in store


AGENT_CHANGES = st.one_of(
    st.none(),
    st.fixed_dictionaries({"_id": st.sampled_from(AGENTS), "username": st.just("someone")}),
    st.fixed_dictionaries({"username": st.just("ghost")}),
    st.fixed_dictionaries({"_id": st.integers(0, 3)}),
)


class StoresAgree(RuleBasedStateMachine):
    """Every strategy's store, fed the same changes, keeps reporting as the scan's store.

    Checkpoints every four rooms and a new base after three changes put every path of the
    table (void places, the overlay, compaction) in reach of a few rooms; a second store per
    strategy keeps the default sizes.
    """

    ids = Bundle("ids")
    strategies = STRATEGY_NAMES

    def __init__(self) -> None:
        super().__init__()
        self.stores: dict[str, MemoryStore] = {}
        self.fresh = 0
        self.sizes = small_blocks()
        self.sizes.__enter__()

    def teardown(self) -> None:
        self.sizes.__exit__(None, None, None)

    def make(self, data: dict[str, list[dict[str, Any]]], strategy: str) -> Any:
        return MemoryStore(data, strategy=strategy)

    @initialize(target=ids, data=workspaces(max_rooms=20))
    def build(self, data: dict[str, list[dict[str, Any]]]) -> Any:
        self.stores = {name: self.make(data, name) for name in self.strategies}
        saved = table.MIN_BLOCK, table.BLOCK_PER_GROUP, table.COMPACT_MIN
        self.sizes.__exit__(None, None, None)
        self.stores.update(
            {f"{name} (default sizes)": self.make(data, name) for name in self.strategies}
        )
        table.MIN_BLOCK, table.BLOCK_PER_GROUP, table.COMPACT_MIN = saved
        return multiple(*(document["_id"] for document in data["rocketchat_room"]))

    @rule(target=ids, data=st.data())
    def insert(self, data: st.DataObject) -> str:
        self.fresh += 1
        room_id = f"new-{self.fresh}"
        document = data.draw(rooms(room_id))
        for store in self.stores.values():
            store.put_room(document)
        return room_id

    @rule(room_id=ids, data=st.data())
    def replace(self, room_id: str, data: st.DataObject) -> None:
        document = data.draw(rooms(room_id))
        for store in self.stores.values():
            store.put_room(document)

    @rule(room_id=ids, agent=AGENT_CHANGES)
    def transfer(self, room_id: str, agent: dict[str, Any] | None) -> None:
        held = {store.room_count for store in self.stores.values()}
        if any(_holds(store, room_id) for store in self.stores.values()):
            for store in self.stores.values():
                store.set_served_by(room_id, agent)
        else:
            for store in self.stores.values():
                with pytest.raises(KeyError):
                    store.set_served_by(room_id, agent)
        assert held == {store.room_count for store in self.stores.values()}

    @rule(room_id=consumes(ids))
    def remove(self, room_id: str) -> None:
        assert len({store.remove_room(room_id) for store in self.stores.values()}) == 1

    @rule(window=windows(), visibility=visibilities(), sort=sorts())
    def report(self, window: TimeWindow, visibility: Visibility, sort: Sort) -> None:
        expected = reports(self.stores["scan"], window, visibility, sort)
        for name, store in self.stores.items():
            assert reports(store, window, visibility, sort) == expected, name

    @invariant()
    def same_room_count(self) -> None:
        assert len({store.room_count for store in self.stores.values()}) <= 1


TestStoresAgree = StoresAgree.TestCase


class _WithoutNumpy:
    """A store whose every call runs with numpy unimportable (Hypothesis itself needs it)."""

    def __init__(self, build: Callable[[], MemoryStore]) -> None:
        with without_numpy():
            self._store = build()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            with without_numpy():
                return found(*args, **kwargs)

        return call

    def __contains__(self, room_id: object) -> bool:
        with without_numpy():
            return room_id in self._store


class StoresAgreeWithoutNumpy(StoresAgree):
    """Without numpy, the stores that count from the index still report as the scan's."""

    strategies = ("scan", "indexed", "auto")

    def make(self, data: dict[str, list[dict[str, Any]]], strategy: str) -> Any:
        return _WithoutNumpy(lambda: MemoryStore(data, strategy=strategy))


TestStoresAgreeWithoutNumpy = StoresAgreeWithoutNumpy.TestCase


def test_ids_compare_as_mongodb_compares_them(strategy: str) -> None:
    """Object ids are found again by value, and a boolean id is not the number 1."""
    store = MemoryStore(
        only_rooms(room({"k": 1}, at(MS), "ana"), room(True, at(MS)), room(1, at(MS))),
        strategy=strategy,
    )
    store.put_room(room({"k": 1}, at(MS), "bo"))
    assert store.room_count == 3
    store.set_served_by({"k": 1}, {"_id": "cy"})
    assert store.remove_room(1)
    assert store.room_count == 2
    assert counts(store) == {"cy": 1, "<unspecified>": 1}


def test_nested_changes_by_the_caller_do_not_leak_in(strategy: str) -> None:
    """Changing a handed-over document's nested fields leaves the store's rooms as they were."""
    document = room("r1", at(MS), "ana", departmentAncestors=["u2"])
    store = MemoryStore(only_rooms(document), strategy=strategy)
    document["servedBy"]["_id"] = "bo"
    document["departmentAncestors"].append("u1")
    assert counts(store, unit_ids={"u1"}, rooms_without_department=False) == {"<unspecified>": 0}
    assert counts(store) == {"ana": 1, "<unspecified>": 0}


def test_tuples_are_arrays_and_mappings_are_documents(strategy: str) -> None:
    """A tuple of ancestors is matched like an array, and any mapping serves as servedBy."""
    document = room("r1", at(MS), departmentAncestors=("u1",))
    document["servedBy"] = MappingProxyType({"_id": "ana"})
    store = MemoryStore(only_rooms(document), strategy=strategy)
    assert counts(store, unit_ids={"u1"}, rooms_without_department=False) == {
        "ana": 1,
        "<unspecified>": 0,
    }


def test_explain_names_the_plan_of_each_strategy() -> None:
    """scan, columnar and indexed each keep their plan; auto is the index."""
    few_groups = only_rooms(*(room(f"r{n}", at(n * MS), "ana") for n in range(1000)))
    many_groups = only_rooms(*(room(f"r{n}", at(n * MS), f"agent-{n}") for n in range(1000)))
    everything = Visibility.everything()
    for data in (few_groups, many_groups):
        assert MemoryStore(data, strategy="scan").explain(ALL_DAY, everything) is Plan.SCAN
        assert MemoryStore(data, strategy="columnar").explain(ALL_DAY, everything) is Plan.COLUMNS
        assert MemoryStore(data, strategy="indexed").explain(ALL_DAY, everything) is Plan.INDEX
    assert MemoryStore(few_groups).explain(ALL_DAY, everything) is Plan.INDEX
    store = MemoryStore(many_groups)
    assert store.explain(ALL_DAY, everything) is Plan.INDEX
    assert counts(store) == counts(MemoryStore(many_groups, strategy="scan"))


def test_without_numpy_auto_explains_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numpy, auto answers from its index whatever the shape of the data."""
    many_groups = only_rooms(*(room(f"r{n}", at(n * MS), f"agent-{n}") for n in range(1000)))
    store = MemoryStore(many_groups)
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert store.explain(ALL_DAY, Visibility.everything()) is Plan.INDEX


def test_the_strategy_is_fixed_at_construction() -> None:
    """A built store keeps the structures of its strategy, so the strategy cannot change."""
    store = MemoryStore(strategy="scan")
    with pytest.raises(AttributeError):
        store.strategy = "indexed"  # type: ignore[misc]


@pytest.mark.parametrize("numpy", [True, False])
def test_windows_across_many_checkpoints(numpy: bool) -> None:
    """A window over many blocks counts from the checkpoints as the scan counts, either edge."""
    agents = ("ana", "bo", None)
    documents = [
        room(f"r{n}", at(n * timedelta(minutes=7)), agents[n % 3], departmentId=f"d{n % 2}")
        for n in range(300)
    ]
    data = only_rooms(*documents)
    expected = MemoryStore(data, strategy="scan")
    with small_blocks(), without_numpy() if not numpy else contextlib.nullcontext():
        store = MemoryStore(data, strategy="indexed")
        for first, last in ((0, 299), (3, 290), (5, 61), (130, 131), (17, 200)):
            window = TimeWindow(at(first * timedelta(minutes=7)), at(last * timedelta(minutes=7)))
            for scope in ({}, {"department_ids": {"d1"}}):
                assert counts(store, window, **scope) == counts(expected, window, **scope)
