"""The HTTP service for tests: OpenAPI-checked clients, a store failing on demand, tokens.

Every answer a client of this module receives is checked against the OpenAPI document.

Importing it skips the importing module when the ``server`` extra or httpx is missing; the
session summary then says so (conftest.py).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("httpx", reason="httpx is not installed")

import anyio.from_thread
import httpx
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from convstats.errors import StorageUnavailable
from convstats.model import GroupCounts, Grouping, TimeWindow, TotalMode, UserRecord, Visibility
from convstats.ports import Workspace
from convstats_adapters.openapi import REPORT_PATH, openapi_document

SAMPLE = "examples/sample"
#: The sample's plain tokens (examples/make_sample.py writes their hashes).
TOKENS = {
    "u-admin": "sample-admin-token",
    "u-manager": "sample-manager-token",
    "u-monitor": "sample-monitor-token",
    "u-ana": "sample-ana-token",
    "u-plain": "sample-plain-token",
    "u-dana": "sample-dana-token",
}
MANAGER_PAT = "sample-manager-pat"
MARCH = {"start": "2024-03-01", "end": "2024-04-01"}

# With /metrics, which the service serves when prometheus-client is installed (the test group).
DOCUMENTS = {
    mode: OpenAPI.from_dict(openapi_document(metrics=True, total_mode=mode))  # refuses a
    for mode in TotalMode  # non-OpenAPI 3 document
}
DOCUMENT = DOCUMENTS[TotalMode.CONVSTATS]


def headers(user_id: str, token: str | None = None) -> dict[str, str]:
    """The headers of a request of ``user_id``, with its sample token unless one is given."""
    return {"X-User-Id": user_id, "X-Auth-Token": TOKENS[user_id] if token is None else token}


def check_against_openapi(response: httpx.Response, document: OpenAPI = DOCUMENT) -> None:
    """Raise unless ``response`` is one the OpenAPI document allows for its request."""
    response.read()
    request = response.request
    document.validate_response(
        MockRequest(
            f"{request.url.scheme}://{request.url.netloc.decode()}",
            request.method,
            request.url.path,
        ),
        MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers.get("content-type", ""),
        ),
    )


async def acheck_against_openapi(response: httpx.Response, document: OpenAPI = DOCUMENT) -> None:
    """:func:`check_against_openapi` for an asynchronous client."""
    await response.aread()
    check_against_openapi(response, document)


def checked(client: httpx.Client) -> httpx.Client:
    """``client``, checking every answer it receives against the OpenAPI document."""
    client.event_hooks = {"response": [check_against_openapi]}
    return client


class InProcessClient:
    """A synchronous HTTP client of an ASGI application, run on an event loop of its own.

    httpx's ASGI transport carries the requests; every answer is checked against the
    OpenAPI document unless ``check`` is false.
    """

    def __init__(
        self, app: Any, *, check: bool = True, total_mode: TotalMode = TotalMode.CONVSTATS
    ) -> None:
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        document = DOCUMENTS[total_mode]

        async def checked(response: httpx.Response) -> None:
            await acheck_against_openapi(response, document)

        hooks = {"response": [checked]} if check else {}
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", event_hooks=hooks
        )

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self._portal.call(functools.partial(self._client.get, url, **options))

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def report(
    client: httpx.Client, params: Mapping[str, Any], **request_headers: str
) -> httpx.Response:
    """GET the report with ``params`` and these headers."""
    return client.get(REPORT_PATH, params=params, headers=request_headers)


class FlakyStore:
    """A workspace that fails (``down``) or hangs (``hang``) on demand, else delegates.

    Failing raises :class:`StorageUnavailable` from every call; hanging blocks every call
    until :meth:`release` (or ``hang_limit`` seconds, so no thread outlives a test).
    """

    def __init__(self, inner: Workspace, *, hang_limit: float = 10.0) -> None:
        self.inner = inner
        self.down = False
        self.hang_limit = hang_limit
        self.calls = 0
        self._released = threading.Event()
        self._released.set()

    def hang(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _enter(self) -> None:
        self.calls += 1
        self._released.wait(self.hang_limit)
        if self.down:
            raise StorageUnavailable("the test store is down")

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        self._enter()
        return self.inner.count_groups(grouping, window, visibility, mode)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        self._enter()
        return self.inner.agent_names(agent_ids)

    def department_names(self, keys: Collection[Any]) -> Mapping[Any, Any]:
        self._enter()
        return self.inner.department_names(keys)

    def get_user(self, user_id: str) -> UserRecord | None:
        self._enter()
        return self.inner.get_user(user_id)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        self._enter()
        return self.inner.user_with_token(user_id, hashed_token)

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        self._enter()
        return self.inner.permission_roles(permission)

    def has_units(self) -> bool:
        self._enter()
        return self.inner.has_units()

    def monitored_units(self, user_id: str) -> frozenset[str]:
        self._enter()
        return self.inner.monitored_units(user_id)

    def agent_departments(self, user_id: str) -> frozenset[str]:
        self._enter()
        return self.inner.agent_departments(user_id)

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        self._enter()
        return self.inner.departments_under(unit_ids, include_own=include_own)
