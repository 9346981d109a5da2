"""Every way in: the console script, ``python -m convstats`` and each subcommand.

With no arguments, an unknown command or an unknown option each says how to call it (one
usage, one error line) and exits 2, as argparse does; ``-h`` exits 0. Never a traceback.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convstats_adapters.cli import run

SCRIPT = shutil.which("convstats", path=str(Path(sys.executable).parent))
ENTRY_POINTS = {
    "console script": [SCRIPT or "convstats"],
    "python -m convstats": [sys.executable, "-m", "convstats"],
}
REPORTS = [
    "conversations-by-status",
    "conversations-by-source",
    "conversations-by-department",
    "conversations-by-tags",
    "conversations-by-agent",
]
SUBCOMMANDS = [*REPORTS, "serve", "export"]
#: The arguments each subcommand needs, so that an unknown option is the only fault left.
COMPLETE = {
    **{
        report: ["--data", "d", "--start", "2024-03-01", "--end", "2024-04-01"]
        for report in REPORTS
    },
    "serve": ["--data", "d"],
    "export": ["--mongo", "mongodb://127.0.0.1:1/rocketchat", "--out", "d"],
}


def assert_usage_error(status: int, out: str, err: str, prog: str, needle: str = "") -> None:
    """One usage, then one ``prog: error: …`` line, on stderr; exit 2; nothing on stdout."""
    assert "Traceback" not in err
    assert status == 2, err
    assert out == ""
    assert err.startswith("usage: "), err
    assert err.count("usage: ") == 1
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"{prog}: error: "), err
    assert err.count(": error: ") == 1
    assert needle in last


def launch(entry: str, *argv: str, cwd: Path) -> tuple[int, str, str]:
    if entry == "console script" and SCRIPT is None:
        pytest.skip("the convstats console script is not installed next to this Python")
    done = subprocess.run(
        [*ENTRY_POINTS[entry], *argv], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_no_arguments_is_a_usage_error(entry, tmp_path):
    """``convstats`` alone names the missing command and exits 2."""
    status, out, err = launch(entry, cwd=tmp_path)
    assert_usage_error(status, out, err, "convstats", "required: COMMAND")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_help_lists_every_command(entry, tmp_path):
    """``-h`` prints the help on stdout and exits 0."""
    status, out, err = launch(entry, "-h", cwd=tmp_path)
    assert (status, err) == (0, "")
    assert out.startswith("usage: convstats")
    assert all(command in out for command in SUBCOMMANDS)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_an_unknown_command_is_a_usage_error(entry, tmp_path):
    """A command that does not exist is named, with the ones that do."""
    status, out, err = launch(entry, "conversations", cwd=tmp_path)
    assert_usage_error(status, out, err, "convstats", "invalid choice: 'conversations'")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_an_unknown_option_is_a_usage_error(entry, tmp_path):
    """An option no command has is a usage error before any command runs."""
    status, out, err = launch(entry, "--bogus", cwd=tmp_path)
    assert_usage_error(status, out, err, "convstats")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_a_subcommand_alone_is_a_usage_error_from_the_console_script(command, tmp_path):
    """Each subcommand without its options says which are required, from the real script."""
    status, out, err = launch("console script", command, cwd=tmp_path)
    assert_usage_error(status, out, err, f"convstats {command}", "required")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_a_subcommand_alone_is_a_usage_error(command):
    """The same, in process, as run() answers it."""
    assert_usage_error(*cli(command), f"convstats {command}", "required")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_exits_0(command):
    """``convstats COMMAND -h`` prints that command's help and an example, and exits 0."""
    status, out, err = cli(command, "-h")
    assert (status, err) == (0, "")
    assert out.startswith(f"usage: convstats {command}")
    assert "examples:" in out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_an_unknown_option_of_a_subcommand_is_a_usage_error(command):
    """An unknown option is a usage error of its command, with or without the required options."""
    assert_usage_error(*cli(command, "--bogus"), f"convstats {command}")
    status, out, err = cli(command, *COMPLETE[command], "--bogus")
    assert_usage_error(status, out, err, f"convstats {command}", "unrecognized arguments: --bogus")


def test_an_unknown_option_in_json_format_still_answers_json():
    """With --format json, a usage error also prints the endpoint's 400 body on stdout."""
    status, out, err = cli("conversations-by-agent", "--format", "json")
    assert status == 2
    assert '"success": false' in out
    assert "Traceback" not in err
