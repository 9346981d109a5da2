"""The HTTP service as it is operated: its metrics, a store swapped under it, its document."""

from __future__ import annotations

import shutil
import sys
import threading

import pytest

from tests.http_support import (
    DOCUMENT,
    MARCH,
    SAMPLE,
    FlakyStore,
    InProcessClient,
    headers,
    report,
)

prometheus_client = pytest.importorskip("prometheus_client", reason="the metrics extra is missing")

from openapi_core import OpenAPI  # noqa: E402
from openapi_core.testing import MockRequest, MockResponse  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from convstats.errors import MissingDependency  # noqa: E402
from convstats.ports import Versioned  # noqa: E402
from convstats_adapters.memory import MemoryStore  # noqa: E402
from convstats_adapters.metrics import ServiceMetrics  # noqa: E402
from convstats_adapters.openapi import (  # noqa: E402
    HEALTH_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    READY_PATH,
    REPORT_PATH,
)
from convstats_adapters.serve import Reloader  # noqa: E402
from convstats_adapters.server import create_app, swap_store  # noqa: E402

#: How long a test waits for a reload thread, far beyond what a reload of the sample takes.
JOIN_WAIT = 30.0


@pytest.fixture(scope="module")
def sample() -> MemoryStore:
    return MemoryStore.from_path(SAMPLE)


@pytest.fixture(scope="module")
def fewer_rooms(tmp_path_factory: pytest.TempPathFactory) -> MemoryStore:
    """The sample with only its first ten rooms."""
    folder = tmp_path_factory.mktemp("fewer") / "export"
    shutil.copytree(SAMPLE, folder)
    rooms = folder / "rocketchat_room.json"
    rooms.write_text("".join(rooms.read_text().splitlines(keepends=True)[:10]))
    return MemoryStore.from_path(folder)


def samples(http: InProcessClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and sorted labels."""
    response = http.get(METRICS_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(http: InProcessClient) -> int:
    answer = report(http, MARCH, **headers("u-manager"))
    assert answer.status_code == 200
    return int(answer.json()["total"])


# -- /metrics ---------------------------------------------------------------------------------


def test_requests_are_counted_and_timed_by_route_and_status(sample):
    """/metrics counts requests by route and status, and times them by route."""
    with InProcessClient(create_app(sample)) as http:
        for _ in range(2):
            report(http, MARCH, **headers("u-manager"))
        report(http, MARCH, **headers("u-manager", "not-the-token"))
        http.get(HEALTH_PATH)
        figures = samples(http)
    requests = "convstats_http_requests_total"
    assert figures[(requests, (("route", REPORT_PATH), ("status", "200")))] == 2
    assert figures[(requests, (("route", REPORT_PATH), ("status", "401")))] == 1
    assert figures[(requests, (("route", HEALTH_PATH), ("status", "200")))] == 1
    seconds = "convstats_http_request_duration_seconds_count"
    assert figures[(seconds, (("route", REPORT_PATH),))] == 3
    assert not any("not-the-token" in str(key) for key in figures)


def test_paths_without_a_route_are_one_label(sample, tmp_path):
    """Files of the page and unknown paths count under route="other", not one label each."""
    (tmp_path / "index.html").write_text("<p>page</p>")
    with InProcessClient(create_app(sample, web_directory=tmp_path), check=False) as http:
        assert http.get("/").status_code == 200
        assert http.get("/nothing/here").status_code == 404
        figures = samples(http)
    requests = "convstats_http_requests_total"
    assert figures[(requests, (("route", "other"), ("status", "200")))] == 1
    assert figures[(requests, (("route", "other"), ("status", "404")))] == 1


def test_store_calls_are_timed_and_their_failures_counted(sample):
    """Each store method's calls are timed, and the calls that raise counted by error."""
    store = FlakyStore(sample)
    with InProcessClient(create_app(store)) as http:
        report(http, MARCH, **headers("u-manager"))
        store.down = True
        assert report(http, MARCH, **headers("u-manager")).status_code == 503
        store.down = False
        figures = samples(http)
    calls = "convstats_store_call_duration_seconds_count"
    assert figures[(calls, (("call", "count_groups"),))] == 1
    assert figures[(calls, (("call", "user_with_token"),))] == 2
    failures = "convstats_store_call_failures_total"
    failed = (("call", "user_with_token"), ("error", "StorageUnavailable"))
    assert figures[(failures, failed)] == 1
    assert sum(value for (name, _), value in figures.items() if name == failures) == 1


def test_cache_hits_and_misses_are_counted(sample):
    """With a cache, its hits and misses are counters; without one they are absent."""
    with InProcessClient(create_app(sample, cache_ttl=60)) as http:
        for _ in range(3):
            report(http, MARCH, **headers("u-manager"))
        figures = samples(http)
    assert figures[("convstats_report_cache_hits_total", ())] == 2
    assert figures[("convstats_report_cache_misses_total", ())] == 1
    with InProcessClient(create_app(sample)) as http:
        report(http, MARCH, **headers("u-manager"))
        names = {name for name, _ in samples(http)}
    assert not {name for name in names if "cache" in name}


class AgedStore(FlakyStore):
    """A store that knows how old its data is, as a live mirror will."""

    data_age_seconds: float | None = 42.5


def test_the_data_age_is_a_gauge_when_the_store_knows_it(sample):
    """A store with data_age_seconds has it at /metrics; one without, or not knowing, has none."""
    store = AgedStore(sample)
    with InProcessClient(create_app(store)) as http:
        assert samples(http)[("convstats_data_age_seconds", ())] == 42.5
        store.data_age_seconds = None
        assert ("convstats_data_age_seconds", ()) not in samples(http)
    with InProcessClient(create_app(sample)) as http:
        assert ("convstats_data_age_seconds", ()) not in samples(http)


def test_each_application_counts_in_a_registry_of_its_own(sample):
    """Two applications in one process keep separate figures, none in the global registry."""
    first, second = create_app(sample), create_app(sample)
    with InProcessClient(first) as one, InProcessClient(second) as other:
        report(one, MARCH, **headers("u-manager"))
        key = ("convstats_http_requests_total", (("route", REPORT_PATH), ("status", "200")))
        assert samples(one)[key] == 1
        assert key not in samples(other)
    in_global = [
        name for name in prometheus_client.REGISTRY._names_to_collectors if "convstats" in name
    ]
    assert in_global == []


def test_without_the_extra_there_is_no_metrics_route(sample, monkeypatch):
    """Without prometheus-client /metrics is a 404 and not documented; asked for, it is an error."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "convstats_adapters.metrics", raising=False)
    with InProcessClient(create_app(sample), check=False) as http:
        assert http.get(METRICS_PATH).status_code == 404
        assert METRICS_PATH not in http.get(OPENAPI_PATH).json()["paths"]
        assert report(http, MARCH, **headers("u-manager")).status_code == 200
    with pytest.raises(MissingDependency, match="metrics"):
        create_app(sample, metrics=True)


def test_a_measured_store_stays_versioned(sample):
    """Timing a store keeps what it offers: a Versioned store stays one, others do not become it."""
    measured = ServiceMetrics().measure(sample)
    assert isinstance(measured, Versioned)
    assert measured.data_version == sample.data_version
    assert not isinstance(ServiceMetrics().measure(FlakyStore(sample)), Versioned)


# -- swapping the store -----------------------------------------------------------------------


def test_a_swapped_store_answers_at_once_without_the_old_cache(sample, fewer_rooms):
    """swap_store answers from the new store, not from reports cached of the old one."""
    app = create_app(sample, cache_ttl=60)
    with InProcessClient(app) as http:
        everything = total(http)
        assert total(http) == everything  # now cached
        assert swap_store(app, fewer_rooms) is sample
        fewer = total(http)
        assert fewer < everything
        assert swap_store(app, sample) is fewer_rooms
        assert total(http) == everything
        figures = samples(http)
    # The counts of a dropped cache are kept: counters never go down.
    assert figures[("convstats_report_cache_hits_total", ())] == 1
    assert figures[("convstats_report_cache_misses_total", ())] == 3


def test_the_old_store_answers_while_the_new_one_loads(sample, fewer_rooms):
    """While a reload builds the new store in its thread, requests get the old store's answers."""
    app = create_app(sample)
    loading, loaded = threading.Event(), threading.Event()

    def reload() -> None:
        loading.set()
        assert loaded.wait(JOIN_WAIT)
        swap_store(app, fewer_rooms)

    reloader = Reloader(reload)
    with InProcessClient(app) as http:
        everything = total(http)
        reloader.request()
        assert loading.wait(JOIN_WAIT)
        assert total(http) == everything
        assert http.get(READY_PATH).status_code == 200
        loaded.set()
        assert reloader.join(JOIN_WAIT)
        assert total(http) < everything


def test_a_reload_asked_for_during_a_reload_runs_once_after_it():
    """Signals during a reload give one more reload after it, so the last change is read."""
    runs: list[int] = []
    running, release = threading.Event(), threading.Event()

    def reload() -> None:
        runs.append(len(runs))
        running.set()
        assert release.wait(JOIN_WAIT)

    reloader = Reloader(reload)
    reloader.request()
    assert running.wait(JOIN_WAIT)
    for _ in range(3):
        reloader.request()
    release.set()
    assert reloader.join(JOIN_WAIT)
    assert runs == [0, 1]


def test_a_reload_that_raises_is_logged_and_the_next_one_runs(caplog):
    """An unexpected error in a reload is logged, and a later SIGHUP reloads again."""
    outcomes = iter([RuntimeError("boom"), None])

    def reload() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    reloader = Reloader(reload)
    reloader.request()
    assert reloader.join(JOIN_WAIT)
    assert "the reload failed unexpectedly" in caplog.text
    reloader.request()
    assert reloader.join(JOIN_WAIT)
    assert next(outcomes, "done") == "done"


# -- the OpenAPI document ---------------------------------------------------------------------


def test_the_sign_in_headers_are_one_security_requirement(sample):
    """Both headers are apiKey schemes required together; the probes need no sign-in."""
    with InProcessClient(create_app(sample)) as http:
        document = http.get(OPENAPI_PATH).json()
    schemes = document["components"]["securitySchemes"]
    assert {
        name: (scheme["type"], scheme["in"], scheme["name"]) for name, scheme in schemes.items()
    } == {
        "UserId": ("apiKey", "header", "X-User-Id"),
        "AuthToken": ("apiKey", "header", "X-Auth-Token"),
    }
    assert document["security"] == [{"UserId": [], "AuthToken": []}]
    assert "security" not in document["paths"][REPORT_PATH]["get"]  # the document's
    for path in (OPENAPI_PATH, HEALTH_PATH, READY_PATH, METRICS_PATH):
        assert document["paths"][path]["get"]["security"] == []
    signed_in = MockRequest(
        "http://127.0.0.1", "get", REPORT_PATH, args=MARCH, headers=headers("u-manager")
    )
    DOCUMENT.validate_request(signed_in)
    DOCUMENT.validate_request(MockRequest("http://127.0.0.1", "get", HEALTH_PATH))


def test_under_a_prefix_the_document_names_it_as_its_server(sample):
    """Mounted under /reports, the document's server is /reports, and answers validate there."""
    outer = Starlette(routes=[Mount("/reports", app=create_app(sample))])
    with InProcessClient(outer, check=False) as http:
        document = http.get(f"/reports{OPENAPI_PATH}").json()
        answer = http.get(f"/reports{REPORT_PATH}", params=MARCH, headers=headers("u-manager"))
    assert document["servers"] == [{"url": "/reports"}]
    assert answer.status_code == 200
    OpenAPI.from_dict(document).validate_response(
        MockRequest("http://127.0.0.1", "get", f"/reports{REPORT_PATH}"),
        MockResponse(answer.content, status_code=200, content_type="application/json"),
    )
    with InProcessClient(create_app(sample)) as http:
        assert http.get(OPENAPI_PATH).json()["servers"] == [{"url": "/"}]
