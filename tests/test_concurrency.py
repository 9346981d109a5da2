"""The in-memory store under updates concurrent with queries, for every strategy.

Writers change a few thousand rooms while readers count them. Each update is one step from a
consistent state to another, so a reader must see the rooms before or after it, never half
way; no update may be lost and nothing may raise. The interpreter is asked to switch
threads every microsecond so that the threads interleave inside each other's calls.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convstats import TimeWindow, Visibility
from convstats_adapters.memory import STRATEGY_NAMES, MemoryStore
from tests.builders import by_agent, counts, room, served

UTC = timezone.utc
T0 = datetime(2024, 3, 1, tzinfo=UTC)
#: Every counted room is created in this window; rooms added outside it never count.
WINDOW = TimeWindow(T0, T0 + timedelta(days=30))
OUTSIDE = T0 + timedelta(days=400)
AGENTS = [f"agent-{n}" for n in range(12)]
DEPARTMENTS = [f"dep-{n}" for n in range(4)]

MOVED = 1200  # rooms whose agent the movers change, half each
REPLACED = 600  # rooms that the replacer writes anew under the same _id
CHURNED = 600  # rooms that the churner replaces by new rooms, adding one before removing one
ROOMS = MOVED + REPLACED + CHURNED
OPERATIONS = 3000  # a writer's updates
MOST_READS = 5000  # a reader's queries, at most
SECONDS = 30.0  # a bound on the whole run, far above what it takes; not a measurement


def a_room(rng: random.Random, room_id: str, when: datetime | None = None) -> dict[str, Any]:
    """A livechat room in the window (unless ``when`` says otherwise), of a random agent."""
    agent = rng.choice([*AGENTS, None])
    created = when or T0 + timedelta(minutes=rng.randrange(30 * 24 * 60))
    return room(room_id, created, agent, departmentId=rng.choice(DEPARTMENTS))


Writer = Callable[[], dict[str, Any]]
"""Runs its updates and returns the rooms it owns at the end, by ``_id``."""


def mover(store: MemoryStore, rooms: dict[str, Any], rng: random.Random) -> Writer:
    """Transfers its rooms between agents and the queue: the total never changes."""

    def run() -> dict[str, Any]:
        final = {room_id: dict(document) for room_id, document in rooms.items()}
        ids = list(final)
        for _ in range(OPERATIONS):
            room_id, agent = rng.choice(ids), rng.choice([*AGENTS, None])
            value = None if agent is None else served(agent)
            store.set_served_by(room_id, value)
            final[room_id].pop("servedBy", None)
            if value is not None:
                final[room_id]["servedBy"] = value
        return final

    return run


def replacer(store: MemoryStore, rooms: dict[str, Any], rng: random.Random) -> Writer:
    """Writes its rooms anew under the same ``_id`` (time, agent, department): the total holds."""

    def run() -> dict[str, Any]:
        final, ids = dict(rooms), list(rooms)
        for _ in range(OPERATIONS):
            room_id = rng.choice(ids)
            final[room_id] = a_room(rng, room_id)
            store.put_room(final[room_id])
        return final

    return run


def churner(store: MemoryStore, rooms: dict[str, Any], rng: random.Random) -> Writer:
    """Adds a new room, then removes an old one: the total is one above, at most, in between."""

    def run() -> dict[str, Any]:
        final, ids = dict(rooms), list(rooms)
        for n in range(OPERATIONS):
            new = a_room(rng, f"churned-{n}")
            store.put_room(new)
            slot = rng.randrange(len(ids))
            old, ids[slot] = ids[slot], new["_id"]
            if not store.remove_room(old):
                raise AssertionError(f"{old} was not held")
            del final[old]
            final[new["_id"]] = new
        return final

    return run


def grower(store: MemoryStore, rng: random.Random) -> Writer:
    """Adds rooms created outside the window, which never count but make the columns grow."""

    def run() -> dict[str, Any]:
        final = {}
        for n in range(OPERATIONS):
            document = a_room(rng, f"outside-{n}", when=OUTSIDE)
            store.put_room(document)
            final[document["_id"]] = document
        return final

    return run


@pytest.fixture
def fine_thread_switching() -> Iterator[None]:
    """Switches threads every microsecond, so that one update is interrupted by queries."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


@pytest.mark.usefixtures("fine_thread_switching")
@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_queries_see_each_update_whole(strategy: str) -> None:
    """While rooms are moved, replaced, added and removed, every count is of a real state."""
    rng = random.Random(strategy)
    ids = [f"room-{n}" for n in range(ROOMS)]
    initial = {room_id: a_room(rng, room_id) for room_id in ids}
    store = MemoryStore({"rocketchat_room": list(initial.values())}, strategy=strategy)
    # A first query imports numpy for the strategies that use it, outside the race.
    assert counts(store, WINDOW)["<unspecified>"] < ROOMS

    def owned(ids: list[str]) -> dict[str, Any]:
        return {room_id: initial[room_id] for room_id in ids}

    moved, replaced, churned = ids[:MOVED], ids[MOVED : MOVED + REPLACED], ids[-CHURNED:]
    writers = {
        "mover 1": mover(store, owned(moved[::2]), random.Random(1)),
        "mover 2": mover(store, owned(moved[1::2]), random.Random(2)),
        "replacer": replacer(store, owned(replaced), random.Random(3)),
        "churner": churner(store, owned(churned), random.Random(4)),
        "grower": grower(store, random.Random(5)),
    }
    final: dict[str, Any] = {}
    failures: list[str] = []
    wrong_totals: list[int] = []
    reads = [0, 0]
    done = threading.Event()
    deadline = time.monotonic() + SECONDS

    def write(name: str, run: Writer) -> None:
        try:
            final.update(run())
        except Exception as error:  # whatever it is, the test reports it
            failures.append(f"{name}: {error!r}")

    def read(reader: int) -> None:
        try:
            while not done.is_set() and reads[reader] < MOST_READS:
                if time.monotonic() > deadline:
                    failures.append(f"reader {reader}: out of time")
                    return
                answer = by_agent(store, WINDOW, Visibility.everything())
                total = sum(answer.per_agent.values()) + answer.unspecified
                # The churner holds one extra room between its two updates, no more.
                if not ROOMS <= total <= ROOMS + 1:
                    wrong_totals.append(total)
                reads[reader] += 1
        except Exception as error:  # whatever it is, the test reports it
            failures.append(f"reader {reader}: {error!r}")

    # Daemons, so that a thread stuck by a broken store cannot keep the test run alive.
    threads = [threading.Thread(target=write, args=item, daemon=True) for item in writers.items()]
    readers = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(2)]
    for thread in [*readers, *threads]:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    done.set()
    for thread in readers:
        thread.join(max(0.0, deadline - time.monotonic()))

    assert [thread.name for thread in [*threads, *readers] if thread.is_alive()] == []
    assert failures == []
    assert wrong_totals == [], f"{len(wrong_totals)} of {sum(reads)} counts were wrong"
    assert min(reads) > 0
    # No update was lost: the store holds exactly what the writers last wrote.
    assert store.room_count == len(final) == ROOMS + OPERATIONS
    expected = MemoryStore({"rocketchat_room": list(final.values())}, strategy="scan")
    for window in (WINDOW, TimeWindow(T0, OUTSIDE + timedelta(days=1))):
        assert counts(store, window) == counts(expected, window)
