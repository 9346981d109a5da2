"""A live mirror of a Rocket.Chat database: every report answered from memory, kept current.

:class:`MongoMirror` reads the six collections the reports read from MongoDB (through a
:class:`~convstats_adapters.mongo.MongoStore`) into a
:class:`~convstats_adapters.memory.MemoryStore`, and then follows the database, so that each
report is counted in memory, in a fraction of a millisecond, on data at most a few seconds
old. It is a :class:`~convstats.ports.Workspace` (rooms and directory), ``Versioned`` and
``Aged``: :attr:`MongoMirror.data_age_seconds` says how old its data is.

How it follows (docs/behaviour.md#the-live-mirror):

- **Change streams**, where the server offers them (a replica set or a sharded cluster, as
  Rocket.Chat requires in production): one stream on the database, opened *before* the
  snapshot at the cluster time the snapshot then reads at (a causally consistent session),
  so that no change in between is lost. Inserts, updates (with the full document, looked up
  by the server and projected to the fields the reports read), replaces and deletes are
  applied in the stream's order, a round of them at a time; the resume token is kept, and a
  network failure is resumed from it. An ``invalidate``, a dropped collection, a lost history
  (``ChangeStreamHistoryLost``) or a resume the server refuses rebuild the mirror from a fresh
  snapshot, while the mirror built before keeps answering.
- **Polling**, where they are not (a standalone server, or a stand-in such as mongomock):
  every ``poll_interval`` seconds the rooms and users whose ``_updatedAt`` is at or after the
  latest one seen, less ``overlap`` seconds (so that writes stamped alike, or committed a
  little late, are not missed; a version already applied is not applied again), the rooms and
  users Rocket.Chat moved to ``rocketchat__trash`` in that time, and the small collections
  whole. Every ``reconcile_interval`` seconds the ids of the rooms are compared with the
  database's, day of creation by day, by count and a hash: the rooms it lacks are read, and
  when it holds rooms the database no longer has, it is rebuilt.

A round of changes is applied at once: a report (one count, then its labels, answered from
the directory of the count's state) never sees half a round, nor counts and labels of two
states. The follower runs in a thread of its own (:meth:`MongoMirror.start`, or the context
manager); an embedder that prefers to drive it calls :meth:`MongoMirror.load` and
:meth:`MongoMirror.follow_once` itself. Needs the ``mongo`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Final

import attrs

from convstats.errors import StorageError, StorageUnavailable
from convstats.model import GroupCounts, Grouping, TimeWindow, TotalMode, UserRecord, Visibility
from convstats_adapters import documents as doc
from convstats_adapters.documents import Document
from convstats_adapters.export import EXPORTED_FIELDS
from convstats_adapters.memory import MemoryDirectory, MemoryRooms, MemoryStore
from convstats_adapters.memory.counting import check_strategy
from convstats_adapters.memory.directory import DIRECTORY_COLLECTIONS
from convstats_adapters.mongo import MongoStore

try:
    from bson import Timestamp
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure
    from pymongo.server_type import SERVER_TYPE
except ImportError as exc:  # pragma: no cover - convstats_adapters.mongo has raised already
    raise ImportError(str(exc)) from exc

__all__ = ["FOLLOW_MODES", "TRASH", "MirrorStatus", "MongoMirror"]

_logger = logging.getLogger("convstats.mirror")

#: How a mirror may follow its database: change streams where offered, else polling
#: (``auto``); change streams only; polling only.
FOLLOW_MODES: Final = ("auto", "changes", "poll")
#: Where Rocket.Chat keeps what it deletes (``BaseRaw.deleteOne`` and friends): the whole
#: document, its ``_deletedAt`` and ``__collection__``, the model's name; kept 30 days.
TRASH: Final = "rocketchat__trash"
#: The ``__collection__`` values of the trashed documents the poller reads, by collection.
#: Rocket.Chat names a model without the ``rocketchat_`` prefix; both forms are read.
_TRASHED_AS: Final = {doc.ROOMS: ("room", doc.ROOMS), doc.USERS: (doc.USERS,)}

_ROOM_FIELDS: Final = EXPORTED_FIELDS[doc.ROOMS]
#: What the directory keeps of each collection: the export's fields, login token hashes
#: included (the service signs its callers in by token).
_DIRECTORY_FIELDS: Final = {
    name: (
        (*EXPORTED_FIELDS[name], doc.LOGIN_TOKEN_HASHES)
        if name == doc.USERS
        else EXPORTED_FIELDS[name]
    )
    for name in DIRECTORY_COLLECTIONS
}
_FIELDS: Final = {doc.ROOMS: _ROOM_FIELDS, **_DIRECTORY_FIELDS}
#: The top-level fields each collection's documents are kept with (a change event's
#: document is projected to every collection's fields at once).
_TOP_FIELDS: Final = {
    name: frozenset(field.split(".", 1)[0] for field in fields) for name, fields in _FIELDS.items()
}
_UPDATED: Final = "_updatedAt"
_DELETED: Final = "_deletedAt"
#: The collections the poller reads whole each round: small, and not all trashed.
_SMALL: Final = tuple(name for name in DIRECTORY_COLLECTIONS if name != doc.USERS)
_DAY_MS: Final = 86_400_000
_HASH_BITS: Final = (1 << 64) - 1
_EARLIEST: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Change events applied at most in one round, so that a round holds readers back briefly.
_ROUND_EVENTS: Final = 5000
_SNAPSHOT_BATCH: Final = 10_000
_PROGRESS_SECONDS: Final = 10.0
#: Server codes of a failed authentication or authorization: a rebuild would fail alike.
_UNAUTHORIZED: Final = frozenset({13, 18})
_MAX_TIME_EXPIRED: Final = 50
#: The longest pause between two attempts to reach a database that does not answer.
_MAX_BACKOFF: Final = 30.0
#: A change stream round that ends at once, from a server that does not wait for changes,
#: is followed by this pause, so that the follower never spins.
_MIN_PAUSE: Final = 0.05
#: The servers that offer change streams: members of a replica set, and mongos.
_CHANGE_STREAM_SERVERS: Final = frozenset(
    {SERVER_TYPE.RSPrimary, SERVER_TYPE.RSSecondary, SERVER_TYPE.Mongos}
)
#: The events that end a stream's view of the collections: the mirror is built again.
_ENDINGS: Final = frozenset({"invalidate", "drop", "rename", "dropDatabase"})


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _follow_mode(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in FOLLOW_MODES:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(FOLLOW_MODES)}, got {value!r}"
        )


def _strategy(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_strategy(value)


def _source(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, MongoStore):
        raise TypeError(f"{attribute.name} must be a MongoStore, got {type(value).__name__}")


@attrs.frozen
class MirrorStatus:
    """What a mirror holds and how current it is, at one moment."""

    #: ``"loading"`` (no data yet), ``"following"``, ``"rebuilding"`` (the data loaded before
    #: answers meanwhile) or ``"stopped"``.
    state: str
    #: ``"changes"`` or ``"poll"``: how the data answering now follows the database.
    follow: str | None
    #: Seconds since the mirror last held every change the database had committed; ``None``
    #: before its first snapshot is caught up.
    data_age_seconds: float | None
    #: That moment in UTC: every change committed before it is in the mirror.
    synced_at: datetime | None
    #: The database's own clock (its cluster time) at the last change applied from a change
    #: stream; ``None`` when polling.
    cluster_time: datetime | None
    #: The rooms held: the livechat rooms with a creation date, the only ones that count.
    rooms: int
    #: Changes applied since the data answering now was loaded.
    changes: int
    #: Snapshots taken since the first, and why the last one was.
    rebuilds: int
    last_rebuild: str | None
    #: The last failure to read the database, while it lasts.
    error: str | None


#: A change to the rooms held: ``(document, id, ts)``, a put of ``document`` or, when it is
#: ``None``, the removal of the room ``id`` created at ``ts`` (epoch ms; ``None`` if unknown).
_RoomChange = tuple[Mapping[str, Any] | None, Any, int | None]


class _Rebuild(Exception):
    """The changes cannot be followed from here: the mirror is built again, for ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define(eq=False)
class _Tally:
    """Per day of creation, how many rooms are held and the xor of their ids' hashes."""

    days: dict[int, list[int]] = attrs.field(factory=dict)

    def add(self, key: Hashable, ts_ms: int) -> None:
        entry = self.days.setdefault(ts_ms // _DAY_MS, [0, 0])
        entry[0] += 1
        entry[1] ^= hash(key) & _HASH_BITS

    def remove(self, key: Hashable, ts_ms: int) -> None:
        day = ts_ms // _DAY_MS
        entry = self.days.setdefault(day, [0, 0])
        entry[0] -= 1
        entry[1] ^= hash(key) & _HASH_BITS
        if entry == [0, 0]:
            del self.days[day]

    def differing(self, other: _Tally) -> set[int]:
        """The days whose count or hash differ between the two."""
        return {
            day
            for day in self.days.keys() | other.days.keys()
            if self.days.get(day, [0, 0]) != other.days.get(day, [0, 0])
        }


@attrs.define(eq=False)
class _State:
    """One snapshot of the database and what follows it: replaced whole by a rebuild."""

    store: MemoryStore
    follow: str
    #: Added to the store's ``data_version``, so that a rebuilt mirror's never repeats.
    version_base: int
    #: Each directory collection's documents, by id, as the directory was built from them.
    docs: dict[str, dict[Hashable, dict[str, Any]]]
    #: The monotonic time of the start of the last round that caught up.
    synced: float | None = None
    cluster_time: Timestamp | None = None
    changes: int = 0
    # -- change streams
    session: Any = None
    stream: Any = None
    start_at: Timestamp | None = None
    token: Mapping[str, Any] | None = None
    #: The cluster time of the last event applied, and the tokens applied at that time.
    position: tuple[Timestamp, set[str]] | None = None
    # -- polling
    since: dict[str, datetime | None] = attrs.field(factory=dict)
    #: The last version applied of each room or user changed within the overlap: its time,
    #: whether it was a deletion (1) or a document (0), and a hash of what was applied.
    applied: dict[tuple[str, Hashable], tuple[datetime, int, int]] = attrs.field(factory=dict)
    tally: _Tally | None = None
    #: Days whose ids differed at the last reconciliation.
    suspects: set[int] = attrs.field(factory=set)
    reconciled: float = 0.0

    def close(self) -> None:
        """Close the change stream and its session, if any; the data stays answerable."""
        _close_quietly(self.stream, self.session)
        self.stream = self.session = None


def _close_quietly(stream: Any, session: Any) -> None:
    """Close a change stream and end its session; a failure to is no concern of the caller."""
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.close()
    if session is not None:
        with contextlib.suppress(Exception):
            session.end_session()


def _aware(value: Any) -> datetime | None:
    """A BSON date as an aware UTC datetime; ``None`` for anything else."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _kept(collection: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with only the top-level fields the reports read of ``collection``."""
    fields = _TOP_FIELDS[collection]
    return {name: value for name, value in document.items() if name in fields}


def _cluster_datetime(value: Timestamp | None) -> datetime | None:
    return None if value is None else value.as_datetime()


@attrs.define(kw_only=True, eq=False)
class MongoMirror:
    """A Rocket.Chat database in memory, kept current; a ``Workspace``, ``Versioned``, ``Aged``.

    ``source`` is the :class:`~convstats_adapters.mongo.MongoStore` of the database (its
    client, database, time limits and read preference); it stays the caller's to close, after
    the mirror. ``follow`` says how changes are followed: ``"changes"`` (change streams, which
    need a replica set or a sharded cluster), ``"poll"``, or ``"auto"``, change streams where
    offered. ``strategy`` is the memory store's (see :class:`MemoryRooms`).

    Polling reads every ``poll_interval`` seconds, again ``overlap`` seconds behind the latest
    ``_updatedAt`` seen, and compares the rooms' ids with the database's every
    ``reconcile_interval`` seconds. A change stream's read waits at most ``max_await``
    seconds for changes. ``clock`` (monotonic seconds) measures the data's age.

    Nothing is read at construction. :meth:`start` (or ``with``) follows in a thread of its
    own until :meth:`stop`, and answers once its first snapshot has caught up
    (:meth:`sync` waits for it); before that, every store call raises
    :class:`~convstats.errors.StorageUnavailable`. Safe to query from any number of
    threads while it follows.
    """

    source: MongoStore = attrs.field(kw_only=False, validator=_source)
    follow: str = attrs.field(default="auto", validator=_follow_mode)
    strategy: str = attrs.field(default="auto", validator=_strategy)
    poll_interval: float = attrs.field(default=1.0, validator=_positive)
    overlap: float = attrs.field(default=10.0, validator=_positive)
    reconcile_interval: float = attrs.field(default=600.0, validator=_positive)
    max_await: float = attrs.field(default=1.0, validator=_positive)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False)

    _state: _State | None = attrs.field(init=False, default=None, repr=False)
    # Held by every count and by the application of a round, so that a count sees the
    # rooms and the directory of one state; see _turnstile.
    _gate: threading.Lock = attrs.field(init=False, factory=threading.Lock, repr=False)
    # Held by a round while it waits for the gate, and passed through by every count first:
    # without it, threads counting without pause could hold a round back indefinitely.
    _turnstile: threading.Lock = attrs.field(init=False, factory=threading.Lock, repr=False)
    # The directory of the last count made on each thread, which labels that count's rows.
    _pins: threading.local = attrs.field(init=False, factory=threading.local, repr=False)
    # Held while the mirror reads the database: by the thread, or by a caller stepping it.
    _working: threading.Lock = attrs.field(init=False, factory=threading.Lock, repr=False)
    _progress: threading.Condition = attrs.field(
        init=False, factory=threading.Condition, repr=False
    )
    _rounds: int = attrs.field(init=False, default=0, repr=False)
    _synced_round: int = attrs.field(init=False, default=-1, repr=False)
    _thread: threading.Thread | None = attrs.field(init=False, default=None, repr=False)
    _stopping: threading.Event = attrs.field(init=False, factory=threading.Event, repr=False)
    _wanted_rebuild: str | None = attrs.field(init=False, default=None, repr=False)
    _rebuilding: bool = attrs.field(init=False, default=False, repr=False)
    _rebuilds: int = attrs.field(init=False, default=0, repr=False)
    _last_rebuild: str | None = attrs.field(init=False, default=None, repr=False)
    _error: str | None = attrs.field(init=False, default=None, repr=False)
    _failing_since: float | None = attrs.field(init=False, default=None, repr=False)
    _stopped: bool = attrs.field(init=False, default=False, repr=False)
    # The reason of a rebuild that failed and is being tried again (logged once).
    _retrying: str | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_await * 1000 >= self.source.max_time_ms:
            raise ValueError(
                f"max_await ({self.max_await:g} s) must be shorter than the source's time limit "
                f"(max_time_ms={self.source.max_time_ms}): a change stream's read waits that long"
            )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load and follow in a thread of its own, from now until :meth:`stop`.

        Returns at once: the snapshot is read in that thread (the log shows its progress).
        Raises :class:`RuntimeError` when the mirror already follows or has been stopped.
        """
        if self._thread is not None or self._stopped:
            raise RuntimeError("the mirror is following already, or has been stopped")
        self._thread = threading.Thread(target=self._run, name="convstats-mirror", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop following; return whether the thread ended within ``timeout`` seconds.

        A read under way ends within the source's time limit (a change stream's within
        ``max_await``). The data loaded stays answerable; the mirror no longer changes.
        """
        self._stopped = True
        self._stopping.set()
        thread, ended = self._thread, True
        if thread is not None:
            thread.join(timeout)
            ended = not thread.is_alive()
            if not ended:
                _logger.warning("the mirror's follower did not stop within %g s", timeout)
        if ended:
            state = self._state
            if state is not None:
                state.close()
        with self._progress:
            self._progress.notify_all()
        return ended

    close = stop

    def __enter__(self) -> MongoMirror:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- driving it in the caller's thread ----------------------------------------------

    def load(self) -> None:
        """Read a fresh snapshot now and answer from it once it has caught up.

        The data loaded before, if any, answers until then. Raises
        :class:`~convstats.errors.StorageError` when the database cannot be read (the data
        loaded before stays), and :class:`RuntimeError` while the thread follows.
        """
        with self._stepping():
            self._rebuild(None)

    def follow_once(self) -> int:
        """Apply what changed in the database since the last round; return how many changes.

        Loads first when nothing is loaded. A change stream that cannot go on, or ids that
        disagree with the database's, rebuild the mirror here. Raises
        :class:`~convstats.errors.StorageError` when the database cannot be read, and
        :class:`RuntimeError` while the thread follows.
        """
        with self._stepping():
            return self._step()

    def request_rebuild(self, reason: str) -> None:
        """Have the follower build the mirror again from a fresh snapshot, soon (thread-safe)."""
        self._wanted_rebuild = reason

    def sync(self, timeout: float = 60.0) -> bool:
        """Wait until every change committed before this call is in the mirror.

        That is, until a round that started after the call has caught up. While the thread
        follows this waits for it, at most ``timeout`` seconds; otherwise the rounds run here.
        Returns whether the mirror caught up in time (the thread's failures are logged; a
        stopped mirror never catches up).
        """
        if self._thread is None:
            if self._stopped:
                return False
            deadline = time.monotonic() + timeout
            with self._stepping():
                asked = self._rounds
                while self._synced_round <= asked:
                    if time.monotonic() > deadline:
                        return False
                    self._step()
                return True
        with self._progress:
            asked = self._rounds
            return self._progress.wait_for(
                lambda: self._synced_round > asked or self._stopped, timeout
            ) and not (self._stopped and self._synced_round <= asked)

    @contextlib.contextmanager
    def _stepping(self) -> Iterator[None]:
        if self._thread is not None:
            raise RuntimeError("the mirror follows in its own thread: use sync() to wait for it")
        with self._working:
            yield

    # -- freshness ------------------------------------------------------------------------

    @property
    def data_age_seconds(self) -> float | None:
        """Seconds since the mirror last held every committed change (``convstats.ports.Aged``).

        ``None`` until the first snapshot has caught up. It grows while the database cannot
        be read, or while a rebuild reads its snapshot.
        """
        state = self._state
        if state is None or state.synced is None:
            return None
        return max(0.0, self.clock() - state.synced)

    def status(self) -> MirrorStatus:
        """What the mirror holds and how current it is, now."""
        state = self._state
        age = self.data_age_seconds
        if self._stopped:
            condition = "stopped"
        elif state is None:
            condition = "loading"
        else:
            condition = "rebuilding" if self._rebuilding else "following"
        synced_at = None if age is None else datetime.now(timezone.utc) - timedelta(seconds=age)
        return MirrorStatus(
            state=condition,
            follow=None if state is None else state.follow,
            data_age_seconds=age,
            synced_at=synced_at,
            cluster_time=None if state is None else _cluster_datetime(state.cluster_time),
            rooms=0 if state is None else state.store.room_count,
            changes=0 if state is None else state.changes,
            rebuilds=self._rebuilds,
            last_rebuild=self._last_rebuild,
            error=self._error,
        )

    # -- the follower thread ----------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            pause = 0.0
            try:
                with self._working:
                    started = time.monotonic()
                    self._step()
                    took = time.monotonic() - started
            except StorageError as error:
                failures += 1
                self._failed(error)
                pause = min(self.poll_interval * 2 ** min(failures, 8), _MAX_BACKOFF)
            except Exception as error:  # never the end of the thread: the next round tries again
                failures += 1
                _logger.exception("the mirror's follower failed unexpectedly")
                self._error = f"unexpected {type(error).__name__}: {error}"
                pause = min(self.poll_interval * 2 ** min(failures, 8), _MAX_BACKOFF)
            else:
                failures = 0
                self._recovered()
                state = self._state
                if state is not None and state.follow == "poll":
                    pause = self.poll_interval
                elif self._synced_round == self._rounds and took < _MIN_PAUSE:
                    pause = _MIN_PAUSE  # a server that did not wait for changes
            if pause:
                self._stopping.wait(pause)
        state = self._state
        if state is not None:
            state.close()

    def _failed(self, error: StorageError) -> None:
        message = " ".join(str(error).split())
        self._error = message
        if self._failing_since is None:
            self._failing_since = self.clock()
            age = self.data_age_seconds
            answering = (
                "no data loaded yet" if age is None else f"answering from data {age:.1f} s old"
            )
            _logger.warning(
                "the mirror cannot read the database (%s), retrying: %s", answering, message
            )
        else:
            _logger.debug("the mirror still cannot read the database: %s", message)

    def _recovered(self) -> None:
        self._error = None
        if self._failing_since is not None:
            _logger.info(
                "the mirror reads the database again, after %.1f s",
                self.clock() - self._failing_since,
            )
            self._failing_since = None

    def _step(self) -> int:
        """One round, loading or rebuilding when needed; return the changes applied."""
        wanted, self._wanted_rebuild = self._wanted_rebuild, None
        state = self._state
        if state is None or wanted is not None:
            self._rebuild(wanted)
            return 0
        number = self._begin_round()
        try:
            applied, synced = self._round(state, publish=True)
        except _Rebuild as needed:
            self._rebuild(needed.reason)
            return 0
        self._end_round(state, number, synced)
        return applied

    def _round(self, state: _State, *, publish: bool) -> tuple[int, float | None]:
        """One round of changes: how many were applied, and when it started if it caught up.

        ``publish``: the state answers already, so the round is applied behind the gate.
        """
        if state.follow == "changes":
            return self._changes_round(state, publish)
        return self._poll_round(state, publish)

    def _begin_round(self) -> int:
        with self._progress:
            self._rounds += 1
            return self._rounds

    def _end_round(self, state: _State, number: int, synced: float | None) -> None:
        with self._progress:
            if synced is not None:
                state.synced = synced
                self._synced_round = max(self._synced_round, number)
            self._progress.notify_all()

    # -- loading ------------------------------------------------------------------------------

    def _rebuild(self, reason: str | None) -> None:
        """Read a fresh snapshot, catch it up, and answer from it; the old one answers meanwhile."""
        previous = self._state
        if reason is not None and reason != self._retrying:
            self._rebuilds += 1
            self._last_rebuild = reason
            _logger.warning(
                "rebuilding the mirror from a fresh snapshot: %s (the data loaded before "
                "answers meanwhile)",
                reason,
            )
        self._retrying = reason
        if previous is not None:
            # Its stream goes: the changes are followed from the new snapshot on.
            previous.close()
        self._rebuilding = previous is not None
        started = time.monotonic()
        try:
            state = self._snapshot(previous)
            try:
                caught_up = self._catch_up(state)
            except BaseException:
                state.close()
                raise
        except BaseException:
            self._wanted_rebuild = reason if reason is not None else self._wanted_rebuild
            raise
        finally:
            self._rebuilding = False
        if caught_up is None:  # stopped meanwhile
            state.close()
            return
        with self._exclusive():
            self._state = state
        self._retrying = None
        self._end_round(state, *caught_up)
        _logger.info(
            "%s the mirror of %s in %.1f s: %d rooms, following by %s%s",
            "loaded" if previous is None and reason is None else "rebuilt",
            self.source.database_name,
            time.monotonic() - started,
            state.store.room_count,
            "change streams" if state.follow == "changes" else "polling",
            "" if reason is None else f", because {reason}",
        )

    def _catch_up(self, state: _State) -> tuple[int, float] | None:
        """Apply the changes made since the snapshot began until a round catches up.

        Returns that round's number and start, or ``None`` when the mirror stops first.
        """
        while not self._stopping.is_set():  # bounded by the database's pace of writes
            number = self._begin_round()
            try:
                _, synced = self._round(state, publish=False)
            except _Rebuild as again:
                raise StorageError(f"the new snapshot could not catch up: {again.reason}") from None
            if synced is not None:
                return number, synced
        return None

    def _snapshot(self, previous: _State | None) -> _State:
        follow = self._follow_mode()
        base = 1 if previous is None else previous.version_base + previous.store.data_version + 1
        session = stream = start_at = None
        since: dict[str, datetime | None] = {}
        if follow == "changes":
            session, stream, start_at = self._open_changes()
        else:
            since = self._poll_origins()
        try:
            docs = {name: self._read_collection(name, session) for name in DIRECTORY_COLLECTIONS}
            directory = self._directory(docs)
            tally = _Tally() if follow == "poll" else None
            rooms = self._read_rooms(session, tally)
        except BaseException:
            _close_quietly(stream, session)
            raise
        return _State(
            store=MemoryStore.of(rooms, directory),
            follow=follow,
            version_base=base,
            docs=docs,
            session=session,
            stream=stream,
            start_at=start_at,
            since=since,
            tally=tally,
            reconciled=self.clock(),
        )

    def _follow_mode(self) -> str:
        if self.follow != "auto":
            return self.follow
        client: Any = self.source.mongo_database.client
        if not isinstance(client, MongoClient):
            return "poll"  # a stand-in (mongomock) offers no change streams
        with self.source.guarded("find the server"):  # waits until a server is known
            servers = client.topology_description.server_descriptions().values()
        kinds = {server.server_type for server in servers}
        return "changes" if kinds & _CHANGE_STREAM_SERVERS else "poll"

    def _directory(self, docs: Mapping[str, Mapping[Hashable, Document]]) -> MemoryDirectory:
        try:
            return MemoryDirectory({name: list(found.values()) for name, found in docs.items()})
        except ValueError as error:
            raise StorageError(f"the directory read from MongoDB cannot be held: {error}") from None

    def _read_collection(self, name: str, session: Any) -> dict[Hashable, dict[str, Any]]:
        found: dict[Hashable, dict[str, Any]] = {}
        for document in self.source.documents(name, _FIELDS[name], session=session):
            found[doc.id_key(document.get("_id"))] = _kept(name, document)
        return found

    def _read_rooms(self, session: Any, tally: _Tally | None) -> MemoryRooms:
        def counted() -> Iterator[Mapping[str, Any]]:
            shown, read = self.clock(), 0
            documents = self.source.documents(
                doc.ROOMS,
                _ROOM_FIELDS,
                batch_size=_SNAPSHOT_BATCH,
                # Every room that can count; t_1_ts_1 serves it.
                query={"t": doc.LIVECHAT},
                session=session,
            )
            for room in documents:
                read += 1
                if read % _SNAPSHOT_BATCH == 0 and self.clock() - shown >= _PROGRESS_SECONDS:
                    shown = self.clock()
                    _logger.info("snapshot: %s rooms read", f"{read:,}")
                ts = doc.created_ms(room)
                if ts is None:
                    continue  # never counts: not held
                if tally is not None:
                    tally.add(doc.id_key(room.get("_id")), ts)
                yield room

        try:
            return MemoryRooms(counted(), strategy=self.strategy)
        except ValueError as error:  # a room read twice, moved by a write during the read
            raise StorageError(f"the snapshot of {doc.ROOMS} is inconsistent: {error}") from None

    # -- applying -------------------------------------------------------------------------

    def _apply(
        self,
        state: _State,
        rooms: list[_RoomChange],
        directory: MemoryDirectory | None,
        *,
        publish: bool = True,
    ) -> None:
        """Apply a round's changes to the rooms, and its directory, at once."""
        if not rooms and directory is None:
            return
        lock: contextlib.AbstractContextManager[Any] = (
            self._exclusive() if publish else contextlib.nullcontext()
        )
        store, tally = state.store, state.tally
        with lock:
            for room, room_id, ts in rooms:
                if room is not None:
                    if tally is not None and ts is not None and room_id not in store:
                        tally.add(doc.id_key(room_id), ts)
                    store.put_room(room)
                elif store.remove_room(room_id) and tally is not None and ts is not None:
                    tally.remove(doc.id_key(room_id), ts)
            if directory is not None:
                store.replace_directory(directory)
            state.changes += len(rooms) + (directory is not None)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._turnstile, self._gate:
            yield

    def _room_change(
        self, room: Mapping[str, Any] | None, room_id: Any, removed_ts: int | None = None
    ) -> _RoomChange:
        """The change a room document (``None``: its removal) makes to the rooms held."""
        if room is not None:
            ts = doc.created_ms(room)
            if ts is not None:
                return _kept(doc.ROOMS, room), room_id, ts
        # Gone, or no longer a room that counts: not held. Where it was counted is unknown
        # unless the caller knows (the trash does); a reconciliation finds it otherwise.
        return None, room_id, removed_ts

    # -- change streams ---------------------------------------------------------------------

    def _open_changes(self) -> tuple[Any, Any, Timestamp | None]:
        database = self.source.mongo_database
        with self.source.guarded("start a session"):
            session = database.client.start_session(causal_consistency=True)
        try:
            with self.source.guarded("read the cluster time"):
                database.command("ping", session=session)
            start_at = session.operation_time
            stream = self._watch(session, start_at=start_at)
        except BaseException:
            _close_quietly(None, session)
            raise
        return session, stream, start_at

    def _watch(
        self,
        session: Any,
        *,
        start_at: Timestamp | None = None,
        resume_after: Mapping[str, Any] | None = None,
    ) -> Any:
        options: dict[str, Any] = {}
        if resume_after is not None:
            options["resume_after"] = resume_after
        elif start_at is not None:
            options["start_at_operation_time"] = start_at
        failure: OperationFailure | None = None
        with self.source.guarded("open a change stream"):
            try:
                return self.source.mongo_database.watch(
                    _PIPELINE,
                    full_document="updateLookup",
                    max_await_time_ms=round(self.max_await * 1000),
                    batch_size=_ROUND_EVENTS,
                    session=session,
                    **options,
                )
            except OperationFailure as error:
                if resume_after is None or not _refused(error):
                    raise
                failure = error
        raise _Rebuild(f"the change stream cannot resume: {_described(failure)}")

    def _changes_round(self, state: _State, publish: bool) -> tuple[int, float | None]:
        if state.stream is None:
            # Resumed after a failure, from the last token (or the snapshot's cluster time).
            state.stream = self._watch(
                state.session, start_at=state.start_at, resume_after=state.token
            )
        rooms: list[_RoomChange] = []
        changed: set[str] = set()
        synced: float | None = None
        events = 0
        try:
            while events < _ROUND_EVENTS:
                asked = self.clock()
                event = self._next_change(state)
                if event is None:
                    synced = asked
                    break
                events += 1
                self._event(state, event, rooms, changed)
        except StorageError:
            # The driver resumes once on its own; past that, the stream is opened again in a
            # later round, from the token of the last change applied below.
            _close_quietly(state.stream, None)
            state.stream = None
            self._publish(state, rooms, changed, publish)
            raise
        self._publish(state, rooms, changed, publish)
        return len(rooms) + len(changed), synced

    def _next_change(self, state: _State) -> Mapping[str, Any] | None:
        failure: OperationFailure | None = None
        with self.source.guarded("read the change stream"):
            try:
                event: Mapping[str, Any] | None = state.stream.try_next()
            except OperationFailure as error:
                if not _refused(error):
                    raise
                failure = error
            else:
                if event is None:
                    token = state.stream.resume_token
                    if token is not None:
                        state.token = token
                return event
        raise _Rebuild(f"the change stream cannot go on: {_described(failure)}")

    def _event(
        self,
        state: _State,
        event: Mapping[str, Any],
        rooms: list[_RoomChange],
        changed: set[str],
    ) -> None:
        token = event.get("_id")
        key = repr(token.get("_data")) if isinstance(token, Mapping) else repr(token)
        at = event.get("clusterTime")
        if isinstance(at, Timestamp):
            if state.position is not None:
                last, seen = state.position
                if at < last or (at == last and key in seen):
                    return  # delivered again after a resume: applied already
                if at == last:
                    seen.add(key)
                else:
                    state.position = (at, {key})
            else:
                state.position = (at, {key})
            state.cluster_time = at
        if isinstance(token, Mapping):
            state.token = token
        operation = event.get("operationType")
        namespace = event.get("ns")
        collection = namespace.get("coll") if isinstance(namespace, Mapping) else None
        if operation in _ENDINGS:
            if operation in ("invalidate", "dropDatabase") or collection in _FIELDS:
                what = (
                    "the change stream was invalidated"
                    if operation == "invalidate"
                    else (f"the database saw a {operation} of {collection or 'the database'}")
                )
                raise _Rebuild(what)
            return
        if collection not in _FIELDS:
            return
        key_document = event.get("documentKey")
        document_id = key_document.get("_id") if isinstance(key_document, Mapping) else None
        full = event.get("fullDocument")
        document = full if operation != "delete" and isinstance(full, Mapping) else None
        if collection == doc.ROOMS:
            rooms.append(self._room_change(document, document_id))
            return
        held = state.docs[collection]
        id_key = doc.id_key(document_id)
        if document is None:
            if held.pop(id_key, None) is not None:
                changed.add(collection)
            return
        kept = _kept(collection, document)
        if held.get(id_key) != kept:
            held[id_key] = kept
            changed.add(collection)

    def _publish(
        self,
        state: _State,
        rooms: list[_RoomChange],
        changed: set[str],
        publish: bool,
    ) -> None:
        directory = self._directory(state.docs) if changed else None
        self._apply(state, rooms, directory, publish=publish)

    # -- polling ------------------------------------------------------------------------------

    def _poll_origins(self) -> dict[str, datetime | None]:
        """Where polling starts: the latest stamps in the database before the snapshot."""
        return {
            doc.ROOMS: self._latest(doc.ROOMS, _UPDATED, {}),
            doc.USERS: self._latest(doc.USERS, _UPDATED, {}),
            TRASH: self._latest(TRASH, _DELETED, _trashed_query()),
        }

    def _latest(self, collection: str, field: str, query: Mapping[str, Any]) -> datetime | None:
        source = self.source
        with source.guarded(f"find the latest {field} on {collection}"):
            found = list(
                source.mongo_database.get_collection(collection)
                .find({**query, field: {"$gte": _EARLIEST}}, {field: 1})
                .sort(field, -1)
                .limit(1)
            )
        return _aware(found[0].get(field)) if found else None

    def _bound(self, since: datetime | None) -> datetime:
        if since is None:
            return _EARLIEST
        return max(_EARLIEST, since - timedelta(seconds=self.overlap))

    def _poll_round(self, state: _State, publish: bool) -> tuple[int, float | None]:
        started = self.clock()
        since = state.since
        fields = (*_ROOM_FIELDS, _UPDATED)
        rooms_found = list(
            self.source.documents(
                doc.ROOMS, fields, query={_UPDATED: {"$gte": self._bound(since.get(doc.ROOMS))}}
            )
        )
        users_found = list(
            self.source.documents(
                doc.USERS,
                (*_DIRECTORY_FIELDS[doc.USERS], _UPDATED),
                query={_UPDATED: {"$gte": self._bound(since.get(doc.USERS))}},
            )
        )
        trash_query = {**_trashed_query(), _DELETED: {"$gte": self._bound(since.get(TRASH))}}
        trashed = list(
            self.source.documents(TRASH, ("t", "ts", "__collection__", _DELETED), query=trash_query)
        )
        small = {name: self._read_collection(name, None) for name in _SMALL}
        rooms, changed = self._poll_changes(state, rooms_found, users_found, trashed)
        for name, found in small.items():
            if found != state.docs[name]:
                state.docs[name] = found
                changed.add(name)
        self._publish(state, rooms, changed, publish)
        if state.tally is not None and self.clock() - state.reconciled >= self.reconcile_interval:
            self._reconcile(state)  # against the rooms as this poll left them
        return len(rooms) + len(changed), started

    def _poll_changes(
        self,
        state: _State,
        rooms_found: Sequence[Mapping[str, Any]],
        users_found: Sequence[Mapping[str, Any]],
        trashed: Sequence[Mapping[str, Any]],
    ) -> tuple[list[_RoomChange], set[str]]:
        """The changes a poll found, each id at its latest version, each version once."""
        latest: dict[tuple[str, Hashable], tuple[datetime | None, int, Mapping[str, Any]]] = {}
        since = state.since

        def offer(kind: str, when: datetime | None, rank: int, document: Mapping[str, Any]) -> None:
            key = (kind, doc.id_key(document.get("_id")))
            held = latest.get(key)
            # The latest version wins; a deletion stamped like a write came after it (the
            # trash is written before the document is deleted).
            if held is None or (when is not None and (held[0] is None or (when, rank) > held[:2])):
                latest[key] = (when, rank, document)

        for kind, found, clock_field in (
            (doc.ROOMS, rooms_found, doc.ROOMS),
            (doc.USERS, users_found, doc.USERS),
        ):
            for document in found:
                when = _aware(document.get(_UPDATED))
                offer(kind, when, 0, document)
                if when is not None and (since.get(clock_field) or _EARLIEST) < when:
                    since[clock_field] = when
        for document in trashed:
            when = _aware(document.get(_DELETED))
            trashed_as = document.get("__collection__")
            trashed_from = next(
                (name for name, names in _TRASHED_AS.items() if trashed_as in names), None
            )
            if trashed_from is not None:
                offer(trashed_from, when, 1, document)
            if when is not None and (since.get(TRASH) or _EARLIEST) < when:
                since[TRASH] = when

        rooms: list[_RoomChange] = []
        changed: set[str] = set()
        applied = state.applied
        for key, (when, rank, document) in latest.items():
            kind, id_key = key
            if when is not None:
                # Two writes in one millisecond share a stamp: a version is its stamp and
                # what the reports read of it.
                version = (when, rank, 0 if rank else hash(repr(_kept(kind, document))))
                before = applied.get(key)
                if before is not None and (
                    version[:2] < before[:2] or (version[:2] == before[:2] and version == before)
                ):
                    continue  # this version, or a later one, is applied already
                applied[key] = version
            document_id = document.get("_id")
            if kind == doc.ROOMS:
                if rank:
                    rooms.append(self._room_change(None, document_id, doc.created_ms(document)))
                else:
                    rooms.append(self._room_change(document, document_id))
                continue
            held = state.docs[doc.USERS]
            if rank:
                if held.pop(id_key, None) is not None:
                    changed.add(doc.USERS)
            else:
                kept = _kept(doc.USERS, document)
                if held.get(id_key) != kept:
                    held[id_key] = kept
                    changed.add(doc.USERS)
        # Versions older than every query's reach are never read again.
        reach = min(self._bound(since.get(name)) for name in (doc.ROOMS, doc.USERS, TRASH))
        for key in [key for key, (when, _, _) in applied.items() if when < reach]:
            del applied[key]
        return rooms, changed

    def _reconcile(self, state: _State) -> None:
        """Compare the rooms' ids with the database's, day by day; repair what differs twice."""
        assert state.tally is not None
        state.reconciled = self.clock()
        database = _Tally()
        for room in self.source.documents(
            doc.ROOMS, ("t", "ts"), batch_size=_SNAPSHOT_BATCH, query={"t": doc.LIVECHAT}
        ):
            ts = doc.created_ms(room)
            if ts is not None:
                database.add(doc.id_key(room.get("_id")), ts)
        differing = state.tally.differing(database)
        # A day differs for a moment while a write races the read: only a day that differs
        # twice in a row is repaired.
        repair, state.suspects = differing & state.suspects, differing - state.suspects
        if not repair:
            if differing:
                _logger.info(
                    "reconciliation: the ids of %d day(s) of rooms differ from the database's; "
                    "checking again in %g s",
                    len(differing),
                    self.reconcile_interval,
                )
            return
        for day in sorted(repair):
            self._repair_day(state, day)
            if state.tally.days.get(day, [0, 0]) != database.days.get(day, [0, 0]):
                day_text = datetime.fromtimestamp(day * _DAY_MS / 1000, timezone.utc).date()
                raise _Rebuild(
                    f"reconciliation found rooms created on {day_text} that the database "
                    "no longer holds (deleted without a trace in rocketchat__trash)"
                )

    def _repair_day(self, state: _State, day: int) -> None:
        start = datetime.fromtimestamp(day * _DAY_MS / 1000, timezone.utc)
        query = {"t": doc.LIVECHAT, "ts": {"$gte": start, "$lt": start + timedelta(days=1)}}
        ids = [room.get("_id") for room in self.source.documents(doc.ROOMS, ("_id",), query=query)]
        missing = [room_id for room_id in ids if room_id not in state.store]
        rooms: list[_RoomChange] = []
        for first in range(0, len(missing), 1000):
            chunk = {"_id": {"$in": missing[first : first + 1000]}}
            found = self.source.documents(doc.ROOMS, _ROOM_FIELDS, query=chunk)
            rooms.extend(self._room_change(room, room.get("_id")) for room in found)
        if rooms:
            _logger.warning(
                "reconciliation: read %d room(s) created on %s that polling had missed",
                len(rooms),
                start.date(),
            )
            self._apply(state, rooms, None)

    # -- RoomStore ------------------------------------------------------------------------

    def _current(self) -> _State:
        state = self._state
        if state is None:
            raise StorageUnavailable(
                f"the mirror of the MongoDB database {self.source.database_name!r} has not "
                "loaded its snapshot yet"
            )
        return state

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        """See :meth:`convstats.ports.RoomStore.count_groups`.

        Counted in memory, on the state of the last round applied. The label look-ups the
        same thread makes next answer from that state's directory (see the module).
        """
        with self._turnstile:
            pass
        with self._gate:
            store = self._current().store
            counts = store.count_groups(grouping, window, visibility, mode)
            self._pins.directory = store.directory
        return counts

    @property
    def data_version(self) -> int:
        """Moves with every change applied, and at every rebuild (``Versioned``)."""
        state = self._state
        return 0 if state is None else state.version_base + state.store.data_version

    @property
    def room_count(self) -> int:
        """How many rooms the mirror holds (the livechat rooms that can count)."""
        return self._current().store.room_count

    # -- Directory --------------------------------------------------------------------------

    def _directory_now(self) -> MemoryDirectory:
        return self._current().store.directory

    def _labels(self) -> MemoryDirectory:
        pinned: MemoryDirectory | None = getattr(self._pins, "directory", None)
        return pinned if pinned is not None else self._directory_now()

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`."""
        return self._directory_now().get_user(user_id)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.user_with_token`."""
        return self._directory_now().user_with_token(user_id, hashed_token)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.Directory.agent_names`; of the thread's last count."""
        return self._labels().agent_names(agent_ids)

    def department_names(self, keys: Collection[Any]) -> Mapping[Any, Any]:
        """See :meth:`convstats.ports.Directory.department_names`; of the thread's last count."""
        return self._labels().department_names(keys)

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        """See :meth:`convstats.ports.Directory.permission_roles`."""
        return self._directory_now().permission_roles(permission)

    def has_units(self) -> bool:
        """See :meth:`convstats.ports.Directory.has_units`."""
        return self._directory_now().has_units()

    def monitored_units(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.monitored_units`."""
        return self._directory_now().monitored_units(user_id)

    def agent_departments(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.agent_departments`."""
        return self._directory_now().agent_departments(user_id)

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.departments_under`."""
        return self._directory_now().departments_under(unit_ids, include_own=include_own)


def _trashed_query() -> dict[str, Any]:
    names = [name for names in _TRASHED_AS.values() for name in names]
    return {"__collection__": {"$in": names}}


def _refused(error: OperationFailure) -> bool:
    """Whether the server refused to go on with a stream (not a time limit or a credential)."""
    return error.code not in _UNAUTHORIZED and error.code != _MAX_TIME_EXPIRED


def _described(error: OperationFailure | None) -> str:
    if error is None:
        return "unknown"
    details = error.details if isinstance(error.details, Mapping) else {}
    name = details.get("codeName")
    code = f"{name}, code {error.code}" if name else f"code {error.code}"
    return f"{' '.join(str(details.get('errmsg', error)).split())} ({code})"


def _projection() -> dict[str, int]:
    fields = {field for collection in _FIELDS.values() for field in collection}
    return {
        "operationType": 1,
        "ns": 1,
        "documentKey": 1,
        "clusterTime": 1,
        **{f"fullDocument.{field}": 1 for field in sorted(fields)},
    }


#: The database's change stream as the mirror reads it: the six collections' changes, the
#: rooms' only when they concern a livechat room (or a room whose type changed, or one gone),
#: each with only the fields the reports read.
_PIPELINE: Final[list[dict[str, Any]]] = [
    {
        "$match": {
            "$or": [
                {"ns.coll": {"$in": list(DIRECTORY_COLLECTIONS)}},
                {
                    "ns.coll": doc.ROOMS,
                    "$or": [
                        {"operationType": {"$nin": ["insert", "update", "replace"]}},
                        {"fullDocument.t": doc.LIVECHAT},
                        {"fullDocument": None},
                        {"updateDescription.updatedFields.t": {"$exists": True}},
                        {"updateDescription.removedFields": "t"},
                    ],
                },
                {"operationType": {"$in": ["dropDatabase", "invalidate"]}},
            ]
        }
    },
    {"$project": _projection()},
]
