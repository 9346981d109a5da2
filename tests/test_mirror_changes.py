"""The live mirror following change streams, against a scripted replica set member.

tests/fake_mongo.py's :class:`ChangeStreams` plays a replica set member on 127.0.0.1 whose
change streams answer what each test lists: ordered events, a dropped connection, a duplicate
after a resume, an ``invalidate``, a lost history (error 286), a resume refused. The pymongo
driver talks to it as to a real server.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from convstats import Visibility
from convstats.errors import StorageError, StorageTimeout
from convstats_adapters.memory import MemoryStore
from convstats_adapters.mirror import MongoMirror
from convstats_adapters.mongo import MongoStore
from tests.builders import by_agent
from tests.fake_mongo import (
    DROP,
    STALL,
    ChangeStreams,
    FakeMongo,
    change,
    fake_mongo,
    resume_token,
)
from tests.mirror_support import WINDOW, FakeClock

UTC = timezone.utc
START = datetime(2024, 5, 1, tzinfo=UTC)
EVERYTHING = Visibility.everything()
BOUND_MS = 2000


def room(number: int, agent: str | None = None, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_id": f"room-{number}",
        "t": "l",
        "ts": START + timedelta(hours=number),
        "open": True,
    }
    if agent is not None:
        document["servedBy"] = {"_id": agent, "username": agent}
    document.update(fields)
    return document


def collections() -> dict[str, list[dict[str, Any]]]:
    return {
        "rocketchat_room": [room(1, "agent-1"), room(2, "agent-2")],
        "users": [
            {"_id": "agent-1", "name": "Ana", "roles": ["livechat-agent"]},
            {"_id": "agent-2", "name": "Bo", "roles": ["livechat-agent"]},
        ],
    }


def history_lost() -> dict[str, Any]:
    return {
        "ok": 0.0,
        "code": 286,
        "codeName": "ChangeStreamHistoryLost",
        "errmsg": "Resume of change stream was not possible, as the resume point may no "
        "longer be in the oplog.",
    }


def counts(mirror: MongoMirror) -> dict[str, int]:
    tally = by_agent(mirror, WINDOW, EVERYTHING)
    return {**tally.per_agent, "<unspecified>": tally.unspecified}


@contextlib.contextmanager
def following(
    script: ChangeStreams, *, bound_ms: int = BOUND_MS, **options: Any
) -> Iterator[tuple[FakeMongo, MongoMirror]]:
    """The scripted member, and a mirror of it that has not loaded yet."""
    with (
        fake_mongo(stall_limit=10 * bound_ms / 1000, **script.responders()) as server,
        MongoStore(server.uri(), max_time_ms=bound_ms) as store,
    ):
        mirror = MongoMirror(store, max_await=0.05, **options)
        try:
            yield server, mirror
        finally:
            mirror.close()


def stream_openings(server: FakeMongo) -> list[dict[str, Any]]:
    """The ``$changeStream`` stage of each stream opened (or resumed), in order."""
    return [command["pipeline"][0]["$changeStream"] for command in server.received("aggregate")]


def test_the_stream_opens_before_the_snapshot_at_the_snapshots_cluster_time() -> None:
    """One session: the cluster time, the stream from it, then the snapshot read after it."""
    script = ChangeStreams(collections())
    with following(script) as (server, mirror):
        mirror.load()
        assert mirror.status().follow == "changes"
        [opening] = stream_openings(server)
        assert opening["startAtOperationTime"] == ChangeStreams.START
        assert opening["fullDocument"] == "updateLookup"
        names = [name for name in server.commands if name in ("ping", "aggregate", "find")]
        assert names.index("aggregate") < names.index("find")  # the stream first
        [aggregate] = server.received("aggregate")
        [rooms] = [find for find in server.received("find") if find["find"] == "rocketchat_room"]
        assert rooms["lsid"] == aggregate["lsid"]
        assert rooms["readConcern"]["afterClusterTime"] == ChangeStreams.START
        assert rooms["filter"] == {"t": "l"}
        assert set(rooms["projection"]) == {
            "_id",
            "t",
            "ts",
            "servedBy",
            "departmentId",
            "departmentAncestors",
            "open",
            "onHold",
            "metrics.chatDuration",
            "source",
            "tags",
        }
        pipeline = aggregate["pipeline"][1:]
        assert "$match" in pipeline[0]
        assert pipeline[1]["$project"]["fullDocument.servedBy"] == 1
        assert counts(mirror) == {"agent-1": 1, "agent-2": 1, "<unspecified>": 0}


def test_changes_are_applied_in_the_order_of_the_stream() -> None:
    """Inserts, updates, replaces and deletes, one after the other, each on the last."""
    events = [
        change(1, "insert", document=room(3)),
        change(2, "update", document=room(3, "agent-1")),
        change(3, "replace", document=room(1, "agent-2", tags=["vip"])),
        change(4, "delete", key="room-2"),
        change(5, "update", document=room(3)),  # returned to the queue
        change(6, "insert", document=room(4, "agent-1")),
    ]
    script = ChangeStreams(collections(), [[], events[:3], events[3:], []])
    with following(script) as (_, mirror):
        mirror.load()
        assert counts(mirror) == {"agent-1": 1, "agent-2": 1, "<unspecified>": 1}
        status = mirror.status()
        assert status.changes == 6
        assert status.cluster_time == datetime.fromtimestamp(1_700_000_006, UTC)


def test_a_change_the_snapshot_already_holds_is_applied_once() -> None:
    """The stream opens first, so it repeats what the snapshot read: no room counts twice."""
    events = [
        change(1, "insert", document=room(1, "agent-1")),  # in the snapshot already
        change(2, "update", document=room(1, "agent-2")),
    ]
    script = ChangeStreams(collections(), [events, []])
    with following(script) as (_, mirror):
        mirror.load()
        assert counts(mirror) == {"agent-2": 2, "<unspecified>": 0}
        assert mirror.room_count == 2


def test_a_dropped_connection_resumes_from_the_last_token_and_loses_nothing() -> None:
    """The driver opens the stream again after the last change applied; the next one comes."""
    script = ChangeStreams(
        collections(),
        [
            [],
            [change(1, "update", document=room(1, "agent-2"))],
            DROP,
            [change(2, "insert", document=room(3, "agent-1"))],
            [],
        ],
    )
    with following(script) as (server, mirror):
        mirror.load()
        assert counts(mirror) == {"agent-1": 1, "agent-2": 2, "<unspecified>": 0}
        _, resumed = stream_openings(server)
        assert resumed["resumeAfter"] == resume_token(1)
        assert "startAtOperationTime" not in resumed


def test_a_duplicate_after_a_resume_is_not_applied_again() -> None:
    """A change delivered again after a resume does not undo the changes that followed it."""
    created = change(1, "insert", document=room(3))  # queued
    script = ChangeStreams(
        collections(),
        [
            [],
            [created],
            [change(2, "update", document=room(3, "agent-1"))],  # taken
            DROP,
            [created, change(3, "insert", document=room(4))],  # the insert again
            [],
        ],
    )
    with following(script) as (_, mirror):
        mirror.load()
        assert counts(mirror) == {"agent-1": 2, "agent-2": 1, "<unspecified>": 1}


def test_a_server_that_stops_answering_is_resumed_by_a_later_round() -> None:
    """Past the driver's own resumes, the round fails; the mirror ages, then resumes."""
    clock = FakeClock()
    script = ChangeStreams(
        collections(),
        [
            [],
            [],
            [change(1, "update", document=room(1, "agent-2"))],
            DROP,  # the driver resumes on its own, within the bound ...
            STALL,  # ... which the server lets pass
            [change(2, "insert", document=room(3, "agent-1"))],
            [],
        ],
    )
    with following(script, clock=clock, bound_ms=300) as (server, mirror):
        mirror.load()
        clock.advance(3)
        with pytest.raises(StorageTimeout):
            mirror.follow_once()
        assert mirror.data_age_seconds == 3  # the change before the failure is applied
        assert counts(mirror) == {"agent-2": 2, "<unspecified>": 0}
        for _ in range(3):  # bounded: the stalled reply may fail one more round
            with contextlib.suppress(StorageTimeout):
                mirror.follow_once()
                break
        assert counts(mirror) == {"agent-1": 1, "agent-2": 2, "<unspecified>": 0}
        assert mirror.data_age_seconds == 0
        assert stream_openings(server)[-1]["resumeAfter"] == resume_token(1)
        assert mirror.status().rebuilds == 0


ENDINGS = {
    "an invalidate": ([change(1, "invalidate")], "the change stream was invalidated"),
    "a lost history": (history_lost(), "ChangeStreamHistoryLost, code 286"),
    "a dropped collection": (
        [change(1, "drop", "rocketchat_room")],
        "a drop of rocketchat_room",
    ),
}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_a_stream_that_cannot_go_on_rebuilds_while_the_old_mirror_answers(
    ending: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh snapshot is read while the data before answers; the log says why."""
    step, reason = ending
    script = ChangeStreams(collections(), [[], [], step, [], []])
    answered_meanwhile: list[dict[str, int]] = []
    with following(script) as (server, mirror):
        mirror.load()
        script.collections["rocketchat_room"].append(room(3, "agent-1"))
        respond = script.responders()["find"]

        def find_answering(command: dict[str, Any]) -> Any:
            if command["find"] == "rocketchat_room":  # the rebuild's snapshot
                answered_meanwhile.append(counts(mirror))
            return respond(command)

        server_responders: Any = server._server.responders
        server_responders["find"] = find_answering
        with caplog.at_level(logging.INFO, logger="convstats.mirror"):
            assert mirror.follow_once() == 0
        assert answered_meanwhile == [{"agent-1": 1, "agent-2": 1, "<unspecified>": 0}]
        assert counts(mirror) == {"agent-1": 2, "agent-2": 1, "<unspecified>": 0}
        status = mirror.status()
        assert status.rebuilds == 1
        assert status.last_rebuild is not None
        assert reason in status.last_rebuild
        assert f"rebuilding the mirror from a fresh snapshot: {status.last_rebuild}" in caplog.text
        assert "rebuilt the mirror of rc" in caplog.text
        assert len(stream_openings(server)) == 2
        assert "resumeAfter" not in stream_openings(server)[1]


def test_a_resume_the_server_refuses_rebuilds() -> None:
    """A network drop, then a resume refused (the history is gone): a fresh snapshot."""
    script = ChangeStreams(
        collections(),
        [[], [], [change(1, "update", document=room(1, "agent-2"))], DROP, history_lost(), [], []],
    )
    with following(script) as (server, mirror):
        mirror.load()
        mirror.follow_once()
        status = mirror.status()
        assert status.rebuilds == 1
        assert status.last_rebuild is not None
        assert "cannot go on" in status.last_rebuild
        assert "code 286" in status.last_rebuild
        openings = stream_openings(server)
        assert openings[1]["resumeAfter"] == resume_token(1)
        assert "startAtOperationTime" in openings[2]


def test_the_directory_follows_and_an_unchanged_user_changes_nothing() -> None:
    """A rename relabels at once; a user's write the reports do not read keeps the version."""
    users = collections()["users"]
    script = ChangeStreams(
        collections(),
        [
            [],
            [change(1, "update", "users", {**users[0], "name": "Anna"})],
            [],  # each empty batch ends a round: the stream has caught up
            [change(2, "update", "users", {**users[0], "name": "Anna", "status": "away"})],
            [],
            [
                change(3, "insert", "rocketchat_livechat_department", {"_id": "d", "name": "D"}),
                change(4, "delete", "users", key="agent-2"),
            ],
            [],
        ],
    )
    with following(script) as (_, mirror):
        mirror.load()
        assert mirror.agent_names(["agent-1"])["agent-1"] == "Anna"
        version = mirror.data_version
        mirror.follow_once()  # the user's status: not a field the reports read
        assert mirror.data_version == version
        mirror.follow_once()
        assert mirror.get_user("agent-2") is None
        assert mirror.department_names(["d"]) == {"d": "D"}
        assert mirror.data_version == version + 1  # one round, one new directory


def test_a_following_thread_stops_cleanly() -> None:
    """start() follows in a thread; sync() waits for it; stop() ends it and says so."""
    script = ChangeStreams(collections(), [[], [change(1, "insert", document=room(3))]])
    with following(script) as (_, mirror):
        mirror.start()
        assert mirror.sync(timeout=30)
        assert counts(mirror)["<unspecified>"] == 1
        assert mirror.stop(timeout=30)
        assert mirror.status().state == "stopped"
        assert not any(thread.name == "convstats-mirror" for thread in threading.enumerate())
        assert counts(mirror)["<unspecified>"] == 1  # the data stays answerable
        with pytest.raises(RuntimeError):
            mirror.start()


def test_a_standalone_server_is_polled_and_refuses_change_streams() -> None:
    """follow='auto' polls a standalone server; follow='changes' fails saying why."""
    script = ChangeStreams(collections())
    responders = {**script.responders()}
    del responders["hello"], responders["isMaster"]  # a standalone server's handshake
    responders["aggregate"] = lambda _: {
        "ok": 0.0,
        "code": 40573,
        "codeName": "Location40573",
        "errmsg": "The $changeStream stage is only supported on replica sets",
    }
    with (
        fake_mongo(**responders) as server,
        MongoStore(server.uri(), max_time_ms=BOUND_MS) as store,
    ):
        polling = MongoMirror(store)
        polling.load()
        assert polling.status().follow == "poll"
        assert counts(polling) == {"agent-1": 1, "agent-2": 1, "<unspecified>": 0}
        assert server.received("aggregate") == []
        streaming = MongoMirror(store, follow="changes")
        with pytest.raises(StorageError, match="only supported on replica sets"):
            streaming.load()
        assert streaming.status().state == "loading"


def test_a_count_sees_a_round_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A count asked half way through a round waits for the round: never half a round."""
    events = [change(n, "insert", document=room(10 + n, "agent-1")) for n in range(1, 41)]
    script = ChangeStreams(collections(), [[], [], events, []])
    seen: list[int] = []
    counting: list[threading.Thread] = []
    put_room = MemoryStore.put_room

    def put_then_count(store: MemoryStore, document: Any) -> None:
        if document["_id"] == "room-30":  # half way through the round's puts
            thread = threading.Thread(target=lambda: seen.append(counts(mirror)["agent-1"]))
            counting.append(thread)
            thread.start()
            thread.join(timeout=1.0)  # returns at once unless the count waits for the round
        put_room(store, document)

    with following(script) as (_, mirror):
        mirror.load()
        monkeypatch.setattr(MemoryStore, "put_room", put_then_count)
        mirror.follow_once()
        for thread in counting:
            thread.join()
    assert seen == [41]
