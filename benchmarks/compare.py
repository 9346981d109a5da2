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

Measurements of A that B lacks, and B's ``failures`` (a contender that raised or answered
differently from the reference), are listed: a contender that stopped answering, or
answers wrong, is a regression of its own. The exit status is 1 (for CI) when anything
regressed, the drift is past the threshold either way (B faster or slower as a whole than
``threshold`` times), A and B have no measurement in common, a measurement of A is missing
from B or B has failures; 2 when a file cannot be read or is not a run (one line naming
the file and what is wrong); else 0.
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


class RunFileError(ValueError):
    """A run file that cannot be read, or is not what ``python -m benchmarks`` writes."""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def _positive(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and value > 0
    except OverflowError:  # an integer past any float
        return False


def _rows(path: Path, document: Any, field: str, required: bool) -> list[dict[str, Any]]:
    """``document[field]``, checked to be a list of objects; RunFileError naming the file."""
    if not isinstance(document, dict):
        raise RunFileError(f"{path}: give a JSON object, not {type(document).__name__}")
    if field not in document:
        if required:
            raise RunFileError(f"{path}: no {field!r}: not a run of python -m benchmarks")
        return []
    rows = document.get(field)
    if not isinstance(rows, list):
        raise RunFileError(f"{path}: {field!r} must be a list, not {json.dumps(rows)[:60]}")
    for at, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RunFileError(f"{path}: {field}[{at}] must be an object, not {row!r:.60}")
    return rows


def read_run(path: Path) -> tuple[dict[tuple[Any, ...], list[float]], list[dict[str, Any]]]:
    """One run file's samples by measurement, and its failures; RunFileError when malformed.

    Each measurement is an object with the scalar fields of :data:`KEY` and ``samples_ms``,
    a non-empty list of finite positive milliseconds.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RunFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise RunFileError(f"{path}: not a JSON file ({error})") from None
    found: dict[tuple[Any, ...], list[float]] = {}
    for at, row in enumerate(_rows(path, document, "measurements", required=True)):
        where = f"{path}: measurements[{at}]"
        for name in KEY:
            if name not in row:
                raise RunFileError(f"{where} has no {name!r}")
            if not _scalar(row[name]):
                raise RunFileError(f"{where}: {name!r} must be a scalar, not {row[name]!r:.60}")
        samples = row.get("samples_ms")
        if not isinstance(samples, list) or not samples or not all(map(_positive, samples)):
            raise RunFileError(
                f"{where}: 'samples_ms' must be a non-empty list of finite positive numbers, "
                f"not {samples!r:.60}"
            )
        found.setdefault(tuple(row[name] for name in KEY), []).extend(map(float, samples))
    return found, _rows(path, document, "failures", required=False)


def _measurements(
    *paths: Path,
) -> tuple[dict[tuple[Any, ...], list[float]], list[dict[str, Any]]]:
    """Each measurement's samples, those of every run given pooled; and every failure."""
    pooled: dict[tuple[Any, ...], list[float]] = {}
    failures: list[dict[str, Any]] = []
    for path in paths:
        found, failed = read_run(path)
        for key, samples in found.items():
            pooled.setdefault(key, []).extend(samples)
        failures += failed
    return pooled, failures


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
        before, _ = _measurements(args.before, *args.more_a)
        after, failures = _measurements(args.after, *args.more_b)
    except RunFileError as error:
        print(f"python -m benchmarks compare: error: {error}", file=sys.stderr)
        return 2
    drift, flagged = compare(before, after, args.threshold)
    matched = len(set(before) & set(after))
    runs = f"{1 + len(args.more_a)} run(s) of A, {1 + len(args.more_b)} of B"
    print(
        f"{matched} measurements in both ({len(before)} in A, {len(after)} in B; {runs}); "
        f"drift of B against A: {drift:.2f}x (the median ratio, divided out below)"
    )
    if not matched:
        print("NOTHING TO COMPARE: A and B have no measurement in common")
    drifted = drift > args.threshold or drift < 1 / args.threshold
    if drifted:
        print(
            f"DRIFT: B as a whole is {drift:.2f}x A, past the threshold {args.threshold} either "
            "way: the machine, or a change that moved everything"
        )
    missing = _missing(before, after)
    if missing:
        print(f"\nMISSING: {sum(missing.values())} measurements of A are not in B")
        print("\n| contender | report | measurements of A missing from B |\n|---|---|---:|")
        for (contender, report), count in sorted(missing.items(), key=repr):
            print(f"| {contender} | {report} | {count} |")
    if failures:
        print(f"\nFAILED: {len(failures)} contenders failed or answered wrong in B")
        print("\n| contender | rooms | agents | status | first query | what |")
        print("|---|---:|---:|---|---|---|")
        for failure in failures:
            cells = ("contender", "rooms", "agents", "status", "query", "detail")
            print("| " + " | ".join(str(failure.get(cell, "")) for cell in cells) + " |")
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
    return 1 if regressions or drifted or missing or failures or not matched else 0


def _missing(
    before: dict[tuple[Any, ...], list[float]], after: dict[tuple[Any, ...], list[float]]
) -> dict[tuple[Any, Any], int]:
    """How many measurements of A each contender's report lacks in B."""
    found: dict[tuple[Any, Any], int] = {}
    for key in set(before) - set(after):
        found[key[0], key[1]] = found.get((key[0], key[1]), 0) + 1
    return found


if __name__ == "__main__":
    sys.exit(main())
