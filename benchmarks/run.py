"""The benchmark harness: every contender, every report, over a sweep of generated workspaces.

Run ``python -m benchmarks --help`` (and ``python -m benchmarks compare --help``). Progress
goes to stderr; the tables go to stdout and, with a plot per report and a JSON file of
every measurement, to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from benchmarks import Parser, data, peers
from benchmarks import contenders as known
from benchmarks.contenders import Built, Contender, Shared
from benchmarks.workspace import SCOPES, Workspace
from convstats import Grouping, TimeWindow

RESULTS = Path(__file__).resolve().parent / "results"
WINDOWS = {"1d": timedelta(days=1), "30d": timedelta(days=30), "1y": timedelta(days=365)}
WINDOW_DAYS = {"1d": 1, "30d": 30, "1y": 365}
REPORTS = {grouping.value: grouping for grouping in Grouping}
LOAD_KINDS = ("convstats", "convstats-serial", "reference", "duckdb", "duckdb-table", "polars")
MONGODB_URI_VARIABLE = "CONVSTATS_MONGODB_URI"
#: Above this many rooms the reference is ``columnar`` rather than ``scan``, and the scan is
#: not measured (seconds a query).
SCAN_REFERENCE_LIMIT = 1_000_000


@attrs.define
class Measurement:
    contender: str
    kind: str
    report: str
    rooms: int
    agents: int
    window: str
    scope: str
    samples_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    def key(self) -> tuple[Any, ...]:
        return (self.contender, self.report, self.rooms, self.agents, self.window, self.scope)


@attrs.define
class Failure:
    """A contender that failed, or answered differently from the reference: never ranked."""

    contender: str
    rooms: int
    agents: int
    status: str  # "wrong" or "failed"
    query: str
    detail: str


@attrs.define
class LoadRow:
    kind: str
    form: str
    rooms: int
    file_mib: float
    seconds: float
    peak_rss_mib: float
    groupings: str = "all"
    held_b: float | None = None
    footprint_b: float | None = None


def _counts(text: str) -> list[int]:
    if text.strip() in ("", "none"):
        return []
    try:
        counts = [
            int(float(part.replace("k", "e3").replace("M", "e6"))) for part in text.split(",")
        ]
    except (ValueError, OverflowError):  # "many", "nan"; "inf", "1e400"
        raise argparse.ArgumentTypeError(f"{text!r}: give counts such as 10k,1M") from None
    if any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: give counts of 1 or more")
    return counts


def _repeat(text: str) -> int:
    try:
        repeat = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of queries") from None
    if repeat < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 query or more")
    return repeat


def _budget(text: str) -> float:
    try:
        budget = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds, such as 0.5") from None
    if not math.isfinite(budget) or budget < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds, 0 or more")
    return budget


def _names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(choices)}")
        return names

    return parse


def _plant(text: str) -> tuple[str, int]:
    name, _, factor = text.rpartition("=")
    if not name or not factor.isdigit() or int(factor) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give CONTENDER=FACTOR, a factor of 2 or more")
    return name, int(factor)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(
        prog="python -m benchmarks",
        description=(
            "Race every contender (the store's strategies, your own --strategy and --store, "
            "numpy, polars and duckdb) on every report of the Reports page, scoped and "
            "unscoped, over seeded generated workspaces; each answer is checked against the "
            "reference before it is timed. Then load exports of each form beside duckdb and "
            "polars. 'python -m benchmarks compare A.json B.json' compares two runs."
        ),
        epilog=(
            "examples:\n"
            "  python -m benchmarks --list\n"
            "  python -m benchmarks --rooms 1M --agents 200,5000 --load none\n"
            "  python -m benchmarks --strategy mypackage.counting:count --contenders auto\n"
            "  python -m benchmarks compare results/run-A.json results/run-B.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list the known contenders and stop")
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
        "--scopes",
        type=_names(SCOPES),
        default=list(SCOPES),
        help="all (unrestricted) and/or monitor (one unit of four) (default: both)",
    )
    parser.add_argument(
        "--reports",
        type=_names(tuple(REPORTS)),
        default=list(REPORTS),
        help="reports to measure: status,source,department,tags,agent (default: all five)",
    )
    parser.add_argument(
        "--contenders",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=None,
        help="built-in contenders by name (default: all of --list)",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a counting function of your own, run inside MemoryStore (repeatable)",
    )
    parser.add_argument(
        "--store",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help="factory(workspace) -> a room store of your own (repeatable)",
    )
    parser.add_argument(
        "--repeat",
        type=_repeat,
        default=15,
        help="timed queries a measurement, at most (default 15)",
    )
    parser.add_argument(
        "--budget",
        type=_budget,
        default=1.0,
        help="seconds a measurement may take after its first 3 queries (default 1)",
    )
    parser.add_argument(
        "--load",
        type=_counts,
        default=None,
        help="room counts of the export loads, e.g. 1M or 10M, or none (default: 1M)",
    )
    parser.add_argument(
        "--load-forms",
        type=_names(data.EXPORT_FORMS),
        default=list(data.EXPORT_FORMS),
        help="forms of the rooms file to load: lines,gzip,array (default: all three)",
    )
    parser.add_argument(
        "--load-kinds",
        type=_names(LOAD_KINDS),
        default=["convstats", "convstats-serial", "duckdb", "duckdb-table", "polars"],
        help=f"loaders, of {','.join(LOAD_KINDS)} (default: all but reference, a minute a "
        "million rooms)",
    )
    parser.add_argument(
        "--plant",
        type=_plant,
        action="append",
        default=[],
        metavar="CONTENDER=FACTOR",
        help="run each timed query of CONTENDER FACTOR times: a slowdown that compare must flag",
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 queries a measurement and a 100k-room load"
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"results folder (default: {RESULTS})"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 3
    if args.load is None:
        args.load = [100_000] if args.quick else [1_000_000]
    return args


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- queries ---------------------------------------------------------------------------------


@attrs.frozen
class Query:
    report: str
    window: str
    scope: str

    def describe(self, workspace: Workspace) -> str:
        return (
            f"{self.report}, {self.window} window, {self.scope}, {workspace.size:,} rooms, "
            f"{workspace.agents:,} agents"
        )


def queries(args: argparse.Namespace) -> list[Query]:
    return [
        Query(report, window, scope)
        for report in args.reports
        for scope in args.scopes
        for window in args.windows
    ]


def window_of(label: str) -> TimeWindow:
    return TimeWindow(data.END - WINDOWS[label], data.END)


def reference_contender(rooms: int) -> Contender:
    name = "scan" if rooms <= SCAN_REFERENCE_LIMIT else "columnar"
    return known.strategy(name)


def _differs(expected: tuple[dict[Any, int], int], found: tuple[dict[Any, int], int]) -> str:
    (rows, unspecified), (got, got_unspecified) = expected, found
    if unspecified != got_unspecified:
        return f"unspecified {got_unspecified}, expected {unspecified}"
    for key in sorted(set(rows) | set(got), key=repr):
        if rows.get(key, 0) != got.get(key, 0):
            return f"{key!r}: {got.get(key, 0)}, expected {rows.get(key, 0)}"
    return ""


def measure_contender(
    args: argparse.Namespace,
    contender: Contender,
    workspace: Workspace,
    shared: Shared,
    expected: dict[Query, tuple[dict[Any, int], int]],
) -> tuple[list[Measurement], Failure | None, dict[str, int] | None]:
    """Build one contender over ``workspace``, check each query's answer, then time it."""
    plant = dict(args.plant).get(contender.name, 1)
    try:
        built: Built = contender.build(workspace, shared)
    except Exception as error:  # a contender's failure is reported, never the harness's
        return (
            [],
            Failure(
                contender.name,
                workspace.size,
                workspace.agents,
                "failed",
                "building it",
                f"{type(error).__name__}: {error}",
            ),
            None,
        )
    found: list[Measurement] = []
    for query in queries(args):
        grouping, window = REPORTS[query.report], window_of(query.window)
        visibility = workspace.visibility(query.scope)
        try:
            result = built.query(grouping, window, visibility)
            answer = built.answer(grouping, result)
        except Exception as error:
            return (
                found,
                Failure(
                    contender.name,
                    workspace.size,
                    workspace.agents,
                    "failed",
                    query.describe(workspace),
                    f"{type(error).__name__}: {error}",
                ),
                None,
            )
        difference = _differs(expected[query], answer)
        if difference:
            return (
                found,
                Failure(
                    contender.name,
                    workspace.size,
                    workspace.agents,
                    "wrong",
                    query.describe(workspace),
                    difference,
                ),
                None,
            )
        samples: list[float] = []
        began = time.perf_counter()
        while len(samples) < args.repeat and (
            len(samples) < 3 or time.perf_counter() - began < args.budget
        ):
            start = time.perf_counter()
            for _ in range(plant):
                built.query(grouping, window, visibility)
            samples.append((time.perf_counter() - start) * 1e3)
        found.append(
            Measurement(
                contender.name,
                contender.kind,
                query.report,
                workspace.size,
                workspace.agents,
                query.window,
                query.scope,
                samples,
            )
        )
    return found, None, built.footprint


def reference_answers(
    args: argparse.Namespace, workspace: Workspace, shared: Shared
) -> dict[Query, tuple[dict[Any, int], int]]:
    reference = reference_contender(workspace.size)
    built = reference.build(workspace, shared)
    answers = {}
    for query in queries(args):
        grouping = REPORTS[query.report]
        result = built.query(grouping, window_of(query.window), workspace.visibility(query.scope))
        answers[query] = built.answer(grouping, result)
    return answers


def sweep(
    args: argparse.Namespace, chosen: list[Contender]
) -> tuple[list[Measurement], list[Failure], dict[tuple[int, int], dict[str, Any]]]:
    measurements: list[Measurement] = []
    failures: list[Failure] = []
    workspaces: dict[tuple[int, int], dict[str, Any]] = {}
    for rooms in args.rooms:
        for agents in args.agents:
            workspace = Workspace(rooms, agents, args.seed)
            shared = Shared(workspace)
            try:
                progress(f"{rooms:,} rooms, {agents:,} agents: writing the export, loading")
                measured = [
                    contender
                    for contender in chosen
                    if contender.name != "scan" or rooms <= SCAN_REFERENCE_LIMIT
                ]
                table = shared.table
                facets = {g.value: facet.groups for g, facet in table.codes.facets.items()}
                footprint = table.footprint()
                workspaces[rooms, agents] = {
                    "load_s": shared.load_seconds,
                    "groups": facets,
                    "footprint_b": sum(footprint.values()) / rooms,
                }
                progress(
                    f"  loaded in {shared.load_seconds:.1f} s; groups {facets}; "
                    f"reference: {reference_contender(rooms).name}"
                )
                expected = reference_answers(args, workspace, shared)
                for contender in measured:
                    progress(f"  {contender.name}")
                    found, failure, _ = measure_contender(
                        args, contender, workspace, shared, expected
                    )
                    measurements += found
                    if failure is not None:
                        failures.append(failure)
                        progress(f"    {failure.status.upper()}: {failure.query}: {failure.detail}")
                    gc.collect()
            finally:
                workspace.close()
            del shared
            gc.collect()
    return measurements, failures, workspaces


# -- loads -----------------------------------------------------------------------------------


def bench_loads(args: argparse.Namespace) -> list[LoadRow]:
    """Load each form of export with each loader, each load in a process of its own."""
    found: list[LoadRow] = []
    for rooms in args.load:
        for form in args.load_forms:
            with tempfile.TemporaryDirectory(prefix="convstats-export-") as folder:
                path = Path(folder)
                progress(f"load {rooms:,} rooms, {form}: writing the export")
                size = data.write_export(path, rooms, 200, seed=args.seed, form=form) / 2**20
                progress(f"load {rooms:,} rooms, {form}: {size:,.0f} MiB of rooms")
                for kind in args.load_kinds:
                    if kind == "reference" and form != "lines":
                        continue  # a minute a million rooms, whatever the form
                    for groupings in ("all", "agent") if kind == "convstats" else ("all",):
                        options = ["--groupings", groupings]
                        result = _child(kind, path, options)
                        if result is None:
                            continue
                        row = LoadRow(
                            kind,
                            form,
                            result["rooms"],
                            size,
                            result["seconds"],
                            result["peak_rss_mib"],
                            groupings,
                        )
                        row.footprint_b = result.get("footprint_b")
                        # tracemalloc slows allocation several times: a second load measures it.
                        if kind == "convstats" and form == "lines" and rooms <= 2_000_000:
                            traced = _child(kind, path, [*options, "--trace"])
                            row.held_b = None if traced is None else traced["held_b"]
                        progress(
                            f"  {kind} ({groupings}): {row.seconds:.2f} s, "
                            f"peak RSS {row.peak_rss_mib:,.0f} MiB"
                        )
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
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- what the figures say --------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def find(
    rows: Sequence[Measurement],
    contender: str,
    report: str,
    rooms: int,
    agents: int = 200,
    window: str = "30d",
    scope: str = "all",
) -> Measurement | None:
    wanted = (contender, report, rooms, agents, window, scope)
    return next((row for row in rows if row.key() == wanted), None)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of log(y) against log(x): the cost's growth exponent."""
    points = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def _middle(values: Sequence[int], preferred: int) -> int | None:
    return (
        preferred if preferred in values else (sorted(values)[len(values) // 2] if values else None)
    )


def exponents(rows: Sequence[Measurement]) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
    """Per (contender, report): the fitted exponents in rooms, in window length, in agents.

    In rooms: at 200 agents, 30 days, unscoped. In the window: at the most rooms measured,
    200 agents, unscoped. In agents: at the most rooms, 30 days, unscoped (agents stand for
    the groups a query has to sum).
    """
    found: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
    sizes = sorted({row.rooms for row in rows})
    agent_counts = sorted({row.agents for row in rows})
    largest, agents = (sizes[-1] if sizes else 0), _middle(agent_counts, 200)
    windows = sorted({row.window for row in rows}, key=WINDOW_DAYS.__getitem__)
    window = "30d" if "30d" in windows else (windows[0] if windows else "30d")
    for contender, report in sorted({(row.contender, row.report) for row in rows}):
        mine = [r for r in rows if (r.contender, r.report, r.scope) == (contender, report, "all")]
        in_rooms = slope(
            [(r.rooms, r.median_ms) for r in mine if r.agents == agents and r.window == window]
        )
        in_window = slope(
            [
                (WINDOW_DAYS[r.window], r.median_ms)
                for r in mine
                if r.rooms == largest and r.agents == agents
            ]
        )
        in_agents = slope(
            [(r.agents, r.median_ms) for r in mine if r.rooms == largest and r.window == window]
        )
        found[contender, report] = (in_rooms, in_window, in_agents)
    return found


def summary_tables(rows: Sequence[Measurement], failures: Sequence[Failure]) -> str:
    """Per report: each contender's median at each size (200 agents, 30 days), and exponents."""
    wrong = {failure.contender for failure in failures}
    sizes = sorted({row.rooms for row in rows})
    agents = _middle(sorted({row.agents for row in rows}), 200)
    growth = exponents(rows)
    sections = []
    for report in REPORTS:
        names = sorted(
            {row.contender for row in rows if row.report == report} - wrong,
            key=lambda name: (find(rows, name, report, sizes[-1], agents or 0) or _LAST).median_ms,
        )
        if not names:
            continue
        head = (
            "| contender | "
            + " | ".join(f"{size:,} ms" for size in sizes)
            + f" | {sizes[-1]:,} monitor ms | exponent in rooms | in window | in agents |"
        )
        lines = [
            f"### By {report} ({agents} agents, 30-day window; median ms)",
            "",
            head,
            "|---|" + "---:|" * (len(sizes) + 4),
        ]
        for name in names:
            cells = [
                _number(getattr(find(rows, name, report, size, agents or 0), "median_ms", None))
                for size in sizes
            ]
            scoped = find(rows, name, report, sizes[-1], agents or 0, scope="monitor")
            exps = growth.get((name, report), (None, None, None))
            lines.append(
                f"| {name} | "
                + " | ".join(cells)
                + f" | {_number(getattr(scoped, 'median_ms', None))} | "
                + " | ".join(_number(value, 2) for value in exps)
                + " |"
            )
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


_LAST = Measurement("", "", "", 0, 0, "", "", [float("inf")])


def full_table(rows: Sequence[Measurement]) -> str:
    lines = [
        "| report | rooms | agents | window | scope | contender | median ms | p95 ms | n |",
        "|---|---:|---:|---|---|---|---:|---:|---:|",
    ]
    ordered = sorted(
        rows,
        key=lambda r: (r.report, r.rooms, r.agents, WINDOW_DAYS[r.window], r.scope, r.median_ms),
    )
    lines += [
        f"| {row.report} | {row.rooms:,} | {row.agents:,} | {row.window} | {row.scope} "
        f"| {row.contender} | {row.median_ms:.3f} | {row.p95_ms:.3f} | {len(row.samples_ms)} |"
        for row in ordered
    ]
    return "\n".join(lines)


def failure_table(failures: Sequence[Failure]) -> str:
    if not failures:
        return "Every contender answered every measured query as the reference did."
    lines = [
        "| contender | rooms | agents | status | first query | what |",
        "|---|---:|---:|---|---|---|",
    ]
    lines += [
        f"| {f.contender} | {f.rooms:,} | {f.agents:,} | **{f.status}** | {f.query} | {f.detail} |"
        for f in failures
    ]
    return "Not ranked:\n\n" + "\n".join(lines)


def load_table(rows: Sequence[LoadRow]) -> str:
    lines = [
        "| rooms | form | loader | groupings | rooms file MiB | load s | peak RSS MiB "
        "| held B/room | footprint B/room |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row.rooms:,} | {row.form} | {row.kind} | {row.groupings} | {row.file_mib:,.0f} "
        f"| {row.seconds:,.2f} | {row.peak_rss_mib:,.0f} | {_number(row.held_b, 1)} "
        f"| {_number(row.footprint_b, 1)} |"
        for row in rows
    ]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def targets(rows: Sequence[Measurement], loads: Sequence[LoadRow]) -> str:
    """The targets, each from the figures of this run (ratios within one run)."""
    lines = ["## Targets", ""]
    million = 1_000_000
    for name in ("auto", "indexed"):
        mine, numpy = (
            find(rows, name, "agent", million, 5000),
            find(rows, "numpy", "agent", million, 5000),
        )
        if mine and numpy:
            ratio = numpy.median_ms / mine.median_ms
            lines.append(
                f"- by-agent count at 5,000 agents >= 10x numpy's bincount (1M rooms, 30d, "
                f"unscoped), {name}: {mine.median_ms:.3f} ms vs {numpy.median_ms:.3f} ms = "
                f"{ratio:.1f}x -> {_verdict(ratio >= 10)}"
            )
    by = {(row.kind, row.form, row.rooms, row.groupings): row for row in loads}
    for form in data.EXPORT_FORMS:
        ours, duck = (
            by.get(("convstats", form, million, "all")),
            by.get(("duckdb", form, million, "all")),
        )
        if ours and duck:
            time_ratio, rss_ratio = (
                ours.seconds / duck.seconds,
                ours.peak_rss_mib / duck.peak_rss_mib,
            )
            lines.append(
                f"- load 1M rooms ({form}) within 2x of duckdb read_json: {ours.seconds:.2f} s "
                f"vs {duck.seconds:.2f} s = {time_ratio:.2f}x -> {_verdict(time_ratio <= 2)}; "
                f"peak RSS {ours.peak_rss_mib:,.0f} vs {duck.peak_rss_mib:,.0f} MiB = "
                f"{rss_ratio:.2f}x -> {_verdict(rss_ratio <= 2)}"
            )
    for groupings, limit in (("all", 40), ("agent", 32)):
        row = by.get(("convstats", "lines", million, groupings))
        if row and row.footprint_b is not None:
            held = "" if row.held_b is None else f", held (tracemalloc) {row.held_b:.1f} B"
            worst = max(row.footprint_b, row.held_b or 0)
            lines.append(
                f"- store of {groupings} groupings <= {limit} B a room at 1M rooms: footprint "
                f"{row.footprint_b:.1f} B{held} -> {_verdict(worst <= limit)}"
            )
    return "\n".join(lines)


def charts(rows: Sequence[Measurement], out: Path, stamp: str) -> list[Path]:
    """A log-log plot per report: median against rooms, one line per contender."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress("matplotlib is not installed (dependency group 'bench'): no plots")
        return []
    written = []
    agent_counts = sorted({row.agents for row in rows})
    for report in REPORTS:
        mine = [row for row in rows if row.report == report and row.scope == "all"]
        if not mine:
            continue
        window = "30d" if any(row.window == "30d" for row in mine) else mine[0].window
        figure, axes = plt.subplots(
            1, len(agent_counts), figsize=(5 * len(agent_counts), 4), squeeze=False
        )
        for axis, agents in zip(axes[0], agent_counts, strict=True):
            for name in sorted({row.contender for row in mine}):
                points = sorted(
                    (row.rooms, row.median_ms)
                    for row in mine
                    if row.contender == name and row.agents == agents and row.window == window
                )
                if points:
                    axis.plot(*zip(*points, strict=True), marker="o", label=name)
            axis.set(
                xscale="log",
                yscale="log",
                xlabel="rooms",
                ylabel="median ms",
                title=f"by {report}: {agents} agents, {window}, unscoped",
            )
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize="small")
        figure.tight_layout()
        path = out / f"{report}-{stamp}.png"
        figure.savefig(path, dpi=72)
        plt.close(figure)
        written.append(path)
    return written


def environment() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    ).stdout.strip()
    return {
        "commit": commit,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "peers": peers.installed(),
    }


def list_contenders() -> int:
    print("Contenders (--contenders NAME,…; your own with --strategy and --store):\n")
    for name, contender in known.built_in().items():
        print(f"  {name:<36} {contender.kind:<9} {contender.about}")
    print(f"\nThe reference: scan up to {SCAN_REFERENCE_LIMIT:,} rooms, columnar above.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        return list_contenders()
    try:
        names = list(known.built_in()) if args.contenders is None else args.contenders
        chosen = known.resolve(names, args.strategy, args.store)
        planted = [name for name, _ in args.plant if name not in {c.name for c in chosen}]
        if planted:
            raise ValueError(
                f"--plant {planted[0]}: not a contender of this run; choose from "
                f"{[contender.name for contender in chosen]}"
            )
    except ValueError as error:
        print(f"python -m benchmarks: error: {error}", file=sys.stderr)
        return 2
    try:  # before any work: a folder that cannot be made would lose the run
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(
            f"python -m benchmarks: error: --out {args.out}: cannot make the folder "
            f"({error.strerror or error})",
            file=sys.stderr,
        )
        return 2
    began = environment()
    measurements, failures, workspaces = sweep(args, chosen)
    loads = bench_loads(args)
    ended = environment()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    document = {
        "environment": began | {"load_average_after": ended["load_average"]},
        "arguments": {key: value for key, value in vars(args).items() if key != "out"}
        | {"plant": args.plant},
        "measurements": [attrs.asdict(row) for row in measurements],
        "failures": [attrs.asdict(failure) for failure in failures],
        "workspaces": [
            {"rooms": rooms, "agents": agents, **facts}
            for (rooms, agents), facts in workspaces.items()
        ],
        "loads": [attrs.asdict(row) for row in loads],
    }
    json_path = args.out / f"run-{stamp}.json"
    json_path.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    sections = [
        "# Benchmark results",
        f"commit {began['commit']}, Python {began['python']}, {began['cpus']} CPUs, seed "
        f"{args.seed}; load average {began['load_average'][0]:.2f} before, "
        f"{ended['load_average'][0]:.2f} after; peers: {', '.join(began['peers'])}.",
        summary_tables(measurements, failures),
        failure_table(failures),
    ]
    if workspaces:
        sections.append(
            "Loads of the workspaces (JSON Lines, 5 groupings, indexed):\n\n"
            + "\n".join(
                f"- {rooms:,} rooms, {agents:,} agents: {facts['load_s']:.2f} s, "
                f"{facts['footprint_b']:.1f} B a room, groups {facts['groups']}"
                for (rooms, agents), facts in workspaces.items()
            )
        )
    if loads:
        sections += ["## Loading a mongoexport directory (200 agents)", load_table(loads)]
    sections.append(targets(measurements, loads))
    report = "\n\n".join(sections)
    (args.out / f"results-{stamp}.md").write_text(
        report + "\n\n## Every measurement\n\n" + full_table(measurements) + "\n", encoding="utf-8"
    )
    plots = charts(measurements, args.out, stamp)
    print(report)
    progress(f"wrote {json_path}, results-{stamp}.md and {len(plots)} plots in {args.out}")
    return 0
