"""Asynchronous callers: handle_async, its bounded worker threads, and the FastAPI examples."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from convstats import (
    ConversationsByAgent,
    ConversationsByTags,
    ConversationsEndpoint,
    RocketChatAuthority,
    TotalMode,
)
from convstats.errors import StorageTimeout
from convstats.workers import StoreCalls
from convstats_adapters.memory import MemoryStore
from tests.http_support import MARCH, headers

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = MemoryStore.from_path(ROOT / "examples" / "sample")


class HangingStore:
    """The sample, whose counts wait until released (or ``limit`` s: no thread outlives a test)."""

    def __init__(self, limit: float = 10.0) -> None:
        self.released = threading.Event()
        self.limit = limit

    def count_groups(self, grouping: Any, window: Any, visibility: Any, mode: Any = None) -> Any:
        self.released.wait(self.limit)
        return SAMPLE.count_groups(grouping, window, visibility, mode or TotalMode.CONVSTATS)


def endpoint(store: Any = SAMPLE, calls: StoreCalls | None = None) -> ConversationsEndpoint:
    return ConversationsEndpoint(
        reports=ConversationsByAgent(store=store, directory=SAMPLE),
        authority=RocketChatAuthority(directory=SAMPLE),
        calls=calls or StoreCalls(),
    )


@pytest.mark.parametrize("user", ["u-manager", "u-monitor", "u-ana", "u-dana", None])
@pytest.mark.parametrize("params", [MARCH, {**MARCH, "sort": "{"}, {"start": "x", "end": "y"}])
def test_handle_async_answers_what_handle_answers(user, params):
    """The awaitable entry point gives the same status and body as the blocking one."""
    answers = endpoint()
    assert asyncio.run(answers.handle_async(params, user)) == answers.handle(params, user)


def test_a_store_that_hangs_is_a_503_at_the_timeout_and_the_loop_keeps_going():
    """Past the timeout the answer is the 503, while other coroutines go on meanwhile."""
    store = HangingStore()
    answers = endpoint(store, StoreCalls(threads=2, timeout=0.2))

    async def scenario() -> tuple[Any, int]:
        ticks = 0

        async def ticking() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(ticking())
        response = await answers.handle_async(MARCH, "u-manager")
        ticker.cancel()
        return response, ticks

    try:
        response, ticks = asyncio.run(scenario())
    finally:
        store.released.set()
    assert (response.status, response.body["error"]) == (503, "The data store is unavailable.")
    assert ticks > 1  # the loop turned while the store hung
    assert asyncio.run(answers.handle_async(MARCH, "u-manager")).status == 200


def test_when_every_worker_is_held_a_call_times_out_without_starting():
    """A call that cannot start before its deadline is a StorageTimeout saying why."""
    calls = StoreCalls(threads=1, timeout=5)
    held, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        held.wait(10)

    async def scenario() -> None:
        first = asyncio.ensure_future(calls.run(hold))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        with pytest.raises(StorageTimeout, match="1 calls still running"):
            await calls.run(lambda: "never", timeout=0.1)
        held.set()
        await first

    asyncio.run(scenario())
    assert asyncio.run(calls.run(lambda: "again")) == "again"


def test_a_calls_exception_reaches_its_caller():
    """An error raised by the call is raised by run, as it is."""

    def fail() -> None:
        raise ZeroDivisionError("in the store")

    with pytest.raises(ZeroDivisionError, match="in the store"):
        asyncio.run(StoreCalls().run(fail))


# -- the README's FastAPI examples, through httpx's ASGI transport ----------------------------


def example(name: str) -> ModuleType:
    pytest.importorskip("fastapi", reason="the FastAPI examples need fastapi (the test group)")
    path = ROOT / "examples" / "fastapi" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fastapi_example_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def get(app: Any, url: str, **options: Any) -> Any:
    httpx = pytest.importorskip("httpx", reason="the HTTP tests need httpx")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get(url, **options)


def test_the_mounted_example_serves_the_reports_under_its_prefix(monkeypatch):
    """The ready app mounted in FastAPI signs callers in and answers as the library does."""
    monkeypatch.chdir(ROOT)
    app = example("mounted").app
    route = "/reports/api/v1/livechat/analytics/dashboards/conversations-by-agent"
    response = asyncio.run(get(app, route, params=MARCH, headers=headers("u-monitor")))
    assert (response.status_code, response.json()) == (
        200,
        endpoint().handle(MARCH, "u-monitor").body,
    )
    refused = asyncio.run(get(app, route, params=MARCH))
    assert refused.status_code == 401
    document = asyncio.run(get(app, "/reports/api/v1/livechat/analytics/dashboards/openapi.json"))
    assert document.json()["servers"] == [{"url": "/reports"}]


def test_the_embedded_example_answers_behind_the_hosts_own_sign_in(monkeypatch):
    """Behind the host's authentication, the endpoint applies that user's permission and scope."""
    monkeypatch.chdir(ROOT)
    app = example("embedded").app
    library = ConversationsEndpoint(
        reports=ConversationsByTags(store=SAMPLE), authority=RocketChatAuthority(directory=SAMPLE)
    )
    for session, user in (("host-session-1", "u-manager"), ("host-session-2", "u-monitor")):
        response = asyncio.run(
            get(app, "/api/tags", params=MARCH, headers={"Authorization": f"Bearer {session}"})
        )
        assert (response.status_code, response.json()) == (200, library.handle(MARCH, user).body)
    assert asyncio.run(get(app, "/api/tags", params=MARCH)).status_code == 401
    bad = asyncio.run(
        get(
            app,
            "/api/tags",
            params={"start": "x"},
            headers={"Authorization": "Bearer host-session-1"},
        )
    )
    assert bad.status_code == 400
