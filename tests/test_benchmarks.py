"""The benchmark harness's own rules: wrong contenders are named, compare flags past noise.

Nothing here is timed: the figures are the harness's business, run by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks import compare, run
from benchmarks.contenders import EXAMPLE, load_object, resolve

from convstats_adapters.memory.counting import count_index
from convstats_adapters.memory.table import Column, FactTable


def off_by_one(table: FactTable, column: Column, window: Any, groups: int) -> Any:
    """The index's counts, one room too many in the last group."""
    found = count_index(table, column, window, groups)
    found[groups - 1] += 1
    return found


def test_a_contender_that_answers_wrong_is_named_and_never_ranked(tmp_path: Path) -> None:
    """A wrong strategy is reported with its first differing query; the right one is timed."""
    code = run.main(
        [
            "--rooms", "2000", "--agents", "10", "--windows", "1y", "--scopes", "all",
            "--reports", "agent,source", "--contenders", "auto", "--repeat", "3",
            "--strategy", f"{__name__}:off_by_one", "--load", "none", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    (written,) = tmp_path.glob("run-*.json")
    document = json.loads(written.read_text())
    (failure,) = document["failures"]
    assert failure["contender"] == f"{__name__}:off_by_one"
    assert failure["status"] == "wrong"
    assert failure["query"].startswith("agent, 1y window, all")
    timed = {(row["contender"], row["report"]) for row in document["measurements"]}
    assert timed == {("auto", "agent"), ("auto", "source")}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("benchmarks.examples.bisect", "package.module:name"),
        ("benchmarks.nowhere:count", "cannot import"),
        ("benchmarks.examples.bisect:nothing", "has no nothing"),
        ("benchmarks.examples.bisect:NEVER", "not callable"),
    ],
)
def test_a_contender_that_cannot_be_found_says_why(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_object(spec)


def samples(median: float, spread: float = 0.05) -> list[float]:
    return [median * (1 + spread * k / 4) for k in range(-4, 5)]


def runs(**slower: float) -> dict[tuple[Any, ...], list[float]]:
    found = {}
    for contender in ("auto", "indexed", "numpy", "polars"):
        for report in ("agent", "tags"):
            key = (contender, report, 1_000_000, 200, "30d", "all")
            found[key] = samples(1.0 * slower.get(contender, 1.0))
    return found


def test_compare_flags_a_slowdown_that_stands_out() -> None:
    """One contender three times slower is a regression; the others are not flagged."""
    drift, flagged = compare.compare(runs(), runs(indexed=3.0), threshold=1.5)
    assert drift == pytest.approx(1.0)
    assert {(verdict, key[0]) for verdict, key, *_ in flagged} == {("REGRESSION", "indexed")}


def test_compare_divides_out_a_run_that_is_slower_as_a_whole() -> None:
    """A machine twice as slow for every measurement is drift, not a regression of each."""
    drift, flagged = compare.compare(runs(), runs(auto=2, indexed=2, numpy=2, polars=2), 1.5)
    assert drift == pytest.approx(2.0)
    assert flagged == []


def test_compare_ignores_a_change_within_the_noise() -> None:
    """Samples that overlap are not a change, however far the medians."""
    before = {("auto", "agent", 1, 1, "1d", "all"): [1.0, 1.1, 5.0, 5.1]}
    after = {("auto", "agent", 1, 1, "1d", "all"): [1.0, 5.0, 5.2, 9.0]}
    assert compare.compare(before, after, 1.5)[1] == []


def test_compare_leaves_a_burst_over_a_few_measurements_of_a_report_unflagged() -> None:
    """Other work slowing a quarter of a report's measurements is noise; most of them is not."""

    def report(slower: int) -> dict[tuple[Any, ...], list[float]]:
        return {
            ("auto", "agent", rooms, 200, window, "all"): samples(3.0 if at < slower else 1.0)
            for at, (rooms, window) in enumerate(
                (rooms, window) for rooms in (10_000, 100_000) for window in ("1d", "30d", "1y")
            )
        } | runs()

    assert compare.compare(runs() | report(0), report(2), 1.5)[1] == []
    (verdict,) = compare.compare(runs() | report(0), report(5), 1.5)[1]
    assert verdict[:4] == ("REGRESSION", ("auto", "agent"), 7, 5)


def test_compare_exits_1_on_a_regression(tmp_path: Path, capsys: Any) -> None:
    def document(found: dict[tuple[Any, ...], list[float]]) -> str:
        rows = [
            dict(zip(compare.KEY, key, strict=True)) | {"samples_ms": s} for key, s in found.items()
        ]
        return json.dumps({"measurements": rows})

    (tmp_path / "a.json").write_text(document(runs()))
    (tmp_path / "b.json").write_text(document(runs(numpy=4.0)))
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    assert compare.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 1
    assert "| REGRESSION | numpy | agent |" in capsys.readouterr().out


def loaded_store(workspace: Any) -> Any:
    """A store of the user's: here the memory store, loaded from the workspace's export."""
    from convstats_adapters.memory import MemoryStore

    return MemoryStore.from_path(workspace.export_dir, strategy="scan")


def test_a_store_of_the_users_is_built_from_the_workspace_and_raced(tmp_path: Path) -> None:
    """--store package.module:factory is built from the generated workspace, checked, timed."""
    code = run.main(
        [
            "--rooms", "2000", "--agents", "10", "--windows", "30d", "--scopes", "monitor",
            "--contenders", "numpy", "--repeat", "3", "--store", f"{__name__}:loaded_store",
            "--load", "none", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    (written,) = tmp_path.glob("run-*.json")
    document = json.loads(written.read_text())
    assert document["failures"] == []
    timed = {(row["contender"], row["kind"]) for row in document["measurements"]}
    assert timed == {(f"{__name__}:loaded_store", "store"), ("numpy", "peer")}
    assert len(document["measurements"]) == 2 * 5  # two contenders, five reports


@pytest.mark.parametrize(
    ("main", "argv"),
    [
        (run.main, ["--bogus"]),
        (run.main, ["--rooms", "many"]),
        (run.main, ["--rooms", "inf"]),
        (run.main, ["--rooms", "1e400"]),
        (run.main, ["--agents", "10,inf"]),
        (run.main, ["--repeat", "0"]),
        (run.main, ["--repeat", "-1"]),
        (run.main, ["--budget", "nan"]),
        (run.main, ["--budget", "inf"]),
        (run.main, ["--budget", "-1"]),
        (compare.main, []),
        (compare.main, ["a.json", "b.json", "--threshold", "0.5"]),
    ],
)
def test_a_usage_error_is_one_line_on_stderr_and_exit_2(
    main: Any, argv: list[str], capsys: Any
) -> None:
    """A wrong option is one line naming it, not the whole usage, and exit status 2."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("python -m benchmarks")
    assert ": error: " in line


def test_compare_pools_the_runs_of_a_commit_so_that_their_noise_counts(tmp_path: Path) -> None:
    """B as slow as a second run of A's commit is within A's noise, once that run is given."""

    def write(name: str, found: dict[tuple[Any, ...], list[float]]) -> str:
        rows = [
            dict(zip(compare.KEY, key, strict=True)) | {"samples_ms": s} for key, s in found.items()
        ]
        (tmp_path / name).write_text(json.dumps({"measurements": rows}))
        return str(tmp_path / name)

    first, second, after = (
        write("a1.json", runs()),
        write("a2.json", runs(numpy=2.5)),
        write("b.json", runs(numpy=2.5)),
    )
    assert compare.main([first, after]) == 1
    assert compare.main([first, after, "--more-a", second]) == 0


def test_compare_of_single_runs_takes_a_wider_threshold_by_default(tmp_path: Path) -> None:
    """1.7x, as two single runs of one commit differ on a busy machine, is flagged only if asked."""
    for name, found in (("a.json", runs()), ("b.json", runs(numpy=1.7))):
        rows = [
            dict(zip(compare.KEY, key, strict=True)) | {"samples_ms": s} for key, s in found.items()
        ]
        (tmp_path / name).write_text(json.dumps({"measurements": rows}))
    files = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    assert compare.main(files) == 0
    assert compare.main([*files, "--threshold", "1.5"]) == 1
    assert compare.main([*files, "--more-a", files[0]]) == 1  # pooled: 1.5 by default


ROW = {
    "contender": "auto",
    "report": "agent",
    "rooms": 1000,
    "agents": 10,
    "window": "1d",
    "scope": "all",
    "samples_ms": [1.0, 1.1, 1.2],
}


def write_run(path: Path, found: dict[tuple[Any, ...], list[float]], **more: Any) -> str:
    rows = [
        dict(zip(compare.KEY, key, strict=True)) | {"samples_ms": s} for key, s in found.items()
    ]
    path.write_text(json.dumps({"measurements": rows} | more))
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "give a JSON object, not list"),
        ("{}", "no 'measurements'"),
        ("{oops", "not a JSON file"),
        ('{"measurements": null}', "'measurements' must be a list"),
        ('{"measurements": [1]}', "measurements[0] must be an object"),
        (json.dumps({"measurements": [ROW | {"rooms": [1000]}]}), "'rooms' must be a scalar"),
        (json.dumps({"measurements": [{"contender": "auto"}]}), "has no 'report'"),
        (json.dumps({"measurements": [ROW | {"samples_ms": []}]}), "'samples_ms' must be"),
        (json.dumps({"measurements": [ROW | {"samples_ms": [0, 0]}]}), "finite positive"),
        (json.dumps({"measurements": [ROW | {"samples_ms": [1, -1]}]}), "finite positive"),
        (json.dumps({"measurements": [ROW | {"samples_ms": ["1"]}]}), "finite positive"),
        ('{"measurements": [{"samples_ms": [NaN]}]}', "has no 'contender'"),
        (json.dumps({"measurements": [ROW | {"samples_ms": [1e308 * 10]}]}), "finite positive"),
        (json.dumps({"measurements": [ROW | {"samples_ms": [10**400]}]}), "finite positive"),
        (json.dumps({"measurements": [ROW], "failures": {}}), "'failures' must be a list"),
    ],
)
@pytest.mark.parametrize("side", ["A", "B"])
def test_compare_names_a_malformed_run_file_and_exits_2(
    tmp_path: Path, capsys: Any, text: str, message: str, side: str
) -> None:
    """A file that is not a run is one line naming it and what is wrong, never a traceback."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"measurements": [ROW]}))
    bad.write_text(text)
    files = [str(good), str(bad)] if side == "B" else [str(bad), str(good)]
    assert compare.main(files) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"python -m benchmarks compare: error: {bad}: ")
    assert message in line


def test_compare_names_a_missing_file(tmp_path: Path, capsys: Any) -> None:
    good = write_run(tmp_path / "a.json", runs())
    assert compare.main([good, str(tmp_path / "none.json")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"{tmp_path / 'none.json'}: cannot read it" in line


def test_compare_flags_measurements_of_a_missing_from_b(tmp_path: Path, capsys: Any) -> None:
    """A contender's report that B no longer measures is listed, and fails the comparison."""
    found = runs()
    before = write_run(tmp_path / "a.json", found)
    after = write_run(tmp_path / "b.json", {k: v for k, v in found.items() if k[0] != "polars"})
    assert compare.main([before, after]) == 1
    out = capsys.readouterr().out
    assert "MISSING: 2 measurements of A are not in B" in out
    assert "| polars | agent | 1 |" in out
    assert "| polars | tags | 1 |" in out
    assert compare.main([after, before]) == 0  # B measuring more than A is no loss


def test_compare_of_runs_with_nothing_in_common_fails(tmp_path: Path, capsys: Any) -> None:
    before = write_run(tmp_path / "a.json", {k: v for k, v in runs().items() if k[0] == "auto"})
    after = write_run(tmp_path / "b.json", {k: v for k, v in runs().items() if k[0] == "numpy"})
    assert compare.main([before, after]) == 1
    assert "NOTHING TO COMPARE" in capsys.readouterr().out
    empty = write_run(tmp_path / "empty.json", {})
    assert compare.main([empty, empty]) == 1


def test_compare_flags_the_failures_of_b(tmp_path: Path, capsys: Any) -> None:
    """A contender that answers wrong in B is a regression, however fast its other reports."""
    failure = {
        "contender": "indexed",
        "rooms": 1000,
        "agents": 10,
        "status": "wrong",
        "query": "agent, 1y window, all",
        "detail": "3: 4, expected 5",
    }
    before = write_run(tmp_path / "a.json", runs())
    after = write_run(tmp_path / "b.json", runs(), failures=[failure])
    assert compare.main([before, after]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 contenders" in out
    assert "| indexed | 1000 | 10 | wrong | agent, 1y window, all | 3: 4, expected 5 |" in out
    assert compare.main([after, before]) == 0  # A's failures are what B fixed


@pytest.mark.parametrize("factor", [3.0, 1 / 3])
def test_compare_exits_1_on_a_drift_past_the_threshold_either_way(
    tmp_path: Path, capsys: Any, factor: float
) -> None:
    """B three times slower, or three times faster, as a whole is flagged and fails."""
    before = write_run(tmp_path / "a.json", runs())
    everything = dict.fromkeys(("auto", "indexed", "numpy", "polars"), factor)
    after = write_run(tmp_path / "b.json", runs(**everything))
    assert compare.main([before, after]) == 1
    assert "DRIFT" in capsys.readouterr().out


@pytest.fixture
def no_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that gets as far as its sweep fails the test: usage errors come before any work."""

    def sweep(*args: Any) -> Any:
        raise AssertionError("the sweep ran")

    monkeypatch.setattr(run, "sweep", sweep)


@pytest.mark.parametrize(
    ("body", "raised"),
    [
        ("raise RuntimeError('no database here')", "RuntimeError: no database here"),
        ("def count(:\n    pass", "SyntaxError"),
    ],
)
def test_a_strategy_whose_import_raises_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    no_sweep: None,
    body: str,
    raised: str,
) -> None:
    """Whatever a user's module raises as it is imported is one line naming the spec."""
    name = f"user_strategy_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["--contenders", "auto", "--strategy", f"{name}:count", "--out", str(tmp_path)]
    assert run.main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"python -m benchmarks: error: '{name}:count': cannot import {name}")
    assert raised in line


def test_an_out_that_is_a_file_is_refused_before_the_run(
    tmp_path: Path, capsys: Any, no_sweep: None
) -> None:
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    assert run.main(["--contenders", "auto", "--out", str(taken)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"python -m benchmarks: error: --out {taken}: cannot make the folder")


def test_a_plant_on_no_contender_of_the_run_is_refused(
    tmp_path: Path, capsys: Any, no_sweep: None
) -> None:
    """--plant on a name the run does not race would plant nothing: it is a usage error."""
    argv = ["--contenders", "auto,numpy", "--plant", "indexed=3", "--out", str(tmp_path)]
    assert run.main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "python -m benchmarks: error: --plant indexed: not a contender of this run; "
        "choose from ['auto', 'numpy']"
    )


def test_a_strategy_already_chosen_is_raced_once() -> None:
    """The example given by --strategy, as its docstring says, beside the defaults, runs once."""
    (example,) = [
        c for c in resolve([EXAMPLE, "auto"], [EXAMPLE, EXAMPLE], []) if c.name == EXAMPLE
    ]
    assert example.kind == "strategy"
    named = [contender.name for contender in resolve(["auto"], [EXAMPLE, EXAMPLE], [])]
    assert named == ["auto", EXAMPLE]
    with pytest.raises(ValueError, match="given as a strategy and a store"):
        resolve(["auto"], [EXAMPLE], [EXAMPLE])


def test_the_example_given_beside_the_defaults_is_measured_once(tmp_path: Path) -> None:
    code = run.main(
        [
            "--rooms", "1000", "--agents", "10", "--windows", "1y", "--scopes", "all",
            "--reports", "agent", "--contenders", f"auto,{EXAMPLE}", "--repeat", "1",
            "--strategy", EXAMPLE, "--load", "none", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    (written,) = tmp_path.glob("run-*.json")
    timed = [row["contender"] for row in json.loads(written.read_text())["measurements"]]
    assert sorted(timed) == ["auto", EXAMPLE]
