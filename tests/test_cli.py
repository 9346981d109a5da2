"""The command line: its options, outputs and exit statuses."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import pytest

import convstats
from convstats_adapters.cli import run
from convstats_adapters.environment import VARIABLES
from convstats_adapters.memory import MemoryRooms

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "examples/sample"
MARCH = ["--start", "2024-03-01", "--end", "2024-04-01"]


def cli(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the command; its CONVSTATS_* variables are ``environ``'s, not this process's."""
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out=out, err=err, environ=environ or {})
    return status, out.getvalue(), err.getvalue()


def report(*extra: str) -> dict:
    status, out, _ = cli(
        "conversations-by-agent", "--data", SAMPLE, *MARCH, "--format", "json", *extra
    )
    assert status == 0
    return json.loads(out)


def test_json_is_the_response_body():
    """--format json prints exactly the endpoint's success body."""
    body = report()
    assert set(body) == {"total", "data", "unspecified", "success"}
    assert body["total"] == sum(row["value"] for row in body["data"]) + body["unspecified"]
    labels = [row["label"] for row in body["data"]]
    assert labels == sorted(labels)
    assert labels.count("Sam Taylor") == 2  # two agents, two rows
    assert {"u-gone", "u-noname", "u-nullname", ""} <= set(labels)


def test_compat_sort_and_tz_reach_the_report():
    """--compat, --sort and --tz change the answer the way the endpoint's options do."""
    plain, compat = report(), report("--compat", "rocketchat")
    # Upstream's total is its rows; its rooms with a null servedBy are a row labelled null.
    assert compat["total"] == plain["total"] - compat["unspecified"]
    assert compat["data"][0]["label"] is None
    by_total = report("--sort", '{"total": -1}')
    values = [row["value"] for row in by_total["data"]]
    assert values == sorted(values, reverse=True)
    shifted = report("--tz", "Pacific/Kiritimati")  # UTC+14: the window starts 14 h earlier
    assert shifted != plain


def test_user_scoping_and_refusals():
    """--user applies the caller's permission and monitor scope; refusals exit 3."""
    everything = report()
    monitored = report("--user", "u-monitor")
    assert monitored["total"] < everything["total"]
    legacy = report("--user", "u-monitor", "--monitor-scope", "legacy")
    assert legacy["total"] < monitored["total"]
    assert report("--user", "u-manager") == everything
    for user, message in (("u-plain", "error-unauthorized"), ("ghost", "logged in")):
        status, out, err = cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--user", user)
        assert status == 3
        assert out == ""
        assert message in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "2024-03-01"], "the following arguments are required: --end"),
        (["--start", "2024-03-01", "--end", "x"], 'The "end" query parameter'),
        ([*MARCH, "--sort", "{bad"], "error-invalid-sort"),
        (["--start", "2022-01-01", "--end", "2024-01-01"], "less than 1 year apart"),
    ],
)
def test_bad_requests_exit_2_with_the_body(args, needle):
    """A bad argument exits 2; in json format the endpoint's error body is on stdout."""
    status, out, err = cli("conversations-by-agent", "--data", SAMPLE, *args, "--format", "json")
    assert status == 2
    body = json.loads(out)
    assert body["success"] is False
    assert needle in body["error"]
    status, out, err = cli("conversations-by-agent", "--data", SAMPLE, *args)
    assert status == 2
    assert needle in err
    assert out == ""


def test_table_for_people():
    """The table shows every agent with a bar, the totals and the window."""
    status, out, _ = cli("conversations-by-agent", "--data", SAMPLE, *MARCH)
    assert status == 0
    body = report()
    assert "2024-03-01T00:00:00+00:00 to 2024-04-01T00:00:00+00:00" in out
    assert f"Total: {body['total']}" in out
    assert f"Unspecified: {body['unspecified']}" in out
    rows = [line for line in out.splitlines() if "#" in line]
    assert len(rows) == len(body["data"])
    sams = [line.split()[2] for line in rows if line.startswith("Sam Taylor")]
    assert sams == ["u-sam1", "u-sam2"]  # the agent id tells agents of one name apart


def test_empty_window_table():
    """A window without conversations says so."""
    status, out, _ = cli(
        "conversations-by-agent", "--data", SAMPLE, "--start", "2020-01-01", "--end", "2020-01-02"
    )
    assert status == 0
    assert "no agent served a conversation" in out
    assert "Total: 0" in out


def test_csv_rows():
    """CSV has a header and one agent_id,label,value row per agent, quoted where needed."""
    status, out, _ = cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--format", "csv")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["agent_id", "label", "value"]
    body = report()
    assert [row[1:] for row in rows[1:]] == [
        [row["label"], str(row["value"])] for row in body["data"]
    ]
    sams = [agent_id for agent_id, label, _ in rows[1:] if label == "Sam Taylor"]
    assert sams == ["u-sam1", "u-sam2"]  # two agents of one name, told apart


def test_unreadable_data_exits_1(tmp_path):
    """Bad data is one line on stderr and exit 1, never a traceback."""
    (tmp_path / "rocketchat_room.json").write_text("{oops\n")
    status, out, err = cli("conversations-by-agent", "--data", str(tmp_path), *MARCH)
    assert status == 1
    assert err.count("\n") == 1
    assert "rocketchat_room.json, line 1" in err
    assert "Traceback" not in err
    status, out, _ = cli(
        "conversations-by-agent", "--data", str(tmp_path), *MARCH, "--format", "json"
    )
    assert json.loads(out)["success"] is False


def test_usage_errors_exit_2(capsys):
    """Missing sources, unknown zones and unknown options are usage errors (exit 2)."""
    for argv in (
        ["conversations-by-agent", *MARCH],
        ["conversations-by-agent", "--data", SAMPLE, *MARCH, "--tz", "Mars/Olympus"],
        ["conversations-by-agent", "--data", SAMPLE, "--data", "x", "--mongo", "y"],
    ):
        assert run(argv) == 2
    assert "Mars/Olympus" in capsys.readouterr().err


def test_console_script_help():
    """python -m convstats --help teaches the command and its exit statuses."""
    result = subprocess.run(
        [sys.executable, "-m", "convstats", "conversations-by-agent", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--monitor-scope" in result.stdout
    assert "exit status" in result.stdout


def test_mongo_uri_problems_are_usage_errors():
    """A URI without a database, or not a MongoDB URI, exits 2 naming the problem."""
    pytest.importorskip("pymongo")
    for uri, needle in (("mongodb://127.0.0.1:1", "database"), ("http://x", "mongodb://")):
        status, _, err = cli("conversations-by-agent", "--mongo", uri, *MARCH)
        assert status == 2
        assert needle in err


def test_unreachable_mongo_exits_1():
    """A server that cannot be reached is one line on stderr and exit 1."""
    pytest.importorskip("pymongo")
    uri = "mongodb://127.0.0.1:1/rocketchat?serverSelectionTimeoutMS=100&connectTimeoutMS=100"
    status, out, err = cli("conversations-by-agent", "--mongo", uri, *MARCH, "--format", "json")
    assert status == 1
    assert json.loads(out)["success"] is False
    assert err.count("\n") == 1
    assert "unavailable" in err or "did not answer" in err


def test_a_zone_folder_is_not_a_zone():
    """--tz America (a folder of zones) is a usage error, not a traceback."""
    assert run(["conversations-by-agent", "--data", SAMPLE, *MARCH, "--tz", "America"]) == 2


def test_invalid_unicode_in_names_does_not_break_output(tmp_path):
    """A name with a lone surrogate is written escaped on a strict UTF-8 terminal."""
    (tmp_path / "rocketchat_room.json").write_text(
        '{"_id": "r1", "t": "l", "ts": {"$date": "2024-03-02T00:00:00Z"}, '
        '"servedBy": {"_id": "odd"}}\n'
    )
    (tmp_path / "users.json").write_text('{"_id": "odd", "name": "A\\udc80"}\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "convstats",
            "conversations-by-agent",
            "--data",
            str(tmp_path),
            *MARCH,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == [{"label": "A\udc80", "value": 1}]


def test_json_refusals_print_upstream_bodies():
    """An unknown user gets upstream's four-field 401 body on stdout in json format."""
    status, out, _ = cli(
        "conversations-by-agent", "--data", SAMPLE, *MARCH, "--user", "ghost", "--format", "json"
    )
    assert status == 3
    message = "You must be logged in to do this."
    assert json.loads(out) == {
        "success": False,
        "error": message,
        "status": "error",
        "message": message,
    }


def _sample_copy(tmp_path):
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE, folder)
    return folder


def test_an_agent_granted_the_report_is_restricted(tmp_path):
    """Granted the report, an agent sees its departments, not the whole sample."""
    folder = _sample_copy(tmp_path)
    (folder / "rocketchat_permissions.json").write_text(
        json.dumps(
            {
                "_id": "view-livechat-reports",
                "roles": ["admin", "livechat-manager", "livechat-monitor", "livechat-agent"],
            }
        )
    )
    everything = json.loads(
        cli("conversations-by-agent", "--data", str(folder), *MARCH, "--format", "json")[1]
    )
    agent = json.loads(
        cli(
            "conversations-by-agent",
            "--data",
            str(folder),
            *MARCH,
            "--user",
            "u-ana",
            "--format",
            "json",
        )[1]
    )
    assert agent["success"] is True
    assert 0 < agent["total"] < everything["total"]


def test_a_null_department_room_stays_hidden_from_a_monitor(tmp_path):
    """A room whose departmentId is null, outside the monitor's units, is not the monitor's."""
    folder = _sample_copy(tmp_path)
    before = report("--user", "u-monitor")
    with (folder / "rocketchat_room.json").open("a") as rooms:
        room = {
            "_id": "null-dept",
            "t": "l",
            "ts": {"$date": "2024-03-10T10:00:00.000Z"},
            "servedBy": {"_id": "u-ana"},
            "departmentId": None,
        }
        rooms.write(json.dumps(room) + "\n")
    after = json.loads(
        cli(
            "conversations-by-agent",
            "--data",
            str(folder),
            *MARCH,
            "--user",
            "u-monitor",
            "--format",
            "json",
        )[1]
    )
    assert after["total"] == before["total"]
    everything = json.loads(
        cli("conversations-by-agent", "--data", str(folder), *MARCH, "--format", "json")[1]
    )
    assert everything["total"] == report()["total"] + 1


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def workspace(folder, names, rooms=1):
    """Write a mongoexport folder where each agent of ``names`` served ``rooms`` rooms."""
    with (folder / "rocketchat_room.json").open("w") as file:
        for agent, count in itertools.product(names, range(rooms)):
            room = {
                "_id": f"{agent}-{count}",
                "t": "l",
                "ts": {"$date": "2024-03-02T00:00:00Z"},
                "servedBy": {"_id": agent},
            }
            file.write(json.dumps(room) + "\n")
    with (folder / "users.json").open("w") as file:
        for agent, name in names.items():
            file.write(json.dumps({"_id": agent, "name": name}) + "\n")
    return str(folder)


CHECKS_BEFORE_READING = """
import json, os, sys
from convstats_adapters.cli import run
from convstats_adapters.environment import VARIABLES

data = sys.argv[1]
opened = []

def watch(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.fsdecode(args[0]).startswith(data):
            opened.append(os.fsdecode(args[0]))

sys.addaudithook(watch)
answers = []
for extra in json.loads(sys.argv[2]):
    del opened[:]
    argv = ["conversations-by-agent", "--data", data, "--start", "2024-03-01", *extra]
    answers.append([run(argv, out=open(os.devnull, "w"), err=open(os.devnull, "w")), opened[:]])
print(json.dumps(answers))
"""


def test_the_rooms_are_read_only_for_a_request_that_passes_every_check(tmp_path):
    """Bad options open no file; bad dates, sort or caller read the small collections only.

    Upstream's order is the caller, the permission, the sort, the dates: the users,
    permissions and units are read to check the first two, the rooms never.
    """
    data = shutil.copytree(SAMPLE, tmp_path / "sample")
    options = [
        ["--end", "2024-04-01", "--tz", "Mars/Olympus"],
        ["--end", "2024-04-01", "--format", "xml"],
        ["--end", "2024-04-01", "--database", "rocketchat"],
    ]
    requests = [
        ["--end", "2024-04-01", "--start", "not a date"],
        ["--end", "yesterday"],
        ["--end", "2025-06-01"],
        ["--end", "2024-04-01", "--sort", "{"],
        ["--end", "2024-04-01", "--user", "u-ana"],  # 403
        ["--end", "2024-04-01", "--user", "nobody", "--sort", "{"],  # 401 first
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHECKS_BEFORE_READING,
            str(data),
            json.dumps([["--end", "2024-04-01"], *options, *requests]),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    (good_status, good_opened), *refused = json.loads(result.stdout)
    assert good_status == 0
    assert any(path.endswith("rocketchat_room.json") for path in good_opened)  # the hook sees
    assert refused[: len(options)] == [[2, []]] * len(options)
    small = sorted(path for path in good_opened if not path.endswith("rocketchat_room.json"))
    assert small
    assert [status for status, _ in refused[len(options) :]] == [2, 2, 2, 2, 3, 3]
    assert [sorted(opened) for _, opened in refused[len(options) :]] == [small] * len(requests)


def test_database_needs_mongo():
    """--database with --data is a usage error instead of being ignored."""
    status, out, err = cli(
        "conversations-by-agent", "--data", SAMPLE, *MARCH, "--database", "x", "--format", "json"
    )
    assert status == 2
    assert "--database" in err
    assert "--mongo" in err
    assert json.loads(out)["errorType"] == "invalid-params"


def test_an_empty_data_path_is_not_the_current_directory():
    """--data '' is a usage error instead of reading the current directory."""
    status, _, err = cli("conversations-by-agent", "--data", "", *MARCH)
    assert status == 2
    assert "--data: an empty path" in err


def test_unrelated_broken_exports_do_not_matter(tmp_path):
    """A broken export of a collection the report does not read leaves the report as it was."""
    data = shutil.copytree(SAMPLE, tmp_path / "sample")
    (data / "rocketchat_message.json").write_text('{"_id": "m1"}\n{"msg": \n')
    status, out, _ = cli("conversations-by-agent", "--data", str(data), *MARCH, "--format", "json")
    assert status == 0
    assert json.loads(out) == report()


def test_a_folder_without_rooms_fails(tmp_path):
    """A folder without the rooms' export exits 1 naming the missing file, never an empty report."""
    (tmp_path / "rocketchat_room.bson").write_bytes(b"")
    status, out, err = cli("conversations-by-agent", "--data", str(tmp_path), *MARCH)
    assert status == 1
    assert out == ""
    assert "no rocketchat_room.json" in err
    assert "mongodump" in err
    assert err.count("\n") == 1


def test_a_closed_pipe_ends_quietly():
    """When the reader of the output has gone (… | head), the command says nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "convstats", "conversations-by-agent", "--data", SAMPLE, *MARCH],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 1


def test_ctrl_c_exits_130_with_one_line(monkeypatch):
    """An interrupt while loading exits 130 with one line on stderr and no traceback."""

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MemoryRooms, "from_path", interrupted)
    try:
        status, out, err = cli("conversations-by-agent", "--data", SAMPLE, *MARCH)
    except KeyboardInterrupt:  # would otherwise stop the whole test run
        pytest.fail("the interrupt escaped the command")
    assert status == 130
    assert out == ""
    assert err.strip() == "convstats: interrupted"


def test_unexpected_failures_answer_json_with_a_500_body(monkeypatch):
    """An unforeseen failure exits 1 with one line, and --format json prints an error body."""

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk\non fire")

    monkeypatch.setattr(MemoryRooms, "from_path", broken)
    status, out, err = cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--format", "json")
    assert status == 1
    assert json.loads(out) == {"success": False, "error": "unexpected RuntimeError: disk on fire"}
    assert err == "convstats: unexpected RuntimeError: disk on fire\n"


@pytest.mark.filterwarnings("default::UserWarning")
def test_library_warnings_are_one_line(monkeypatch):
    """A warning raised by a library while the command runs is one line on stderr."""
    load = MemoryRooms.from_path

    def noisy(path, **kwargs):
        warnings.warn("the driver\nsays so", UserWarning, stacklevel=1)
        return load(path, **kwargs)

    monkeypatch.setattr(MemoryRooms, "from_path", noisy)
    status, _, err = cli("conversations-by-agent", "--data", SAMPLE, *MARCH)
    assert status == 0
    assert err == "convstats: warning: the driver says so\n"


def _gzip_rooms(folder):
    rooms = Path(folder) / "rocketchat_room.json"
    with gzip.open(rooms.with_name("rocketchat_room.json.gz"), "wb") as packed:
        packed.write(rooms.read_bytes())
    rooms.unlink()


@pytest.mark.parametrize("packed", [True, False], ids=["gzip", "plain"])
def test_progress_on_a_terminal_only(tmp_path, packed):
    """Loading shows bytes read of the file's, a rate and the time left, then the build moving.

    On a terminal only, about once a second; the same for a gzipped file, whose bytes are
    those of the file on disk.
    """
    data = workspace(tmp_path, {"a1": "Ana", "a2": "Bo"}, rooms=1500)
    if packed:
        _gzip_rooms(data)
    argv = ["conversations-by-agent", "--data", data, *MARCH]
    terminal, out = Terminal(), io.StringIO()
    ticks = itertools.count(0.0, 0.75)  # seconds, one step per reading of the clock
    assert run(argv, out=out, err=terminal, clock=lambda: next(ticks)) == 0
    shown = terminal.getvalue()
    # The streaming reader reports once a chunk: here the whole file.
    size = r"[\d.,]+ [KMG]iB"
    assert re.search(
        rf"reading rocketchat_room: {size} of {size} \(100%\), 3,000 documents, {size}/s, "
        r"about 0 s left",
        shown,
    )
    # Then the build, one line a step: the line keeps moving until the store is built.
    steps = re.findall(
        r"rocketchat_room: building the store: ([a-z0-9 ]+) \(3,000 documents", shown
    )
    assert len(set(steps)) >= 3, steps
    assert shown.endswith("\r\x1b[K")  # erased before the report is printed
    assert "Total: 3000" in out.getvalue()
    quiet = io.StringIO()
    assert run(argv, out=io.StringIO(), err=quiet, clock=lambda: next(ticks)) == 0
    assert quiet.getvalue() == ""


HOSTILE = {
    "u-clear": "\x1b[2J\x1b[HEve",
    "u-forge": "Mallory\r\nu-x  999",
    "u-bidi": "\u202etxt.exe",
    "u-c1": "Del\x7f\x85\x9b",
    "u-sur": "A\udc80",
    "u-sep": "Line\u2028Para\u2029",
}
WIDE = {"u-cjk": "王小明", "u-emoji": "😀 Joy", "u-mark": "e\u0301lise", "u-long": "A" * 100}


def columns(text):
    """Terminal columns of the test's own names: CJK and emoji take two, the accent none."""
    return sum(2 if char in "王小明😀" else 0 if char == "\u0301" else 1 for char in text)


def test_table_escapes_control_characters(tmp_path):
    """No name can send a terminal sequence, break a line or reorder text: they show escaped."""
    data = workspace(tmp_path, HOSTILE)
    status, out, _ = cli("conversations-by-agent", "--data", data, *MARCH)
    assert status == 0
    assert all(
        unicodedata.category(char) not in ("Cc", "Cs", "Zl", "Zp") for char in out.replace("\n", "")
    )
    assert "\u202e" not in out
    rows = [line for line in out.splitlines() if line.endswith("#")]
    assert len(rows) == len(HOSTILE)  # no forged row
    for shown in ("\\x1b[2J\\x1b[HEve", "Mallory\\r\\nu-x  999", "\\u202etxt.exe"):
        assert shown in out
    assert "Del\\x7f\\x85\\x9b" in out
    assert "A\\udc80" in out
    assert "Line\\u2028Para\\u2029" in out


def test_table_columns_stay_aligned_with_wide_and_long_names(tmp_path):
    """Wide characters count two columns, marks none, and long names end in an ellipsis."""
    data = workspace(tmp_path, WIDE)
    status, out, _ = cli("conversations-by-agent", "--data", data, *MARCH)
    assert status == 0
    rows = [line for line in out.splitlines() if line.endswith("#")]
    starts = {columns(line[: line.index("  u-")]) for line in rows}
    assert len(starts) == 1  # every agent id begins in the same column
    assert "A" * 39 + "\u2026 " in out
    assert "A" * 40 not in out
    assert starts == {40}


def test_csv_cells_cannot_run_as_formulas(tmp_path):
    """Cells a spreadsheet would run as a formula are prefixed with an apostrophe."""
    names = {
        "=id": '=HYPERLINK("http://x")',
        "a-plus": "+1",
        "a-minus": "-2",
        "a-at": "@SUM(A1)",
        "a-tab": "\tTab",
        "a-cr": "\rCR",
        "a-plain": "Plain - ok",
        "a-rows": "Mal\r\nu-x,9",
    }
    data = workspace(tmp_path, names)
    status, out, _ = cli("conversations-by-agent", "--data", data, *MARCH, "--format", "csv")
    assert status == 0
    rows = {
        agent_id: label for agent_id, label, _ in list(csv.reader(io.StringIO(out, newline="")))[1:]
    }
    assert rows == {
        "'=id": '\'=HYPERLINK("http://x")',
        "a-plus": "'+1",
        "a-minus": "'-2",
        "a-at": "'@SUM(A1)",
        "a-tab": "'\tTab",
        "a-cr": "'\rCR",
        "a-plain": "Plain - ok",
        "a-rows": "Mal\r\nu-x,9",  # one cell, not a forged row
    }


def test_version_and_help_write_to_out():
    """--version prints the package's version and --help the usage, both exiting 0."""
    status, out, err = cli("--version")
    assert (status, out, err) == (0, f"convstats {convstats.__version__}\n", "")
    status, out, _ = cli("conversations-by-agent", "--help")
    assert status == 0
    assert "agent_id,label,value" in out


def test_package_metadata():
    """The package has one version source, its address, its Python versions and the MIT text."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert project["urls"]["Repository"] == "https://github.com/convstats/convstats"
    assert {"Homepage", "Issues"} <= set(project["urls"])
    versions = {c.rsplit(" ", 1)[1] for c in project["classifiers"] if c.count("::") == 2}
    assert {"3.10", "3.11", "3.12", "3.13"} <= versions
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n")
    assert "Copyright (c) 2026 convstats contributors" in licence
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in licence


def test_serve_refuses_options_that_cannot_apply():
    """serve checks its options as the report command does: --database needs --mongo."""
    assert run(["serve", "--data", SAMPLE, "--database", "rocketchat"]) == 2
    assert run(["serve", "--data", ""]) == 2


def test_a_deactivated_user_is_not_signed_in():
    """--user naming a deactivated user is refused with upstream's 401, as over HTTP."""
    status, out, _ = cli(
        "conversations-by-agent", "--data", SAMPLE, *MARCH, "--user", "u-dana", "--format", "json"
    )
    assert status == 3
    assert json.loads(out)["status"] == "error"


# -- the environment -----------------------------------------------------------------------


def test_the_workspace_and_settings_can_come_from_the_environment():
    """CONVSTATS_DATA names the data and CONVSTATS_TZ the zone when the options are left out."""
    expected = cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--tz", "Pacific/Kiritimati")
    environ = {"CONVSTATS_DATA": SAMPLE, "CONVSTATS_TZ": "Pacific/Kiritimati"}
    assert cli("conversations-by-agent", *MARCH, environ=environ) == expected
    assert expected != cli("conversations-by-agent", "--data", SAMPLE, *MARCH)


def test_an_option_wins_over_its_variable_and_over_the_other_source():
    """--tz wins over CONVSTATS_TZ, and --data or --mongo over the variable of the other."""
    plain = cli("conversations-by-agent", "--data", SAMPLE, *MARCH)
    environ = {"CONVSTATS_TZ": "Pacific/Kiritimati", "CONVSTATS_MONGODB_URI": "mongodb://x:1"}
    assert (
        cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--tz", "UTC", environ=environ)
        == plain
    )
    # The URI names no database: refused before any connection, so --mongo was the one read.
    status, _, err = cli(
        "conversations-by-agent",
        "--mongo",
        "mongodb://127.0.0.1:1",
        *MARCH,
        environ={"CONVSTATS_DATA": SAMPLE},
    )
    assert status == 2
    assert "--mongo/--database" in err


@pytest.mark.parametrize(
    ("command", "environ", "needle"),
    [
        (
            "conversations-by-agent",
            {"CONVSTATS_TZ": "Nowhere/Else"},
            "CONVSTATS_TZ: unknown time zone 'Nowhere/Else'",
        ),
        (
            "conversations-by-agent",
            {"CONVSTATS_MONITOR_SCOPE": "wide"},
            "CONVSTATS_MONITOR_SCOPE: invalid choice 'wide'",
        ),
        ("serve", {"CONVSTATS_PORT": "http"}, "CONVSTATS_PORT: invalid port 'http'"),
        (
            "serve",
            {"CONVSTATS_CACHE_TTL": "-1"},
            "CONVSTATS_CACHE_TTL: invalid number of seconds '-1'",
        ),
        (
            "serve",
            {"CONVSTATS_LIMIT_CONNECTIONS": "0"},
            "CONVSTATS_LIMIT_CONNECTIONS: invalid number '0'",
        ),
        ("serve", {"CONVSTATS_LOG_LEVEL": "loud"}, "CONVSTATS_LOG_LEVEL: invalid choice 'loud'"),
        (
            "serve",
            {"CONVSTATS_DATA": SAMPLE, "CONVSTATS_MONGODB_URI": "mongodb://x/db"},
            "CONVSTATS_DATA and CONVSTATS_MONGODB_URI: set only one of them",
        ),
        ("serve", {}, "one of the arguments --data --mongo is required (or CONVSTATS_DATA or"),
    ],
)
def test_a_bad_variable_is_a_usage_error_naming_it(command, environ, needle):
    """A variable the option would refuse exits 2 with one line naming the variable."""
    extra = MARCH if command == "conversations-by-agent" else []
    status, out, err = cli(command, *extra, environ=environ)
    assert status == 2
    assert out == ""
    assert f"convstats {command}: error: {needle}" in err
    assert "Traceback" not in err


def test_a_variable_the_command_does_not_take_is_not_read():
    """The report command ignores the service's variables and an empty variable is unset."""
    plain = cli("conversations-by-agent", "--data", SAMPLE, *MARCH)
    environ = {"CONVSTATS_PORT": "http", "CONVSTATS_LOG_LEVEL": "loud", "CONVSTATS_TZ": ""}
    assert cli("conversations-by-agent", "--data", SAMPLE, *MARCH, environ=environ) == plain


def test_the_environments_database_applies_to_a_mongodb_source_only():
    """CONVSTATS_DATABASE is ignored with --data, while --database with --data is an error."""
    plain = cli("conversations-by-agent", "--data", SAMPLE, *MARCH)
    environ = {"CONVSTATS_DATABASE": "rocketchat"}
    assert cli("conversations-by-agent", "--data", SAMPLE, *MARCH, environ=environ) == plain
    status, _, err = cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--database", "x")
    assert status == 2
    assert "--database: only applies with --mongo" in err


@pytest.mark.parametrize("command", ["conversations-by-agent", "serve"])
def test_the_help_names_each_options_variable(command):
    """--help names the variable of every option that has one, and says why that helps."""
    status, out, _ = cli(command, "--help")
    assert status == 0
    entries: dict[str, str] = {}  # option: its help, from the "options:" section
    for line in out.split("\noptions:\n")[1].split("\n\n")[0].splitlines():
        if line.startswith("  -"):
            option = line.split()[0].rstrip(",")
            entries[option] = line
        else:
            entries[option] += line
    variables = {"--" + dest.replace("_", "-"): variable for dest, variable in VARIABLES.items()}
    named = {
        option: " ".join(help_text.split()).split("[env: ")[1].rstrip("]")
        for option, help_text in entries.items()
        if "[env: " in help_text
    }
    workspace = {"--data", "--mongo", "--database", "--compat", "--monitor-scope", "--tz"}
    expected = variables if command == "serve" else {o: variables[o] for o in workspace}
    assert named == expected
    text = " ".join(out.split())
    assert "CONVSTATS_MONGODB_URI keeps a MongoDB password off the command line" in text
