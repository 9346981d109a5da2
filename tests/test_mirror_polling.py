"""The live mirror following a database by polling: end to end on mongomock.

Rocket.Chat's writes (tests/mirror_support.py) go to a mongomock database; the mirror polls it
(mongomock offers no change streams); after a poll, every report the mirror answers equals
the same report asked of MongoDB itself (MongoStore), on every visibility.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from convstats import Visibility
from convstats.errors import StorageUnavailable
from convstats.model import Grouping
from convstats.ports import Aged, Versioned, Workspace
from convstats_adapters.mirror import MongoMirror
from convstats_adapters.mongo import MongoStore
from tests.builders import by_agent
from tests.mirror_support import (
    AGENTS,
    DEPARTMENTS,
    START,
    TAGS,
    WINDOW,
    FakeClock,
    RocketChat,
    SharedMongo,
    differences,
    workspace,
)


def seeded(client: SharedMongo) -> RocketChat:
    """The workspace's directory in the client's database, and a writer of its rooms."""
    database = client.base.get_database("rc")
    for name, documents in workspace().items():
        database[name].insert_many([dict(document) for document in documents])
    return RocketChat(database)


@pytest.fixture
def client() -> SharedMongo:
    return SharedMongo()


@pytest.fixture
def writer(client: SharedMongo) -> RocketChat:
    return seeded(client)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database(client: SharedMongo) -> MongoStore:
    """MongoDB itself, as the reports read it: the reference."""
    return MongoStore(client.twin(), database="rc")


@pytest.fixture
def mirror(client: SharedMongo, clock: FakeClock) -> Iterator[MongoMirror]:
    mirror = MongoMirror(MongoStore(client, database="rc"), overlap=5.0, clock=clock)
    yield mirror
    mirror.close()


def test_the_mirror_is_a_workspace_that_knows_its_version_and_age(mirror: MongoMirror) -> None:
    """The mirror is a Workspace, Versioned and Aged; mypy checks the same as assignments."""
    assert isinstance(mirror, Workspace)
    assert isinstance(mirror, Versioned)
    assert isinstance(mirror, Aged)
    typed: Workspace = mirror
    versioned: Versioned = mirror
    aged: Aged = mirror
    assert typed is versioned is aged


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"follow": "sometimes"}, "follow must be one of auto, changes, poll"),
        ({"poll_interval": 0}, "poll_interval must be a positive number"),
        ({"overlap": float("inf")}, "overlap must be a positive number"),
        ({"strategy": "fastest"}, "fastest"),
        ({"max_await": 30.0}, "max_await (30 s) must be shorter than the source's time limit"),
    ],
)
def test_unusable_options_are_refused_at_construction(
    client: SharedMongo, options: dict[str, object], complaint: str
) -> None:
    """A bad option is a ValueError naming it, before anything is read."""
    with pytest.raises(ValueError, match=re.escape(complaint)):
        MongoMirror(MongoStore(client, database="rc"), **options)  # type: ignore[arg-type]
    assert client.calls == 0


def test_the_source_must_be_a_mongo_store() -> None:
    with pytest.raises(TypeError, match="source must be a MongoStore"):
        MongoMirror("mongodb://localhost/rc")  # type: ignore[arg-type]


def test_before_its_snapshot_the_mirror_answers_nothing(mirror: MongoMirror) -> None:
    """Until it has loaded, every store call is StorageUnavailable, and its age is unknown."""
    with pytest.raises(StorageUnavailable, match="has not loaded its snapshot yet"):
        mirror.count_groups(Grouping.AGENT, WINDOW, Visibility.everything())
    with pytest.raises(StorageUnavailable):
        mirror.get_user("agent-1")
    assert mirror.data_age_seconds is None
    assert mirror.status().state == "loading"


def test_a_poll_applies_every_kind_of_change(
    mirror: MongoMirror, writer: RocketChat, database: MongoStore
) -> None:
    """Inserts, transfers, holds, closes, tags, deletions and a rename, seen after one poll."""
    rooms = [writer.create(department=DEPARTMENTS[n % 2]) for n in range(6)]
    writer.take(rooms[0], "agent-1")
    mirror.load()
    assert differences(mirror, database) == []
    writer.take(rooms[0], "agent-2")
    writer.take(rooms[1], "agent-1")
    writer.hold(rooms[1])
    writer.close(rooms[2])
    writer.tag(rooms[3], ["billing", "vip"])
    writer.delete(rooms[4])
    writer.create()
    writer.rename("agent-2", "Agnes")
    assert differences(mirror, database) != []  # the database moved on
    assert mirror.follow_once() == 7  # six rooms (each at its latest version) and the users
    assert differences(mirror, database) == []
    assert mirror.agent_names(["agent-2"])["agent-2"] == "Agnes"


def test_a_version_seen_again_within_the_overlap_is_not_applied_again(
    mirror: MongoMirror, writer: RocketChat
) -> None:
    """Re-reading the overlap finds the same versions: no change, and data_version stays."""
    room = writer.create()
    mirror.load()
    writer.take(room, "agent-1")
    assert mirror.follow_once() == 1
    version = mirror.data_version
    assert mirror.follow_once() == 0
    assert mirror.data_version == version


def test_writes_stamped_alike_are_not_missed(
    mirror: MongoMirror, writer: RocketChat, database: MongoStore
) -> None:
    """A write stamped like one already seen (the same millisecond) is still applied."""
    first, second = writer.create(), writer.create()
    mirror.load()
    writer.take(first, "agent-1")
    mirror.follow_once()
    writer.take(second, "agent-2", alike=True)  # the same _updatedAt as the last one seen
    assert mirror.follow_once() == 1
    assert differences(mirror, database) == []


def test_a_second_write_to_a_room_in_the_same_millisecond_is_applied(
    mirror: MongoMirror, writer: RocketChat, database: MongoStore
) -> None:
    """A room written twice in one millisecond, polled in between, ends as the second says."""
    room = writer.create()
    mirror.load()
    writer.take(room, "agent-1")
    mirror.follow_once()
    writer.close(room, alike=True)  # the same _updatedAt as the version applied
    assert mirror.follow_once() == 1
    assert differences(mirror, database) == []


def test_a_deletion_stamped_like_the_last_write_wins(
    mirror: MongoMirror, writer: RocketChat, database: MongoStore
) -> None:
    """The trash is written before the delete: a room seen alive and trashed is gone."""
    room = writer.create()
    mirror.load()
    writer.take(room, "agent-1")
    writer.delete(room, alike=True)
    mirror.follow_once()
    assert by_agent(mirror, WINDOW, Visibility.everything()).per_agent == {}
    assert differences(mirror, database) == []


def test_a_room_trashed_but_not_yet_deleted_goes_at_the_next_poll(
    mirror: MongoMirror, writer: RocketChat, client: SharedMongo, database: MongoStore
) -> None:
    """A poll between the trash's write and the deletion still ends with the room gone."""
    room = writer.create()
    mirror.load()
    writer.take(room, "agent-1")
    writer.trash(room, alike=True)  # polled right here, the room is in both collections
    mirror.follow_once()
    client.base.get_database("rc").rocketchat_room.delete_one({"_id": room})
    mirror.follow_once()
    assert by_agent(mirror, WINDOW, Visibility.everything()).per_agent == {}
    assert differences(mirror, database) == []


def test_the_rooms_that_never_count_are_not_held(
    mirror: MongoMirror, writer: RocketChat, client: SharedMongo
) -> None:
    """Direct messages and channels are not read; a room no longer livechat is let go."""
    database = client.base.get_database("rc")
    database.rocketchat_room.insert_one({"_id": "dm", "t": "d", "ts": START, "_updatedAt": START})
    room = writer.create()
    mirror.load()
    assert mirror.room_count == 1
    database.rocketchat_room.update_one(
        {"_id": room}, {"$set": {"t": "c", "_updatedAt": START + timedelta(days=1)}}
    )
    mirror.follow_once()
    assert mirror.room_count == 0


def test_a_report_labels_its_rows_from_the_state_it_counted(
    mirror: MongoMirror, writer: RocketChat
) -> None:
    """A rename applied between a count and its labels does not reach that count's labels."""
    writer.take(writer.create(), "agent-1")
    mirror.load()
    mirror.count_groups(Grouping.AGENT, WINDOW, Visibility.everything())
    writer.rename("agent-1", "Renamed")
    mirror.follow_once()
    assert mirror.agent_names(["agent-1"])["agent-1"] == "Agent 1"  # the count's state
    elsewhere: dict[str, str] = {}
    thread = threading.Thread(target=lambda: elsewhere.update(mirror.agent_names(["agent-1"])))
    thread.start()
    thread.join()
    assert elsewhere["agent-1"] == "Renamed"  # another thread counted nothing: the latest
    mirror.count_groups(Grouping.AGENT, WINDOW, Visibility.everything())
    assert mirror.agent_names(["agent-1"])["agent-1"] == "Renamed"


# -- reconciliation -------------------------------------------------------------------------


def test_reconciliation_reads_the_rooms_polling_missed(
    mirror: MongoMirror,
    writer: RocketChat,
    client: SharedMongo,
    database: MongoStore,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A room written without _updatedAt is found when the ids of its day differ twice."""
    writer.create()
    mirror.load()
    stray = {"_id": "stray", "t": "l", "ts": START + timedelta(hours=3), "open": True}
    client.base.get_database("rc").rocketchat_room.insert_one(stray)
    mirror.follow_once()
    assert differences(mirror, database) != []  # polling cannot see it
    clock.advance(mirror.reconcile_interval)
    mirror.follow_once()  # the day differs once: checked again later
    assert differences(mirror, database) != []
    clock.advance(mirror.reconcile_interval)
    with caplog.at_level(logging.WARNING, logger="convstats.mirror"):
        mirror.follow_once()
    assert differences(mirror, database) == []
    assert "read 1 room(s) created on 2024-05-01 that polling had missed" in caplog.text
    assert mirror.status().rebuilds == 0


def test_reconciliation_rebuilds_when_rooms_vanished_without_a_trace(
    mirror: MongoMirror,
    writer: RocketChat,
    client: SharedMongo,
    database: MongoStore,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A room deleted without the trash is held until reconciliation rebuilds the mirror."""
    room = writer.create()
    writer.create()
    mirror.load()
    client.base.get_database("rc").rocketchat_room.delete_one({"_id": room})
    for _ in range(2):
        clock.advance(mirror.reconcile_interval)
        with caplog.at_level(logging.INFO, logger="convstats.mirror"):
            mirror.follow_once()
    assert differences(mirror, database) == []
    status = mirror.status()
    assert status.rebuilds == 1
    assert status.last_rebuild is not None
    assert "no longer holds" in status.last_rebuild
    assert "rebuilding the mirror from a fresh snapshot: reconciliation found" in caplog.text
    assert "rebuilt the mirror of rc" in caplog.text


# -- the database going away ------------------------------------------------------------------


def test_while_the_database_is_away_the_mirror_answers_and_ages(
    mirror: MongoMirror,
    writer: RocketChat,
    client: SharedMongo,
    database: MongoStore,
    clock: FakeClock,
) -> None:
    """A failed poll keeps the data and lets its age grow; the next one catches up."""
    writer.take(writer.create(), "agent-1")
    mirror.load()
    assert mirror.data_age_seconds == 0
    client.down.set()
    writer.create()  # the database changes meanwhile, through another client
    clock.advance(7)
    with pytest.raises(StorageUnavailable, match="Connection refused"):
        mirror.follow_once()
    assert mirror.data_age_seconds == 7
    assert by_agent(mirror, WINDOW, Visibility.everything()).per_agent == {"agent-1": 1}
    client.down.clear()
    assert mirror.follow_once() == 1
    assert mirror.data_age_seconds == 0
    assert differences(mirror, database) == []


# -- the state machine ------------------------------------------------------------------------


class PollingMirror(RuleBasedStateMachine):
    """Any sequence of Rocket.Chat's writes, then one poll: the mirror answers as MongoDB."""

    rooms = Bundle("rooms")

    def __init__(self) -> None:
        super().__init__()
        self.client = SharedMongo()
        self.writer = seeded(self.client)
        self.reference = MongoStore(self.client.twin(), database="rc")
        self.mirror = MongoMirror(MongoStore(self.client, database="rc"), overlap=5.0)
        self.loaded = False
        self.polled = False

    @rule(target=rooms, department=st.sampled_from((None, *DEPARTMENTS)), alike=st.booleans())
    def create(self, department: str | None, alike: bool) -> str:
        self.polled = False
        return self.writer.create(department=department, alike=alike)

    @rule(room=rooms, agent=st.sampled_from(AGENTS), alike=st.booleans())
    def take(self, room: str, agent: str, alike: bool) -> None:
        self.polled = False
        self.writer.take(room, agent, alike=alike)

    @rule(room=rooms, alike=st.booleans())
    def hold(self, room: str, alike: bool) -> None:
        self.polled = False
        self.writer.hold(room, alike=alike)

    @rule(room=rooms, alike=st.booleans())
    def close(self, room: str, alike: bool) -> None:
        self.polled = False
        self.writer.close(room, alike=alike)

    @rule(room=rooms, tags=st.lists(st.sampled_from(TAGS), max_size=2), alike=st.booleans())
    def tag(self, room: str, tags: list[str], alike: bool) -> None:
        self.polled = False
        self.writer.tag(room, tags, alike=alike)

    @rule(room=rooms, alike=st.booleans())
    def message(self, room: str, alike: bool) -> None:
        self.polled = False
        self.writer.message(room, alike=alike)

    @rule(room=consumes(rooms), alike=st.booleans())
    def delete_across_a_poll(self, room: str, alike: bool) -> None:
        """A poll lands between a deletion's two writes: the trash's, and the deletion."""
        self.writer.trash(room, alike=alike)
        self.poll()
        self.writer.db.rocketchat_room.delete_one({"_id": room})
        self.polled = False

    @rule(room=consumes(rooms), alike=st.booleans())
    def delete(self, room: str, alike: bool) -> None:
        self.polled = False
        self.writer.delete(room, alike=alike)

    @rule(agent=st.sampled_from(AGENTS), name=st.sampled_from(("Ana", "Bo", "")))
    def rename(self, agent: str, name: str) -> None:
        self.polled = False
        self.writer.rename(agent, name)

    @rule()
    def poll(self) -> None:
        if self.loaded:
            self.mirror.follow_once()
        else:
            self.mirror.load()
            self.loaded = True
        self.polled = True

    @invariant()
    def after_a_poll_every_report_is_the_databases(self) -> None:
        if self.polled:
            assert differences(self.mirror, self.reference) == []

    @precondition(lambda self: self.loaded)
    @invariant()
    def its_data_is_never_older_than_the_last_poll(self) -> None:
        assert self.mirror.data_age_seconds is not None

    def teardown(self) -> None:
        self.mirror.close()


PollingMirror.TestCase.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
test_polling_follows_any_sequence_of_writes = PollingMirror.TestCase
