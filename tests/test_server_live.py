"""The HTTP service answering from a live mirror: the freshness contract, and serve --live.

The mirror's clock is injected: its data's age is what the test says it is. The database is
mongomock (tests/mirror_support.py), which Rocket.Chat's writes change while it is followed.
"""

from __future__ import annotations

import contextlib
import io
import re
import signal
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from pymongo import MongoClient, ReadPreference

from tests.http_support import (
    MARCH,
    SAMPLE,
    TOKENS,
    InProcessClient,
    check_against_openapi,
    checked,
    headers,
    report,
)

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")

import httpx  # noqa: E402

from convstats.http import STORAGE_UNAVAILABLE  # noqa: E402
from convstats_adapters.cli import run  # noqa: E402
from convstats_adapters.files import load_collections  # noqa: E402
from convstats_adapters.memory import MemoryStore  # noqa: E402
from convstats_adapters.mirror import MongoMirror  # noqa: E402
from convstats_adapters.mongo import MongoStore  # noqa: E402
from convstats_adapters.openapi import READY_PATH, REPORT_PATH, REPORTS, report_path  # noqa: E402
from convstats_adapters.server import AGE_HEADER, SOURCE_HEADER, Freshness, create_app  # noqa: E402
from tests.fake_mongo import ChangeStreams, fake_mongo  # noqa: E402
from tests.mirror_support import (  # noqa: E402
    AGENTS,
    DEPARTMENTS,
    MANAGER_HEADERS,
    TAGS,
    FakeClock,
    RocketChat,
    SharedMongo,
    differences,
    workspace,
)
from tests.mongo_support import MONGODB_URI, NOT_CONFIGURED  # noqa: E402
from tests.test_mirror_polling import seeded  # noqa: E402
from tests.test_server_process import RUNNING, Served  # noqa: E402

MAX_STALENESS = 5.0
MANAGER = headers("u-manager")
#: The writer's rooms' window, as a request asks for it.
WINDOW_PARAMS = {"start": "2024-04-30", "end": "2024-05-31"}


def sample_in(client: SharedMongo) -> None:
    """The sample workspace, login tokens and all, in the client's database."""
    database = client.base.get_database("rc")
    for name, documents in load_collections(SAMPLE).items():
        database[name].insert_many([dict(document) for document in documents])


@pytest.fixture
def client() -> SharedMongo:
    client = SharedMongo()
    sample_in(client)
    return client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mirror(client: SharedMongo, clock: FakeClock) -> Iterator[MongoMirror]:
    mirror = MongoMirror(MongoStore(client, database="rc"), clock=clock)
    yield mirror
    mirror.close()


@contextlib.contextmanager
def serving(mirror: MongoMirror, fallback: Any) -> Iterator[InProcessClient]:
    freshness = Freshness(max_staleness=MAX_STALENESS, fallback=fallback)
    with InProcessClient(create_app(mirror, freshness=freshness)) as http:
        yield http


def answered(http: InProcessClient) -> tuple[int, str | None, str | None, Any]:
    response = report(http, MARCH, **MANAGER)
    return (
        response.status_code,
        response.headers.get(SOURCE_HEADER),
        response.headers.get(AGE_HEADER),
        response.json(),
    )


@pytest.fixture(scope="module")
def expected() -> Any:
    """The sample's answer to the manager, as the in-memory store gives it."""
    with InProcessClient(create_app(MemoryStore.from_path(SAMPLE))) as http:
        return report(http, MARCH, **MANAGER).json()


def test_a_fresh_mirror_answers_and_says_so(
    mirror: MongoMirror, client: SharedMongo, clock: FakeClock, expected: Any
) -> None:
    """Within the staleness allowed the mirror answers, tokens and all, and the headers say it."""
    mirror.load()
    clock.advance(1.25)
    with serving(mirror, MongoStore(client.twin(), database="rc")) as http:
        assert answered(http) == (200, "mirror", "1.250", expected)
        ready = http.get(READY_PATH)
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "source": "mirror",
            "data_age_seconds": 1.25,
            "max_staleness_seconds": MAX_STALENESS,
        }
        wrong = report(http, MARCH, **headers("u-manager", "not-the-token"))
        assert wrong.status_code == 401
        assert wrong.headers[SOURCE_HEADER] == "mirror"


def test_past_the_staleness_allowed_mongodb_answers(
    mirror: MongoMirror, client: SharedMongo, clock: FakeClock, expected: Any
) -> None:
    """An answer never comes from data older than allowed: MongoDB answers it instead."""
    fallback = MongoStore(client.twin(), database="rc")
    with serving(mirror, fallback) as http:
        assert answered(http) == (200, "mongodb", "unknown", expected)  # still loading
        mirror.load()
        assert answered(http)[:2] == (200, "mirror")
        clock.advance(MAX_STALENESS + 0.5)
        assert answered(http) == (200, "mongodb", "5.500", expected)
        assert http.get(READY_PATH).json()["source"] == "mongodb"


def test_without_a_fallback_stale_data_is_a_503(mirror: MongoMirror, clock: FakeClock) -> None:
    """--stale 503: past the staleness allowed (or before loading) the answer is a 503."""
    with serving(mirror, None) as http:
        assert answered(http) == (
            503,
            "none",
            "unknown",
            {"success": False, "error": STORAGE_UNAVAILABLE},
        )
        ready = http.get(READY_PATH)
        assert ready.status_code == 503
        assert ready.json()["source"] == "none"
        assert ready.json()["data_age_seconds"] is None
        mirror.load()
        assert answered(http)[:2] == (200, "mirror")
        assert http.get(READY_PATH).status_code == 200
        clock.advance(60)
        status, source, age, _ = answered(http)
        assert (status, source, age) == (503, "none", "60.000")


def test_the_service_switches_while_the_database_is_away_and_back(
    mirror: MongoMirror, client: SharedMongo, clock: FakeClock, expected: Any
) -> None:
    """The follower fails, the mirror ages past the limit, MongoDB answers; then it catches up."""
    fallback_client = client.twin()
    with serving(mirror, MongoStore(fallback_client, database="rc")) as http:
        mirror.load()
        client.down.set()  # the follower's connection fails
        database = client.base.get_database("rc")
        later = datetime(2030, 1, 1, tzinfo=timezone.utc)
        database.rocketchat_room.update_many(
            {}, {"$unset": {"servedBy": ""}, "$set": {"_updatedAt": later}}
        )
        for _ in range(3):
            clock.advance(2)
            with contextlib.suppress(Exception):
                mirror.follow_once()
        assert mirror.data_age_seconds == 6
        status, source, _, body = answered(http)
        assert (status, source) == (200, "mongodb")
        assert body != expected  # MongoDB has the change the mirror could not read
        fallback_client.down.set()  # now MongoDB is away for everyone
        status, source, _, body = answered(http)
        assert (status, source, body) == (
            503,
            "mongodb",
            {"success": False, "error": STORAGE_UNAVAILABLE},
        )
        assert http.get(READY_PATH).status_code == 503
        client.down.clear()
        fallback_client.down.clear()
        assert mirror.follow_once() > 0  # the change made while away
        status, source, age, caught_up = answered(http)
        assert (status, source, age) == (200, "mirror", "0.000")
        clock.advance(MAX_STALENESS + 1)
        assert answered(http) == (200, "mongodb", "6.000", caught_up)


def test_freshness_needs_a_store_that_knows_its_age() -> None:
    """create_app refuses freshness for a store that cannot say how old its data is."""
    with pytest.raises(TypeError, match=r"convstats\.ports\.Aged"):
        create_app(MemoryStore.from_path(SAMPLE), freshness=Freshness(max_staleness=1))


def test_max_staleness_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_staleness"):
        Freshness(max_staleness=0)


# -- a service answering while Rocket.Chat writes ----------------------------------------------


@contextlib.contextmanager
def live_database(kind: str) -> Iterator[tuple[RocketChat, MongoStore, MongoStore]]:
    """Rocket.Chat's writer, the store a mirror reads, and MongoDB itself as the reference.

    ``mongomock`` (followed by polling), or ``mongodb``: a fresh database on the real server
    named by CONVSTATS_MONGODB_URI (followed by change streams when it is a replica set),
    dropped afterwards.
    """
    if kind == "mongomock":
        client = SharedMongo()
        writer = seeded(client)
        yield writer, MongoStore(client, database="rc"), MongoStore(client.twin(), database="rc")
        return
    if not MONGODB_URI:
        pytest.skip(NOT_CONFIGURED)
    name = f"convstats_test_{uuid.uuid4().hex[:12]}"
    real: MongoClient[dict[str, Any]] = MongoClient(MONGODB_URI, tz_aware=True)
    try:
        database = real[name]
        for collection, documents in workspace().items():
            database[collection].insert_many([dict(document) for document in documents])
        primary = ReadPreference.PRIMARY  # what was just written, read back at once
        yield (
            RocketChat(database),
            MongoStore(real, database=name, read_preference=primary),
            MongoStore(real, database=name, read_preference=primary),
        )
    finally:
        real.drop_database(name)
        real.close()


@pytest.mark.parametrize("kind", ["mongomock", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def test_a_service_answers_from_the_mirror_while_rocketchat_writes(kind: str) -> None:
    """A writer thread changes rooms while the service answers; caught up, all reports agree.

    Inserts, transfers, holds, closes, tags, messages and deletions; afterwards every report
    (each grouping, reading and visibility) of the mirror equals MongoDB's own.
    """
    with live_database(kind) as (writer, source, reference):
        mirror = MongoMirror(source, poll_interval=0.01, max_await=0.1)
        rooms = [writer.create(department=DEPARTMENTS[n % 2]) for n in range(10)]
        done = threading.Event()

        def write() -> None:
            for step in range(300):
                room = rooms[step % len(rooms)]
                action = step % 7
                if action == 0:
                    rooms.append(writer.create(department=DEPARTMENTS[step % 2]))
                elif action == 1:
                    writer.take(room, AGENTS[step % 3])
                elif action == 2:
                    writer.hold(room)
                elif action == 3:
                    writer.close(room)
                elif action == 4:
                    writer.tag(room, [TAGS[step % 3]])
                elif action == 5 and len(rooms) > 5:
                    writer.delete(rooms.pop(0))
                else:
                    writer.message(room)
            done.set()

        sources: set[str] = set()
        freshness = Freshness(max_staleness=60, fallback=reference)
        with mirror, InProcessClient(create_app(mirror, freshness=freshness)) as http:
            assert mirror.sync(timeout=60)
            thread = threading.Thread(target=write)
            thread.start()
            for asked in range(10_000):  # bounded: the writer ends long before
                if done.is_set():
                    break
                path = report_path(REPORTS[asked % len(REPORTS)])  # every report in turn
                response = http.get(path, params=WINDOW_PARAMS, headers=MANAGER_HEADERS)
                assert response.status_code == 200
                sources.add(response.headers[SOURCE_HEADER])
            thread.join()
            assert mirror.sync(timeout=60)
            assert differences(mirror, reference) == []
            final = http.get(REPORT_PATH, params=WINDOW_PARAMS, headers=MANAGER_HEADERS)
            assert final.headers[SOURCE_HEADER] == "mirror"
        assert sources == {"mirror"}
        assert mirror.status().state == "stopped"


# -- convstats serve --live ------------------------------------------------------------------


def cli(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    err = io.StringIO()
    status = run(list(argv), out=io.StringIO(), err=err, environ=environ or {})
    return status, err.getvalue()


def test_live_needs_mongo() -> None:
    """--live with --data is a usage error, status 2, before anything is read."""
    status, err = cli("serve", "--data", SAMPLE, "--live")
    assert status == 2
    assert "--live: only applies with --mongo" in err
    assert err.startswith("usage: convstats serve")


@pytest.mark.parametrize(
    ("value", "status", "complaint"),
    [
        ("maybe", 2, "CONVSTATS_LIVE: invalid value 'maybe'"),
        ("yes", 2, "--live: only applies with --mongo"),
        ("On", 2, "--live: only applies with --mongo"),
        ("no", 1, "missing"),  # off: the (missing) data folder is read, and fails
    ],
)
def test_the_live_variable_is_a_yes_or_no(
    value: str, status: int, complaint: str, tmp_path: Any
) -> None:
    """CONVSTATS_LIVE takes a yes or a no; another value is a usage error naming it."""
    environ = {"CONVSTATS_DATA": str(tmp_path / "missing"), "CONVSTATS_LIVE": value}
    code, err = cli("serve", "--port", "0", environ=environ)
    assert (code, complaint in err) == (status, True)


@pytest.mark.server
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_live_answers_from_the_mirror_and_stops_cleanly(signum: int, expected: Any) -> None:
    """convstats serve --live follows a replica set member, answers from memory, and stops."""
    collections = {name: list(documents) for name, documents in load_collections(SAMPLE).items()}
    script = ChangeStreams(collections)
    with fake_mongo(**script.responders()) as server:
        served = Served("--mongo", server.uri(), "--live", "--max-staleness", "30")
        try:
            served.wait_for(
                re.compile(r"loaded the mirror of rc in .* following by change streams")
            )
            with checked(httpx.Client(base_url=served.base_url, timeout=10)) as http:
                response = report(http, MARCH, **MANAGER)
                assert response.status_code == 200
                assert response.headers[SOURCE_HEADER] == "mirror"
                assert response.json() == expected
            assert served.stop(signum) == 0
        finally:
            served.close()
    assert "the mirror stopped following the database" in served.output
    assert TOKENS["u-manager"] not in served.output
    assert RUNNING.search(served.output)


@pytest.mark.parametrize(
    ("source", "age", "allowed"),
    [
        ("mirror", "1.250", True),
        ("none", "unknown", True),
        ("cache", "1.250", False),
        ("mirror", "soon", False),
    ],
)
def test_the_document_declares_the_freshness_headers(source: str, age: str, allowed: bool) -> None:
    """A report's answer may carry the two headers, with the values the service sends only."""
    request = httpx.Request("GET", f"http://127.0.0.1{REPORT_PATH}")
    headers = {SOURCE_HEADER: source, AGE_HEADER: age}
    response = httpx.Response(503, json={"success": False, "error": "x"}, headers=headers)
    response.request = request
    if allowed:
        check_against_openapi(response)
    else:
        with pytest.raises(Exception, match="InvalidHeader"):
            check_against_openapi(response)
