"""Compare two runs of the harness: ``python -m benchmarks compare A.json B.json``.

Each measurement of B (a contender, a report, a workspace, a window, a scope) is matched with
A's and their medians compared. A shared machine makes a whole run faster or slower (load,
frequency), and a measurement's own repeats spread; so a change is flagged only when it
stands out from both:

- **drift**: the median ratio of all matched measurements, the run's shift as a whole, is
  divided out first (and said: a drift past the threshold is flagged on its own, since a
  slower machine and a change that slows everything look the same);
- **noise**: the samples must not overlap once the drift is divided out: B's faster quarter
  (25th percentile) beyond A's slower quarter (75th percentile) for a regression.

A regression is a ratio past ``--threshold`` (default 1.5) that passes both; an improvement
the same the other way. The exit status is 1 when anything regressed (for CI), else 0.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import Parser

KEY = ("contender", "report", "rooms", "agents", "window", "scope")


def _quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    at = q * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _measurements(path: Path) -> dict[tuple[Any, ...], list[float]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return {tuple(row[name] for name in KEY): row["samples_ms"] for row in document["measurements"]}


def compare(
    before: dict[tuple[Any, ...], list[float]],
    after: dict[tuple[Any, ...], list[float]],
    threshold: float,
) -> tuple[float, list[tuple[str, tuple[Any, ...], float, float, float]]]:
    """The drift, and the flagged measurements: (verdict, key, median A, median B, ratio)."""
    shared = sorted(set(before) & set(after), key=repr)
    ratios = {key: statistics.median(after[key]) / statistics.median(before[key]) for key in shared}
    drift = math.exp(statistics.median(math.log(r) for r in ratios.values())) if ratios else 1.0
    flagged = []
    for key in shared:
        a, b, ratio = before[key], after[key], ratios[key] / drift
        if ratio > threshold and _quantile(b, 0.25) / drift > _quantile(a, 0.75):
            verdict = "REGRESSION"
        elif ratio < 1 / threshold and _quantile(b, 0.75) / drift < _quantile(a, 0.25):
            verdict = "improvement"
        else:
            continue
        flagged.append((verdict, key, statistics.median(a), statistics.median(b), ratio))
    return drift, flagged


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(
        prog="python -m benchmarks compare",
        description="Compare two JSON files of python -m benchmarks; flag changes past noise.",
    )
    parser.add_argument("before", type=Path, help="the run to compare against (A)")
    parser.add_argument("after", type=Path, help="the new run (B)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=1.5,
        help="the ratio of medians, after the drift, that counts as a change (default 1.5)",
    )
    args = parser.parse_args(argv)
    if args.threshold <= 1:
        parser.error(f"--threshold {args.threshold}: give a ratio above 1")
    try:
        before, after = _measurements(args.before), _measurements(args.after)
    except (OSError, ValueError, KeyError) as error:
        print(f"python -m benchmarks compare: error: {error}", file=sys.stderr)
        return 2
    drift, flagged = compare(before, after, args.threshold)
    matched = len(set(before) & set(after))
    print(
        f"{matched} measurements in both runs ({len(before)} in A, {len(after)} in B); "
        f"drift of B against A: {drift:.2f}x (the median ratio, divided out below)"
    )
    if drift > args.threshold or drift < 1 / args.threshold:
        print(
            f"DRIFT: B as a whole is {drift:.2f}x A, past the threshold {args.threshold}: the "
            "machine, or a change that moved everything"
        )
    regressions = [row for row in flagged if row[0] == "REGRESSION"]
    if flagged:
        print(
            "\n| verdict | contender | report | rooms | agents | window | scope "
            "| A median ms | B median ms | ratio after drift |"
        )
        print("|---|---|---|---:|---:|---|---|---:|---:|---:|")
        for verdict, key, median_a, median_b, ratio in sorted(flagged, key=lambda r: -r[4]):
            contender, report, rooms, agents, window, scope = key
            print(
                f"| {verdict} | {contender} | {report} | {rooms:,} | {agents:,} | {window} "
                f"| {scope} | {median_a:.3f} | {median_b:.3f} | {ratio:.2f}x |"
            )
    print(
        f"\n{len(regressions)} regressions, {len(flagged) - len(regressions)} improvements "
        f"past {args.threshold}x and the noise of the repeats"
    )
    return 1 if regressions or drift > args.threshold else 0


if __name__ == "__main__":
    sys.exit(main())
