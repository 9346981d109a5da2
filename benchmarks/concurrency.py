"""What the memory store's lock costs a query, and whether readers would gain from sharing it.

Run ``python -m benchmarks.concurrency --help``. For each strategy it builds a store and, from
the same rooms, a bare ``FactTable`` that ``counting.count`` reads without any lock (the code
a query ran before the lock, and the most a readers-writer lock could ever give readers):

- the cost of taking and releasing an uncontended ``threading.Lock``;
- the median query time through the store (locked) and on the bare table (unlocked),
  measured alternately so that the machine's drift hits both alike;
- the queries a second answered by 1 and 2 threads querying at once, locked and unlocked:
  if two unlocked readers do not answer more than two locked ones, a readers-writer lock has
  nothing to win;
- how long a ``set_served_by`` waits while two threads query without pause.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import timeit
from collections.abc import Callable, Sequence
from datetime import timedelta

from benchmarks.data import END, generate
from benchmarks.run import _counts, _names, progress
from convstats import Grouping, TimeWindow, TotalMode, Visibility
from convstats_adapters import documents as doc
from convstats_adapters.memory import STRATEGY_NAMES, MemoryStore, counting
from convstats_adapters.memory.table import FactTable

WINDOW = TimeWindow(END - timedelta(days=30), END)
EVERYTHING = Visibility.everything()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.concurrency",
        description="The memory store's lock: its cost to a query, and readers in parallel.",
    )
    parser.add_argument("--rooms", type=_counts, default=[100_000], help="default: 100k")
    parser.add_argument("--agents", type=int, default=200, help="default: 200")
    parser.add_argument(
        "--strategies",
        type=_names(STRATEGY_NAMES),
        default=["scan", "columnar", "indexed", "auto"],
        help="default: scan,columnar,indexed,auto",
    )
    parser.add_argument("--budget", type=float, default=1.0, help="seconds a measurement")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    return parser.parse_args(argv)


def lock_cost_ns() -> float:
    lock = threading.Lock()

    def take() -> None:
        with lock:
            pass

    number = 1_000_000
    return min(timeit.repeat(take, number=number, repeat=5)) / number * 1e9


def alternate(
    first: Callable[[], object], second: Callable[[], object], budget: float
) -> tuple[float, float]:
    """Median seconds of each, timed in turn (at least 5 pairs, then until the budget)."""
    samples: tuple[list[float], list[float]] = ([], [])
    began = time.perf_counter()
    while len(samples[0]) < 5 or (time.perf_counter() - began < budget and len(samples[0]) < 500):
        for query, into in ((first, samples[0]), (second, samples[1])):
            start = time.perf_counter()
            query()
            into.append(time.perf_counter() - start)
    return statistics.median(samples[0]), statistics.median(samples[1])


def throughput(query: Callable[[], object], threads: int, budget: float) -> float:
    """Queries a second answered by ``threads`` threads querying without pause."""
    answered = [0] * threads
    stop = threading.Event()

    def run(n: int) -> None:
        while not stop.is_set():
            query()
            answered[n] += 1

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    stop.wait(budget)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(answered) / (time.perf_counter() - began)


def update_waits(store: MemoryStore, room_ids: list[str], budget: float) -> tuple[float, float]:
    """Median and largest seconds a ``set_served_by`` takes while two threads query."""
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            store.count_groups(Grouping.AGENT, WINDOW, EVERYTHING)

    readers = [threading.Thread(target=query) for _ in range(2)]
    for reader in readers:
        reader.start()
    waits: list[float] = []
    began = time.perf_counter()
    while len(waits) < 5 or (time.perf_counter() - began < budget and len(waits) < 1000):
        start = time.perf_counter()
        store.set_served_by(room_ids[len(waits) % len(room_ids)], {"_id": "agent-0"})
        waits.append(time.perf_counter() - start)
    stop.set()
    for reader in readers:
        reader.join()
    return statistics.median(waits), max(waits)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Python {sys.version.split()[0]}; 30-day window, unscoped; {args.agents} agents")
    print(f"\nuncontended threading.Lock, taken and released: {lock_cost_ns():.0f} ns\n")
    print(
        "| rooms | strategy | locked ms | unlocked ms | 1 thread q/s locked | unlocked "
        "| 2 threads q/s locked | unlocked | update wait median ms | max ms |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rooms in args.rooms:
        data = generate(rooms, args.agents, seed=args.seed)
        room_ids = [room["_id"] for room in data["rocketchat_room"][:1000]]
        for strategy in args.strategies:
            progress(f"{rooms:,} rooms, {strategy}")
            store = MemoryStore(data, strategy=strategy)
            table = FactTable(indexed=counting.needs_index(strategy))
            table.load((doc.id_key(room["_id"]), room) for room in data["rocketchat_room"])

            def locked(store: MemoryStore = store) -> object:
                return store.count_groups(Grouping.AGENT, WINDOW, EVERYTHING)

            def unlocked(table: FactTable = table, strategy: str = strategy) -> object:
                return counting.count(
                    strategy, table, Grouping.AGENT, WINDOW, EVERYTHING, TotalMode.CONVSTATS
                )

            if locked() != unlocked():
                raise AssertionError(f"{strategy}: the two paths disagree")
            with_lock, without = alternate(locked, unlocked, args.budget)
            rates = [
                throughput(query, threads, args.budget)
                for threads in (1, 2)
                for query in (locked, unlocked)
            ]
            wait, longest = update_waits(store, room_ids, args.budget)
            print(
                f"| {rooms:,} | {strategy} | {with_lock * 1e3:.3f} | {without * 1e3:.3f} | "
                + " | ".join(f"{rate:,.0f}" for rate in rates)
                + f" | {wait * 1e3:.3f} | {longest * 1e3:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
