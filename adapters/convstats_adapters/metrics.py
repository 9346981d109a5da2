"""The HTTP service's metrics, in the Prometheus text format, at ``/metrics``.

Needs the ``metrics`` extra (``pip install 'convstats[metrics]'``: the maintained
``prometheus-client``); :func:`convstats_adapters.server.create_app` serves ``/metrics``
when it is installed. Each application counts in a registry of its own, never in the
client's global one, so that two applications in one process do not mix their figures.

=============================================  =========  ==================================
metric                                         type       labels
=============================================  =========  ==================================
``convstats_http_requests_total``              counter    ``route``, ``status``
``convstats_http_request_duration_seconds``    histogram  ``route``
``convstats_store_call_duration_seconds``      histogram  ``call`` (the store method)
``convstats_store_call_failures_total``        counter    ``call``, ``error`` (its class)
``convstats_report_cache_hits_total``          counter    (with a report cache)
``convstats_report_cache_misses_total``        counter    (with a report cache)
``convstats_data_age_seconds``                 gauge      (when the store is Aged)
=============================================  =========  ==================================

``route`` is the route's path, as the OpenAPI document names it, or ``other`` for the files
of the dashboard page and for paths that match no route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, cast

from convstats.errors import MissingDependency
from convstats.ports import Workspace

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
    from prometheus_client import generate_latest as _generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:
    raise MissingDependency("prometheus-client", "metrics") from exc

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE", "MeasuredApp", "MeasuredStore", "ServiceMetrics"]

#: The media type of :meth:`ServiceMetrics.render`'s text.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: From a cached answer (a millisecond) to the longest a request waits for the store (30 s).
_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_OTHER_ROUTE: Final = "other"


class _Gauges(Collector):
    """What is read when scraped: the cache's counts and the data's age."""

    def __init__(
        self,
        cache_counts: Callable[[], tuple[int, int] | None],
        data_age: Callable[[], float | None],
    ) -> None:
        self.cache_counts = cache_counts
        self.data_age = data_age

    def collect(self) -> Iterator[Metric]:
        counts = self.cache_counts()
        if counts is not None:
            hits, misses = counts
            yield CounterMetricFamily(
                "convstats_report_cache_hits", "Reports answered from the cache.", value=hits
            )
            yield CounterMetricFamily(
                "convstats_report_cache_misses",
                "Reports the cache did not hold, computed from the store.",
                value=misses,
            )
        age = self.data_age()
        if age is not None:
            yield GaugeMetricFamily(
                "convstats_data_age_seconds",
                "Seconds since the store's data last matched its source.",
                value=age,
            )


class ServiceMetrics:
    """The figures of one application, in a registry of their own."""

    #: The media type of :meth:`render`'s text.
    content_type: Final = CONTENT_TYPE

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "convstats_http_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "convstats_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "convstats_store_call_duration_seconds",
            "Time a store call took, failed ones included, by store method.",
            ["call"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.store_failures = Counter(
            "convstats_store_call_failures",
            "Store calls that raised, by store method and exception class.",
            ["call", "error"],
            registry=self.registry,
        )

    def read(
        self,
        *,
        cache_counts: Callable[[], tuple[int, int] | None],
        data_age: Callable[[], float | None],
    ) -> None:
        """Report what these answer at each scrape; call it once.

        ``cache_counts`` answers the report cache's hits and misses so far (``None`` without
        a cache), ``data_age`` the age of the store's data (``None`` when unknown).
        """
        self.registry.register(_Gauges(cache_counts, data_age))

    def measure(self, store: Workspace) -> Workspace:
        """``store``, its calls timed and its failures counted."""
        return cast(Workspace, MeasuredStore(store, self))

    def middleware(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> MeasuredApp:
        """``app``, its requests counted and timed by which of ``routes`` they match."""
        return MeasuredApp(app, routes=routes, metrics=self)

    def render(self) -> bytes:
        """Every metric, in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return _generate_latest(self.registry)


class MeasuredStore:
    """A store whose method calls are timed and whose failures are counted.

    Every other attribute is the store's own, so that what the store offers (``Versioned``
    and whatever a later port adds) is offered as it is.
    """

    def __init__(self, store: Any, metrics: ServiceMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if name.startswith("_") or not callable(value):
            return value  # data_version and the like: read afresh each time
        timed = self._timed(name, value)
        self.__dict__[name] = timed  # looked up once per method
        return timed

    def _timed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        seconds = self._metrics.store_seconds.labels(name)
        failures = self._metrics.store_failures

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            except Exception as error:
                failures.labels(name, type(error).__name__).inc()
                raise
            finally:
                seconds.observe(time.perf_counter() - started)

        return call


class MeasuredApp:
    """An ASGI application whose HTTP requests are counted and timed by route and status."""

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute], metrics: ServiceMetrics
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics

    def _route(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:  # PARTIAL: the path, another method (405)
                return str(getattr(route, "path", _OTHER_ROUTE))
        return _OTHER_ROUTE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer as the application does, counting and timing HTTP requests."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = self._route(scope)  # before the application, which may change the scope
        status = 500  # unless the application answers otherwise

        async def send_measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_measured)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
