"""The Reports page in headless Chromium: the bytes of its first load, and its drawing times.

Run ``python -m benchmarks.page --help`` (needs Chromium, chromedriver and the ``browser``
group, as ``tests/test_browser.py`` does). For the sample workspace and for a generated store
of ``--rooms`` rooms (sources, tags and states added to :func:`benchmarks.data.generate`'s
rooms), it serves the app under uvicorn on 127.0.0.1, signs a manager in and measures, each
``--runs`` times in a fresh tab, the median of:

- **first load**: from navigation to the moment the five cards are drawn (the page's
  ``convstats-reports-settled`` mark), with the page's default period, *Last 7 days*;
- **a period**: from pressing *Show reports* for a month, then for a year, to that mark.

The bytes are the page's own files, the settings request and the five reports of each
period, as decoded (the service sends them uncompressed).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests import browser_support

from benchmarks.data import ADMIN, generate
from benchmarks.run import progress
from convstats.authz import hash_login_token

SAMPLE = Path(__file__).parents[1] / "examples" / "sample"
TOKEN = "benchmark-token"
SOURCES = [{"type": "widget"}, {"type": "email"}, {"type": "app", "alias": "WhatsApp"}]
TAGS = ["billing", "bug", "feedback", "refund", "vip", "sales", "urgent", "spam"]

_SETTLED = "return performance.getEntriesByName('convstats-reports-settled').length"
_PERIOD = """
const [from, to] = arguments;
document.getElementById('preset').value = 'custom';
document.getElementById('start-date').value = from;
document.getElementById('end-date').value = to;
window.convstatsAsked = performance.now();
document.getElementById('apply').click();
"""
_TOOK = """
const marks = performance.getEntriesByName('convstats-reports-settled');
return marks[marks.length - 1].startTime - (window.convstatsAsked || 0);
"""
_BYTES = """
const since = window.convstatsAsked || 0;
const own = [...performance.getEntriesByType('navigation'),
             ...performance.getEntriesByType('resource')]
  .filter((entry) => entry.startTime >= since);
const sum = (entries) => entries.reduce((total, entry) => total + entry.decodedBodySize, 0);
const api = (entry) => entry.name.includes('/api/');
return { files: sum(own.filter((entry) => !api(entry))), answers: sum(own.filter(api)) };
"""


def _generated(rooms: int, agents: int) -> Any:
    from convstats_adapters import MemoryStore

    workspace = generate(rooms, agents)
    drawn = random.Random(0)
    for room in workspace["rocketchat_room"]:
        room["source"] = drawn.choice(SOURCES)
        if drawn.random() < 0.7:
            room["tags"] = drawn.sample(TAGS, drawn.randint(1, 2))
        state = drawn.random()
        room["open"] = state < 0.3
        room["onHold"] = state < 0.05
        if state >= 0.3:
            room["metrics"] = {"chatDuration": 600}
    login = {"hashedToken": hash_login_token(TOKEN)}
    for user in workspace["users"]:
        if user["_id"] == ADMIN:
            user.setdefault("services", {})["resume"] = {"loginTokens": [login]}
    return MemoryStore(workspace), ADMIN, TOKEN


def _sample() -> Any:
    from convstats_adapters import MemoryStore

    return MemoryStore.from_path(SAMPLE), "u-manager", "sample-manager-token"


def _wait(driver: Any, count: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 120, poll_frequency=0.01).until(
        lambda _: driver.execute_script(_SETTLED) >= count
    )


def measure(
    driver: Any, base: str, user: str, token: str, periods: Sequence[tuple[str, str]], runs: int
) -> dict[str, Any]:
    loads: list[float] = []
    asked: dict[tuple[str, str], list[float]] = {period: [] for period in periods}
    bytes_: dict[str, int] = {}
    for _ in range(runs):
        driver.get(f"{base}/")
        driver.execute_script(
            "sessionStorage.setItem('convstats.userId', arguments[0]);"
            "sessionStorage.setItem('convstats.token', arguments[1]);",
            user,
            token,
        )
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        driver.refresh()
        _wait(driver, 1)
        loads.append(driver.execute_script(_TOOK))
        first = driver.execute_script(_BYTES)
        bytes_["page files bytes"] = first["files"]
        bytes_["first load's settings and five reports bytes"] = first["answers"]
        for number, (start, end) in enumerate(periods, start=2):
            driver.execute_script(_PERIOD, start, end)
            _wait(driver, number)
            asked[start, end].append(driver.execute_script(_TOOK))
            bytes_[f"{start} to {end}: five reports bytes"] = driver.execute_script(_BYTES)[
                "answers"
            ]
    return {
        "first load ms": statistics.median(loads),
        **{f"{a} to {b} ms": statistics.median(times) for (a, b), times in asked.items()},
        **bytes_,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.page", description=__doc__)
    parser.add_argument("--rooms", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args(argv)
    reason = browser_support.missing()
    if reason:
        print(f"benchmarks.page: {reason}", file=sys.stderr)
        return 2
    from convstats_adapters.server import create_app

    cases = [
        ("sample", _sample, [("2024-03-01", "2024-03-31"), ("2024-01-01", "2024-04-30")]),
        (
            f"{options.rooms:,} rooms, {options.agents} agents",
            lambda: _generated(options.rooms, options.agents),
            [("2024-12-01", "2024-12-31"), ("2024-01-01", "2024-12-31")],
        ),
    ]
    with browser_support.chromium(Path("/tmp")) as driver:
        for name, build, periods in cases:
            progress(f"building {name}")
            store, user, token = build()
            with browser_support.live_server(create_app(store)) as base:
                progress(f"measuring {name}")
                figures = measure(driver, base, user, token, periods, options.runs)
            print(f"## {name} (medians of {options.runs})")
            for label, value in figures.items():
                print(f"{label}: {value:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
