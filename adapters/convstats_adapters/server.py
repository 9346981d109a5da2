"""The HTTP service: upstream's Reports endpoints over HTTP, callers signed in by login token.

A driving adapter beside the command line, on Starlette; ``convstats serve`` runs it under
uvicorn. Needs the ``server`` extra (``pip install 'convstats[server]'``).

- ``GET /api/v1/livechat/analytics/dashboards/conversations-by-{status,source,department,
  tags,agent}`` answer exactly what :class:`convstats.http.ConversationsEndpoint` answers for
  the caller ``X-User-Id`` proved by the login token ``X-Auth-Token``
  (:class:`convstats.authz.RocketChatAuthority` with ``require_token``);
- ``GET /api/v1/livechat/analytics/dashboards/openapi.json`` is the OpenAPI document
  (:mod:`convstats_adapters.openapi`);
- ``GET /api/v1/livechat/analytics/dashboards/settings`` says how the service reads the data
  (``compat``, ``monitor_scope``), for the page;
- ``GET /healthz`` answers while the process runs, ``GET /readyz`` while the store answers;
- with ``freshness`` (a store that follows a database, such as
  :class:`convstats_adapters.mirror.MongoMirror`), each report is answered from the store while
  its data is fresh enough, else from the fallback (or 503), and says which in the headers
  :data:`SOURCE_HEADER` and :data:`AGE_HEADER`, as ``/readyz`` does in its body;
- ``GET /metrics`` gives the service's figures in the Prometheus text format, when the
  ``metrics`` extra is installed (:mod:`convstats_adapters.metrics`);
- ``/`` serves the files of ``convstats_adapters/web/`` when that folder exists.

:func:`swap_store` replaces the store a running application answers from (``convstats
serve`` does on ``SIGHUP``): requests under way finish with the store they began with.

Store calls block, so they run in worker threads, at most ``threads`` at once, and each
request waits for them at most ``timeout`` seconds before it is answered with a 503: the
event loop never waits on the store.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from convstats.authz import VIEW_LIVECHAT_REPORTS, RocketChatAuthority
from convstats.cache import TTLCache
from convstats.errors import (
    ConvstatsError,
    MissingDependency,
    StorageError,
    StorageUnavailable,
)
from convstats.http import (
    ConversationsEndpoint,
    Response,
    error_response,
    storage_failure_response,
)
from convstats.model import Grouping, MonitorRule, Report, TotalMode
from convstats.ports import Aged, Directory, Workspace
from convstats.report import Conversations
from convstats.workers import StoreCalls
from convstats_adapters.openapi import (
    AGE_HEADER,
    HEALTH_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    READY_PATH,
    REPORTS,
    SETTINGS_PATH,
    SOURCE_HEADER,
    openapi_document,
    report_path,
)

try:
    from starlette.applications import Starlette
    from starlette.datastructures import MutableHeaders
    from starlette.requests import Request
    from starlette.responses import Response as HTTPResponse
    from starlette.routing import BaseRoute, Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:
    raise MissingDependency("starlette", "server") from exc

__all__ = [
    "AGE_HEADER",
    "SOURCE_HEADER",
    "WEB_DIRECTORY",
    "ConversationsService",
    "Freshness",
    "StoreCalls",
    "create_app",
    "query_params",
    "swap_store",
]

if TYPE_CHECKING:
    from convstats_adapters.metrics import ServiceMetrics


#: The dashboard's files, served at ``/`` when the folder exists.
WEB_DIRECTORY: Final = Path(__file__).with_name("web")


_logger = logging.getLogger("convstats.server")
_NO_STORE: Final = {"cache-control": "no-store"}
_INTERNAL_ERROR: Final = "Internal server error"


def query_params(items: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    """The query string as upstream's validator sees it: a name given twice is an array.

    ``?start=a&start=b`` gives ``{"start": ["a", "b"]}``, which the endpoint refuses as
    ``must be string``, as upstream does.
    """
    params: dict[str, str | list[str]] = {}
    for name, value in items:
        previous = params.get(name)
        if previous is None:
            params[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            params[name] = [previous, value]
    return params


def _header(request: Request, name: str) -> str | None:
    # Node.js joins a repeated header with ", ", so upstream looks that joined value up
    # (and finds nobody); taking the first would let a second X-User-Id go unnoticed.
    values = request.headers.getlist(name)
    return ", ".join(values) if values else None


class _JSON(HTTPResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (invalid UTF-8 in the data) has no UTF-8 form; escaped, it is
            # the same JSON string, as the command line writes it.
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


#: The page holds a signed-in caller's token: no other site may frame it (a CSP in a meta
#: element cannot say frame-ancestors), and no file is read as another type than it is.
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


@attrs.frozen
class _Unframed:
    """An ASGI app whose responses carry :data:`_PAGE_HEADERS`."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _PAGE_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _answer(response: Response, headers: Mapping[str, str] | None = None) -> _JSON:
    return _JSON(
        response.body, status_code=response.status, headers={**_NO_STORE, **(headers or {})}
    )


@attrs.define(kw_only=True)
class ConversationsService:
    """What the service answers, without HTTP: each report's endpoint, signing in by token.

    Every method blocks on the store; the application calls them from worker threads.
    """

    endpoints: Mapping[Grouping, ConversationsEndpoint]
    directory: Directory

    def answer(
        self, grouping: Grouping, params: Mapping[str, Any], user_id: str | None, token: str | None
    ) -> Response:
        """Answer one request of ``grouping``'s report, as its endpoint does."""
        return self.endpoints[grouping].handle(params, user_id, token)

    def check_ready(self) -> None:
        """Return when the store answers a read; raise ``StorageError`` otherwise."""
        self.directory.permission_roles(VIEW_LIVECHAT_REPORTS)


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number, got {value!r}")


@attrs.frozen(kw_only=True)
class Freshness:
    """How a service answers from a store that follows a database (``convstats serve --live``).

    The store, which must be :class:`~convstats.ports.Aged`, answers each report while its
    ``data_age_seconds`` is at most ``max_staleness``; past that, and before it has any data,
    ``fallback`` answers (the database itself, a
    :class:`~convstats_adapters.mongo.MongoStore`), or, without one, the report is answered
    503. The choice is made once a request, so that one store answers it throughout.
    """

    max_staleness: float = attrs.field(validator=_positive)
    fallback: Workspace | None = None


@attrs.frozen
class _Choice:
    """What answers one request with freshness: a store's service, or nothing (a 503)."""

    current: _Current | None
    source: str
    age: float | None

    @property
    def headers(self) -> dict[str, str]:
        age = "unknown" if self.age is None else f"{self.age:.3f}"
        return {SOURCE_HEADER: self.source, AGE_HEADER: age}


@attrs.frozen
class _Current:
    """A store and what answers from it, built together and replaced together."""

    store: Workspace
    service: ConversationsService
    cache: TTLCache[Report] | None


@attrs.define(kw_only=True)
class _Served:
    """The store an application answers from, which :meth:`swap` replaces whole.

    A request reads :attr:`current` once, so that it is answered from one store throughout.
    """

    build: Callable[[Workspace], _Current]
    current: _Current
    freshness: Freshness | None = None
    #: What the fallback of ``freshness`` answers with, built once.
    fallback: _Current | None = None
    # The counts of the caches that swaps dropped, so that the totals never go down.
    _retired_hits: int = 0
    _retired_misses: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def swap(self, store: Workspace) -> Workspace:
        fresh = self.build(store)  # a new cache too: a cache serves one store
        with self._lock:
            previous, self.current = self.current, fresh
            if previous.cache is not None:
                self._retired_hits += previous.cache.hits
                self._retired_misses += previous.cache.misses
        return previous.store

    def cache_counts(self) -> tuple[int, int] | None:
        with self._lock:
            cache = self.current.cache
            if cache is None:
                return None
            return self._retired_hits + cache.hits, self._retired_misses + cache.misses

    def data_age(self) -> float | None:
        store = self.current.store
        return store.data_age_seconds if isinstance(store, Aged) else None

    def choose(self) -> _Choice | None:
        """With freshness, what answers a request arriving now; ``None`` without it."""
        freshness = self.freshness
        if freshness is None:
            return None
        current = self.current
        age = current.store.data_age_seconds if isinstance(current.store, Aged) else None
        if age is not None and age <= freshness.max_staleness:
            return _Choice(current, "mirror", age)
        if self.fallback is not None:
            return _Choice(self.fallback, "mongodb", age)
        return _Choice(None, "none", age)


@attrs.define(kw_only=True)
class _Routes:
    served: _Served
    calls: StoreCalls
    ready_timeout: float
    total_mode: TotalMode
    monitor_rule: MonitorRule
    metrics: ServiceMetrics | None = None

    @property
    def service(self) -> ConversationsService:
        return self.served.current.service

    async def report(self, request: Request, grouping: Grouping) -> HTTPResponse:
        params = query_params(request.query_params.multi_items())
        user_id, token = _header(request, "x-user-id"), _header(request, "x-auth-token")
        choice = self.served.choose()
        chosen = None if choice is None else choice.current
        service = self.service if chosen is None else chosen.service
        try:
            if choice is not None and choice.current is None:
                raise StorageUnavailable(_too_old(choice.age, self.served.freshness))
            response = await self.calls.run(
                lambda: service.answer(grouping, params, user_id, token)
            )
        except StorageError as error:  # the store did not answer in time
            response = storage_failure_response(error)
        except Exception:  # never a traceback to the client; the log says what failed
            _logger.exception("the report failed unexpectedly")
            response = error_response(ConvstatsError(_INTERNAL_ERROR))
        return _answer(response, None if choice is None else choice.headers)

    async def openapi(self, request: Request) -> HTTPResponse:
        # Under a prefix (a Mount, a proxy's root path) the paths are relative to it.
        server_url = request.scope.get("root_path") or "/"
        document = openapi_document(
            server_url, metrics=self.metrics is not None, total_mode=self.total_mode
        )
        return _JSON(document)

    async def settings(self, request: Request) -> HTTPResponse:
        compat = "rocketchat" if self.total_mode is TotalMode.ROCKETCHAT else None
        return _JSON({"compat": compat, "monitor_scope": self.monitor_rule.value})

    async def prometheus(self, request: Request) -> HTTPResponse:
        assert self.metrics is not None  # the route exists only with them
        body = self.metrics.render()
        return HTTPResponse(body, media_type=self.metrics.content_type, headers=_NO_STORE)

    async def healthz(self, request: Request) -> HTTPResponse:
        return _JSON({"status": "ok"}, headers=_NO_STORE)

    async def readyz(self, request: Request) -> HTTPResponse:
        choice = self.served.choose()
        live: dict[str, Any] = {}
        service = self.service
        if choice is not None:
            assert self.served.freshness is not None  # there is a choice only with it
            live = {
                "source": choice.source,
                "data_age_seconds": choice.age,
                "max_staleness_seconds": self.served.freshness.max_staleness,
            }
            if choice.current is not None:
                service = choice.current.service
        try:
            if choice is not None and choice.current is None:
                raise StorageUnavailable(_too_old(choice.age, self.served.freshness))
            await self.calls.run(service.check_ready, timeout=self.ready_timeout)
        except StorageError as error:
            _logger.warning("not ready: %s: %s", type(error).__name__, error)
            body = {"status": "unavailable", "error": error_response(error).body["error"], **live}
            return _JSON(body, status_code=503, headers=_NO_STORE)
        return _JSON({"status": "ready", **live}, headers=_NO_STORE)


def _too_old(age: float | None, freshness: Freshness | None) -> str:
    assert freshness is not None
    if age is None:
        return "the mirror has not loaded its data yet, and there is no fallback"
    return (
        f"the mirror's data is {age:.1f} s old, older than the {freshness.max_staleness:g} s "
        "allowed, and there is no fallback"
    )


def create_app(
    store: Workspace,
    *,
    server_tz: tzinfo = timezone.utc,
    total_mode: TotalMode = TotalMode.CONVSTATS,
    monitor_rule: MonitorRule = MonitorRule.CURRENT,
    cache_ttl: float | None = None,
    timeout: float = 30.0,
    ready_timeout: float = 2.0,
    threads: int = 32,
    web_directory: Path | None = WEB_DIRECTORY,
    metrics: bool | None = None,
    freshness: Freshness | None = None,
) -> Starlette:
    """The ASGI application serving the report of ``store``.

    ``server_tz``, ``total_mode`` and ``monitor_rule`` are the endpoint's settings;
    ``cache_ttl`` (seconds) turns on the report cache, shared by callers of the same
    visibility as upstream's; ``timeout`` bounds each request's wait for the store and
    ``ready_timeout`` the readiness probe's; ``threads`` bounds the store calls running at
    once. The files of ``web_directory`` are served at ``/`` when the folder exists.
    ``metrics`` serves ``/metrics``: by default when the ``metrics`` extra is installed;
    ``True`` raises :class:`~convstats.errors.MissingDependency` without it. The store
    stays the caller's to close, and so does one given to :func:`swap_store`.
    ``freshness`` makes a store that follows a database (an ``Aged`` one, which it must be)
    answer only while its data is fresh enough (see :class:`Freshness`).
    """
    if freshness is not None and not isinstance(store, Aged):
        raise TypeError(
            f"freshness needs a store that knows its data's age (convstats.ports.Aged), "
            f"got {type(store).__name__}"
        )
    measured = _service_metrics(metrics)

    def build(store: Workspace) -> _Current:
        # One cache for every report: its entries are keyed on the report too.
        cache: TTLCache[Report] | None = None if cache_ttl is None else TTLCache(ttl=cache_ttl)
        used: Workspace = store if measured is None else measured.measure(store)
        authority = RocketChatAuthority(
            directory=used, monitor_rule=monitor_rule, require_token=True
        )
        service = ConversationsService(
            endpoints={
                grouping: ConversationsEndpoint(
                    reports=Conversations(
                        store=used, grouping=grouping, total_mode=total_mode, cache=cache
                    ),
                    authority=authority,
                    server_tz=server_tz,
                )
                for grouping in REPORTS
            },
            directory=used,
        )
        return _Current(store=store, service=service, cache=cache)

    fallback = None if freshness is None else freshness.fallback
    served = _Served(
        build=build,
        current=build(store),
        freshness=freshness,
        fallback=None if fallback is None else build(fallback),
    )
    if measured is not None:
        measured.read(cache_counts=served.cache_counts, data_age=served.data_age)
    routes = _Routes(
        served=served,
        calls=StoreCalls(threads=threads, timeout=timeout),
        ready_timeout=ready_timeout,
        total_mode=total_mode,
        monitor_rule=monitor_rule,
        metrics=measured,
    )
    table: list[BaseRoute] = [
        *(
            Route(report_path(grouping), functools.partial(routes.report, grouping=grouping))
            for grouping in REPORTS
        ),
        Route(OPENAPI_PATH, routes.openapi, methods=["GET"]),
        Route(SETTINGS_PATH, routes.settings, methods=["GET"]),
        Route(HEALTH_PATH, routes.healthz, methods=["GET"]),
        Route(READY_PATH, routes.readyz, methods=["GET"]),
    ]
    if measured is not None:
        table.append(Route(METRICS_PATH, routes.prometheus, methods=["GET"]))
    named = [route for route in table if isinstance(route, Route)]
    if web_directory is not None and web_directory.is_dir():
        # Last, so that every route above wins over a file of the same path.
        page = _Unframed(StaticFiles(directory=web_directory, html=True))
        table.append(Mount("/", app=page))
    app = Starlette(routes=table)
    app.state.convstats_served = served
    if measured is not None:
        app.add_middleware(measured.middleware, routes=named)
    return app


def swap_store(app: Starlette, store: Workspace) -> Workspace:
    """Answer from ``store`` from now on in ``app`` (built by :func:`create_app`).

    Builds what answers from ``store`` (a new report cache among it) beside what answers
    now, then replaces it at once; requests under way finish with the store they began
    with. Returns the store replaced, which stays the caller's to close once those requests
    are done. Blocks while it builds: call it from a worker thread, not the event loop.
    """
    served: _Served = app.state.convstats_served
    return served.swap(store)


def _service_metrics(wanted: bool | None) -> ServiceMetrics | None:
    if wanted is False:
        return None
    try:
        from convstats_adapters.metrics import ServiceMetrics
    except MissingDependency:
        if wanted:
            raise
        return None
    return ServiceMetrics()
