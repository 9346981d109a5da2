"""convstats export: the report's collections from MongoDB, to files that give the same reports.

The database is mongomock (and the real server named by CONVSTATS_MONGODB_URI, for the tests
marked mongodb); the driver's own path, batches and stalls included, runs against the fake
server of tests/fake_mongo.py.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bson import Int64, ObjectId, json_util
from bson.datetime_ms import DatetimeMS

from convstats import ConversationsByAgent, ConversationsByAgentEndpoint, RocketChatAuthority
from convstats.authz import OperatorAuthority, hash_login_token
from convstats.errors import StorageError, StorageTimeout
from convstats.model import MonitorRule
from convstats_adapters import mongo
from convstats_adapters.cli import run
from convstats_adapters.export import EXPORTED_FIELDS, ExportError, export_workspace
from convstats_adapters.files import DateOutOfRange, load_collections
from convstats_adapters.memory import MemoryStore
from convstats_adapters.mongo import MongoStore
from tests.fake_mongo import STALL, cursor_reply, fake_mongo
from tests.mongo_support import MONGODB_URI, NOT_CONFIGURED, mongo_store

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample"
MARCH = {"start": "2024-03-01", "end": "2024-04-01"}
UTC = timezone.utc
SECRETS = ("$2b$10$PASSWORDHASH", "ya29.GOOGLE-ACCESS", "plain-resume-token", "PAT-NAME")
OID_AGENT = ObjectId("65f000000000000000000001")


def sample() -> dict[str, list[dict[str, Any]]]:
    """The bundled sample workspace, with the BSON types a database holds."""
    return {
        path.stem: [json_util.loads(line) for line in path.read_text().splitlines() if line]
        for path in SAMPLE.glob("*.json")
    }


def odd_workspace() -> dict[str, list[dict[str, Any]]]:
    """The sample, plus documents of every odd shape, and secrets the export must not copy."""
    collections = sample()
    march = datetime(2024, 3, 10, 12, tzinfo=UTC)
    rooms = collections["rocketchat_room"]
    rooms += [
        {"_id": "odd-null", "t": "l", "ts": march, "servedBy": None},
        {"_id": "odd-empty", "t": "l", "ts": march, "servedBy": {}, "departmentId": "dep-sales"},
        {"_id": "odd-array", "t": "l", "ts": march, "servedBy": [{"_id": "u-ana"}]},
        {"_id": "odd-number", "t": "l", "ts": march, "servedBy": {"_id": 5}},
        {"_id": ObjectId(), "t": "l", "ts": march, "servedBy": {"_id": OID_AGENT}},
        {"_id": "odd-t", "t": ["l"], "ts": march, "servedBy": {"_id": "u-ana"}},
        {"_id": "odd-ts", "t": "l", "ts": "2024-03-10", "servedBy": {"_id": "u-ana"}},
        {"_id": "odd-dep-null", "t": "l", "ts": march, "departmentId": None},
        {"_id": "odd-dep-array", "t": "l", "ts": march, "departmentId": ["dep-sales"]},
        {
            "_id": "odd-ancestor",
            "t": "l",
            "ts": march,
            "departmentAncestors": "unit-eu",
            "servedBy": {"_id": "u-bruno", "username": "bruno"},
            "metrics": {"chatDuration": Int64(2**40), "reaction": {"fd": 3}},
            "tags": ["vip"],
            "source": {"type": "api", "alias": "bot"},
            "v": {"token": "visitor-token"},
        },
        {"_id": "odd-nan", "t": "l", "ts": march, "metrics": {"chatDuration": math.nan}},
        {
            "_id": "odd-edge",
            "t": "l",
            "ts": datetime(2024, 4, 1, tzinfo=UTC) - timedelta(milliseconds=1),
        },
    ]
    collections["users"] += [
        {"_id": OID_AGENT, "name": "Oid Agent", "roles": ["livechat-agent"]},
        {"_id": "u-odd", "name": "Line\u2028Sep 😀", "roles": "admin", "active": Int64(0)},
    ]
    for user in collections["users"]:
        user.setdefault("services", {})["password"] = {"bcrypt": SECRETS[0]}
        user["services"]["google"] = {"accessToken": SECRETS[1]}
        user["emails"] = [{"address": f"{user['_id']}@example.com", "verified": True}]
        resume = user["services"].setdefault("resume", {"loginTokens": []})
        for token in resume["loginTokens"]:
            token["name"] = SECRETS[3]
            token["type"] = "personalAccessToken"
        resume["loginTokens"].append({"when": datetime(2024, 1, 1), "token": SECRETS[2]})
    collections["rocketchat_livechat_department"].append(
        {"_id": "unit-odd", "name": "Odd", "type": ["u"], "ancestors": "unit-eu"}
    )
    collections["rocketchat_livechat_unit_monitors"].append(
        {"_id": "um-odd", "monitorId": "u-ana", "unitId": ["unit-eu"]}
    )
    return collections


@pytest.fixture(params=["mongomock", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def database(request: pytest.FixtureRequest) -> Iterator[MongoStore]:
    """A MongoStore over the odd workspace, in mongomock or on the real server."""
    if request.param == "mongodb" and not MONGODB_URI:
        pytest.skip(NOT_CONFIGURED)
    uri = MONGODB_URI if request.param == "mongodb" else None
    with mongo_store(odd_workspace(), uri=uri) as store:
        yield store


@pytest.fixture
def via_uri(monkeypatch: pytest.MonkeyPatch, database: MongoStore) -> str:
    """A URI that --mongo turns into a store over ``database`` (mongomock has no address)."""

    def store(uri: str, *, database: str | None = None) -> MongoStore:
        assert uri == "mongodb://test/rocketchat"
        return MongoStore(client, database=name)

    client, name = database.mongo_database.client, database.database_name
    monkeypatch.setattr(mongo, "MongoStore", store)
    return "mongodb://test/rocketchat"


def endpoint(store: Any, *, monitor_rule: MonitorRule = MonitorRule.CURRENT) -> Any:
    return ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store),
        authority=RocketChatAuthority(directory=store, monitor_rule=monitor_rule),
    )


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def lines(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode().splitlines()


def exported_documents(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.name.partition(".")[0]: [json_util.loads(line) for line in lines(path)]
        for path in folder.iterdir()
    }


# -- the same reports ---------------------------------------------------------------------------

CALLERS = ["u-manager", "u-admin", "u-monitor", "u-ana", "u-plain", "u-dana", "u-odd", "ghost"]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_the_export_gives_the_reports_the_database_gives(database, tmp_path, compress):
    """Loaded with --data's loader, the export answers every caller as MongoDB does."""
    written = export_workspace(database, tmp_path, compress=compress)
    assert [file.collection for file in written] == list(EXPORTED_FIELDS)
    suffix = ".json.gz" if compress else ".json"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{name}{suffix}" for name in EXPORTED_FIELDS
    )
    exported = MemoryStore.from_path(tmp_path)
    windows = [
        MARCH,
        {"start": "2024-03-10", "end": "2024-03-11"},
        {**MARCH, "sort": '{"total": -1}'},
    ]
    for rule, caller, params in itertools.product(MonitorRule, CALLERS, windows):
        expected = endpoint(database, monitor_rule=rule).handle(params, caller)
        assert endpoint(exported, monitor_rule=rule).handle(params, caller) == expected, (
            rule,
            caller,
            params,
        )
    everything = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=exported), authority=OperatorAuthority()
    ).handle(MARCH, None)
    assert everything.status == 200
    assert everything.body["total"] > 320  # the sample's 320 and the odd rooms
    assert "Oid Agent" in {row["label"] for row in everything.body["data"]}


def test_the_command_exports_what_conversations_by_agent_reads(via_uri, tmp_path):
    """convstats export, then --data, reports as --mongo does, for a manager and a monitor."""
    for form in ([], ["--gzip"]):
        out = tmp_path / ("gz" if form else "plain")
        status, stdout, err = cli("export", "--mongo", via_uri, "--out", str(out), *form)
        assert (status, stdout) == (0, "")
        assert len(err.splitlines()) == len(EXPORTED_FIELDS)
        assert re.search(rf"wrote 16 documents to {re.escape(str(out))}/users\.json", err)
        for user in (["--user", "u-manager"], ["--user", "u-monitor"], []):
            report = ["conversations-by-agent", "--start", "2024-03-01", "--end", "2024-04-01"]
            report += [*user, "--format", "json"]
            from_mongo = cli(*report, "--mongo", via_uri)
            from_files = cli(*report, "--data", str(out))
            assert from_files == from_mongo
            assert from_files[0] == 0


# -- what is written, and what never is ---------------------------------------------------------


def test_no_password_hash_or_unrequested_token_is_written(database, tmp_path):
    """Users keep _id, name, roles and active; services only as token hashes, when asked."""
    export_workspace(database, tmp_path / "plain")
    export_workspace(database, tmp_path / "tokens", with_login_tokens=True)
    for folder in (tmp_path / "plain", tmp_path / "tokens"):
        text = "".join((folder / f"{name}.json").read_text() for name in EXPORTED_FIELDS)
        for secret in (*SECRETS, "bcrypt", "password", "google", "emails", "visitor-token"):
            assert secret not in text, (folder.name, secret)
    plain = exported_documents(tmp_path / "plain")["users"]
    assert all(set(user) <= {"_id", "name", "roles", "active"} for user in plain)
    assert "hashedToken" not in (tmp_path / "plain" / "users.json").read_text()
    with_tokens = exported_documents(tmp_path / "tokens")["users"]
    assert all(set(user) <= {"_id", "name", "roles", "active", "services"} for user in with_tokens)
    hashes = set()
    for user in with_tokens:
        services = user.get("services", {})
        assert set(services) <= {"resume"}
        for token in services.get("resume", {}).get("loginTokens", []):
            assert set(token) <= {"hashedToken"}
            hashes.update(token.values())
    assert hash_login_token("sample-manager-token") in hashes


def test_login_tokens_sign_in_from_the_export_only_when_asked_for(database, tmp_path):
    """With --with-login-tokens the export signs a user in as the database does; else nobody."""
    hashed = hash_login_token("sample-manager-token")
    assert database.user_with_token("u-manager", hashed) is not None
    export_workspace(database, tmp_path / "plain")
    export_workspace(database, tmp_path / "tokens", with_login_tokens=True)
    assert MemoryStore.from_path(tmp_path / "tokens").user_with_token("u-manager", hashed)
    assert MemoryStore.from_path(tmp_path / "plain").user_with_token("u-manager", hashed) is None


def test_each_collection_keeps_only_the_fields_the_reports_read(database, tmp_path):
    """A room keeps its report fields, servedBy and source whole, metrics.chatDuration only."""
    export_workspace(database, tmp_path)
    exported = exported_documents(tmp_path)
    for name, documents in exported.items():
        allowed = {field.partition(".")[0] for field in EXPORTED_FIELDS[name]}
        assert documents
        assert all(set(document) <= allowed for document in documents), name
    rooms = {str(room["_id"]): room for room in exported["rocketchat_room"]}
    odd = rooms["odd-ancestor"]
    assert odd["servedBy"] == {"_id": "u-bruno", "username": "bruno"}
    assert odd["source"] == {"type": "api", "alias": "bot"}
    assert odd["metrics"] == {"chatDuration": 2**40}
    assert odd["tags"] == ["vip"]
    assert rooms["odd-null"]["servedBy"] is None  # null stays null, not missing
    assert "servedBy" not in rooms["odd-dep-null"]
    assert rooms["odd-dep-null"]["departmentId"] is None
    assert "departmentId" not in rooms["odd-null"]
    assert rooms["room-0000"]["servedBy"]["username"] == "chen"


def test_the_files_are_mongoexport_json_lines(database, tmp_path):
    """One compact relaxed Extended JSON document a line, as mongoexport writes them."""
    export_workspace(database, tmp_path)
    rooms = lines(tmp_path / "rocketchat_room.json")
    assert len(rooms) == 432 + 12
    first = json.loads(rooms[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", first["ts"]["$date"])
    assert ", " not in rooms[0]  # compact, as mongoexport's
    assert '": ' not in rooms[0]
    assert all(line.isascii() for line in rooms)
    oid_room = next(json.loads(line) for line in rooms if '"$oid"' in line)
    assert set(oid_room["_id"]) == {"$oid"}
    nan = next(json.loads(line) for line in rooms if "odd-nan" in line)
    assert nan["metrics"]["chatDuration"] == {"$numberDouble": "NaN"}
    users = {str(json_util.loads(line)["_id"]): line for line in lines(tmp_path / "users.json")}
    assert json_util.loads(users["u-odd"])["name"] == "Line\u2028Sep 😀"
    loaded = load_collections(tmp_path)
    assert {name: len(documents) for name, documents in loaded.items()} == {
        name: len(lines(tmp_path / f"{name}.json")) for name in EXPORTED_FIELDS
    }


def test_gzip_files_are_gzip(database, tmp_path):
    """--gzip writes <collection>.json.gz, each a gzip stream of the same lines."""
    export_workspace(database, tmp_path / "plain")
    export_workspace(database, tmp_path / "gz", compress=True)
    for name in EXPORTED_FIELDS:
        packed = tmp_path / "gz" / f"{name}.json.gz"
        assert packed.read_bytes()[:2] == b"\x1f\x8b"
        assert lines(packed) == lines(tmp_path / "plain" / f"{name}.json")


def test_files_are_readable_by_their_owner_only(database, tmp_path):
    """The files hold names (and maybe token hashes): mode 0600, as they are created."""
    export_workspace(database, tmp_path)
    assert {oct(path.stat().st_mode & 0o777) for path in tmp_path.iterdir()} == {"0o600"}


# -- safety: earlier exports, failures ----------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_an_earlier_export_is_replaced_only_when_asked(database, tmp_path):
    """A second export into the same folder is refused, and the folder left as it was."""
    export_workspace(database, tmp_path)
    before = snapshot(tmp_path)
    for compress in (False, True):
        with pytest.raises(ExportError, match=r"already holds an export .*--force"):
            export_workspace(database, tmp_path, compress=compress)
        assert snapshot(tmp_path) == before
    # Replacing with the other form removes the twins the loader would refuse beside them.
    export_workspace(database, tmp_path, compress=True, replace=True)
    assert sorted(snapshot(tmp_path)) == sorted(f"{name}.json.gz" for name in EXPORTED_FIELDS)
    MemoryStore.from_path(tmp_path)  # loads: no .json beside a .json.gz
    (tmp_path / "notes.txt").write_text("mine")
    export_workspace(database, tmp_path, replace=True)
    assert sorted(snapshot(tmp_path)) == sorted(
        ["notes.txt", *(f"{name}.json" for name in EXPORTED_FIELDS)]
    )


def test_one_file_of_an_earlier_export_is_enough_to_refuse(database, tmp_path):
    """Any of the twelve names (six collections, two suffixes) counts as an earlier export."""
    (tmp_path / "rocketchat_livechat_unit_monitors.json.gz").write_bytes(b"")
    with pytest.raises(ExportError, match=r"rocketchat_livechat_unit_monitors\.json\.gz"):
        export_workspace(database, tmp_path)


def test_a_folder_that_is_a_file_or_a_directory_named_as_an_export_is_refused(database, tmp_path):
    """--out naming a file, or a directory where a file goes, is an ExportError, even forced."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is not a folder"):
        export_workspace(database, tmp_path / "file")
    (tmp_path / "out" / "users.json").mkdir(parents=True)
    with pytest.raises(ExportError, match=r"users\.json is a directory"):
        export_workspace(database, tmp_path / "out", replace=True)


class Failing:
    """A source that fails while reading ``collection``, after some of its documents."""

    def __init__(self, store: MongoStore, collection: str, error: BaseException) -> None:
        self.store, self.collection, self.error = store, collection, error

    def documents(self, collection, fields, *, batch_size=1000):
        for number, document in enumerate(self.store.documents(collection, fields)):
            if collection == self.collection and number == 3:
                raise self.error
            yield document


FAILURES = {"a store failure": StorageError("find: gone"), "Ctrl-C": KeyboardInterrupt()}


@pytest.mark.parametrize("error", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.parametrize("collection", ["rocketchat_room", "rocketchat_livechat_department"])
def test_a_failure_leaves_the_folder_as_it_was(database, tmp_path, collection, error):
    """A failure midway is raised, leaving the earlier export and no partial file."""
    export_workspace(database, tmp_path)
    before = snapshot(tmp_path)
    failing = Failing(database, collection, error)
    with pytest.raises(type(error)):
        export_workspace(failing, tmp_path, compress=True, replace=True)
    assert snapshot(tmp_path) == before
    new = tmp_path / "new" / "folder"
    with pytest.raises(type(error)):
        export_workspace(failing, new)
    assert not new.exists()  # created for the export, removed with it
    assert (tmp_path / "new").is_dir()


class Counting:
    """A source of ``total`` rooms that records, as it yields, how many lines are on disk."""

    def __init__(self, folder: Path, total: int) -> None:
        self.folder, self.total = folder, total
        self.on_disk: list[tuple[int, int]] = []

    def documents(self, collection, fields, *, batch_size=1000):
        if collection != "rocketchat_room":
            return
        for number in range(self.total):
            if number % 5000 == 0:
                [partial] = self.folder.glob(".rocketchat_room.json.*.partial")
                self.on_disk.append((number, partial.read_bytes().count(b"\n")))
            yield {"_id": f"r{number}", "t": "l", "ts": datetime(2024, 3, 1, tzinfo=UTC)}


def test_documents_are_written_as_they_stream(tmp_path):
    """Rooms reach the file batch by batch while the source is read: none are held back."""
    source = Counting(tmp_path, 20_000)
    progress: list[tuple[str, int]] = []
    export_workspace(source, tmp_path, progress=lambda *call: progress.append(call))
    assert source.on_disk[0] == (0, 0)
    assert all(on_disk >= number - 2000 for number, on_disk in source.on_disk)
    assert len(lines(tmp_path / "rocketchat_room.json")) == 20_000
    rooms = [count for name, count in progress if name == "rocketchat_room"]
    assert rooms == list(range(1000, 20_001, 1000))  # each batch, the last one the end
    assert progress[-1] == ("rocketchat_livechat_department_agents", 0)


# -- the driver's path: projection, batches, bounds, dates beyond Python's ----------------------


def test_the_driver_projects_on_the_server_and_reads_in_bounded_batches():
    """find carries the projection and batch size; each getMore is one more batch."""
    first = [{"_id": "a", "t": "l"}, {"_id": "b", "t": "l"}]
    with (
        fake_mongo(
            find=lambda _: cursor_reply(first, cursor_id=42),
            getMore=lambda _: cursor_reply([{"_id": "c"}], first=False),
        ) as server,
        MongoStore(server.uri(), max_time_ms=500) as store,
    ):
        documents = list(store.documents("rocketchat_room", ["t", "servedBy"], batch_size=2))
        [find] = server.received("find")
        [more] = server.received("getMore")
    assert [document["_id"] for document in documents] == ["a", "b", "c"]
    assert find["projection"] == {"t": 1, "servedBy": 1}
    assert (find["batchSize"], more["batchSize"]) == (2, 2)
    assert find["filter"] == {}
    assert 0 < find["maxTimeMS"] <= 500  # the store's bound, which the server applies too


@pytest.mark.parametrize("size", [0, -1, True, 2.5])
def test_a_batch_needs_a_positive_size(database, size):
    """A batch size that is not a positive whole number is a ValueError naming it."""
    with pytest.raises(
        ValueError, match=re.escape(f"batch_size must be a positive number, got {size!r}")
    ):
        next(database.documents("users", ["name"], batch_size=size))


def test_a_timeout_in_the_uri_gives_a_long_scan_its_time():
    """timeoutMS in the URI is the bound of each batch and of the server's whole scan."""
    with (
        fake_mongo(find=lambda _: cursor_reply([{"_id": "a"}])) as server,
        MongoStore(server.uri("&timeoutMS=600000"), max_time_ms=500) as store,
    ):
        assert [document["_id"] for document in store.documents("users", ["name"])] == ["a"]
        [find] = server.received("find")
    assert 500_000 < find["maxTimeMS"] <= 600_000


def test_a_stall_between_batches_ends_the_export_as_a_timeout(tmp_path):
    """A server that stops answering mid-cursor ends the export within the bound."""
    with (
        fake_mongo(
            find=lambda _: cursor_reply([{"_id": f"r{n}"} for n in range(1000)], cursor_id=42),
            getMore=lambda _: STALL,
        ) as server,
        MongoStore(server.uri(), max_time_ms=500) as store,
        pytest.raises(StorageTimeout, match="find on rocketchat_room"),
    ):
        export_workspace(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dates_beyond_python_years_are_exported_and_never_counted(tmp_path):
    """A ts the driver cannot make a datetime is written as milliseconds, and loads back."""
    far = DatetimeMS(-(10**15))
    rooms = [
        {"_id": "far", "t": "l", "ts": far},
        {"_id": "near", "t": "l", "ts": datetime(2024, 3, 2)},
    ]

    def find(command: dict[str, Any]) -> dict[str, Any]:
        return cursor_reply(rooms if command["find"] == "rocketchat_room" else [])

    with fake_mongo(find=find) as server, MongoStore(server.uri(), max_time_ms=2000) as store:
        export_workspace(store, tmp_path)
    [far_line, _] = lines(tmp_path / "rocketchat_room.json")
    assert json.loads(far_line)["ts"] == {"$date": {"$numberLong": str(-(10**15))}}
    loaded = load_collections(tmp_path)["rocketchat_room"]
    assert loaded[0]["ts"] == DateOutOfRange(-(10**15))
    body = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=MemoryStore.from_path(tmp_path)),
        authority=OperatorAuthority(),
    ).handle(MARCH, None)
    assert body.body["unspecified"] == 1


# -- the command line ---------------------------------------------------------------------------


def test_export_help_shows_an_example():
    """convstats export -h shows how to call it, and what it writes."""
    status, out, _ = cli("export", "-h")
    assert status == 0
    assert "convstats export --mongo mongodb://localhost:27017/rocketchat --out export/" in out
    assert "never a password" in out
    assert "--with-login-tokens" in out


@pytest.mark.parametrize(
    ("uri", "needle"),
    [("http://x/rc", "mongodb:// or mongodb+srv://"), ("mongodb://127.0.0.1:1", "no database")],
)
def test_a_bad_uri_is_a_usage_error(tmp_path, uri, needle):
    """A URI the store cannot use exits 2 with the export's usage, and writes nothing."""
    status, out, err = cli("export", "--mongo", uri, "--out", str(tmp_path / "out"))
    assert (status, out) == (2, "")
    assert err.startswith("usage: convstats export")
    assert needle in err.splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_an_empty_out_is_a_usage_error():
    """--out '' would be the current folder, which nobody means by it."""
    status, _, err = cli("export", "--mongo", "mongodb://h/rc", "--out", "")
    assert status == 2
    assert "--out: an empty path" in err


def test_an_unreachable_server_is_one_line_and_status_1(tmp_path):
    """A server that cannot be reached exits 1 with one line, leaving no folder behind."""
    uri = "mongodb://127.0.0.1:1/rc?serverSelectionTimeoutMS=100&connectTimeoutMS=100"
    status, out, err = cli("export", "--mongo", uri, "--out", str(tmp_path / "out"))
    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("convstats: MongoDB (")
    assert "server unavailable" in err
    assert not (tmp_path / "out").exists()


def test_an_earlier_export_is_one_line_and_status_1_without_force(via_uri, tmp_path):
    """Exporting again into a folder is refused until --force is given."""
    assert cli("export", "--mongo", via_uri, "--out", str(tmp_path))[0] == 0
    status, out, err = cli("export", "--mongo", via_uri, "--out", str(tmp_path))
    assert (status, out) == (1, "")
    assert err.count("\n") == 1
    assert "give --force to replace it" in err
    assert cli("export", "--mongo", via_uri, "--out", str(tmp_path), "--force")[0] == 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def many_rooms(monkeypatch):
    """--mongo over a mongomock database of 3,000 rooms and one user."""
    rooms = [
        {"_id": f"r{n}", "t": "l", "ts": datetime(2024, 3, 2, tzinfo=UTC), "servedBy": {"_id": "a"}}
        for n in range(3000)
    ]
    with mongo_store({"rocketchat_room": rooms, "users": [{"_id": "a"}]}, uri=None) as store:
        client, name = store.mongo_database.client, store.database_name
        monkeypatch.setattr(mongo, "MongoStore", lambda uri, **_: MongoStore(client, database=name))
        yield "mongodb://test/rocketchat"


def test_progress_on_a_terminal_only(many_rooms, tmp_path):
    """On a terminal, documents written and their rate, about once a second, then erased."""
    ticks = itertools.count(0.0, 0.75)  # seconds, one step per reading of the clock
    terminal = Terminal()
    argv = ["export", "--mongo", many_rooms, "--out", str(tmp_path / "a")]
    assert run(argv, out=io.StringIO(), err=terminal, clock=lambda: next(ticks)) == 0
    shown = terminal.getvalue()
    # 1,000 rooms at 0.75 s: too soon; 2,000 at 1.5 s: shown; 3,000 at 2.25 s: too soon after.
    assert "\r\x1b[Kconvstats: writing rocketchat_room: 2,000, 1,333/s" in shown
    assert "rocketchat_room: 3,000" not in shown
    _, _, summary = shown.rpartition("\r\x1b[K")
    assert summary.startswith("convstats: wrote 3,000 documents to ")
    quiet = io.StringIO()
    argv = ["export", "--mongo", many_rooms, "--out", str(tmp_path / "b")]
    assert run(argv, out=io.StringIO(), err=quiet, clock=lambda: next(ticks)) == 0
    assert "\r" not in quiet.getvalue()
    assert quiet.getvalue().count("\n") == len(EXPORTED_FIELDS)


def test_the_readme_recipe_exports_the_same_fields():
    """The mongoexport commands in the README name exactly the fields the command exports."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recipe = dict(re.findall(r"mongoexport .*?--collection=(\S+) --fields=(\S+)", readme))
    assert {
        name: tuple(fields.split(",")) for name, fields in recipe.items() if name in EXPORTED_FIELDS
    } == dict(EXPORTED_FIELDS)
    assert "services.resume.loginTokens.hashedToken" in readme


def test_the_uri_may_come_from_the_environment(via_uri, tmp_path):
    """CONVSTATS_MONGODB_URI keeps the password off the command line; without either, exit 2."""
    out, err = io.StringIO(), io.StringIO()
    environ = {"CONVSTATS_MONGODB_URI": via_uri}
    status = run(["export", "--out", str(tmp_path / "env")], out=out, err=err, environ=environ)
    assert status == 0
    assert (tmp_path / "env" / "rocketchat_room.json").exists()
    err = io.StringIO()
    assert run(["export", "--out", str(tmp_path / "none")], out=out, err=err, environ={}) == 2
    assert "--mongo (or CONVSTATS_MONGODB_URI in the environment)" in err.getvalue()
    assert not (tmp_path / "none").exists()
