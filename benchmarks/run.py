"""The benchmark harness: build and query every strategy over a sweep of synthetic workspaces.

Run ``python -m benchmarks --help``. Progress goes to stderr; the table goes to stdout and,
with a chart, to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from benchmarks import peers
from benchmarks.data import ADMIN, END, MONITOR, columns, generate, write_export
from convstats import (
    ConversationsByAgent,
    ConversationsByAgentEndpoint,
    RocketChatAuthority,
    TimeWindow,
    Visibility,
)
from convstats.model import Caller, Grouping
from convstats.ports import RoomStore
from convstats_adapters.memory import STRATEGY_NAMES, MemoryStore

RESULTS = Path(__file__).resolve().parent / "results"
LOAD_KINDS = ("convstats", "reference", "duckdb", "duckdb-table", "polars")
WINDOWS = {"1d": timedelta(days=1), "30d": timedelta(days=30), "1y": timedelta(days=365)}
MONGODB_URI_VARIABLE = "CONVSTATS_MONGODB_URI"


@attrs.define
class Row:
    strategy: str
    rooms: int
    agents: int
    window: str
    scope: str
    build_s: float | None
    median_ms: float
    p95_ms: float
    queries: int
    counting_b: float | None = None  # counting structures a room (footprint, no id map)
    held_b: float | None = None  # everything the store allocated and holds, a room (tracemalloc)
    peak_b: float | None = None  # tracemalloc peak while building, a room
    plan: str = ""
    handle_ms: float | None = None  # ConversationsByAgentEndpoint.handle(), end to end


@attrs.define
class LoadRow:
    kind: str
    rooms: int
    file_mib: float
    seconds: float
    peak_rss_mib: float
    held_b: float | None = None  # tracemalloc, bytes allocated by the load and still held
    footprint_b: float | None = None  # store.footprint(), every component
    query_ms: float | None = None  # count_conversations on the loaded store, 30d, unscoped
    plan: str = ""


def _counts(text: str) -> list[int]:
    if text.strip() in ("", "none"):
        return []
    return [int(float(part.replace("k", "e3").replace("M", "e6"))) for part in text.split(",")]


def _names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(choices)}")
        return names

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Build and query each in-memory strategy (and MongoDB when "
            f"{MONGODB_URI_VARIABLE} is set) over seeded synthetic Rocket.Chat workspaces. "
            "The default sweep (10k/100k/1M rooms x 10/200/5000 agents x 1d/30d/1y, "
            "unscoped and monitor-scoped) takes about 4 minutes on 2 cores and under 1 GiB; "
            "--rooms 10M adds roughly 4 minutes and 8-10 GiB per agent count."
        ),
    )
    parser.add_argument(
        "--rooms",
        type=_counts,
        default=[10_000, 100_000, 1_000_000],
        help="room counts, e.g. 10k,100k,1M,10M (default: 10k,100k,1M)",
    )
    parser.add_argument(
        "--agents",
        type=_counts,
        default=[10, 200, 5000],
        help="agent counts (default: 10,200,5000)",
    )
    parser.add_argument(
        "--windows",
        type=_names(tuple(WINDOWS)),
        default=list(WINDOWS),
        help="windows ending at the newest room: 1d,30d,1y (default: all)",
    )
    parser.add_argument(
        "--strategies",
        type=_names(STRATEGY_NAMES),
        default=["scan", "columnar", "indexed", "auto"],
        help="strategies to measure (default: scan,columnar,indexed,auto)",
    )
    parser.add_argument(
        "--scopes",
        type=_names(("all", "monitor")),
        default=["all", "monitor"],
        help="all (unrestricted) and/or monitor (one unit) (default: both)",
    )
    parser.add_argument(
        "--repeat", type=int, default=15, help="queries per measurement, at most (default: 15)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=2.0,
        help="seconds per measurement after the first 3 queries (default: 2)",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the second, traced build that measures memory",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 queries a measurement, no traced build, and loads of 100k rooms only",
    )
    parser.add_argument(
        "--load",
        type=_counts,
        default=None,
        help="room counts of the mongoexport load comparison, e.g. 1M or 10M, or none "
        "(default: 1M; 100k with --quick)",
    )
    parser.add_argument(
        "--load-kinds",
        type=_names(LOAD_KINDS),
        default=["convstats", "duckdb", "duckdb-table", "polars"],
        help=f"loaders to compare, of {','.join(LOAD_KINDS)} (default: all but reference, "
        "which takes about 37 s and 3.7 GiB a million rooms)",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="leave polars, duckdb and numpy out of the query measurements",
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.no_memory = 3, True
    if args.load is None:
        args.load = [100_000] if args.quick else [1_000_000]
    return args


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def time_queries(
    store: RoomStore, window: TimeWindow, visibility: Visibility, repeat: int, budget: float
) -> list[float]:
    samples: list[float] = []
    began = time.perf_counter()
    while len(samples) < repeat and (len(samples) < 3 or time.perf_counter() - began < budget):
        start = time.perf_counter()
        store.count_groups(Grouping.AGENT, window, visibility)
        samples.append(time.perf_counter() - start)
    return samples


def measured(*head: Any, samples: list[float], **extra: Any) -> Row:
    """A row of ``head`` (strategy … build), the median, p95 and count of ``samples`` (s)."""
    return Row(
        *head,
        statistics.median(samples) * 1e3,
        p95(samples) * 1e3,
        len(samples),
        **extra,
    )


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure_memory(data: dict[str, Any], strategy: str, rooms: int) -> tuple[float, float, float]:
    """Build again under tracemalloc: bytes held and peak bytes a room, and counting bytes."""
    gc.collect()
    tracemalloc.start()
    store = MemoryStore(data, strategy=strategy)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    footprint = store.footprint()
    counting = sum(size for part, size in footprint.items() if part != "id map")
    return counting / rooms, held / rooms, peak / rooms


def bench_memory_strategies(
    args: argparse.Namespace, rooms: int, agents: int, data: dict[str, Any]
) -> list[Row]:
    rows: list[Row] = []
    for strategy in args.strategies:
        gc.collect()
        progress(f"  {strategy}: building")
        began = time.perf_counter()
        store = MemoryStore(data, strategy=strategy)
        build = time.perf_counter() - began
        progress(f"  {strategy}: built in {build:.2f} s; querying")
        endpoint = ConversationsByAgentEndpoint(
            reports=ConversationsByAgent(store=store),
            authority=RocketChatAuthority(directory=store),
        )
        for scope, visibility in visibilities_for(store, args.scopes).items():
            for label in args.windows:
                window = TimeWindow(END - WINDOWS[label], END)
                samples = time_queries(store, window, visibility, args.repeat, args.budget)
                plan = store.explain(window, visibility).value
                handled = time_handle(endpoint, window, CALLERS[scope], args.repeat, args.budget)
                rows.append(
                    measured(
                        strategy,
                        rooms,
                        agents,
                        label,
                        scope,
                        build,
                        samples=samples,
                        plan=plan,
                        handle_ms=statistics.median(handled) * 1e3,
                    )
                )
        del store
        if not args.no_memory:
            progress(f"  {strategy}: traced build for memory")
            counting, held, peak = measure_memory(data, strategy, rooms)
            for row in rows:
                if row.strategy == strategy:
                    row.counting_b = None if strategy == "scan" else counting
                    row.held_b, row.peak_b = held, peak
    return rows


#: Who asks the end-to-end requests of each scope.
CALLERS = {"all": ADMIN, "monitor": MONITOR}


def time_handle(
    endpoint: ConversationsByAgentEndpoint,
    window: TimeWindow,
    user: str,
    repeat: int,
    budget: float,
) -> list[float]:
    params = {"start": window.start.isoformat(), "end": window.end.isoformat()}
    samples: list[float] = []
    began = time.perf_counter()
    while len(samples) < repeat and (len(samples) < 3 or time.perf_counter() - began < budget):
        start = time.perf_counter()
        response = endpoint.handle(params, user)
        samples.append(time.perf_counter() - start)
        assert response.status == 200, response.body
    return samples


def bench_peers(args: argparse.Namespace, rooms: int, agents: int) -> list[Row]:
    """polars, duckdb and a numpy bincount on the same rooms, unscoped."""
    if args.no_peers or "all" not in args.scopes:
        return []
    progress("  peers: polars, duckdb, numpy")
    found: list[Row] = []
    for name, query in peers.queries(columns(rooms, agents, seed=args.seed)).items():
        for label in args.windows:
            window = TimeWindow(END - WINDOWS[label], END)
            start, end = window.start_ms, window.end_ms
            query(start, end)  # a first run: plans, caches
            samples: list[float] = []
            began = time.perf_counter()
            while len(samples) < args.repeat and (
                len(samples) < 3 or time.perf_counter() - began < args.budget
            ):
                at = time.perf_counter()
                query(start, end)
                samples.append(time.perf_counter() - at)
            found.append(
                Row(
                    name,
                    rooms,
                    agents,
                    label,
                    "all",
                    None,
                    statistics.median(samples) * 1e3,
                    p95(samples) * 1e3,
                    len(samples),
                )
            )
    return found


def bench_loads(args: argparse.Namespace) -> list[LoadRow]:
    """Load a mongoexport directory with each loader, each in a process of its own."""
    found: list[LoadRow] = []
    for rooms in args.load:
        with tempfile.TemporaryDirectory(prefix="convstats-export-") as folder:
            path = Path(folder)
            progress(f"load {rooms:,} rooms: writing the export")
            size = write_export(path, rooms, 200, seed=args.seed) / 2**20
            progress(f"load {rooms:,} rooms: {size:,.0f} MiB of rooms")
            for kind in args.load_kinds:
                options = ["--query", str(args.repeat)] if kind == "convstats" else []
                result = _child(kind, path, options)
                if result is None:
                    continue
                row = LoadRow(
                    kind, result["rooms"], size, result["seconds"], result["peak_rss_mib"]
                )
                row.footprint_b = result.get("footprint_b")
                row.query_ms = result.get("query_ms")
                row.plan = result.get("plan", "")
                # tracemalloc slows allocation several times: a second load measures it.
                if kind == "convstats" and not args.no_memory and rooms <= 2_000_000:
                    traced = _child(kind, path, ["--trace"])
                    row.held_b = None if traced is None else traced["held_b"]
                progress(f"  {kind}: {row.seconds:.2f} s, peak RSS {row.peak_rss_mib:,.0f} MiB")
                found.append(row)
    return found


def _child(kind: str, path: Path, options: list[str]) -> dict[str, Any] | None:
    """One load in a process of its own; ``None`` (said on stderr) when it could not run."""
    command = [sys.executable, "-m", "benchmarks.export_load", kind, str(path), *options]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:  # a peer that is not installed (--group bench), say
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        progress(f"  {kind}: not measured ({last})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_mongodb(
    args: argparse.Namespace, rooms: int, agents: int, data: dict[str, Any]
) -> list[Row]:
    """MongoDB, only against a real server: timings on an emulator would mean nothing."""
    uri = os.environ.get(MONGODB_URI_VARIABLE)
    if not uri:
        return []
    try:
        from convstats_adapters.mongo import MongoStore
    except ImportError as error:
        progress(f"  mongodb: skipped ({error})")
        return []
    rows: list[Row] = []
    with MongoStore(uri, database="convstats_bench") as store:
        database = store.mongo_database
        progress("  mongodb: loading")
        began = time.perf_counter()
        for name, documents in data.items():
            database.drop_collection(name)
            for first in range(0, len(documents), 50_000):
                database[name].insert_many(
                    [dict(doc) for doc in documents[first : first + 50_000]], ordered=False
                )
        store.ensure_indexes()
        build = time.perf_counter() - began
        for scope, visibility in visibilities_for(store, args.scopes).items():
            for label in args.windows:
                window = TimeWindow(END - WINDOWS[label], END)
                samples = time_queries(store, window, visibility, args.repeat, args.budget)
                rows.append(
                    measured("mongodb", rooms, agents, label, scope, build, samples=samples)
                )
        for name in data:
            database.drop_collection(name)
    return rows


def visibilities_for(directory: Any, scopes: Sequence[str]) -> dict[str, Visibility]:
    authority = RocketChatAuthority(directory=directory)
    chosen = {
        "all": Visibility.everything(),
        "monitor": authority.visibility(Caller(MONITOR, roles=frozenset({"livechat-monitor"}))),
    }
    return {scope: chosen[scope] for scope in scopes}


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| rooms | agents | window | scope | strategy | build s | query median ms | query p95 ms "
        "| n | handle ms | counting B/room | held B/room | build peak B/room |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        strategy = f"{row.strategy} ({row.plan})" if row.strategy == "auto" else row.strategy
        lines.append(
            f"| {row.rooms:,} | {row.agents:,} | {row.window} | {row.scope} | {strategy} "
            f"| {_number(row.build_s, 2)} | {_number(row.median_ms, 3)} | {_number(row.p95_ms, 3)} "
            f"| {row.queries} | {_number(row.handle_ms, 3)} | {_number(row.counting_b)} "
            f"| {_number(row.held_b)} | {_number(row.peak_b)} |"
        )
    return "\n".join(lines)


def load_table(rows: Sequence[LoadRow]) -> str:
    lines = [
        "| rooms | loader | rooms file MiB | load s | peak RSS MiB | held B/room "
        "| footprint B/room | query ms (30d, all) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        query = "" if row.query_ms is None else f"{row.query_ms:,.3f} ({row.plan})"
        lines.append(
            f"| {row.rooms:,} | {row.kind} | {row.file_mib:,.0f} | {row.seconds:,.2f} "
            f"| {row.peak_rss_mib:,.0f} | {_number(row.held_b)} | {_number(row.footprint_b)} "
            f"| {query} |"
        )
    return "\n".join(lines)


def find(
    rows: Sequence[Row],
    strategy: str,
    rooms: int,
    agents: int = 200,
    window: str = "30d",
    scope: str = "all",
) -> Row | None:
    for row in rows:
        if (row.strategy, row.rooms, row.agents, row.window, row.scope) == (
            strategy,
            rooms,
            agents,
            window,
            scope,
        ):
            return row
    return None


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def targets(rows: Sequence[Row], loads: Sequence[LoadRow]) -> str:
    """The targets, each from the figures of this run (ratios within one run)."""
    lines = ["## Targets", ""]
    million = 1_000_000
    by_kind = {(row.kind, row.rooms): row for row in loads}
    fast, duck = by_kind.get(("convstats", million)), by_kind.get(("duckdb", million))
    if fast and duck:
        time_ratio = fast.seconds / duck.seconds
        rss_ratio = fast.peak_rss_mib / duck.peak_rss_mib
        lines.append(
            f"- load 1M rooms within 2x of duckdb read_json (needed columns, then the count): "
            f"{fast.seconds:.2f} s vs {duck.seconds:.2f} s = {time_ratio:.2f}x "
            f"-> {_verdict(time_ratio <= 2)}; peak RSS {fast.peak_rss_mib:,.0f} vs "
            f"{duck.peak_rss_mib:,.0f} MiB = {rss_ratio:.2f}x -> {_verdict(rss_ratio <= 2)}"
        )
        table_row = by_kind.get(("duckdb-table", million))
        if table_row:
            lines.append(
                f"  (duckdb holding those columns in a table: {table_row.seconds:.2f} s, "
                f"{table_row.peak_rss_mib:,.0f} MiB; ours {fast.seconds / table_row.seconds:.2f}x "
                "of that)"
            )
    else:
        lines.append("- load: not measured (needs --load 1M with convstats and duckdb)")
    for agents in (200, 5000):
        row = find(rows, "auto", million, agents)
        if row and row.held_b is not None:
            lines.append(
                f"- whole store <= 32 bytes a room (auto, 1M rooms, {agents} agents, tracemalloc, "
                f"id look-up included): {row.held_b:.1f} B -> {_verdict(row.held_b <= 32)}"
            )
    if fast and fast.held_b is not None:
        lines.append(
            f"- whole store <= 32 bytes a room, loaded by from_path (1M rooms, 200 agents): "
            f"{fast.held_b:.1f} B -> {_verdict(fast.held_b <= 32)}"
        )
    auto, polars = find(rows, "auto", million), find(rows, "polars", million)
    if auto and polars and auto.handle_ms:
        ratio = polars.median_ms / auto.handle_ms
        lines.append(
            f"- handle() >= 10x faster than a polars lazy filter + group-by (1M rooms, 200 "
            f"agents, 30d, unscoped): {ratio:.1f}x (handle {auto.handle_ms:.3f} ms, polars "
            f"{polars.median_ms:.3f} ms) -> {_verdict(ratio >= 10)}"
        )
    for strategy in ("auto", "indexed"):
        row, numpy_row = (
            find(rows, strategy, million, 5000),
            find(rows, "numpy bincount", million, 5000),
        )
        if row and numpy_row:
            ratio = numpy_row.median_ms / row.median_ms
            lines.append(
                f"- count >= 10x faster than a numpy bincount at 5,000 agents ({strategy}, 1M "
                f"rooms, 30d, unscoped): {ratio:.1f}x ({row.median_ms:.3f} ms vs "
                f"{numpy_row.median_ms:.3f} ms) -> {_verdict(ratio >= 10)}"
            )
    lines.extend(
        f"- {row.rooms:,} rooms: loaded in {row.seconds:.1f} s, peak RSS "
        f"{row.peak_rss_mib:,.0f} MiB, {row.footprint_b or 0:.1f} B a room (footprint), "
        f"query {row.query_ms or 0:.3f} ms ({row.plan})"
        for row in loads
        if row.kind == "convstats" and row.rooms >= 10_000_000
    )
    return "\n".join(lines)


def chart(rows: Sequence[Row], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress("matplotlib is not installed (dependency group 'bench'): no chart")
        return False
    agents = sorted({row.agents for row in rows})
    figure, axes = plt.subplots(1, len(agents), figsize=(5 * len(agents), 4), squeeze=False)
    window = "30d" if any(row.window == "30d" for row in rows) else rows[0].window
    for axis, count in zip(axes[0], agents, strict=True):
        for strategy in sorted({row.strategy for row in rows}):
            points = sorted(
                (row.rooms, row.median_ms)
                for row in rows
                if row.strategy == strategy
                and row.agents == count
                and row.window == window
                and row.scope == "all"
            )
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=strategy)
        axis.set(
            xscale="log",
            yscale="log",
            xlabel="rooms",
            ylabel="query median (ms)",
            title=f"{count} agents, {window} window, unscoped",
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[Row] = []
    for rooms in args.rooms:
        for agents in args.agents:
            progress(f"{rooms:,} rooms, {agents:,} agents: generating")
            began = time.perf_counter()
            data = generate(rooms, agents, seed=args.seed)
            progress(
                f"{rooms:,} rooms, {agents:,} agents: generated in "
                f"{time.perf_counter() - began:.1f} s"
            )
            rows += bench_memory_strategies(args, rooms, agents, data)
            rows += bench_peers(args, rooms, agents)
            rows += bench_mongodb(args, rooms, agents, data)
            del data
            gc.collect()
    loads = bench_loads(args)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    sections = [
        "# Benchmark results",
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, seed {args.seed}; "
        f"query = `count_groups` (by agent), handle = `ConversationsByAgentEndpoint.handle()`; "
        f"peers: {', '.join(peers.installed())}; peak RSS of the run {peak_rss:.2f} GiB "
        "(the loads ran in processes of their own).",
    ]
    if rows:
        sections.append(table(rows))
    if loads:
        sections += ["## Loading a mongoexport directory (200 agents)", load_table(loads)]
    sections.append(targets(rows, loads))
    report = "\n\n".join(sections)
    if not os.environ.get(MONGODB_URI_VARIABLE):
        report += (
            f"\n\nMongoDB not measured: {MONGODB_URI_VARIABLE} is not set "
            "(timings on mongomock would not be meaningful)."
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"results-{stamp}.md").write_text(report + "\n", encoding="utf-8")
    charted = bool(rows) and chart(rows, args.out / f"query-time-{stamp}.png")
    print(report)
    progress(f"wrote {args.out}/results-{stamp}.md" + (" and the chart" if charted else ""))
    return 0
