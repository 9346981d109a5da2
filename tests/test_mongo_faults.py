"""The MongoDB store against a server that misbehaves: stalls, corrupt replies, odd callers.

A fake server on 127.0.0.1 (tests/fake_mongo.py) completes the handshake as a real one would
and then does the one wrong thing each test asks for.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from convstats import (
    ConversationsByAgent,
    ConversationsByAgentEndpoint,
    RocketChatAuthority,
)
from convstats.authz import OperatorAuthority
from convstats.errors import StorageError, StorageTimeout
from convstats.http import STORAGE_UNAVAILABLE
from convstats.model import Visibility
from convstats_adapters.cli import run
from convstats_adapters.mongo import MongoStore
from tests.builders import by_agent
from tests.fake_mongo import STALL, FakeMongo, Responder, cursor_reply, fake_mongo, raw_cursor_reply
from tests.test_mongo import WINDOW

PARAMS = {"start": "2024-05-01", "end": "2024-05-02"}
#: The client-side bound the tests give the store, small so that the suite stays fast.
BOUND_MS = 500

Serve = Callable[..., FakeMongo]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts fake servers answering with the given responders; stops them all afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda **responders: stack.enter_context(fake_mongo(**responders))


def endpoint(store: MongoStore, *, operator: bool = True) -> ConversationsByAgentEndpoint:
    return ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store),
        authority=OperatorAuthority() if operator else RocketChatAuthority(directory=store),
    )


def no_users(command: dict[str, Any]) -> dict[str, Any]:
    return cursor_reply([])


# -- stalls ------------------------------------------------------------------------------------

STALLS: dict[str, dict[str, Responder]] = {
    "on aggregate": {"aggregate": lambda _: STALL},
    "on getMore": {
        "aggregate": lambda _: cursor_reply([{"_id": "a", "conversations": 1}], cursor_id=42),
        "getMore": lambda _: STALL,
    },
}


@contextlib.contextmanager
def bounded_store(server: FakeMongo, how: str) -> Iterator[MongoStore]:
    """A store with a client-side bound of BOUND_MS, set in each of the three ways."""
    if how == "max_time_ms":
        with MongoStore(server.uri(), max_time_ms=BOUND_MS) as store:
            yield store
    elif how == "timeoutMS in the URI":
        with MongoStore(server.uri(f"&timeoutMS={BOUND_MS}")) as store:
            yield store
    else:  # a caller's client without timeoutMS: the store bounds each call itself
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri(), tz_aware=True)
        try:
            yield MongoStore(client, max_time_ms=BOUND_MS)
        finally:
            client.close()


@pytest.mark.parametrize("how", ["max_time_ms", "timeoutMS in the URI", "passed-in client"])
@pytest.mark.parametrize("stall", STALLS.values(), ids=STALLS.keys())
def test_a_server_that_stalls_ends_the_call_as_a_timeout(
    serve: Serve, stall: dict[str, Responder], how: str
) -> None:
    """A server that accepts the count and never answers ends the call as StorageTimeout."""
    server = serve(**stall)
    with bounded_store(server, how) as store, pytest.raises(StorageTimeout) as info:
        by_agent(store, WINDOW, Visibility.everything())
    stalled = next(iter(stall)) if len(stall) == 1 else "getMore"
    assert stalled in server.commands
    assert "aggregate on rocketchat_room" in str(info.value)
    assert f"client limit {BOUND_MS} ms" in str(info.value)


def test_the_endpoint_answers_a_stall_with_503_and_logs_why(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """handle() returns a generic 503 for a stalled server, and the log says what timed out."""
    server = serve(aggregate=lambda _: STALL)
    with MongoStore(server.uri(), max_time_ms=BOUND_MS) as store:
        response = endpoint(store).handle(PARAMS, "boss")
    assert response.status == 503
    assert response.body == {"success": False, "error": STORAGE_UNAVAILABLE}
    [record] = [r for r in caplog.records if r.name == "convstats"]
    assert record.levelno == logging.ERROR
    assert "StorageTimeout" in record.getMessage()
    assert "did not answer in time" in record.getMessage()


def test_the_command_line_exits_1_on_a_stall(serve: Serve) -> None:
    """The command ends with exit 1 and one line on stderr when the server stalls."""
    server = serve(aggregate=lambda _: STALL)
    out, err = io.StringIO(), io.StringIO()
    argv = ["conversations-by-agent", "--mongo", server.uri(f"&timeoutMS={BOUND_MS}")]
    status = run(
        [*argv, *("--start", "2024-05-01", "--end", "2024-05-02", "--format", "json")],
        out=out,
        err=err,
    )
    assert status == 1
    assert json.loads(out.getvalue()) == {"success": False, "error": STORAGE_UNAVAILABLE}
    assert err.getvalue().count("\n") == 1
    assert "did not answer in time" in err.getvalue()


def test_reads_carry_the_bound_and_index_builds_do_not(serve: Serve) -> None:
    """The server is told what remains of the bound for a read; an index build is not limited."""
    server = serve(
        aggregate=lambda _: cursor_reply([]),
        createIndexes=lambda _: {"ok": 1.0},
    )
    with MongoStore(server.uri(), max_time_ms=BOUND_MS) as store:
        by_agent(store, WINDOW, Visibility.everything())
        store.ensure_indexes()
    [aggregate] = server.received("aggregate")
    assert 0 < aggregate["maxTimeMS"] <= BOUND_MS
    builds = server.received("createIndexes")
    assert len(builds) == 5
    assert all("maxTimeMS" not in build for build in builds)


def test_the_default_bound_is_max_time_ms_unless_the_uri_sets_one() -> None:
    """A store's own client gets timeoutMS = max_time_ms; a timeoutMS in the URI is kept."""
    with MongoStore("mongodb://127.0.0.1:1/rc") as store:
        assert store.mongo_database.client.options.timeout == 30.0
    with MongoStore("mongodb://127.0.0.1:1/rc?timeoutMS=1234", max_time_ms=500) as store:
        assert store.mongo_database.client.options.timeout == 1.234


# -- replies the driver cannot read, or the report cannot use ----------------------------------

UTF8_ID = raw_cursor_reply(
    b"placeholder", b"\xff\xfe" + b"x" * 9, [{"_id": "placeholder", "conversations": 1}]
)
CORRUPT_REPLIES: dict[str, Responder] = {
    "invalid UTF-8 in a string": lambda _: UTF8_ID,
    "an unknown BSON type": lambda _: raw_cursor_reply(
        b"\x02_id\x00", b"\x55_id\x00", [{"_id": "agent", "conversations": 1}]
    ),
    "a document length past the end": lambda _: raw_cursor_reply(
        b"\x0c\x00\x00\x00placeholder",
        b"\xff\xff\xff\x7fplaceholder",
        [{"_id": "placeholder", "conversations": 1}],
    ),
    "a batch that is not an array": lambda _: {"cursor": {"id": 0, "firstBatch": 5}, "ok": 1.0},
    "a body too short to be a document": lambda _: b"\x00\x01\x02",
    "a group without _id": lambda _: cursor_reply([{"conversations": 3}]),
    "a fractional count": lambda _: cursor_reply([{"_id": "a", "conversations": 2.5}]),
    "a count as a string": lambda _: cursor_reply([{"_id": "a", "conversations": "3"}]),
    "a count as a boolean": lambda _: cursor_reply([{"_id": "a", "conversations": True}]),
    "a negative count": lambda _: cursor_reply([{"_id": "a", "conversations": -1}]),
}


@pytest.mark.parametrize("reply", CORRUPT_REPLIES.values(), ids=CORRUPT_REPLIES.keys())
def test_a_reply_the_report_cannot_read_is_a_503(serve: Serve, reply: Responder) -> None:
    """Corrupt BSON or a malformed group is a StorageError, answered 503, never raised out."""
    server = serve(aggregate=reply, find=no_users)
    with MongoStore(server.uri(), max_time_ms=2_000) as store:
        with pytest.raises(StorageError, match="aggregate on rocketchat_room"):
            by_agent(store, WINDOW, Visibility.everything())
        response = endpoint(store).handle(PARAMS, "boss")
    assert response.status == 503
    assert response.body == {"success": False, "error": STORAGE_UNAVAILABLE}


def test_counts_arriving_as_doubles_are_whole_numbers_in_the_body(serve: Serve) -> None:
    """A server that sums in doubles still gives integer values, unspecified and total."""
    groups = [
        {"_id": "ana", "conversations": 3.0},
        {"_id": None, "conversations": 2.0},
        {"_id": "bob", "conversations": 1},
    ]
    server = serve(aggregate=lambda _: cursor_reply(groups), find=no_users)
    with MongoStore(server.uri(), max_time_ms=2_000) as store:
        response = endpoint(store).handle(PARAMS, "boss")
    assert response.status == 200
    body = response.body
    assert json.dumps(body) == json.dumps(
        {
            "total": 6,
            "data": [{"label": "ana", "value": 3}, {"label": "bob", "value": 1}],
            "unspecified": 2,
            "success": True,
        }
    )
    assert all(type(row["value"]) is int for row in body["data"])


# -- callers no document can be ----------------------------------------------------------------

ODD_CALLERS = {
    "a lone surrogate": "\udc80agent",
    "17 MB": "a" * (17 * 1024 * 1024),
    "16 MiB of multi-byte characters": "é" * (8 * 1024 * 1024),
}


@pytest.mark.parametrize("caller", ODD_CALLERS.values(), ids=ODD_CALLERS.keys())
def test_a_caller_id_no_document_can_have_is_401_without_a_query(serve: Serve, caller: str) -> None:
    """An id BSON cannot encode or hold is an unknown caller (401), as the memory store says."""
    server = serve(find=no_users)
    with MongoStore(server.uri(), max_time_ms=2_000) as store:
        response = endpoint(store, operator=False).handle(PARAMS, caller)
        assert store.get_user(caller) is None
        assert store.monitored_units(caller) == frozenset()
        assert store.agent_departments(caller) == frozenset()
        assert store.agent_names([caller]) == {}
    assert response.status == 401
    assert "find" not in server.commands


def test_an_ordinary_unknown_caller_is_asked_for(serve: Serve) -> None:
    """A caller id that could be stored is looked up, and unknown, answered 401."""
    server = serve(find=no_users)
    with MongoStore(server.uri(), max_time_ms=2_000) as store:
        response = endpoint(store, operator=False).handle(PARAMS, "x" * 1000)
    assert response.status == 401
    assert "find" in server.commands


# -- options the client cannot use -------------------------------------------------------------

BAD_OPTIONS = {
    "a TLS key file that does not exist": (
        "tls=true&tlsCertificateKeyFile=/nonexistent/client.pem",
        "tlscertificatekeyfile",
    ),
    "a TLS CA file that is a folder": ("tls=true&tlsCAFile=/", "tlscafile"),
    "a TLS switch that is not a boolean": ("tls=ture", "tls"),
    "a timeout that is not a number": ("serverSelectionTimeoutMS=soon", "serverselectiontimeoutms"),
    "a negative timeoutMS": ("timeoutMS=-1", "timeoutms"),
    "an unknown option": ("readPreferenc=secondary", "readpreferenc"),
}


@pytest.mark.parametrize(("query", "option"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_an_option_the_client_cannot_use_is_a_value_error_naming_it(
    query: str, option: str
) -> None:
    """A URI option that is wrong is refused at construction, naming the option, never ignored."""
    with pytest.raises(ValueError, match="invalid MongoDB URI") as info:
        MongoStore(f"mongodb://alice:hunter22@127.0.0.1:1/rc?{query}")
    assert option in str(info.value).lower()
    assert "hunter22" not in str(info.value)
    assert "alice" not in str(info.value)


def test_the_command_line_shows_a_bad_option_as_a_usage_error() -> None:
    """A TLS key file that cannot be read is exit 2 with the option named on stderr."""
    out, err = io.StringIO(), io.StringIO()
    uri = "mongodb://127.0.0.1:1/rc?tls=true&tlsCertificateKeyFile=/nonexistent/client.pem"
    argv = [
        "conversations-by-agent",
        "--mongo",
        uri,
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-02",
    ]
    assert run(argv, out=out, err=err) == 2
    assert "tlscertificatekeyfile" in err.getvalue().lower()
    assert "Traceback" not in err.getvalue()


# -- what the log and the body say -------------------------------------------------------------


def test_the_503_body_is_generic_and_the_log_has_the_masked_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The body names no host or database; the log record does, and never the password."""
    uri = "mongodb://alice:S3cr3t%3Fpw@127.0.0.1:1/rocketchat?serverSelectionTimeoutMS=200"
    with MongoStore(uri) as store:
        response = endpoint(store, operator=False).handle(PARAMS, "boss")
    assert response.status == 503
    assert response.body == {"success": False, "error": STORAGE_UNAVAILABLE}
    [record] = [r for r in caplog.records if r.name == "convstats"]
    message = record.getMessage()
    assert "StorageUnavailable" in message
    assert "127.0.0.1:1" in message
    assert "find on users" in message
    for secret in ("S3cr3t", "alice", "%3Fpw", "?pw"):
        assert secret not in message


def test_a_server_that_answers_in_time_is_counted_under_the_bound(serve: Serve) -> None:
    """The bound ends stalls only: a server that answers gives its counts, batches included."""
    server = serve(
        aggregate=lambda _: cursor_reply([{"_id": "ana", "conversations": 2}], cursor_id=7),
        getMore=lambda _: cursor_reply([{"_id": None, "conversations": 1}], first=False),
    )
    with MongoStore(server.uri(), max_time_ms=BOUND_MS) as store:
        counts = by_agent(store, WINDOW, Visibility.everything())
    assert counts.per_agent == {"ana": 2}
    assert counts.unspecified == 1
