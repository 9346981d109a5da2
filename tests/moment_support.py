"""moment.js itself as an oracle: finding Node and moment, and talking to tests/moment_oracle.js."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from convstats.model import epoch_ms

#: A folder holding ``node_modules/moment`` (``npm install moment@2`` run in it).
MOMENT_DIR_VARIABLE = "CONVSTATS_MOMENT_DIR"
#: Set by CI when installing moment failed: the reason, shown in the skip line.
MOMENT_MISSING_VARIABLE = "CONVSTATS_MOMENT_MISSING"

ORACLE_SCRIPT = Path(__file__).with_name("moment_oracle.js")
REPOSITORY = Path(__file__).resolve().parent.parent

#: Lines the oracle tests add to the session's terminal summary.
SUMMARY = pytest.StashKey[list[str]]()

_BATCH = 2000


@attrs.frozen
class MomentSetup:
    """Where Node and the folder with ``node_modules/moment`` are."""

    node: str
    folder: Path


def find_moment() -> MomentSetup | str:
    """The Node and moment to run, or why there are none.

    moment is looked for in ``$CONVSTATS_MOMENT_DIR/node_modules`` when that is set, else in
    a ``node_modules`` in the repository or beside it.
    """
    missing = os.environ.get(MOMENT_MISSING_VARIABLE)
    if missing:
        return missing
    node = shutil.which("node")
    if node is None:
        return "node is not on PATH"
    configured = os.environ.get(MOMENT_DIR_VARIABLE)
    candidates = [Path(configured)] if configured else [REPOSITORY, REPOSITORY.parent]
    for folder in candidates:
        if (folder / "node_modules" / "moment" / "package.json").is_file():
            return MomentSetup(node, folder)
    if configured:
        return f"{MOMENT_DIR_VARIABLE}={configured} holds no node_modules/moment"
    return (
        f"{MOMENT_DIR_VARIABLE} is not set and there is no node_modules/moment in "
        f"{REPOSITORY} or beside it (npm install moment@2 in a folder, then point "
        f"{MOMENT_DIR_VARIABLE} at it)"
    )


class MomentOracle:
    """One ``node moment_oracle.js`` process, whose local time zone is the server's ``zone``."""

    def __init__(self, setup: MomentSetup, zone: str) -> None:
        self.zone = zone
        environment = dict(os.environ, TZ=zone, CONVSTATS_MOMENT_DIR=str(setup.folder))
        self._process = subprocess.Popen(
            [setup.node, str(ORACLE_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            text=True,
            encoding="utf-8",
        )
        # Node names some zones by their older aliases (Asia/Calcutta): the offsets tell.
        probes = [
            datetime(year, month, 1, tzinfo=timezone.utc)
            for year in (1990, 2024)
            for month in (1, 7)
        ]
        self.about = self._ask({"op": "hello", "probes": [epoch_ms(probe) for probe in probes]})
        expected = [
            probe.astimezone(ZoneInfo(zone)).utcoffset() // timedelta(minutes=1) for probe in probes
        ]
        if self.about["offsets"] != expected:
            self.close()
            raise RuntimeError(
                f"node ignored TZ={zone}: it runs in {self.about['zone']}, "
                f"offsets {self.about['offsets']} instead of {expected}"
            )

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        # ensure_ascii keeps U+2028 and lone surrogates escaped, so one request is one line.
        stdin.write(json.dumps(request, ensure_ascii=True) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the moment oracle for {self.zone} exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def parse(self, strings: list[str]) -> list[dict[str, Any]]:
        """``moment(s)`` for each string: ``valid``, ``path``, ``format`` and ``ms``."""
        results: list[dict[str, Any]] = []
        for at in range(0, len(strings), _BATCH):
            batch = strings[at : at + _BATCH]
            results += self._ask({"op": "parse", "strings": batch})["results"]
        return results

    def years(self, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Upstream's one-year measure of each (start, end): ``start_ms``, ``end_ms``, ``years``."""
        results: list[dict[str, Any]] = []
        for at in range(0, len(pairs), _BATCH):
            batch = [list(pair) for pair in pairs[at : at + _BATCH]]
            results += self._ask({"op": "diff", "pairs": batch})["results"]
        return results

    def close(self) -> None:
        """End the process."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()
