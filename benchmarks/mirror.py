"""The live mirror: its snapshot, the changes it applies a second, its lag, its answers.

Run ``python -m benchmarks.mirror --help``. Progress goes to stderr, the tables to stdout.

- **snapshot**: :meth:`MongoMirror.load` of ``--rooms`` rooms from a source that answers at
  once (a stand-in client serving generated documents through ``MongoStore.documents``, as
  a driver hands them over): the mirror's own cost, the server's left out. Time, the memory
  it holds afterwards (RSS growth and the store's footprint), and the peak on the way; and
  the time of the whole path from mongomock at ``--small`` rooms.
- **answers**: the median time of each report (``Conversations.report``, 30-day window) on
  that mirror, unscoped and for a monitor of one unit; beside it, the same report by
  ``MongoStore`` on mongomock (``--small`` rooms: an emulator's time, shown for the
  mechanics only) and on the real server when ``CONVSTATS_MONGODB_URI`` is set.
- **changes a second**: ``--changes`` room writes applied by one round: by polling
  mongomock (``--small`` rooms), through the change stream of a scripted server on
  127.0.0.1 (pymongo decoding the wire format, the server's cost left out), and on the real
  server when configured (its writes and the follower's reads both timed).
- **lag**: a writer transfers rooms ``--rate`` times a second for ``--seconds`` seconds
  while a reader answers the by-agent report over and over; the lag of a write is the time
  until an answer first shows it (p50, p99), polling mongomock (``--lag-rooms`` rooms) every
  ``--intervals`` seconds, and on the real server when configured.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

from benchmarks.data import END, MONITOR, columns, directory
from benchmarks.run import _counts, progress
from convstats import TimeWindow, Visibility
from convstats.authz import RocketChatAuthority
from convstats.model import Caller, Grouping
from convstats.ports import Workspace
from convstats.report import Conversations
from convstats_adapters.mirror import MongoMirror
from convstats_adapters.mongo import MongoStore

MONGODB_URI_VARIABLE = "CONVSTATS_MONGODB_URI"
WINDOW = TimeWindow(END - timedelta(days=30), END)
UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mirror",
        description="The live mirror: snapshot, changes a second, lag, answers.",
    )
    parser.add_argument("--rooms", type=_counts, default=[1_000_000], help="default: 1M")
    parser.add_argument(
        "--small", type=_counts, default=[20_000], help="rooms in mongomock (default: 20k)"
    )
    parser.add_argument("--agents", type=int, default=200, help="default: 200")
    parser.add_argument(
        "--lag-rooms", type=_counts, default=[2_000], help="rooms of the lag runs (default: 2k)"
    )
    parser.add_argument("--changes", type=int, default=5000, help="default: 5000")
    parser.add_argument("--rate", type=float, default=50.0, help="writes a second (default: 50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="of writing (default: 10)")
    parser.add_argument(
        "--intervals",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[0.1, 1.0],
        help="poll intervals of the lag runs (default: 0.1,1)",
    )
    parser.add_argument("--repeat", type=int, default=15, help="queries a median (default: 15)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rooms, args.small, args.changes, args.seconds = [50_000], [2_000], 500, 3.0
        args.lag_rooms = [1_000]
    return args


# -- a workspace, generated lazily --------------------------------------------------------


def room_documents(rooms: int, agents: int, seed: int) -> Iterator[dict[str, Any]]:
    """The rooms of ``benchmarks.data.generate``, built one at a time, never all held."""
    drawn = columns(rooms, agents, seed)
    served_by = [{"_id": f"agent-{n}", "username": f"agent{n}"} for n in range(agents)]
    ancestors = [[f"unit-{n % 4}"] for n in range(20)]
    ms = timedelta(milliseconds=1)
    for n, (created, who, where, live) in enumerate(
        zip(
            drawn.ts.tolist(),
            drawn.agent.tolist(),
            drawn.department.tolist(),
            drawn.livechat.tolist(),
            strict=True,
        )
    ):
        ts = _EPOCH + created * ms
        room: dict[str, Any] = {
            "_id": f"room{n:013d}",
            "t": "l" if live else "d",
            "ts": ts,
            "open": bool(n % 3),
            "source": {"type": "widget"},
            "_updatedAt": ts,
        }
        if who >= 0:
            room["servedBy"] = served_by[who]
        if where >= 0:
            room["departmentId"] = f"dep-{where}"
            room["departmentAncestors"] = ancestors[where]
        yield room


class _Found:
    """A stand-in cursor: documents as a driver hands them over, a batch at a time."""

    def __init__(self, documents: Iterator[dict[str, Any]]) -> None:
        self._documents = documents

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._documents

    def sort(self, *args: Any, **kwargs: Any) -> _Found:
        return self

    def limit(self, count: int) -> _Found:
        return self

    def close(self) -> None:
        pass


class _Collection:
    def __init__(self, source: InstantSource, name: str) -> None:
        self._source, self._name = source, name

    def find(self, query: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> _Found:
        if query and ("_updatedAt" in query or "_deletedAt" in query):
            return _Found(iter(()))  # nothing changes in this database
        if self._name == "rocketchat_room":
            return _Found(
                room_documents(self._source.rooms, self._source.agents, self._source.seed)
            )
        return _Found(iter(self._source.directory.get(self._name, [])))


@attrs.define
class InstantSource:
    """A stand-in client whose database answers at once: the generated workspace, unchanging."""

    rooms: int
    agents: int
    seed: int
    directory: dict[str, list[dict[str, Any]]] = attrs.field(init=False)
    name: str = "bench"

    def __attrs_post_init__(self) -> None:
        self.directory = directory(self.agents)

    @property
    def client(self) -> InstantSource:
        return self

    def get_database(self, name: str | None = None, **options: Any) -> InstantSource:
        return self

    def with_options(self, **options: Any) -> InstantSource:
        return self

    def get_collection(self, name: str) -> _Collection:
        return _Collection(self, name)


# -- measuring ------------------------------------------------------------------------------


def rss_mib() -> float:
    """The resident set size now, in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_ms(call: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def monitor_visibility(store: Workspace) -> Visibility:
    authority = RocketChatAuthority(directory=store)
    return authority.visibility(Caller(user_id=MONITOR, roles=frozenset({"livechat-monitor"})))


def answer_times(store: Workspace, repeat: int) -> dict[tuple[str, str], float]:
    """Median ms of each report, unscoped and for the monitor."""
    scopes = {"all": Visibility.everything(), "monitor": monitor_visibility(store)}
    times = {}
    for grouping in Grouping:
        reports = Conversations(store=store, grouping=grouping)
        for scope, visibility in scopes.items():
            times[grouping.value, scope] = median_ms(
                lambda reports=reports, visibility=visibility: reports.report(
                    WINDOW, visibility=visibility
                ),
                repeat,
            )
    return times


# -- the benchmarks ----------------------------------------------------------------------------


@attrs.define
class Snapshot:
    rooms: int
    held: int
    seconds: float
    rss_mib: float
    peak_mib: float
    footprint_b: float


def bench_snapshot(rooms: int, args: argparse.Namespace) -> tuple[Snapshot, MongoMirror]:
    progress(f"snapshot of {rooms:,} rooms from an instant source")
    source = MongoStore(InstantSource(rooms, args.agents, args.seed), database="bench")  # type: ignore[arg-type]
    mirror = MongoMirror(source, follow="poll")
    gc.collect()
    before, peak_before = rss_mib(), peak_rss_mib()
    started = time.perf_counter()
    mirror.load()
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_mib()
    held = mirror.room_count
    footprint = sum(mirror._current().store.footprint().values())
    peak = max(peak_rss_mib() - peak_before, after - before)
    return Snapshot(rooms, held, seconds, after - before, peak, footprint / max(held, 1)), mirror


@contextlib.contextmanager
def mongomock_workspace(rooms: int, args: argparse.Namespace) -> Iterator[tuple[Any, MongoStore]]:
    """A mongomock database holding the generated workspace, and its MongoStore."""
    import mongomock

    client = mongomock.MongoClient(tz_aware=True)
    database = client.get_database("bench")
    database.rocketchat_room.insert_many(list(room_documents(rooms, args.agents, args.seed)))
    for name, documents in directory(args.agents).items():
        database[name].insert_many([dict(document) for document in documents])
    yield database, MongoStore(client, database="bench")


@contextlib.contextmanager
def real_workspace(rooms: int, args: argparse.Namespace) -> Iterator[tuple[Any, MongoStore]]:
    """The generated workspace in a fresh database of the real server, dropped afterwards."""
    from pymongo import MongoClient

    uri = os.environ[MONGODB_URI_VARIABLE]
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    name = f"convstats_mirror_bench_{uuid.uuid4().hex[:8]}"
    try:
        database = client[name]
        batch: list[dict[str, Any]] = []
        for room in room_documents(rooms, args.agents, args.seed):
            batch.append(room)
            if len(batch) == 50_000:
                database.rocketchat_room.insert_many(batch, ordered=False)
                batch = []
        if batch:
            database.rocketchat_room.insert_many(batch, ordered=False)
        for collection, documents in directory(args.agents).items():
            database[collection].insert_many([dict(document) for document in documents])
        store = MongoStore(client, database=name)
        store.ensure_indexes()
        yield database, store
    finally:
        client.drop_database(name)
        client.close()


def write_changes(database: Any, count: int, rooms: int, stamp: datetime) -> datetime:
    """``count`` transfers, holds and closes of the first rooms, stamped after ``stamp``."""
    for n in range(count):
        stamp += timedelta(milliseconds=1)
        room = f"room{n % rooms:013d}"
        kind = n % 3
        if kind == 0:
            update: dict[str, Any] = {"$set": {"servedBy": {"_id": f"agent-{n % 7}"}}}
        elif kind == 1:
            update = {"$set": {"onHold": True}}
        else:
            update = {"$unset": {"open": ""}, "$set": {"metrics.chatDuration": 60}}
        update.setdefault("$set", {})["_updatedAt"] = stamp
        database.rocketchat_room.update_one({"_id": room}, update)
    return stamp


def bench_poll_rate(rooms: int, args: argparse.Namespace) -> float:
    progress(f"changes a second: polling mongomock, {rooms:,} rooms")
    with mongomock_workspace(rooms, args) as (database, store):
        mirror = MongoMirror(store, follow="poll")
        mirror.load()
        write_changes(database, args.changes, rooms, END + timedelta(days=1))
        started = time.perf_counter()
        applied = mirror.follow_once()
        seconds = time.perf_counter() - started
        mirror.close()
    return applied / seconds


def bench_stream_rate(args: argparse.Namespace) -> float:
    """Change events through pymongo from a scripted server on 127.0.0.1, applied."""
    progress(f"changes a second: {args.changes:,} events through a scripted change stream")
    from tests.fake_mongo import ChangeStreams, change, fake_mongo

    rooms = list(room_documents(2_000, args.agents, args.seed))
    events = []
    for n in range(1, args.changes + 1):
        room = dict(rooms[n % len(rooms)])
        room["servedBy"] = {"_id": f"agent-{n % 7}"}
        events.append(change(n, "update", document=room))
    batches: list[Any] = [[], []]
    batches += [events[first : first + 1000] for first in range(0, len(events), 1000)]
    script = ChangeStreams({"rocketchat_room": rooms, **directory(args.agents)}, batches)
    with (
        fake_mongo(**script.responders()) as server,
        MongoStore(server.uri(), max_time_ms=30_000) as store,
    ):
        mirror = MongoMirror(store, max_await=0.05)
        mirror.load()
        started = time.perf_counter()
        applied = 0
        while applied < args.changes:
            applied += mirror.follow_once()
        seconds = time.perf_counter() - started
        mirror.close()
    return applied / seconds


def bench_real_rate(
    database: Any, store: MongoStore, rooms: int, args: argparse.Namespace
) -> float:
    progress(f"changes a second: the real server, {args.changes:,} writes")
    with MongoMirror(store, poll_interval=0.05, max_await=0.2) as mirror:
        mirror.sync(timeout=600)
        started = time.perf_counter()
        write_changes(database, args.changes, rooms, datetime.now(UTC))
        mirror.sync(timeout=600)
        seconds = time.perf_counter() - started
    return args.changes / seconds


def bench_lag(
    store: MongoStore, database: Any, rooms: int, args: argparse.Namespace, interval: float
) -> tuple[list[float], str]:
    """Seconds from each write to the first answer showing it, under a steady write rate."""
    mirror = MongoMirror(store, poll_interval=interval, max_await=0.2)
    written: dict[str, float] = {}
    lags: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def write() -> None:
        period, stamp = 1 / args.rate, datetime.now(UTC)
        count = int(args.rate * args.seconds)
        began = time.perf_counter()
        for n in range(count):
            delay = began + n * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            stamp = max(stamp + timedelta(milliseconds=1), datetime.now(UTC))
            agent = f"probe-{n}"
            with lock:
                written[agent] = time.perf_counter()
            database.rocketchat_room.update_one(
                {"_id": f"room{n % rooms:013d}"},
                # t: a probe room counts, whatever the generator made it.
                {"$set": {"t": "l", "servedBy": {"_id": agent}, "_updatedAt": stamp}},
            )
        done.set()

    reports = Conversations(store=mirror, grouping=Grouping.AGENT)
    everything = TimeWindow(_EPOCH, END + timedelta(days=3650))
    with mirror:
        mirror.sync(timeout=600)
        follow = mirror.status().follow or "?"
        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.perf_counter() + args.seconds + 60
        while time.perf_counter() < deadline:
            rows = reports.report(everything).rows
            seen_at = time.perf_counter()
            shown = {getattr(row, "agent_id", None) for row in rows}
            with lock:
                lags.extend(
                    seen_at - written.pop(agent) for agent in [a for a in written if a in shown]
                )
                pending = bool(written)
            if done.is_set() and not pending:
                break
            time.sleep(0.002)
        writer.join()
    return lags, follow


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def lag_row(label: str, lags: list[float], args: argparse.Namespace) -> str:
    if not lags:
        return f"| {label} | {args.rate:g}/s | 0 | - | - |"
    return (
        f"| {label} | {args.rate:g}/s | {len(lags)} | {percentile(lags, 0.5) * 1000:,.0f} "
        f"| {percentile(lags, 0.99) * 1000:,.0f} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    real = bool(os.environ.get(MONGODB_URI_VARIABLE))
    out: list[str] = []

    out.append("## Snapshot (an instant source: the mirror's own cost)\n")
    out.append("| rooms | held | load s | RSS growth MiB | peak MiB | footprint B/room |")
    out.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
    mirrors = []
    for rooms in args.rooms:
        snapshot, mirror = bench_snapshot(rooms, args)
        mirrors.append(mirror)
        out.append(
            f"| {rooms:,} | {snapshot.held:,} | {snapshot.seconds:.1f} | {snapshot.rss_mib:,.0f} "
            f"| {snapshot.peak_mib:,.0f} | {snapshot.footprint_b:.1f} |"
        )

    for rooms in args.small:
        progress(f"snapshot of {rooms:,} rooms from mongomock")
        with mongomock_workspace(rooms, args) as (_, store):
            mirror = MongoMirror(store)
            started = time.perf_counter()
            mirror.load()
            seconds = time.perf_counter() - started
            held = mirror.room_count
            mirror.close()
        out.append(f"| {rooms:,} (mongomock) | {held:,} | {seconds:.1f} | | | |")

    out.append("\n## Answers, 30-day window, median ms\n")
    columns_by_name: dict[str, dict[tuple[str, str], float]] = {}
    for rooms, mirror in zip(args.rooms, mirrors, strict=True):
        progress(f"answers: the mirror of {rooms:,} rooms")
        columns_by_name[f"mirror {rooms // 1000:,}k"] = answer_times(mirror, args.repeat)
        mirror.close()
    del mirrors
    for rooms in args.small:
        progress(f"answers: MongoStore on mongomock, {rooms:,} rooms")
        with mongomock_workspace(rooms, args) as (_, store):
            columns_by_name[f"mongomock {rooms // 1000:,}k"] = answer_times(store, 3)
    if real:
        for rooms in args.rooms:
            progress(f"answers: MongoStore on the real server, {rooms:,} rooms")
            with real_workspace(rooms, args) as (database, store):
                columns_by_name[f"mongodb {rooms // 1000:,}k"] = answer_times(store, args.repeat)
                rate = bench_real_rate(database, store, rooms, args)
                real_lags = [bench_lag(store, database, rooms, args, 0.5)]
    names = list(columns_by_name)
    out.append("| report | scope | " + " | ".join(names) + " |")
    out.append("| --- | --- |" + " ---: |" * len(names))
    for key in next(iter(columns_by_name.values())):
        cells = " | ".join(f"{columns_by_name[name][key]:.3f}" for name in names)
        out.append(f"| {key[0]} | {key[1]} | {cells} |")

    out.append("\n## Changes applied a second\n")
    out.append("| how | changes/s |")
    out.append("| --- | ---: |")
    out.extend(
        f"| polling mongomock, {rooms:,} rooms | {bench_poll_rate(rooms, args):,.0f} |"
        for rooms in args.small
    )
    out.append(f"| change stream from a scripted server | {bench_stream_rate(args):,.0f} |")
    if real:
        out.append(f"| the real server (writes and follower) | {rate:,.0f} |")

    out.append("\n## Lag from a write to the first answer showing it\n")
    out.append("| follower | writes | samples | p50 ms | p99 ms |")
    out.append("| --- | ---: | ---: | ---: | ---: |")
    for lag_rooms in args.lag_rooms:
        for interval in args.intervals:
            progress(f"lag: polling mongomock every {interval:g} s, {lag_rooms:,} rooms")
            with mongomock_workspace(lag_rooms, args) as (database, store):
                lags, _ = bench_lag(store, database, lag_rooms, args, interval)
            label = f"polling mongomock every {interval:g} s ({lag_rooms:,} rooms)"
            out.append(lag_row(label, lags, args))
    if real:
        for lags, follow in real_lags:
            out.append(lag_row(f"the real server, by {follow}", lags, args))
    else:
        out.append(f"\n(no real server: set {MONGODB_URI_VARIABLE} to measure it too)")
    print("\n".join(out))
    progress(f"peak RSS of the run {peak_rss_mib() / 1024:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
