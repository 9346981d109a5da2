"""The live mirror for tests: a database that Rocket.Chat writes to, and reports to compare.

- :class:`SharedMongo` is a mongomock client made safe for threads (every call holds one
  lock, and a query's documents are read under it), that fails on demand (``down``) as an
  unreachable server does; two of them can share one database and fail apart.
- :class:`RocketChat` writes as Rocket.Chat's models do: ``_updatedAt`` on every write, from
  a clock of its own, sometimes stamping two writes alike; a deletion copied to
  ``rocketchat__trash`` first.
- :func:`differences` lists the reports two stores answer differently.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import mongomock
from pymongo.errors import AutoReconnect

from convstats import TimeWindow, Visibility
from convstats.authz import hash_login_token
from convstats.model import Grouping, TotalMode
from convstats.ports import Workspace
from convstats.report import Conversations

UTC = timezone.utc
START = datetime(2024, 5, 1, tzinfo=UTC)
#: Every room the writer creates falls in it.
WINDOW = TimeWindow(START - timedelta(days=1), START + timedelta(days=30))
AGENTS = ("agent-1", "agent-2", "agent-3")
DEPARTMENTS = ("dep-1", "dep-2")
TAGS = ("billing", "sales", "vip")

#: Who sees what: everyone, a monitor of unit-1, an agent of dep-2 under the current rule.
VISIBILITIES = (
    Visibility.everything(),
    Visibility(restricted=True, unit_ids=frozenset({"unit-1"})),
    Visibility(restricted=True, department_ids=frozenset({"dep-2"}), rooms_without_department=True),
)


#: The headers of the workspace's manager, signed in by a login token.
MANAGER_HEADERS: Final = {"X-User-Id": "manager", "X-Auth-Token": "manager-token"}


def workspace() -> dict[str, list[dict[str, Any]]]:
    """The directory the writer's rooms are served in: agents, a manager, departments, a unit."""
    manager = {
        "_id": "manager",
        "name": "Manager",
        "roles": ["livechat-manager"],
        "services": {
            "resume": {"loginTokens": [{"hashedToken": hash_login_token("manager-token")}]}
        },
        "_updatedAt": START,
    }
    return {
        "users": [
            manager,
            *(
                {
                    "_id": agent,
                    "name": f"Agent {n}",
                    "roles": ["livechat-agent"],
                    "_updatedAt": START,
                }
                for n, agent in enumerate(AGENTS, 1)
            ),
        ],
        "rocketchat_livechat_department": [
            {"_id": "unit-1", "name": "Unit", "type": "u", "_updatedAt": START},
            {"_id": "dep-1", "name": "Sales", "ancestors": ["unit-1"], "_updatedAt": START},
            {"_id": "dep-2", "name": "Support", "_updatedAt": START},
        ],
        "rocketchat_livechat_unit_monitors": [
            {"_id": "m-1", "monitorId": "monitor-1", "unitId": "unit-1"}
        ],
    }


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- a thread-safe mongomock, failing on demand --------------------------------------------


class _Cursor:
    """A query's documents, read under the lock when first asked for."""

    def __init__(self, owner: SharedMongo, cursor: Any) -> None:
        self._owner, self._cursor = owner, cursor
        self._documents: Iterator[Any] | None = None

    def sort(self, *args: Any, **kwargs: Any) -> _Cursor:
        self._cursor = self._cursor.sort(*args, **kwargs)
        return self

    def limit(self, count: int) -> _Cursor:
        self._cursor = self._cursor.limit(count)
        return self

    def __iter__(self) -> _Cursor:
        return self

    def __next__(self) -> Any:
        if self._documents is None:
            with self._owner.call():
                self._documents = iter(list(self._cursor))
        return next(self._documents)

    def close(self) -> None:
        pass


class _Collection:
    def __init__(self, owner: SharedMongo, collection: Any) -> None:
        self._owner, self._collection = owner, collection

    def find(self, *args: Any, **kwargs: Any) -> _Cursor:
        # Lazy, as a driver's: nothing is asked of the server before the first document.
        with self._owner.lock:
            return _Cursor(self._owner, self._collection.find(*args, **kwargs))

    def aggregate(self, *args: Any, **kwargs: Any) -> list[Any]:
        with self._owner.call():
            return list(self._collection.aggregate(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._collection, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._owner.call():
                return method(*args, **kwargs)

        return call


class _Database:
    def __init__(self, owner: SharedMongo, database: Any) -> None:
        self._owner, self._database = owner, database
        self.name = database.name
        self.client = owner

    def with_options(self, **options: Any) -> _Database:
        return self

    def get_collection(self, name: str) -> _Collection:
        return _Collection(self._owner, self._database.get_collection(name))

    __getitem__ = get_collection


class SharedMongo:
    """A mongomock client safe for threads, which fails while ``down`` is set.

    Two clients built over one ``base`` (and its ``lock``) share the database and fail apart.
    """

    def __init__(self, base: Any = None, lock: threading.Lock | None = None) -> None:
        self.base = base if base is not None else mongomock.MongoClient(tz_aware=True)
        self.lock = lock if lock is not None else threading.Lock()
        self.down = threading.Event()
        self.calls = 0

    def twin(self) -> SharedMongo:
        """A client of the same database that fails on its own."""
        return SharedMongo(self.base, self.lock)

    def call(self) -> Any:
        if self.down.is_set():
            raise AutoReconnect("127.0.0.1:27017: [Errno 111] Connection refused")
        self.calls += 1
        return self.lock

    def get_database(self, name: str | None = None, **options: Any) -> _Database:
        return _Database(self, self.base.get_database(name or "rc"))

    def get_default_database(self) -> _Database:
        return self.get_database("rc")

    def close(self) -> None:
        pass


# -- Rocket.Chat's writes ------------------------------------------------------------------


class RocketChat:
    """Writes rooms and users as Rocket.Chat does, stamped by a clock of its own.

    Each write's ``_updatedAt`` is a millisecond after the last one's, or (``alike``) the
    same instant, as two writes in one millisecond are.
    """

    def __init__(self, database: Any) -> None:
        self.db = database
        self.stamp = START
        self.numbers = itertools.count(1)

    def _now(self, alike: bool = False) -> datetime:
        if not alike:
            self.stamp += timedelta(milliseconds=1)
        return self.stamp

    def create(self, *, department: str | None = None, alike: bool = False) -> str:
        number = next(self.numbers)
        room_id = f"room-{number}"
        room: dict[str, Any] = {
            "_id": room_id,
            "t": "l",
            "ts": START + timedelta(hours=number),
            "open": True,
            "source": {"type": "widget"},
            "msgs": 0,
            "_updatedAt": self._now(alike),
        }
        if department is not None:
            room["departmentId"] = department
            if department == "dep-1":
                room["departmentAncestors"] = ["unit-1"]
        self.db.rocketchat_room.insert_one(room)
        return room_id

    def _update(self, room_id: str, update: dict[str, Any], alike: bool) -> None:
        update.setdefault("$set", {})["_updatedAt"] = self._now(alike)
        self.db.rocketchat_room.update_one({"_id": room_id}, update)

    def take(self, room_id: str, agent: str, *, alike: bool = False) -> None:
        """An agent takes the chat, or it is transferred to them."""
        self._update(room_id, {"$set": {"servedBy": {"_id": agent, "username": agent}}}, alike)

    def message(self, room_id: str, *, alike: bool = False) -> None:
        """A message: the room changes, but nothing any report reads."""
        self._update(room_id, {"$inc": {"msgs": 1}}, alike)

    def hold(self, room_id: str, *, alike: bool = False) -> None:
        self._update(room_id, {"$set": {"onHold": True}}, alike)

    def close(self, room_id: str, *, alike: bool = False) -> None:
        update = {"$unset": {"open": "", "onHold": ""}, "$set": {"metrics.chatDuration": 60}}
        self._update(room_id, update, alike)

    def tag(self, room_id: str, tags: list[str], *, alike: bool = False) -> None:
        self._update(room_id, {"$set": {"tags": tags}}, alike)

    def delete(self, room_id: str, *, alike: bool = False) -> None:
        """Delete as ``BaseRaw.deleteOne`` does: the document to the trash, then away."""
        self.trash(room_id, alike=alike)
        self.db.rocketchat_room.delete_one({"_id": room_id})

    def trash(self, room_id: str, *, alike: bool = False) -> None:
        """The first half of a deletion: the document copied to the trash, still there."""
        room = self.db.rocketchat_room.find_one({"_id": room_id})
        if room is None:
            return
        record = {key: value for key, value in room.items() if key != "_id"}
        record.update(_deletedAt=self._now(alike), __collection__="room")
        self.db.rocketchat__trash.update_one({"_id": room_id}, {"$set": record}, upsert=True)

    def rename(self, user_id: str, name: str) -> None:
        self.db.users.update_one(
            {"_id": user_id}, {"$set": {"name": name, "_updatedAt": self._now()}}
        )


# -- comparing ---------------------------------------------------------------------------


def reports(
    store: Workspace, visibilities: tuple[Visibility, ...] = VISIBILITIES
) -> Mapping[tuple[Grouping, TotalMode, Visibility], Any]:
    """Every report of ``store`` on :data:`WINDOW`: each grouping, reading and visibility."""
    return {
        (grouping, mode, visibility): Conversations(
            store=store, grouping=grouping, total_mode=mode
        ).report(WINDOW, visibility=visibility)
        for grouping in Grouping
        for mode in TotalMode
        for visibility in visibilities
    }


def differences(
    one: Workspace, other: Workspace, visibilities: tuple[Visibility, ...] = VISIBILITIES
) -> list[str]:
    """The reports ``one`` and ``other`` answer differently, each with both answers."""
    mine, theirs = reports(one, visibilities), reports(other, visibilities)
    return [f"{key}: {mine[key]} != {theirs[key]}" for key in mine if mine[key] != theirs[key]]
