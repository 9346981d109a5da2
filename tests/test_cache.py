"""The optional result cache."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone

import pytest

from convstats import (
    ConversationsByAgent,
    Report,
    TimeWindow,
    TotalMode,
    TTLCache,
    Visibility,
    parse_sort,
)
from convstats.model import GroupCounts, Grouping
from convstats.ports import Versioned
from convstats_adapters.memory import STRATEGY_NAMES, MemoryStore
from tests.builders import build_report, only_rooms, room

UTC = timezone.utc


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_values_live_for_the_ttl():
    """A value is served until its time to live has passed, then computed again."""
    clock = Clock()
    cache: TTLCache[int] = TTLCache(ttl=60, clock=clock)
    calls = []

    def compute() -> int:
        calls.append(clock.now)
        return len(calls)

    assert cache.get_or_compute("k", compute) == 1
    clock.now = 59.9
    assert cache.get_or_compute("k", compute) == 1
    clock.now = 60.0
    assert cache.get_or_compute("k", compute) == 2
    assert calls == [0.0, 60.0]


def test_invalidate_forgets_everything():
    """After invalidate() every key is computed again."""
    cache: TTLCache[str] = TTLCache(clock=Clock())
    cache.get_or_compute("a", lambda: "old")
    cache.invalidate()
    assert cache.get_or_compute("a", lambda: "new") == "new"


def test_failures_are_not_remembered():
    """An exception from the computation propagates and leaves nothing behind."""
    cache: TTLCache[str] = TTLCache(clock=Clock())

    def fail() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("a", fail)
    assert len(cache) == 0


def test_expired_entries_are_evicted():
    """Entries past their time are dropped when new ones are stored."""
    clock = Clock()
    cache: TTLCache[int] = TTLCache(ttl=1, clock=clock)
    for key in range(5):
        cache.get_or_compute(key, lambda: 0)
    clock.now = 2
    cache.get_or_compute("fresh", lambda: 1)
    assert len(cache) == 1


@pytest.mark.parametrize("ttl", [0, -1])
def test_ttl_must_be_positive(ttl):
    """A non-positive ttl is refused, naming the value."""
    with pytest.raises(ValueError, match=str(ttl)):
        TTLCache(ttl=ttl)


class Instant(float):
    """A clock reading that counts how often a cache compares it (or a time derived from it)."""

    comparisons = 0

    def __add__(self, other: float) -> Instant:
        return Instant(float(self) + other)

    def _compare(self, other: float, how: str) -> bool:
        Instant.comparisons += 1
        return bool(getattr(float(self), how)(float(other)))

    def __lt__(self, other: float) -> bool:
        return self._compare(other, "__lt__")

    def __le__(self, other: float) -> bool:
        return self._compare(other, "__le__")

    def __gt__(self, other: float) -> bool:
        return self._compare(other, "__gt__")

    def __ge__(self, other: float) -> bool:
        return self._compare(other, "__ge__")


class CountingClock(Clock):
    def __call__(self) -> float:
        return Instant(self.now)


class Log:
    """A computation for each key that records which keys were computed."""

    def __init__(self) -> None:
        self.computed: list[object] = []

    def value(self, key: object) -> object:
        self.computed.append(key)
        return key


def test_a_hit_does_not_extend_the_ttl():
    """A value used just before its time to live ends is still computed again at its end."""
    clock = Clock()
    cache: TTLCache[int] = TTLCache(ttl=60, clock=clock)
    log = Log()
    for now in (0.0, 30.0, 59.999):
        clock.now = now
        cache.get_or_compute("k", lambda: log.value(0))
    clock.now = 60.0
    cache.get_or_compute("k", lambda: log.value(1))
    assert log.computed == [0, 1]


def test_the_ttl_counts_from_when_the_computation_began():
    """A value that took ten seconds to compute is served ten seconds less."""
    clock = Clock()
    cache: TTLCache[str] = TTLCache(ttl=60, clock=clock)

    def slow() -> str:
        clock.now += 10
        return "slow"

    cache.get_or_compute("k", slow)
    clock.now = 59.9
    assert cache.get_or_compute("k", lambda: "again") == "slow"
    clock.now = 60.0
    assert cache.get_or_compute("k", lambda: "again") == "again"


def test_the_size_is_bounded():
    """Past maxsize, the cache holds the maxsize most recent values and computes the others."""
    cache: TTLCache[object] = TTLCache(maxsize=100, clock=Clock())
    log = Log()
    for key in range(1000):
        cache.get_or_compute(key, lambda key=key: log.value(key))
    assert len(cache) == 100
    for key in range(900, 1000):
        cache.get_or_compute(key, lambda key=key: log.value(key))
    assert len(log.computed) == 1000
    cache.get_or_compute(0, lambda: log.value(0))
    assert len(log.computed) == 1001


def test_the_default_bound_is_1024_entries():
    """Without maxsize the cache holds 1024 values, however many distinct keys it is asked."""
    cache: TTLCache[int] = TTLCache(clock=Clock())
    for key in range(1500):
        cache.get_or_compute(key, lambda: 0)
    assert cache.maxsize == 1024
    assert len(cache) == 1024


def test_the_least_recently_used_value_goes_first():
    """A full cache forgets the value used longest ago, not the one stored longest ago."""
    cache: TTLCache[object] = TTLCache(maxsize=3, clock=Clock())
    log = Log()
    for key in "abc":
        cache.get_or_compute(key, lambda key=key: log.value(key))
    cache.get_or_compute("a", lambda: log.value("a"))  # a hit: "b" is now the oldest used
    cache.get_or_compute("d", lambda: log.value("d"))
    for key in "acd":
        cache.get_or_compute(key, lambda key=key: log.value(key))
    assert log.computed == ["a", "b", "c", "d"]
    cache.get_or_compute("b", lambda: log.value("b"))
    assert log.computed == ["a", "b", "c", "d", "b"]


def test_a_hit_and_a_miss_do_not_look_at_the_other_entries():
    """A lookup compares as many times with 10 or 1000 values held: no pass over the entries."""
    made: dict[int, int] = {}
    for held in (10, 1000):
        clock = CountingClock()
        cache: TTLCache[int] = TTLCache(ttl=60, clock=clock)  # room for all: nothing evicted
        for key in range(held):
            cache.get_or_compute(key, lambda: 0)
        clock.now = 1.0
        Instant.comparisons = 0
        cache.get_or_compute("new", lambda: 1)  # a miss that stores a value
        cache.get_or_compute(0, lambda: 2)  # a hit
        made[held] = Instant.comparisons
    assert made[10] == made[1000] <= 4


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True, "10"])
def test_maxsize_must_be_a_positive_whole_number(maxsize):
    """A maxsize that is not a whole number of entries, at least one, is refused, naming it."""
    with pytest.raises(ValueError, match=re.escape(repr(maxsize))):
        TTLCache(maxsize=maxsize)


# -- the cache of a report --------------------------------------------------------------------

WINDOW = TimeWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))


def one_room_store(agent: str = "ana") -> MemoryStore:
    return MemoryStore(only_rooms(room("r1", datetime(2024, 1, 5, tzinfo=UTC), agent)))


class CountingStore:
    """A room store without a data version, that counts the queries it answers."""

    def __init__(self, store: MemoryStore) -> None:
        self.store, self.queries = store, 0

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        self.queries += 1
        return self.store.count_groups(grouping, window, visibility, mode)


def test_reports_are_keyed_on_window_sort_visibility_and_total_mode():
    """A repeated request is served from the cache; one differing in any part is counted."""
    store = CountingStore(one_room_store())
    cache: TTLCache[Report] = TTLCache(clock=Clock())
    reports = ConversationsByAgent(store=store, directory=store.store, cache=cache)
    upstream = ConversationsByAgent(
        store=store, directory=store.store, cache=cache, total_mode=TotalMode.ROCKETCHAT
    )
    hidden = Visibility(restricted=True, rooms_without_department=False)
    later = TimeWindow(WINDOW.start, datetime(2024, 3, 1, tzinfo=UTC))
    first = reports.report(WINDOW)
    assert reports.report(WINDOW) == first
    assert store.queries == 1
    assert reports.report(WINDOW, visibility=hidden).rows == ()
    reports.report(later)
    reports.report(WINDOW, sort=parse_sort('{"total": -1}'))
    assert upstream.report(WINDOW).total_mode is TotalMode.ROCKETCHAT
    assert store.queries == 5


def test_a_store_without_a_version_is_served_from_the_cache_until_invalidated():
    """Changes the cache cannot know of are seen after invalidate() (or the ttl)."""
    memory = one_room_store()
    reports = ConversationsByAgent(
        store=CountingStore(memory), directory=memory, cache=TTLCache(clock=Clock())
    )
    first = reports.report(WINDOW)
    memory.remove_room("r1")
    assert reports.report(WINDOW) == first
    assert reports.cache is not None
    reports.cache.invalidate()
    assert reports.report(WINDOW).rows == ()


def update_put(store: MemoryStore) -> None:
    store.put_room(room("r2", datetime(2024, 1, 6, tzinfo=UTC), "bea"))


def update_transfer(store: MemoryStore) -> None:
    store.set_served_by("r1", {"_id": "bea"})


def update_remove(store: MemoryStore) -> None:
    assert store.remove_room("r1")


@pytest.mark.parametrize("update", [update_put, update_transfer, update_remove])
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_updates_through_the_store_are_seen_at_once(update, strategy):
    """After put_room, set_served_by or remove_room a cached report counts the new rooms."""
    store = MemoryStore(
        only_rooms(room("r1", datetime(2024, 1, 5, tzinfo=UTC), "ana")), strategy=strategy
    )
    reports = ConversationsByAgent(store=store, cache=TTLCache(clock=Clock()))
    reports.report(WINDOW)
    update(store)
    assert reports.report(WINDOW) == build_report(store, WINDOW)
    assert reports.report(WINDOW) == build_report(store, WINDOW)
    assert reports.cache is not None
    assert len(reports.cache) == 2  # the answer before the update, and the one after


def test_the_memory_store_numbers_its_changes():
    """Every update changes data_version; a removal or transfer of no room does not."""
    store = one_room_store()
    assert isinstance(store, Versioned)
    seen = [store.data_version]
    update_put(store)
    seen.append(store.data_version)
    update_transfer(store)
    seen.append(store.data_version)
    update_remove(store)
    seen.append(store.data_version)
    assert len(set(seen)) == 4
    assert not store.remove_room("nowhere")
    with pytest.raises(KeyError):
        store.set_served_by("nowhere", {"_id": "ana"})
    assert store.data_version == seen[-1]


def test_one_cache_cannot_serve_two_stores():
    """A cache given to reports over a second store is refused where it is wired."""
    cache: TTLCache[Report] = TTLCache(clock=Clock())
    tenant_a = ConversationsByAgent(store=one_room_store("ana"), cache=cache)
    tenant_a.report(WINDOW)
    with pytest.raises(ValueError, match="another store"):
        ConversationsByAgent(store=one_room_store("bea"), cache=cache)


def test_a_report_whose_store_was_replaced_refuses_its_cache():
    """Replacing the store of a cached report makes its next report a ValueError, not A's rows."""
    reports = ConversationsByAgent(store=one_room_store("ana"), cache=TTLCache(clock=Clock()))
    reports.report(WINDOW)
    reports.store = one_room_store("bea")
    with pytest.raises(ValueError, match="another store"):
        reports.report(WINDOW)


def test_reports_over_one_store_may_share_a_cache():
    """Two reports over the same store share one cache and each gets its own answer."""
    store = one_room_store()
    cache: TTLCache[Report] = TTLCache(clock=Clock())
    ours = ConversationsByAgent(store=store, cache=cache)
    upstream = ConversationsByAgent(store=store, cache=cache, total_mode=TotalMode.ROCKETCHAT)
    assert ours.report(WINDOW) == build_report(store, WINDOW)
    assert upstream.report(WINDOW) == build_report(store, WINDOW, total_mode=TotalMode.ROCKETCHAT)
    cache.invalidate()
    with pytest.raises(ValueError, match="another store"):
        ConversationsByAgent(store=one_room_store(), cache=cache)


def test_shared_between_threads():
    """Many threads using one cache all get the value and the cache stays consistent."""
    cache: TTLCache[int] = TTLCache(clock=Clock())
    results: list[int] = []

    def work(n: int) -> None:
        results.extend(
            cache.get_or_compute(key % 10, lambda key=key: key % 10) for key in range(50)
        )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 400
    assert all(0 <= value < 10 for value in results)
    assert len(cache) == 10


def test_a_small_cache_shared_between_threads_stays_within_its_bound():
    """Threads asking for more keys than maxsize get right values and never overfill it."""
    cache: TTLCache[int] = TTLCache(maxsize=5, clock=Clock())
    wrong: list[tuple[int, int]] = []
    sizes: list[int] = []

    def work(n: int) -> None:
        for step in range(200):
            key = (n * 7 + step) % 12
            value = cache.get_or_compute(key, lambda key=key: key * 10)
            if value != key * 10:
                wrong.append((key, value))
            sizes.append(len(cache))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert max(sizes) <= 5
    assert len(cache) == 5


def test_hits_and_misses_are_counted():
    """Each lookup is a hit (a live value) or a miss (computed, expired or failing alike)."""
    clock = Clock()
    cache: TTLCache[int] = TTLCache(ttl=10, clock=clock)
    assert (cache.hits, cache.misses) == (0, 0)
    cache.get_or_compute("a", lambda: 1)
    cache.get_or_compute("a", lambda: 2)
    cache.get_or_compute("b", lambda: 3)
    assert (cache.hits, cache.misses) == (1, 2)
    clock.now = 10
    assert cache.get_or_compute("a", lambda: 4) == 4
    with pytest.raises(ZeroDivisionError):
        cache.get_or_compute("c", lambda: 1 // 0)
    assert (cache.hits, cache.misses) == (1, 4)
    cache.invalidate()
    assert (cache.hits, cache.misses) == (1, 4)
