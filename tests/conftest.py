"""Shared fixtures: Hypothesis profiles, and every store the contract suite runs against."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from convstats.ports import Workspace
from convstats_adapters.memory import STRATEGY_NAMES, MemoryStore
from tests.browser_support import CHROMIUM
from tests.browser_support import missing as browser_missing
from tests.moment_support import SUMMARY, find_moment
from tests.mongo_support import (
    MONGODB_URI,
    MONGODB_URI_VARIABLE,
    NOT_CONFIGURED,
    masked,
    mongo_store,
)

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=1000)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)

_real_server_outcomes: list[str] = []
_moment_outcomes: list[str] = []
_browser_outcomes: list[str] = []
_http_server_outcomes: list[str] = []
#: What the tests marked ``server`` need: the server extra and httpx.
HTTP_SERVER_MISSING = [
    name for name in ("starlette", "uvicorn", "httpx") if importlib.util.find_spec(name) is None
]

Collections = dict[str, list[dict[str, Any]]]
WorkspaceFactory = Callable[[Collections], Workspace]

#: Every store kind: each memory strategy, mongomock, and the real server when configured.
STORE_KINDS = [
    *(f"memory-{name}" for name in STRATEGY_NAMES),
    "mongomock",
    pytest.param("mongodb", marks=pytest.mark.mongodb),
]


@pytest.fixture(params=STORE_KINDS)
def workspace(request: pytest.FixtureRequest) -> Iterator[WorkspaceFactory]:
    """Builds a store holding the given collections, once per kind of store.

    The ``mongodb`` kind needs a real server named by CONVSTATS_MONGODB_URI; without one it
    is skipped with that reason, and the session summary says so.
    """
    kind: str = request.param
    if kind.startswith("memory-"):
        strategy = kind.removeprefix("memory-")
        yield lambda collections: MemoryStore(collections, strategy=strategy)
        return
    if kind == "mongodb" and not MONGODB_URI:
        pytest.skip(NOT_CONFIGURED)
    uri = MONGODB_URI if kind == "mongodb" else None
    with ExitStack() as stack:
        yield lambda collections: stack.enter_context(mongo_store(collections, uri=uri))


@pytest.fixture
def real_uri() -> str:
    """The real server's URI; the test is skipped, and the summary says so, without one."""
    if not MONGODB_URI:
        pytest.skip(NOT_CONFIGURED)
    return MONGODB_URI


def pytest_report_header(config: pytest.Config) -> str:
    if MONGODB_URI:
        return f"real MongoDB: {masked(MONGODB_URI)} (tests marked mongodb run against it)"
    return f"real MongoDB: not configured; set {MONGODB_URI_VARIABLE} to run the mongodb tests"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "mongodb" in report.keywords and report.when == "call":
        _real_server_outcomes.append(report.outcome)
    if "moment" in report.keywords and (report.when == "call" or report.skipped):
        _moment_outcomes.append(report.outcome)
    if "browser" in report.keywords and (report.when == "call" or report.skipped):
        _browser_outcomes.append(report.outcome)
    if "server" in report.keywords and report.when == "call":
        _http_server_outcomes.append(report.outcome)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MONGODB_URI:
        ran = len(_real_server_outcomes)
        passed = _real_server_outcomes.count("passed")
        line = f"real MongoDB tests RAN against {masked(MONGODB_URI)}: {passed}/{ran} passed"
    else:
        line = (
            "real MongoDB tests DID NOT RUN: "
            f"{MONGODB_URI_VARIABLE} is not set (mongomock stood in for the server)"
        )
    terminalreporter.write_sep("=", line)
    _moment_summary(terminalreporter)
    _browser_summary(terminalreporter)
    _http_server_summary(terminalreporter)


def _moment_summary(terminalreporter: Any) -> None:
    setup = find_moment()
    ran, passed = len(_moment_outcomes), _moment_outcomes.count("passed")
    if isinstance(setup, str):
        line = f"moment.js oracle tests DID NOT RUN: {setup}"
    elif not ran:
        line = f"moment.js oracle tests not selected (moment found in {setup.folder})"
    else:
        line = f"moment.js oracle tests RAN ({setup.folder}): {passed}/{ran} passed"
    terminalreporter.write_sep("=", line)
    for figures in terminalreporter.config.stash.get(SUMMARY, []):
        terminalreporter.write_line(f"  moment.js oracle: {figures}")


def _http_server_summary(terminalreporter: Any) -> None:
    if HTTP_SERVER_MISSING:
        line = (
            f"HTTP server tests DID NOT RUN: {', '.join(HTTP_SERVER_MISSING)} not installed "
            "(pip install -e '.[server]' --group test)"
        )
    elif _http_server_outcomes:
        passed = _http_server_outcomes.count("passed")
        line = (
            f"HTTP server tests RAN under a real uvicorn on 127.0.0.1: "
            f"{passed}/{len(_http_server_outcomes)} passed"
        )
    else:
        return
    terminalreporter.write_sep("=", line)


def _browser_summary(terminalreporter: Any) -> None:
    reason = browser_missing()
    ran, passed = len(_browser_outcomes), _browser_outcomes.count("passed")
    if reason:
        line = f"browser tests DID NOT RUN: {reason}"
    elif not ran:
        line = "browser tests not selected"
    else:
        line = f"browser tests RAN in {CHROMIUM}: {passed}/{ran} passed"
    terminalreporter.write_sep("=", line)
