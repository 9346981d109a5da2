"""Compare two runs of the harness: ``python -m benchmarks compare A.json B.json``.

Each measurement of B (a contender, a report, a workspace, a window, a scope) is matched with
A's and their medians compared. A shared machine makes a whole run faster or slower (load,
frequency), a measurement's own repeats spread, two runs of one commit differ by more than
that, and a burst of other work slows the few measurements taken while it lasts; so a
change is flagged only when it stands out from all of these:

- **drift**: the median ratio of all matched measurements, the run's shift as a whole, is
  divided out first (and said: a drift past the threshold is flagged on its own, since a
  slower machine and a change that slows everything look the same);
- **noise**: a measurement *moved* when its ratio is past ``--threshold`` and its samples
  do not overlap once the drift is divided out: B's faster quarter (25th percentile)
  beyond A's slower quarter (75th percentile) for a slower one;
- **runs**: ``--more-a`` and ``--more-b`` pool the samples of further runs of each commit,
  so that the noise between runs (the process, the layout of its memory, the machine's
  other work) widens the quartiles. The threshold is 1.5 by default when runs are pooled,
  and 2 with one run a side, since on a shared machine two single runs of one commit
  differ by up to 1.7x for a contender's report;
- **bursts**: a verdict is given to a contender's report as a whole, over all its
  measurements (workspaces, windows, scopes): a regression when the median of their ratios
  is past the threshold and at least half of them moved; an improvement the same the other
  way. Two runs of one commit on a busy machine see a few measurements move, never most of
  a report's.

The exit status is 1 when anything regressed or the drift is past the threshold (for CI),
else 0.
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
#: The default threshold with one run a side: two runs of one commit on a shared 2-core
#: machine differed by up to 1.7x for a contender's report (benchmarks/README.md).
SINGLE_THRESHOLD = 2.0
#: The default threshold when either side pools repeated runs, whose noise then counts.
POOLED_THRESHOLD = 1.5


def _quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    at = q * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _measurements(*paths: Path) -> dict[tuple[Any, ...], list[float]]:
    """Each measurement's samples, those of every run given pooled."""
    pooled: dict[tuple[Any, ...], list[float]] = {}
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        for row in document["measurements"]:
            pooled.setdefault(tuple(row[name] for name in KEY), []).extend(row["samples_ms"])
    return pooled


#: A verdict: (verdict, (contender, report), measurements, moved, median ratio after drift).
Verdict = tuple[str, tuple[str, str], int, int, float]


def _moved(a: Sequence[float], b: Sequence[float], drift: float, threshold: float) -> int:
    """1 for a measurement slower past the threshold and its noise, -1 faster, else 0."""
    ratio = statistics.median(b) / statistics.median(a) / drift
    if ratio > threshold and _quantile(b, 0.25) / drift > _quantile(a, 0.75):
        return 1
    if ratio < 1 / threshold and _quantile(b, 0.75) / drift < _quantile(a, 0.25):
        return -1
    return 0


def compare(
    before: dict[tuple[Any, ...], list[float]],
    after: dict[tuple[Any, ...], list[float]],
    threshold: float,
) -> tuple[float, list[Verdict]]:
    """The drift, and the verdicts on each contender's report that changed (module doc)."""
    shared = sorted(set(before) & set(after), key=repr)
    ratios = {key: statistics.median(after[key]) / statistics.median(before[key]) for key in shared}
    drift = math.exp(statistics.median(math.log(r) for r in ratios.values())) if ratios else 1.0
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for key in shared:
        groups.setdefault((key[0], key[1]), []).append(key)
    verdicts: list[Verdict] = []
    for group, keys in groups.items():
        ratio = statistics.median(ratios[key] for key in keys) / drift
        moved = [_moved(before[key], after[key], drift, threshold) for key in keys]
        if ratio > threshold and 2 * moved.count(1) >= len(keys):
            verdicts.append(("REGRESSION", group, len(keys), moved.count(1), ratio))
        elif ratio < 1 / threshold and 2 * moved.count(-1) >= len(keys):
            verdicts.append(("improvement", group, len(keys), moved.count(-1), ratio))
    return drift, verdicts


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(
        prog="python -m benchmarks compare",
        description="Compare two JSON files of python -m benchmarks; flag changes past noise.",
    )
    parser.add_argument("before", type=Path, help="the run to compare against (A)")
    parser.add_argument("after", type=Path, help="the new run (B)")
    parser.add_argument(
        "--more-a",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="another run of A's commit (repeatable): its samples join A's, so that the noise "
        "between runs counts",
    )
    parser.add_argument(
        "--more-b", type=Path, action="append", default=[], metavar="FILE", help="the same for B"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="the ratio of medians, after the drift, that counts as a change (default: "
        f"{POOLED_THRESHOLD} with --more-a or --more-b, else {SINGLE_THRESHOLD})",
    )
    args = parser.parse_args(argv)
    if args.threshold is None:
        pooled = args.more_a or args.more_b
        args.threshold = POOLED_THRESHOLD if pooled else SINGLE_THRESHOLD
    if args.threshold <= 1:
        parser.error(f"--threshold {args.threshold}: give a ratio above 1")
    try:
        before = _measurements(args.before, *args.more_a)
        after = _measurements(args.after, *args.more_b)
    except (OSError, ValueError, KeyError) as error:
        print(f"python -m benchmarks compare: error: {error}", file=sys.stderr)
        return 2
    drift, flagged = compare(before, after, args.threshold)
    matched = len(set(before) & set(after))
    runs = f"{1 + len(args.more_a)} run(s) of A, {1 + len(args.more_b)} of B"
    print(
        f"{matched} measurements in both ({len(before)} in A, {len(after)} in B; {runs}); "
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
            "\n| verdict | contender | report | measurements | moved past the noise "
            "| median ratio after drift |"
        )
        print("|---|---|---|---:|---:|---:|")
        for verdict, (contender, report), count, moved, ratio in sorted(
            flagged, key=lambda row: -row[4]
        ):
            print(f"| {verdict} | {contender} | {report} | {count} | {moved} | {ratio:.2f}x |")
    print(
        f"\n{len(regressions)} regressions, {len(flagged) - len(regressions)} improvements "
        f"of a contender's report past {args.threshold}x and the noise"
    )
    return 1 if regressions or drift > args.threshold else 0


if __name__ == "__main__":
    sys.exit(main())
