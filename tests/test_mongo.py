"""The MongoDB store: push-down, construction, failures, indexes and read preference."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import mongomock
import pymongo.collection
import pymongo.database
import pytest
from pymongo import MongoClient, ReadPreference, monitoring
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    InvalidOperation,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from convstats import (
    ConversationsByAgent,
    ConversationsByAgentEndpoint,
    RocketChatAuthority,
    TimeWindow,
    Visibility,
)
from convstats.authz import OperatorAuthority
from convstats.errors import (
    MissingDependency,
    StorageError,
    StorageNotAuthorized,
    StorageTimeout,
    StorageUnavailable,
)
from convstats.model import Grouping
from convstats.ports import Directory, RoomStore
from convstats_adapters.memory import MemoryStore
from convstats_adapters.mongo import MongoStore, grouping_pipeline, mask_uri, window_match
from tests.builders import by_agent, room
from tests.mongo_support import MONGODB_URI, NOT_CONFIGURED, mongo_store

UTC = timezone.utc
T0 = datetime(2024, 5, 1, tzinfo=UTC)
WINDOW = TimeWindow(T0, T0 + timedelta(days=1))
UNREACHABLE = "mongodb://127.0.0.1:1/rc?serverSelectionTimeoutMS=200"


def conversations_pipeline(window: TimeWindow, visibility: Visibility) -> list[Any] | None:
    """The by-agent aggregation, or None when the visibility admits nothing."""
    match = window_match(window, visibility)
    return None if match is None else grouping_pipeline(Grouping.AGENT, match, upstream=False)


@pytest.fixture(params=["mongomock", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The URI to hand to mongo_store: None for mongomock, the real server's otherwise."""
    if request.param == "mongomock":
        return None
    if not MONGODB_URI:
        pytest.skip(NOT_CONFIGURED)
    return MONGODB_URI


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def busy_workspace() -> dict[str, list[dict[str, Any]]]:
    """2000 rooms in the window: 5 agents, unassigned rooms and 400 non-string agent ids."""
    rooms = []
    for n in range(2000):
        if n % 5 == 4:
            served: Any = {"_id": n} if n % 2 else None  # odd ids and queued rooms
        else:
            served = {"_id": f"agent-{n % 5}", "username": "x"}
        rooms.append(room(f"r{n}", at(n % 1000), servedBy=served))
    rooms.append(room("late", at(2 * 24 * 60), servedBy={"_id": "agent-9"}))
    users = [{"_id": f"agent-{n}", "name": f"Agent {n}"} for n in range(5)]
    return {"rocketchat_room": rooms, "users": users}


@pytest.fixture
def unreachable() -> Iterator[MongoStore]:
    with MongoStore("mongodb://alice:s3cret-pw@127.0.0.1:1/rc?serverSelectionTimeoutMS=200") as s:
        yield s


# -- conformance -------------------------------------------------------------------------------


def test_the_store_satisfies_both_ports() -> None:
    """A MongoStore is a RoomStore and a Directory without subclassing either."""
    with mongo_store({}, uri=None) as store:
        assert isinstance(store, RoomStore)
        assert isinstance(store, Directory)
        assert MongoStore.__mro__ == (MongoStore, object)


# -- push-down ---------------------------------------------------------------------------------


class AggregateSpy:
    """Records each aggregate call's pipeline and the documents the store receives."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.pipelines: list[list[dict[str, Any]]] = []
        self.received: list[dict[str, Any]] = []

    def __call__(self, collection: Any, pipeline: list[dict[str, Any]], **kwargs: Any) -> Any:
        self.pipelines.append(pipeline)
        documents = list(self.original(collection, pipeline, **kwargs))
        self.received.extend(documents)
        return iter(documents)


def test_counting_is_one_match_and_group_on_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The count is one aggregation, $match then $group, returning O(agents) documents."""
    collection_class = mongomock.collection.Collection
    spy = AggregateSpy(collection_class.aggregate)
    monkeypatch.setattr(collection_class, "aggregate", lambda c, p, **kw: spy(c, p, **kw))

    with mongo_store(busy_workspace(), uri=None) as store:
        counts = by_agent(store, WINDOW, Visibility.everything())

    assert counts.per_agent == {f"agent-{n}": 400 for n in range(4)}
    assert counts.unspecified == 400
    [pipeline] = spy.pipelines
    assert [next(iter(stage)) for stage in pipeline] == ["$match", "$group"]
    assert pipeline[0]["$match"]["ts"]["$gte"] == WINDOW.start
    assert pipeline[0]["$match"]["ts"]["$lt"] == WINDOW.end
    assert len(spy.received) == 5  # four agents and one unassigned bucket, not 2000 rooms


def test_a_restricted_scope_is_part_of_the_match() -> None:
    """A monitor's units, departments and rooms without one become one $or in the $match."""
    visibility = Visibility(restricted=True, unit_ids={"u1"}, department_ids={"d2", "d1"})
    pipeline = conversations_pipeline(WINDOW, visibility)
    assert pipeline is not None
    clauses = pipeline[0]["$match"]["$or"]
    assert clauses[0] == {"departmentAncestors": {"$in": ["u1"]}}
    assert clauses[1]["departmentId"]["$in"] == ["d1", "d2"]
    assert clauses[2] == {"departmentId": {"$exists": False}}
    only_without = conversations_pipeline(WINDOW, Visibility(restricted=True))
    assert only_without is not None
    assert only_without[0]["$match"]["$or"] == clauses[2:]


def test_a_scope_that_admits_nothing_asks_nothing() -> None:
    """A legacy monitor without units gets zero without a query."""
    nothing = Visibility(restricted=True, rooms_without_department=False)
    assert conversations_pipeline(WINDOW, nothing) is None


class CommandRecorder(monitoring.CommandListener):
    """Keeps the commands the driver sends and the replies it gets."""

    def __init__(self) -> None:
        self.commands: list[monitoring.CommandStartedEvent] = []
        self.replies: list[monitoring.CommandSucceededEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.replies.append(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.mongodb
def test_a_real_server_receives_one_aggregate_and_answers_per_agent(real_uri: str) -> None:
    """On a real server, the driver sends one aggregate and gets back one document per agent."""
    recorder = CommandRecorder()
    name = f"convstats_test_{uuid.uuid4().hex[:12]}"
    client: MongoClient[dict[str, Any]] = MongoClient(
        real_uri, tz_aware=True, event_listeners=[recorder]
    )
    try:
        client[name]["rocketchat_room"].insert_many(busy_workspace()["rocketchat_room"])
        store = MongoStore(client, database=name, read_preference=ReadPreference.PRIMARY)
        recorder.commands.clear()
        recorder.replies.clear()
        counts = by_agent(store, WINDOW, Visibility.everything())
    finally:
        client.drop_database(name)
        client.close()
    assert counts.unspecified == 400
    sent = [event for event in recorder.commands if event.command_name != "endSessions"]
    assert [event.command_name for event in sent] == ["aggregate"]
    pipeline = sent[0].command["pipeline"]
    assert [next(iter(stage)) for stage in pipeline] == ["$match", "$group"]
    # The driver sends what remains of the call's client-side limit, which max_time_ms sets.
    assert 0 < sent[0].command["maxTimeMS"] <= store.max_time_ms
    [reply] = [event for event in recorder.replies if event.command_name == "aggregate"]
    assert len(reply.reply["cursor"]["firstBatch"]) == 5


# -- odd shapes, one at a time -----------------------------------------------------------------

ODD_ROOMS = {
    "t in an array": room("r", at(1), t=["l"]),
    "ts in an array": room("r", at(1), ts=[T0]),
    "ts as a string": room("r", at(1), ts="2024-05-01T00:01:00Z"),
    "naive ts": room("r", at(1), ts=datetime(2024, 5, 1, 0, 1)),
    "ts exactly at the end": room("r", at(24 * 60)),
    "no t": {"_id": "r", "ts": T0},
    "servedBy in an array": room("r", at(1), servedBy=[{"_id": "a"}]),
    "servedBy._id in an array": room("r", at(1), servedBy={"_id": ["a"]}),
    "servedBy._id a number": room("r", at(1), servedBy={"_id": 5}),
    "servedBy a string": room("r", at(1), servedBy="a"),
    "servedBy null": room("r", at(1), servedBy=None),
    "departmentId in an array": room("r", at(1), departmentId=["d1"]),
    "departmentId [null]": room("r", at(1), departmentId=[None]),
    "departmentId []": room("r", at(1), departmentId=[]),
    "departmentId null": room("r", at(1), departmentId=None),
    "departmentId a number": room("r", at(1), departmentId=7),
    "ancestors a scalar": room("r", at(1), departmentId="dx", departmentAncestors="u1"),
    "ancestors nested": room("r", at(1), departmentId="dx", departmentAncestors=[["u1"]]),
}
SCOPES = [
    Visibility.everything(),
    Visibility(restricted=True, unit_ids={"u1"}, department_ids={"d1"}),
    Visibility(restricted=True, department_ids={"d1"}, rooms_without_department=False),
]


@pytest.mark.parametrize("room", ODD_ROOMS.values(), ids=ODD_ROOMS.keys())
def test_an_odd_room_counts_as_in_the_memory_store(
    room: dict[str, Any], backend: str | None
) -> None:
    """Each odd field shape is counted exactly as the in-memory reference counts it."""
    collections = {"rocketchat_room": [room]}
    memory = MemoryStore(collections)
    with mongo_store(collections, uri=backend) as store:
        for scope in SCOPES:
            expected = by_agent(memory, WINDOW, scope)
            assert by_agent(store, WINDOW, scope) == expected, scope


def test_a_naive_client_counts_the_same() -> None:
    """A passed-in client that returns naive datetimes gives the same counts."""
    workspace = busy_workspace()
    client = mongomock.MongoClient()  # tz_aware=False
    client.rc["rocketchat_room"].insert_many(workspace["rocketchat_room"])
    store = MongoStore(client, database="rc")
    window = TimeWindow(
        datetime(2024, 5, 1, 2, tzinfo=timezone(timedelta(hours=2))), T0 + timedelta(minutes=500)
    )
    expected = by_agent(MemoryStore(workspace), window, Visibility.everything())
    assert by_agent(store, window, Visibility.everything()) == expected
    assert expected.assigned + expected.unspecified == 1000


def test_names_are_read_only_for_the_agents_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """agent_names asks one bounded $in query and keeps only string names, "" included."""
    users = [
        {"_id": "a", "name": "Ana"},
        {"_id": "b", "name": ""},
        {"_id": "c", "name": None},
        {"_id": "d"},
        {"_id": "e", "name": 7},
        {"_id": "f", "name": "Not asked"},
    ]
    queries: list[Any] = []
    original = mongomock.collection.Collection.find

    def spy(collection: Any, query: Any = None, *args: Any, **kwargs: Any) -> Any:
        queries.append(query)
        return original(collection, query, *args, **kwargs)

    with mongo_store({"users": users}, uri=None) as store:
        monkeypatch.setattr(mongomock.collection.Collection, "find", spy)
        names = store.agent_names(["a", "b", "c", "d", "e", "gone", "a"])
        assert store.agent_names([]) == {}
    assert names == {"a": "Ana", "b": ""}
    assert queries == [{"_id": {"$in": ["a", "b", "c", "d", "e", "gone"]}}]


# -- construction ------------------------------------------------------------------------------


def test_a_uri_names_the_database_and_the_store_owns_its_client() -> None:
    """A store built from a URI reads the URI's database and closes its client on exit."""
    with MongoStore("mongodb://127.0.0.1:1/rocketchat") as store:
        assert store.database_name == "rocketchat"
        client = store.mongo_database.client
        assert client.codec_options.tz_aware
    with pytest.raises(StorageError, match="InvalidOperation"):
        by_agent(store, WINDOW, Visibility.everything())


def test_an_explicit_database_wins_over_the_uris() -> None:
    """database= overrides the database named in the URI."""
    with MongoStore("mongodb://127.0.0.1:1/rocketchat", database="other") as store:
        assert store.database_name == "other"


def test_a_passed_in_client_stays_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing a store leaves a client the caller passed in open."""
    closed: list[object] = []
    monkeypatch.setattr(MongoClient, "close", lambda client: closed.append(client))
    client: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:1", connect=False)
    with MongoStore(client, database="rc") as store:
        assert store.mongo_database.client is client
    assert closed == []
    monkeypatch.undo()
    client.close()


def test_a_store_built_from_a_uri_closes_exactly_its_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """close() closes the client the store built, once."""
    closed: list[object] = []
    original = MongoClient.close

    def spy(client: MongoClient[Any]) -> None:
        closed.append(client)
        original(client)

    monkeypatch.setattr(MongoClient, "close", spy)
    store = MongoStore("mongodb://127.0.0.1:1/rc")
    store.close()
    assert closed == [store.mongo_database.client]


def test_uri_options_win_over_the_store_defaults() -> None:
    """Timeouts and replica-set options in the URI are kept; the store's defaults fill gaps."""
    uri = "mongodb://h1:27017,h2:27017/rc?replicaSet=rs0&serverSelectionTimeoutMS=200"
    with MongoStore(uri, connect_timeout_ms=1234) as store:
        options = store.mongo_database.client.options
        assert options.replica_set_name == "rs0"
        assert options.server_selection_timeout == 0.2
        assert options.pool_options.connect_timeout == 1.234
    with MongoStore("mongodb://127.0.0.1:1/rc") as store:
        assert store.mongo_database.client.options.server_selection_timeout == 5.0


def test_an_srv_uri_is_accepted_without_io_and_shown_masked() -> None:
    """A mongodb+srv:// URI builds a store without a DNS look-up; its repr hides the password."""
    with MongoStore("mongodb+srv://bob:hunter22@cluster0.example.invalid/rc") as store:
        assert store.database_name == "rc"
        assert "hunter22" not in repr(store)
        assert "mongodb+srv://***@cluster0.example.invalid/rc" in repr(store)


def test_a_missing_database_is_a_clear_error() -> None:
    """Without a database in the URI or the client, the error says how to name one."""
    with pytest.raises(ValueError, match=r"database=.*mongodb://host/<database>"):
        MongoStore("mongodb://127.0.0.1:1/")
    with pytest.raises(ValueError, match="database="):
        MongoStore(mongomock.MongoClient())


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"client_or_uri": "http://alice:pw@h/rc"}, ValueError),
        ({"client_or_uri": "localhost:27017"}, ValueError),
        ({"client_or_uri": 27017}, TypeError),
        ({"client_or_uri": "mongodb://"}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "database": ""}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "database": "a/b"}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "max_time_ms": 0}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "max_time_ms": True}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "server_selection_timeout_ms": -5}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "connect_timeout_ms": "5000"}, ValueError),
        ({"client_or_uri": "mongodb://h/rc", "read_preference": "secondary"}, TypeError),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any], error: type[Exception]) -> None:
    """Invalid constructor arguments raise at once, never later at the first query."""
    target = arguments.pop("client_or_uri")
    with pytest.raises(error) as info:
        MongoStore(target, **arguments)
    assert "pw@" not in str(info.value)


def test_read_preference_defaults_to_secondary_preferred() -> None:
    """Reads go to a secondary when one is available, as upstream; an explicit one is kept."""
    with MongoStore("mongodb://127.0.0.1:1/rc") as store:
        assert store.read_preference == ReadPreference.SECONDARY_PREFERRED
        assert store.mongo_database.read_preference == ReadPreference.SECONDARY_PREFERRED
        assert (
            store.mongo_database.get_collection("rocketchat_room").read_preference
            == ReadPreference.SECONDARY_PREFERRED
        )
    store = MongoStore(
        mongomock.MongoClient(), database="rc", read_preference=ReadPreference.NEAREST
    )
    assert store.mongo_database.read_preference == ReadPreference.NEAREST


def test_the_repr_never_shows_credentials(unreachable: MongoStore) -> None:
    """The repr masks the URI's user name and password."""
    text = repr(unreachable)
    assert "s3cret-pw" not in text
    assert "alice" not in text
    assert "mongodb://***@127.0.0.1:1/rc?serverSelectionTimeoutMS=200" in text


def test_mask_uri_hides_userinfo_and_secret_options() -> None:
    """mask_uri removes the userinfo and secret-bearing options, and keeps the rest."""
    uri = "mongodb://u:p%40ss@h1,h2/rc?replicaSet=rs&authMechanismProperties=AWS_SESSION_TOKEN:t"
    assert mask_uri(uri) == "mongodb://***@h1,h2/rc?replicaSet=rs&authMechanismProperties=***"
    assert mask_uri("mongodb+srv://h/rc") == "mongodb+srv://h/rc"


# Each URI holds the secret "S3cr3t" somewhere the driver reads as a credential or would
# misread; the masked form is what is left.
MASKED_URIS = {
    "? in the password": ("mongodb://alice:S3cr3t?x@host/db", "mongodb://***"),
    "?k=v in the password": ("mongodb://alice:S3cr3t?x=1@host/db", "mongodb://***"),
    "?k=v after a numeric password": ("mongodb://alice:123?S3cr3t=1@host/db", "mongodb://***"),
    "/ in the password": ("mongodb://alice:S3/cr3t@host/db", "mongodb://***"),
    "@ in the password": ("mongodb://alice:S3cr3t@x@host/db", "mongodb://***"),
    ": in the password": ("mongodb://alice:S3cr3t:x@host/db", "mongodb://***"),
    "a bare % in the password": ("mongodb://alice:S3cr3t%@host/db", "mongodb://***"),
    "%-escapes in the password": (
        "mongodb://alice:S3cr3t%3F%40%3A%2F@h1:27017,h2/db?replicaSet=rs",
        "mongodb://***@h1:27017,h2/db?replicaSet=rs",
    ),
    "a user name alone": ("mongodb://S3cr3t@host/db", "mongodb://***@host/db"),
    "proxy credentials": (
        "mongodb://host/db?proxyHost=p.example&proxyUsername=S3cr3t&proxyPassword=S3cr3t2",
        "mongodb://host/db?proxyHost=***&proxyUsername=***&proxyPassword=***",
    ),
    "authMechanismProperties": (
        "mongodb+srv://u:p@c.example/db?authMechanism=MONGODB-AWS"
        "&authMechanismProperties=AWS_SESSION_TOKEN:S3cr3t",
        "mongodb+srv://***@c.example/db?authMechanism=MONGODB-AWS&authMechanismProperties=***",
    ),
    "tlsCertificateKeyFilePassword in any case": (
        "mongodb://host/db?tls=true&TLSCertificateKeyFilePassword=S3cr3t",
        "mongodb://host/db?tls=true&TLSCertificateKeyFilePassword=***",
    ),
    "options separated by ;": (
        "mongodb://host/db?replicaSet=rs;tlsCertificateKeyFilePassword=S3cr3t",
        "mongodb://host/db?replicaSet=rs;tlsCertificateKeyFilePassword=***",
    ),
    "an option the driver does not know": (
        "mongodb://host/db?password=S3cr3t",
        "mongodb://host/db?password=***",
    ),
    "not a MongoDB scheme": ("http://alice:S3cr3t@host/db", "http://***"),
    "no scheme": ("alice:S3cr3t@host/db", "***"),
}


@pytest.mark.parametrize(("uri", "masked"), MASKED_URIS.values(), ids=MASKED_URIS.keys())
def test_mask_uri_reads_credentials_as_the_driver_does(uri: str, masked: str) -> None:
    """What the driver would take for a credential is masked, and what it cannot read is too."""
    assert mask_uri(uri) == masked
    assert "S3cr3t" not in mask_uri(uri)


REFUSED = [
    "? in the password",
    "?k=v in the password",
    "?k=v after a numeric password",
    "/ in the password",
    "@ in the password",
    ": in the password",
    "a bare % in the password",
    "a user name alone",
    "an option the driver does not know",
    "not a MongoDB scheme",
    "no scheme",
]
BUILT = [
    "%-escapes in the password",
    "authMechanismProperties",
    "tlsCertificateKeyFilePassword in any case",
    "options separated by ;",
]


@pytest.mark.parametrize("case", REFUSED)
def test_a_uri_the_driver_cannot_read_is_refused_without_its_credentials(case: str) -> None:
    """The error refusing a URI shows it masked, never a credential."""
    uri, masked = MASKED_URIS[case]
    with pytest.raises(ValueError, match="URI") as info:
        MongoStore(uri)
    assert "S3cr3t" not in str(info.value)
    assert repr(masked) in str(info.value)


@pytest.mark.parametrize("case", BUILT)
def test_the_repr_of_a_store_over_a_uri_hides_its_secrets(case: str) -> None:
    """A store's repr shows its URI masked as mask_uri masks it."""
    uri, masked = MASKED_URIS[case]
    with MongoStore(uri) as store:
        assert "S3cr3t" not in repr(store)
        assert repr(masked) in repr(store)


def test_the_repr_of_a_store_over_a_client_hides_its_secrets() -> None:
    """A passed-in client's secret options are redacted in the store's repr."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        "mongodb://alice:S3cr3t@h/rc?authMechanismProperties=AWS_SESSION_TOKEN:S3cr3t2"
        "&authMechanism=MONGODB-AWS&tlsCertificateKeyFilePassword=S3cr3t3",
        connect=False,
    )
    with client:
        assert "S3cr3t" not in repr(MongoStore(client))


def test_driver_messages_are_redacted_of_the_uris_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A driver message quoting the user or password, escaped or not, is shown masked."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionFailure("auth failed for alice:p@ss-S3cr3t (p%40ss-S3cr3t)")

    # Whichever the store asks first, the ping for a server or the look-up, fails so.
    monkeypatch.setattr(pymongo.database.Database, "command", fail)
    monkeypatch.setattr(pymongo.collection.Collection, "find_one", fail)
    uri = "mongodb://alice:p%40ss-S3cr3t@127.0.0.1:1/rc"
    with MongoStore(uri) as store, pytest.raises(StorageUnavailable) as info:
        store.get_user("u1")
    assert "S3cr3t" not in str(info.value)
    assert "alice" not in str(info.value)
    assert "auth failed for ***" in str(info.value)


# A URI, a driver message quoting its credentials among other text, and what is left of it.
HOSTILE_CREDENTIALS = {
    "one-letter user and password": (
        "mongodb://a:b@127.0.0.1:1/rc",
        "auth failed for a:b (user a, password b) on database rc at 127.0.0.1:1: a b",
        "auth failed for *** (user ***, password ***) on database rc at 127.0.0.1:1: *** ***",
    ),
    "a password that is a fragment of the host": (
        "mongodb://alice:local@localhost:1/rc",
        "localhost:1: connection refused, password local rejected, locale C",
        "localhost:1: connection refused, password *** rejected, locale C",
    ),
    "a password that is the host": (
        "mongodb://alice:localhost@localhost:1/rc",
        "localhost:1: connection refused for alice:localhost",
        "localhost:1: connection refused for ***",
    ),
    "a password that is the database": (
        "mongodb://alice:rc@127.0.0.1:1/rc",
        "not authorized on rc for alice:rc",
        "not authorized on rc for ***",
    ),
    "percent-escapes": (
        "mongodb://%61:p%40s%3A@127.0.0.1:1/rc",
        "auth failed for %61:p%40s%3A (a, p@s:) a:p@s: on admin",
        "auth failed for *** (***, ***) *** on admin",
    ),
    "a long password anywhere": (
        "mongodb://alice:Tr0ub4dor-S3cr3t@127.0.0.1:1/rc",
        "auth failed (xTr0ub4dor-S3cr3tx) on rc",
        "auth failed (x***x) on rc",
    ),
}


@pytest.mark.parametrize(
    ("uri", "message", "shown"), HOSTILE_CREDENTIALS.values(), ids=HOSTILE_CREDENTIALS.keys()
)
def test_redaction_takes_whole_credentials_and_leaves_the_rest_legible(
    monkeypatch: pytest.MonkeyPatch, uri: str, message: str, shown: str
) -> None:
    """A short credential is masked where it stands alone, never inside a word or a host."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionFailure(message)

    monkeypatch.setattr(pymongo.database.Database, "command", fail)
    monkeypatch.setattr(pymongo.collection.Collection, "find_one", fail)
    with MongoStore(uri) as store, pytest.raises(StorageUnavailable) as info:
        store.get_user("u1")
    assert str(info.value).endswith(f"server unavailable: {shown}")


def test_without_pymongo_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the adapter without pymongo raises MissingDependency naming the mongo extra."""
    monkeypatch.setitem(sys.modules, "pymongo", None)
    monkeypatch.delitem(sys.modules, "convstats_adapters.mongo")
    with pytest.raises(MissingDependency, match=r"convstats\[mongo\]"):
        importlib.import_module("convstats_adapters.mongo")


# -- failures ----------------------------------------------------------------------------------

DRIVER_ERRORS = [
    (ServerSelectionTimeoutError("No servers found yet"), StorageUnavailable),
    (AutoReconnect("connection reset"), StorageUnavailable),
    (ConnectionFailure("connection refused"), StorageUnavailable),
    (WaitQueueTimeoutError("pool exhausted"), StorageUnavailable),
    (NetworkTimeout("h:27017: timed out"), StorageTimeout),
    (ExecutionTimeout("operation exceeded time limit", code=50), StorageTimeout),
    (OperationFailure("operation exceeded time limit", code=50), StorageTimeout),
    (OperationFailure("Authentication failed.", code=18), StorageNotAuthorized),
    (OperationFailure("not authorized on rc to execute command", code=13), StorageNotAuthorized),
    (OperationFailure("not authorized on rc"), StorageNotAuthorized),
    (OperationFailure("unknown operator", code=2), StorageError),
    (InvalidOperation("Cannot use MongoClient after close"), StorageError),
]

OPERATIONS: dict[str, Callable[[MongoStore], object]] = {
    "count_conversations": lambda s: by_agent(s, WINDOW, Visibility.everything()),
    "agent_names": lambda s: s.agent_names(["a"]),
    "get_user": lambda s: s.get_user("a"),
    "permission_roles": lambda s: s.permission_roles("view-livechat-reports"),
    "has_units": lambda s: s.has_units(),
    "monitored_units": lambda s: s.monitored_units("a"),
    "agent_departments": lambda s: s.agent_departments("a"),
    "departments_under": lambda s: s.departments_under(["u"], include_own=True),
    "ensure_indexes": lambda s: s.ensure_indexes(),
}


@pytest.mark.parametrize(("driver_error", "expected"), DRIVER_ERRORS, ids=lambda v: repr(v))
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_driver_errors_become_storage_errors(
    monkeypatch: pytest.MonkeyPatch,
    driver_error: PyMongoError,
    expected: type[StorageError],
    operation: Callable[[MongoStore], object],
) -> None:
    """Every driver failure of every operation is raised as the matching StorageError."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise driver_error

    for method in ("aggregate", "find", "find_one", "create_index"):
        monkeypatch.setattr(mongomock.collection.Collection, method, fail)
    store = MongoStore(mongomock.MongoClient(), database="rc")
    with pytest.raises(StorageError) as info:
        operation(store)
    assert type(info.value) is expected
    assert info.value.__cause__ is driver_error


def test_an_unreachable_server_is_unavailable(unreachable: MongoStore) -> None:
    """A server nobody answers at is StorageUnavailable, and the message hides the password."""
    with pytest.raises(StorageUnavailable) as info:
        by_agent(unreachable, WINDOW, Visibility.everything())
    assert "127.0.0.1:1" in str(info.value)
    assert "s3cret-pw" not in str(info.value)


@pytest.mark.parametrize("authority", ["operator", "rocketchat"])
def test_the_handler_answers_503_when_the_server_is_unreachable(
    unreachable: MongoStore, authority: str
) -> None:
    """The endpoint answers 503 with an error body, whether counting or authenticating fails."""
    endpoint = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=unreachable),
        authority=(
            OperatorAuthority()
            if authority == "operator"
            else RocketChatAuthority(directory=unreachable)
        ),
    )
    response = endpoint.handle({"start": "2024-05-01", "end": "2024-05-02"}, "boss")
    assert response.status == 503
    assert response.body["success"] is False
    assert "unavailable" in response.body["error"]
    assert "s3cret-pw" not in json.dumps(response.body)


# -- indexes -----------------------------------------------------------------------------------


UPSTREAM_INDEXES = ["servedBy_1_ts_1", "source_1_ts_1", "departmentId_1_ts_1", "tags.0_1_ts_1"]


def test_ensure_indexes_creates_upstreams_partial_indexes_and_the_range_index() -> None:
    """ensure_indexes creates t+ts and upstream's four partial indexes, and is idempotent."""
    with mongo_store({"rocketchat_room": [room("r", at(1))]}, uri=None) as store:
        assert store.ensure_indexes() == ["t_1_ts_1", *UPSTREAM_INDEXES]
        assert store.ensure_indexes() == ["t_1_ts_1", *UPSTREAM_INDEXES]
        indexes = store.mongo_database["rocketchat_room"].index_information()
        assert store.mongo_database["rocketchat_room"].count_documents({}) == 1
    fields = ["servedBy", "source", "departmentId", "tags.0"]
    for name, field in zip(UPSTREAM_INDEXES, fields, strict=True):
        assert indexes[name]["key"] == [(field, 1), ("ts", 1)]
        assert indexes[name]["partialFilterExpression"] == {field: {"$exists": True}, "t": "l"}
    assert indexes["t_1_ts_1"]["key"] == [("t", 1), ("ts", 1)]
    assert "partialFilterExpression" not in indexes["t_1_ts_1"]


@pytest.mark.mongodb
def test_a_real_server_counts_with_the_range_index(real_uri: str) -> None:
    """After ensure_indexes, a real server answers the count from the t+ts index."""
    with mongo_store(busy_workspace(), uri=real_uri) as store:
        store.ensure_indexes()
        pipeline = conversations_pipeline(WINDOW, Visibility.everything())
        plan = store.mongo_database.command(
            "explain",
            {"aggregate": "rocketchat_room", "pipeline": pipeline, "cursor": {}},
            verbosity="queryPlanner",
        )
    assert "t_1_ts_1" in json.dumps(plan, default=str)


@pytest.mark.mongodb
def test_a_real_server_with_a_naive_client_counts_the_same(real_uri: str) -> None:
    """A caller's client without tz_aware still counts aware windows correctly."""
    name = f"convstats_test_{uuid.uuid4().hex[:12]}"
    client: MongoClient[dict[str, Any]] = MongoClient(real_uri)
    workspace = busy_workspace()
    try:
        client[name]["rocketchat_room"].insert_many([dict(r) for r in workspace["rocketchat_room"]])
        store = MongoStore(client, database=name, read_preference=ReadPreference.PRIMARY)
        window = TimeWindow(T0 + timedelta(minutes=100), T0 + timedelta(minutes=300))
        counts = by_agent(store, window, Visibility.everything())
    finally:
        client.drop_database(name)
        client.close()
    assert counts == by_agent(MemoryStore(workspace), window, Visibility.everything())
