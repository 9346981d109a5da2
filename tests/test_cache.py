"""The optional result cache."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from convstats import ConversationsByAgent, TimeWindow, TTLCache, Visibility
from convstats_adapters.memory import MemoryStore

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


def test_reports_are_keyed_on_window_sort_and_visibility():
    """The report cache serves a repeat request, and not a request of another scope."""
    data = {
        "rocketchat_room": [
            {
                "_id": "r1",
                "t": "l",
                "ts": datetime(2024, 1, 5, tzinfo=UTC),
                "departmentId": "d1",
                "servedBy": {"_id": "ana"},
            },
        ]
    }
    store = MemoryStore(data)
    reports = ConversationsByAgent(store=store, cache=TTLCache(clock=Clock()))
    window = TimeWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))
    first = reports.report(window)
    store.remove_room("r1")
    assert reports.report(window) == first  # served from the cache (no invalidation)
    hidden = Visibility(restricted=True, rooms_without_department=False)
    assert reports.report(window, visibility=hidden).rows == ()
    reports.cache.invalidate()
    assert reports.report(window).rows == ()


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
