"""The command line: its options, outputs and exit statuses."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from convstats_adapters.cli import run

SAMPLE = "examples/sample"
MARCH = ["--start", "2024-03-01", "--end", "2024-04-01"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out=out, err=err)
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
    assert compat["total"] == plain["total"] - plain["unspecified"]
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
    """CSV has a header and one label,value row per agent, quoted where needed."""
    status, out, _ = cli("conversations-by-agent", "--data", SAMPLE, *MARCH, "--format", "csv")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["label", "value"]
    body = report()
    assert rows[1:] == [[row["label"], str(row["value"])] for row in body["data"]]


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
