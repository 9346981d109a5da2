"""Shared fixtures: Hypothesis profiles and the store every contract test runs against."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from convstats_adapters.memory import MemoryStore
from tests.moment_support import SUMMARY, find_moment

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

MONGODB_URI_VARIABLE = "CONVSTATS_MONGODB_URI"
MONGODB_URI = os.environ.get(MONGODB_URI_VARIABLE)
_real_server_outcomes: list[str] = []
_moment_outcomes: list[str] = []

Collections = dict[str, list[dict[str, Any]]]
StoreFactory = Callable[[Collections], Any]


def masked(uri: str) -> str:
    """The URI without its credentials, for printing."""
    return re.sub(r"//[^@/]*@", "//***@", uri)


@pytest.fixture(
    params=[
        "memory",
        "mongomock",
        pytest.param("mongodb", marks=pytest.mark.mongodb),
    ]
)
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Builds a store holding the given collections, once per adapter.

    The ``mongodb`` parameter needs a real server named by CONVSTATS_MONGODB_URI; without
    one it is skipped with that reason, and the session summary says so.
    """
    kind = request.param
    if kind == "memory":
        yield MemoryStore
        return
    if kind == "mongodb" and not MONGODB_URI:
        pytest.skip(f"real MongoDB not tested: {MONGODB_URI_VARIABLE} is not set")
    from tests.mongo_support import mongo_store

    with ExitStack() as stack:

        def factory(collections: Collections) -> Any:
            uri = MONGODB_URI if kind == "mongodb" else None
            return stack.enter_context(mongo_store(collections, uri=uri))

        yield factory


def pytest_report_header(config: pytest.Config) -> str:
    if MONGODB_URI:
        return f"real MongoDB: {masked(MONGODB_URI)} (tests marked mongodb run against it)"
    return f"real MongoDB: not configured; set {MONGODB_URI_VARIABLE} to run the mongodb tests"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "mongodb" in report.keywords and report.when == "call":
        _real_server_outcomes.append(report.outcome)
    if "moment" in report.keywords and (report.when == "call" or report.skipped):
        _moment_outcomes.append(report.outcome)


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
