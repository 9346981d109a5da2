"""The serve subcommand's arguments and failures, checked without starting a server."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest

import convstats_adapters
from convstats_adapters.cli import run

SAMPLE = "examples/sample"


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    status = run(list(argv), out=io.StringIO(), err=err, environ={})
    return status, err.getvalue()


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["serve"], "one of the arguments --data --mongo is required"),
        (["serve", "--data", SAMPLE, "--port", "70000"], "invalid port '70000'"),
        (["serve", "--data", SAMPLE, "--port", "http"], "invalid port 'http'"),
        (["serve", "--data", SAMPLE, "--cache-ttl", "0"], "invalid number of seconds '0'"),
        (["serve", "--data", SAMPLE, "--timeout", "nan"], "invalid number of seconds 'nan'"),
        (["serve", "--data", SAMPLE, "--tz", "Mars/Olympus"], "unknown time zone"),
        (["serve", "--data", SAMPLE, "--monitor-scope", "all"], "invalid choice"),
        (["serve", "--mongo", "http://h/rc"], "mongodb:// or mongodb+srv:// URI"),
    ],
)
def test_bad_arguments_exit_2_before_anything_is_served(argv, complaint):
    """Unusable options are a usage error with status 2, and no store is opened."""
    if "--mongo" in argv:  # the URI is read when the store opens, after the extra's check
        pytest.importorskip(
            "starlette", reason="without the server extra the command stops earlier"
        )
    status, err = cli(*argv)
    assert status == 2
    assert complaint in err


def test_unreadable_data_is_one_line_and_status_1(tmp_path):
    """A data folder that cannot be read stops the command with one log line, before it listens."""
    pytest.importorskip("uvicorn", reason="without the server extra the command stops earlier")
    pytest.importorskip("starlette", reason="without the server extra the command stops earlier")
    (tmp_path / "users.json").write_text("{not json", encoding="utf-8")
    status, err = cli("serve", "--data", str(tmp_path), "--port", "0")
    assert status == 1
    assert re.fullmatch(r"\S+Z ERROR convstats\.serve .*\n", err)
    assert str(tmp_path) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("module", ["starlette", "uvicorn"])
def test_without_the_server_extra_the_message_names_it(monkeypatch, tmp_path, module):
    """Without Starlette or uvicorn the command names the extra to install, with status 1."""
    monkeypatch.setitem(sys.modules, module, None)
    for name in ("starlette.applications", "convstats_adapters.server"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delattr(convstats_adapters, "server", raising=False)
    # A folder that does not exist: were the import to succeed, nothing would be served.
    status, err = cli("serve", "--data", str(tmp_path / "missing"), "--port", "0")
    assert status == 1
    assert "is not installed; install it with: pip install 'convstats[server]'" in err


def test_the_command_leaves_the_loggers_as_it_found_them(tmp_path):
    """serve's log configuration lasts while it runs; the process's loggers are as before after."""
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("uvicorn.access").propagate)
    status, err = cli("serve", "--data", str(tmp_path), "--port", "0")
    assert status == 1
    assert " ERROR convstats.serve " in err
    after = (root.level, list(root.handlers), logging.getLogger("uvicorn.access").propagate)
    assert after == before
