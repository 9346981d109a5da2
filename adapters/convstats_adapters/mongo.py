"""The MongoDB store: a live Rocket.Chat database, counted on the server.

Needs the ``mongo`` extra (``pip install 'convstats[mongo]'``).
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote_plus

import attrs

from convstats.errors import (
    MissingDependency,
    StorageError,
    StorageNotAuthorized,
    StorageTimeout,
    StorageUnavailable,
)
from convstats.model import (
    ABSENT,
    GroupCounts,
    Grouping,
    TimeWindow,
    TotalMode,
    UserRecord,
    Visibility,
)
from convstats_adapters import documents as doc
from convstats_adapters.documents import (
    DEPARTMENT_AGENTS,
    DEPARTMENTS,
    LIVECHAT,
    LOGIN_TOKEN_HASHES,
    PERMISSIONS,
    ROOMS,
    UNIT,
    UNIT_MONITORS,
    USERS,
    document_id,
    string_set,
    user_record,
)

try:
    import pymongo
    from bson import ObjectId
    from bson.codec_options import DatetimeConversion
    from bson.errors import BSONError
    from pymongo import MongoClient, common
    from pymongo.collection import Collection as MongoCollection
    from pymongo.database import Database
    from pymongo.errors import (
        ConfigurationError,
        ConnectionFailure,
        ExecutionTimeout,
        InvalidName,
        NetworkTimeout,
        OperationFailure,
        PyMongoError,
    )
    from pymongo.read_preferences import (
        Nearest,
        Primary,
        PrimaryPreferred,
        ReadPreference,
        Secondary,
        SecondaryPreferred,
    )
    from pymongo.uri_parser import parse_userinfo, split_hosts, split_options
except ImportError as exc:
    raise MissingDependency("pymongo", "mongo") from exc

__all__ = ["MongoStore", "mask_uri"]

Document = dict[str, Any]
ReadPreferenceMode = Primary | PrimaryPreferred | Secondary | SecondaryPreferred | Nearest

_SCHEMES: Final = ("mongodb://", "mongodb+srv://")
# The options whose values are secrets: the URI options specification's sensitive options, as
# the driver lists them for its own repr (the names here are the list the specification
# gives, for drivers that predate it), and authMechanismProperties, which carries AWS session
# tokens and the like.
_SECRET_OPTIONS: Final = frozenset(
    {
        *getattr(common, "SENSITIVE_OPTIONS_FOR_REPR", ()),
        "proxyusername",
        "proxypassword",
        "tlscertificatekeyfilepassword",
        "authmechanismproperties",
    }
)
_KNOWN_OPTIONS: Final = frozenset(common.URI_OPTIONS_VALIDATOR_MAP)
_UNAUTHORIZED_CODES: Final = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
_MAX_TIME_EXPIRED: Final = 50
# A secret this long is masked wherever it occurs; a shorter one (a one-letter user name)
# only where it stands alone, or it would take every such letter of a message with it.
_LONG_SECRET: Final = 8
# The largest BSON document: an id whose {_id: id} does not fit (4 bytes of document length,
# the element's type, name and length, the string's terminator and the document's) was never
# stored, and asking for it would only fail to encode.
_MAX_BSON_DOCUMENT: Final = 16 * 1024 * 1024
_ID_DOCUMENT_OVERHEAD: Final = 15
#: Where the clients of pymongo's asynchronous API and of Motor are defined.
_ASYNC_DRIVERS: Final = ("pymongo.asynchronous.", "motor.")
#: What documents.user_record reads of a ``users`` document.
_USER_FIELDS: Final = ["roles", "name", "active"]

# Each clause below restates a rule of convstats_adapters.documents in MQL; the comment on
# it names the function.
#
# Mongo matches a query on an array field by its elements ({t: "l"} matches ["l"]); the
# rules that read a room field as a scalar (documents.created_ms, documents.partition)
# never do. Every equality and range on such a field carries this guard.
_NOT_ARRAY: Final = {"$not": {"$type": "array"}}

# documents.served_agent: servedBy._id when it is a string, its hexadecimal string when it is
# an ObjectId, else null. Aggregation comparisons order values by BSON type (... null <
# numbers < strings < objects < arrays < binary data < ObjectId < booleans ...), so
# ``"" <= x < {}`` holds exactly for strings and the smallest and largest ObjectIds bound
# the ObjectIds; a missing field is below every value. mongomock does not evaluate the
# aggregation operator $type, which would say the same thing more plainly.
_AGENT_ID: Final = "$servedBy._id"
_AGENT_KEY: Final = {
    "$cond": [
        {"$and": [{"$gte": [_AGENT_ID, ""]}, {"$lt": [_AGENT_ID, {}]}]},
        _AGENT_ID,
        {
            "$cond": [
                {
                    "$and": [
                        {"$gte": [_AGENT_ID, ObjectId("0" * 24)]},
                        {"$lte": [_AGENT_ID, ObjectId("f" * 24)]},
                    ]
                },
                {"$toString": _AGENT_ID},
                None,
            ]
        },
    ]
}


def _id_forms(ids: Collection[str]) -> list[str | ObjectId]:
    """documents.document_id backwards: each id, and the ObjectId a 24-hex id may stand for.

    Only the lower-case hexadecimal string names an ObjectId, as document_id writes it.
    """
    strings = sorted(set(ids))
    forms: list[str | ObjectId] = list(strings)
    forms += [
        ObjectId(value) for value in strings if ObjectId.is_valid(value) and value == value.lower()
    ]
    return forms


def _storable_id(value: str) -> bool:
    """Whether ``value`` can be a stored document's ``_id``: valid UTF-8 that BSON can hold."""
    if len(value) > _MAX_BSON_DOCUMENT:  # each character is at least a byte
        return False
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: BSON strings are UTF-8
        return False
    return size + _ID_DOCUMENT_OVERHEAD <= _MAX_BSON_DOCUMENT


def _whole_number(value: object) -> int | None:
    """A count as the report needs it: an int, from an int or an integral double; else None."""
    # Servers that speak the protocol without being MongoDB may sum in doubles.
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return int(value) if isinstance(value, int) and value >= 0 else None


@attrs.frozen
class _UriParts:
    """A MongoDB URI as the driver reads it, for messages: its masked text and its secrets.

    ``parsed`` is false when the driver's parser refuses the URI, or when it would read part
    of a password as the database or an option (see :func:`mask_uri`); the masked text then
    keeps the scheme only, and ``reason`` is the parser's message when it cannot quote a
    credential (the URI has no ``@``), else None.
    """

    masked: str
    secrets: tuple[str, ...] = ()
    #: What the masked text shows anyway (hosts, database), kept whole in messages.
    public: frozenset[str] = frozenset()
    query: str = ""
    option_names: frozenset[str] = frozenset()
    parsed: bool = True
    reason: str | None = None

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of a secret replaced by ``***``.

        A secret shorter than eight characters is replaced only where it is not part of a
        longer word, so that a one-letter user name leaves the rest of the text alone. A
        secret that lies within a host or the database as the text shows them is kept: the
        masked URI shows them anyway, and masking it there would mark it as the secret.
        """
        if not self.secrets:
            return text
        shown = [
            found.span() for item in self.public for found in re.finditer(re.escape(item), text)
        ]

        def mask(found: re.Match[str]) -> str:
            start, end = found.span()
            return found[0] if any(a <= start and end <= b for a, b in shown) else "***"

        # Longest first, so that a secret holding another is replaced whole.
        pattern = "|".join(
            re.escape(secret)
            if len(secret) >= _LONG_SECRET
            else rf"(?<!\w){re.escape(secret)}(?!\w)"
            for secret in sorted(self.secrets, key=len, reverse=True)
        )
        return re.sub(pattern, mask, text)


def _read_uri(uri: str) -> _UriParts:
    scheme, sep, rest = uri.partition("://")
    unreadable = f"{scheme}://***" if sep else "***"
    if not uri.startswith(_SCHEMES):
        return _UriParts(masked=unreadable, parsed=False)
    # Where pymongo.uri_parser.parse_uri cuts a URI: the options after the first "?", the
    # database after the first "/" before them, the user information before the last "@".
    hosts_and_database, qmark, query = rest.partition("?")
    host_part, slash, database = hosts_and_database.partition("/")
    userinfo, at, hosts = host_part.rpartition("@")
    if "@" in database or "@" in query:
        # The driver would take a "/" or "?" of the password for the end of the hosts.
        return _UriParts(masked=unreadable, parsed=False)
    try:
        user, password = parse_userinfo(userinfo) if at else ("", "")
        nodes = split_hosts(hosts, default_port=None)
        options = split_options(query, validate=False, normalize=False) if query else {}
    except (PyMongoError, ValueError) as exc:
        reason = None if "@" in uri else str(exc)
        return _UriParts(masked=unreadable, parsed=False, reason=reason)
    secrets: set[str] = set()
    if at:
        # As written and as the driver reads them, whole and in parts.
        secrets = {userinfo, user, password, *userinfo.split(":", 1)}
        secrets |= {f"{user}:{password}"} if password else set()
    # The parser accepted the options as key=value pairs joined by one delimiter, so each
    # piece below is one option as written; its value is masked when it is a secret, or when
    # the driver does not know the option (it may be credential text).
    delimiter = "&" if "&" in query else ";"
    pieces = []
    for piece in query.split(delimiter) if options else ():
        name, _, value = piece.partition("=")
        if name.lower() in _SECRET_OPTIONS or name.lower() not in _KNOWN_OPTIONS:
            secrets |= {value, unquote_plus(value)}
            piece = f"{name}=***"
        pieces.append(piece)
    masked = f"{scheme}://{'***@' if at else ''}{hosts}{slash}{database}{qmark}"
    return _UriParts(
        masked=masked + delimiter.join(pieces),
        secrets=tuple(sorted(filter(None, secrets))),
        public=frozenset(
            filter(
                None,
                (
                    hosts,
                    database,
                    *(host for host, _ in nodes),
                    *(f"{host}:{port}" for host, port in nodes if port is not None),
                ),
            )
        ),
        query=query,
        option_names=frozenset(name.lower() for name in options),
    )


def mask_uri(uri: str) -> str:
    """``uri`` with its user information and secret options replaced by ``***``.

    The URI is read with the driver's own parser, so that what the driver takes for the
    password is what is masked. A URI the parser refuses keeps only its scheme
    (``mongodb://***``), and so does one with an ``@`` in its database or options: the mark of
    a ``/`` or ``?`` left unescaped in a password, where the driver would end the hosts. The
    values of options the driver does not know are masked too.
    """
    return _read_uri(uri).masked


def _check_client_or_uri(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, str):
        if not value.startswith(_SCHEMES):
            raise ValueError(
                f"{attribute.name} must be a mongodb:// or mongodb+srv:// URI, "
                f"got {mask_uri(value)!r}"
            )
    elif type(value).__module__.startswith(_ASYNC_DRIVERS):
        # Its methods return coroutines, which would fail far from here, at the first read.
        raise TypeError(
            f"{attribute.name} must be a synchronous pymongo.MongoClient or a MongoDB URI, "
            f"got the asynchronous {type(value).__name__}; the store's calls block, so serve "
            "them from worker threads (as the HTTP service does) with a MongoClient"
        )
    elif not callable(getattr(value, "get_database", None)):
        raise TypeError(
            f"{attribute.name} must be a MongoClient or a MongoDB URI, got {type(value).__name__}"
        )


def _check_positive_int(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"{attribute.name} must be a positive number of milliseconds, got {value!r}"
        )


def _check_database(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{attribute.name} must be a non-empty database name, got {value!r}")


def _repr_target(value: Any) -> str:
    # A client's own repr lists its options, with the secret ones redacted by the driver.
    return repr(mask_uri(value)) if isinstance(value, str) else repr(value)


@attrs.define(kw_only=True)
class MongoStore:
    """Rocket.Chat collections in MongoDB; a ``RoomStore`` and a ``Directory``.

    ``client_or_uri`` is a ``MongoClient`` (the caller's to close) or a ``mongodb://`` /
    ``mongodb+srv://`` URI (the store builds a client and :meth:`close` closes it).
    ``database`` defaults to the URI's or the client's default database. Counting is one
    aggregation on the server; reads go to ``read_preference`` (a secondary when there is
    one, as upstream).

    Every call ends within ``max_time_ms``: the client gives up at that deadline (pymongo's
    client-side operation timeout: ``timeoutMS`` on a client the store builds, and
    ``pymongo.timeout()`` around each whole call, its ``getMore`` batches included), and the
    server is told to stop there too (``maxTimeMS``), so a server that accepts a query and
    then stalls ends the call as :class:`~convstats.errors.StorageTimeout`. A ``timeoutMS``
    that the URI or a passed-in client sets is the client's bound instead; ``timeoutMS=0``
    lifts it and leaves ``max_time_ms`` to the server. While no server is known, a call waits
    for one at most ``server_selection_timeout_ms`` (the client's own setting for a passed-in
    client). Driver failures, unreadable replies included, are raised as
    :class:`~convstats.errors.StorageError` subclasses; a URI or option the driver cannot use
    is a ``ValueError`` at construction.
    """

    client_or_uri: MongoClient[Document] | str = attrs.field(
        kw_only=False, validator=_check_client_or_uri, repr=_repr_target
    )
    database: str | None = attrs.field(default=None, validator=_check_database)
    read_preference: ReadPreferenceMode = attrs.field(
        default=ReadPreference.SECONDARY_PREFERRED,
        validator=attrs.validators.instance_of(
            (Primary, PrimaryPreferred, Secondary, SecondaryPreferred, Nearest)
        ),
    )
    max_time_ms: int = attrs.field(default=30_000, validator=_check_positive_int)
    server_selection_timeout_ms: int = attrs.field(default=5_000, validator=_check_positive_int)
    connect_timeout_ms: int = attrs.field(default=5_000, validator=_check_positive_int)

    _uri: _UriParts | None = attrs.field(init=False, repr=False)
    _client: MongoClient[Document] = attrs.field(init=False, repr=False)
    _owns_client: bool = attrs.field(init=False, repr=False)
    _db: Database[Document] = attrs.field(init=False, repr=False)
    _limit: float = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.client_or_uri, str):
            self._uri = _read_uri(self.client_or_uri)
            self._client = self._build_client(self.client_or_uri, self._uri)
            self._owns_client = True
        else:
            self._uri = None
            self._client = self.client_or_uri
            self._owns_client = False
        try:
            self._db = self._open_database()
        except BaseException:
            self.close()
            raise
        self._limit = self._call_limit()

    def _build_client(self, uri: str, parts: _UriParts) -> MongoClient[Document]:
        if not parts.parsed:
            reason = parts.reason or (
                "the driver cannot read it (its reason is not shown: it may quote the "
                "password); a user name or password must percent-escape : / ? # [ ] @ and % "
                "(urllib.parse.quote_plus)"
            )
            raise ValueError(f"invalid MongoDB URI {parts.masked!r}: {reason}")
        # Options the URI sets win: pymongo would let keyword arguments override them.
        options: dict[str, Any] = {
            name: value
            for name, value in (
                ("serverSelectionTimeoutMS", self.server_selection_timeout_ms),
                ("connectTimeoutMS", self.connect_timeout_ms),
                ("timeoutMS", self.max_time_ms),
            )
            if name.lower() not in parts.option_names
        }
        try:
            if parts.query:
                # The client only warns about an option it does not know or a value it
                # cannot use, and goes on without it (tls=ture would connect in the clear).
                split_options(parts.query, validate=True, warn=False)
            # connect=False: no I/O (not even the SRV look-up) before the first query.
            return MongoClient(uri, tz_aware=True, connect=False, **options)
        except (PyMongoError, ValueError, TypeError, OSError) as exc:
            # OSError: a TLS certificate, key or CA file that cannot be read.
            raise ValueError(f"invalid MongoDB URI {parts.masked!r}: {self._redact(exc)}") from exc

    def _open_database(self) -> Database[Document]:
        try:
            if self.database is None:
                database = self._client.get_default_database()
            else:
                database = self._client.get_database(self.database)
        except ConfigurationError as exc:
            raise ValueError(
                f"no database to read in {self._target}: pass database=… or name one in "
                "the URI (mongodb://host/<database>)"
            ) from exc
        except InvalidName as exc:
            raise ValueError(f"invalid database name {self.database!r}: {exc}") from exc
        return database.with_options(read_preference=self.read_preference)

    def _call_limit(self) -> float:
        """Seconds each call may take on the client's side; 0: as long as it takes."""
        # A stand-in client (mongomock) has no such option; pymongo.timeout is inert there.
        configured = self._client.options.timeout if isinstance(self._client, MongoClient) else None
        if configured is None:
            return self.max_time_ms / 1000
        return configured  # timeoutMS=0 asks for no limit, as pymongo.timeout(0) does

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def database_name(self) -> str:
        """The name of the database the store reads."""
        return self._db.name

    @property
    def mongo_database(self) -> Database[Document]:
        """The driver's database object, with the store's read preference."""
        return self._db

    def close(self) -> None:
        """Close the client if the store built it; a passed-in client stays open."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- failures ----------------------------------------------------------------------------

    @property
    def _target(self) -> str:
        if self._uri is not None:
            return self._uri.masked
        return f"{type(self._client).__name__} {self.database or '(default database)'}"

    def _redact(self, exc: BaseException) -> str:
        # Driver messages are not known to echo credentials; this makes sure of it.
        return str(exc) if self._uri is None else self._uri.redact(str(exc))

    @contextlib.contextmanager
    def _translated(self, action: str, *, bounded: bool = True) -> Iterator[None]:
        """Bound the block by the call's time limit and raise its failures as StorageError.

        ``bounded=False`` lifts the client-side limit, for an index build that takes the time
        it takes.
        """
        try:
            with pymongo.timeout(self._limit if bounded else 0):
                if isinstance(self._client, MongoClient):  # not a stand-in such as mongomock
                    self._await_server()
                yield
        except StorageError:
            raise
        except Exception as exc:  # whatever the driver raises on a bad reply is a failure too
            raise self._storage_error(action, exc) from exc

    def guarded(self, action: str) -> contextlib.AbstractContextManager[None]:
        """A block of driver calls on :attr:`mongo_database`, bounded and translated as the store's.

        The block ends within the store's time limit, and what the driver raises in it is
        raised as a :class:`~convstats.errors.StorageError` naming ``action`` (a
        ``StorageError`` raised in the block passes as it is): for an adapter that reads the
        database through this store, such as :mod:`convstats_adapters.mirror`.
        """
        return self._translated(action)

    def _await_server(self) -> None:
        """Make sure a server to read from is known, waiting no longer than server selection may.

        Within a time limit, pymongo waits for a server as long as the limit lasts, not
        serverSelectionTimeoutMS; without this, a call to an unreachable server would take the
        whole of max_time_ms to fail. A ping costs a round trip only while no server is known.
        """
        client = self._client
        known = client.topology_description.has_readable_server(self.read_preference)
        if not known:
            with pymongo.timeout(client.options.server_selection_timeout):
                self._db.command("ping", read_preference=self.read_preference)

    def _storage_error(self, action: str, exc: Exception) -> StorageError:
        detail = self._redact(exc)
        where = f"MongoDB ({self._target}) {action}"
        if isinstance(exc, ExecutionTimeout) or (
            isinstance(exc, OperationFailure) and exc.code == _MAX_TIME_EXPIRED
        ):
            return StorageTimeout(
                f"{where}: exceeded the time limit ({self._limit_text}): {detail}"
            )
        if isinstance(exc, OperationFailure) and (
            exc.code in _UNAUTHORIZED_CODES or "not authorized" in str(exc).lower()
        ):
            return StorageNotAuthorized(f"{where}: not authorized: {detail}")
        if isinstance(exc, NetworkTimeout):
            # pymongo raises the same NetworkTimeout for a connect and for a reply that
            # came too late; before a server is selected the failure is a selection timeout.
            return StorageTimeout(
                f"{where}: the server did not answer in time ({self._limit_text}): {detail}"
            )
        if isinstance(exc, ConnectionFailure):
            return StorageUnavailable(f"{where}: server unavailable: {detail}")
        if isinstance(exc, BSONError):
            return StorageError(f"{where}: unreadable BSON ({type(exc).__name__}): {detail}")
        return StorageError(f"{where}: {type(exc).__name__}: {detail}")

    @property
    def _limit_text(self) -> str:
        limit = f"{round(self._limit * 1000)} ms" if self._limit else "none"
        return f"max_time_ms={self.max_time_ms}, client limit {limit}"

    def _malformed(self, action: str, problem: str) -> StorageError:
        return StorageError(f"MongoDB ({self._target}) {action}: malformed reply: {problem}")

    def _collection(self, name: str) -> MongoCollection[Document]:
        return self._db.get_collection(name)

    def _find(self, name: str, query: Mapping[str, Any], fields: list[str]) -> list[Document]:
        projection = dict.fromkeys(fields, 1)
        with self._translated(f"find on {name}"):
            return list(
                self._collection(name).find(query, projection, max_time_ms=self.max_time_ms)
            )

    def _find_one(self, name: str, query: Mapping[str, Any], fields: list[str]) -> Document | None:
        projection = dict.fromkeys(fields, 1)
        with self._translated(f"find on {name}"):
            return self._collection(name).find_one(query, projection, max_time_ms=self.max_time_ms)

    # -- streaming -----------------------------------------------------------------------------

    def documents(
        self,
        collection: str,
        fields: Collection[str],
        *,
        batch_size: int = 1000,
        query: Mapping[str, Any] | None = None,
        session: Any = None,
    ) -> Iterator[Document]:
        """Every document of ``collection``, holding only ``fields`` (and ``_id``), streamed.

        ``query`` (default: every document) filters on the server; ``session``, a driver
        session of this store's client, reads within it (causally after what it has read).

        ``fields`` are projected on the server (dotted paths reach into documents and
        arrays), so nothing else of a document leaves it. The documents come from one cursor
        in batches of ``batch_size``, and each batch is one call bounded as every call of the
        store is (``max_time_ms`` on the client's side, failures raised as
        :class:`~convstats.errors.StorageError`): a collection of any size streams in
        constant memory, and a server that stalls ends the stream within the bound. The
        server counts the whole cursor's work against ``max_time_ms``. Dates beyond Python's
        years come as ``bson.DatetimeMS`` (from a ``MongoClient``; a stand-in such as
        mongomock decodes them its own way).
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive number, got {batch_size!r}")
        action = f"find on {collection}"
        source = self._collection(collection)
        if isinstance(self._client, MongoClient):
            auto = source.codec_options.with_options(
                datetime_conversion=DatetimeConversion.DATETIME_AUTO
            )
            source = source.with_options(codec_options=auto)
        projection = dict.fromkeys(fields, 1)
        options: dict[str, Any] = {} if session is None else {"session": session}
        cursor = source.find(
            dict(query or {}),
            projection,
            batch_size=batch_size,
            max_time_ms=self.max_time_ms,
            **options,
        )
        try:
            while True:
                # One round trip a batch, each under its own bound; never held across a yield.
                with self._translated(action):
                    batch = list(itertools.islice(cursor, batch_size))
                yield from batch
                if len(batch) < batch_size:
                    return
        finally:
            with (
                contextlib.suppress(StorageError),
                self._translated(f"close a cursor on {collection}"),
            ):
                cursor.close()

    # -- RoomStore ---------------------------------------------------------------------------

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        """See :meth:`convstats.ports.RoomStore.count_groups`.

        One aggregation on the server, grouping the window's rooms by what the report reads
        of them (:func:`grouping_pipeline`); upstream's by-department and by-tags count the
        rooms they keep apart in a second query, as upstream does. The groups, a few per
        agent, department, source, tag list or status, are placed in rows here by
        :func:`convstats_adapters.documents.rows_of`, the rule the memory store follows.
        """
        plan = _PLANS[grouping]
        match = window_match(window, visibility)
        if match is None:
            return GroupCounts(rooms=0)
        upstream = mode is TotalMode.ROCKETCHAT
        action = f"aggregate on {ROOMS}"
        pipeline = grouping_pipeline(grouping, match, upstream=upstream)
        with self._translated(action):
            groups = list(self._collection(ROOMS).aggregate(pipeline, maxTimeMS=self.max_time_ms))
        per_row: dict[Any, int] = {}
        unspecified = rooms = 0
        for group in groups:
            if not isinstance(group, Mapping) or "_id" not in group:
                fields = sorted(group) if isinstance(group, Mapping) else type(group).__name__
                raise self._malformed(action, f"a group without _id ({fields})")
            count = _whole_number(group.get("conversations"))
            if count is None:
                raise self._malformed(action, f"a count of {group.get('conversations')!r:.40}")
            rooms += count
            placement = doc.rows_of(grouping, plan.raw(group["_id"]), mode)
            if placement is doc.UNSPECIFIED:
                unspecified += count
                continue
            for key, times in placement:
                per_row[key] = per_row.get(key, 0) + count * times
        if upstream and plan.apart is not None:
            query = {"$and": [match, plan.apart]}
            with self._translated(f"count_documents on {ROOMS}"):
                apart = self._collection(ROOMS).count_documents(query, maxTimeMS=self.max_time_ms)
            unspecified += apart
            rooms += apart
        return GroupCounts(
            keys=list(per_row), values=list(per_row.values()), unspecified=unspecified, rooms=rooms
        )

    # -- Directory ---------------------------------------------------------------------------

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.Directory.agent_names`; one ``$in`` look-up."""
        asked = [
            agent_id
            for agent_id in agent_ids
            if isinstance(agent_id, str) and _storable_id(agent_id)
        ]
        if not asked:
            return {}
        users = self._find(USERS, {"_id": {"$in": _id_forms(asked)}}, ["name"])
        names: dict[str, str] = {}
        for user in users:
            user_id, name = document_id(user.get("_id")), user.get("name")
            if user_id is not None and isinstance(name, str):
                names[user_id] = name
        return names

    def department_names(self, keys: Collection[Any]) -> Mapping[Any, Any]:
        """See :meth:`convstats.ports.Directory.department_names`; one ``$in`` look-up."""
        ids = {
            item
            for key in keys
            for item in (key if isinstance(key, tuple) else (key,))
            if isinstance(item, str) and _storable_id(item)
        }
        if not ids:
            return {}
        query = {"_id": {"$in": _id_forms(ids)}, "name": {"$exists": True}}
        names = {}
        for department in self._find(DEPARTMENTS, query, ["name"]):
            department_id = document_id(department.get("_id"))
            if department_id is not None and "name" in department:
                names[department_id] = doc.freeze(department["name"])
        return doc.department_names_of(keys, names)

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`.

        None, without a query, for an id no document can have: one that is not valid UTF-8
        (a lone surrogate) or that BSON cannot hold.
        """
        if not _storable_id(user_id):
            return None
        user = self._find_one(USERS, {"_id": {"$in": _id_forms([user_id])}}, _USER_FIELDS)
        return None if user is None else user_record(user_id, user)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.user_with_token`; one look-up on ``_id``.

        None, without a query, for an id or a hash no document can hold (as :meth:`get_user`).
        """
        if not (_storable_id(user_id) and _storable_id(hashed_token)):
            return None
        # documents.login_token_hashes: an equality on the dotted path walks the arrays on
        # the way and matches an array's elements, as that function reads the document.
        # The tokens themselves are never projected.
        query = {"_id": {"$in": _id_forms([user_id])}, LOGIN_TOKEN_HASHES: {"$eq": hashed_token}}
        user = self._find_one(USERS, query, _USER_FIELDS)
        return None if user is None else user_record(user_id, user)

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        """See :meth:`convstats.ports.Directory.permission_roles`."""
        document = self._find_one(PERMISSIONS, {"_id": permission}, ["roles"])
        return None if document is None else string_set(document.get("roles"))

    def has_units(self) -> bool:
        """See :meth:`convstats.ports.Directory.has_units`."""
        # documents.is_unit: "u" or an array holding it, which is how $eq matches.
        unit = self._find_one(DEPARTMENTS, {"type": {"$eq": UNIT}}, ["_id"])
        return unit is not None

    def monitored_units(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.monitored_units`."""
        return self._pairs(UNIT_MONITORS, "monitorId", user_id, "unitId")

    def agent_departments(self, user_id: str) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.agent_departments`."""
        return self._pairs(DEPARTMENT_AGENTS, "agentId", user_id, "departmentId")

    def _pairs(self, name: str, key: str, user_id: str, value: str) -> frozenset[str]:
        if not _storable_id(user_id):
            return frozenset()
        # documents.document_id: an id stored as a string or as the ObjectId it spells.
        documents = self._find(name, {key: {"$in": _id_forms([user_id]), **_NOT_ARRAY}}, [value])
        found = (document_id(document.get(value)) for document in documents)
        return frozenset(item for item in found if item is not None)

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.departments_under`."""
        units = _id_forms([unit for unit in unit_ids if _storable_id(unit)])
        if not units:
            return frozenset()
        # documents.department_ancestors: $in matches a scalar or an array's elements.
        clauses: list[Document] = [{"ancestors": {"$in": units}}]
        if include_own:
            clauses.append({"_id": {"$in": units}})
        documents = self._find(DEPARTMENTS, {"$or": clauses}, ["_id"])
        found = (document_id(document.get("_id")) for document in documents)
        return frozenset(item for item in found if item is not None)

    # -- indexes -----------------------------------------------------------------------------

    def ensure_indexes(self) -> list[str]:
        """Create the indexes the reports read with; the only write the store ever makes.

        - ``t_1_ts_1``: this store's aggregations, an equality on ``t`` and a range on
          ``ts`` that covers every room of a window, whatever report reads it;
        - upstream Rocket.Chat's own partial indexes of the Reports page, kept so that both
          read well: ``servedBy_1_ts_1``, ``source_1_ts_1``, ``departmentId_1_ts_1`` and
          ``tags.0_1_ts_1``, each on the livechat rooms that have that field.

        Returns the index names. Existing identical indexes are left as they are. Unlike the
        reads, the builds have no time limit: on a large collection they take minutes.
        """
        rooms = self._collection(ROOMS)
        with self._translated(f"create_index on {ROOMS}", bounded=False):
            return [
                rooms.create_index([("t", 1), ("ts", 1)]),
                *(
                    rooms.create_index(
                        [(name, 1), ("ts", 1)],
                        partialFilterExpression={name: {"$exists": True}, "t": LIVECHAT},
                    )
                    for name in ("servedBy", "source", "departmentId", "tags.0")
                ),
            ]


def window_match(window: TimeWindow, visibility: Visibility) -> Document | None:
    """The ``$match`` of a window's conversations that ``visibility`` admits.

    ``None`` when ``visibility`` admits no room at all, so nothing needs to be asked.
    """
    # documents.created_ms: t is the string "l" and ts a date in the window.
    match: Document = {
        "t": {"$eq": LIVECHAT, **_NOT_ARRAY},
        "ts": {"$gte": window.start, "$lt": window.end, **_NOT_ARRAY},
    }
    if visibility.restricted:
        # documents.partition, admitted as Visibility.admits admits it.
        admitted = _visibility_clauses(visibility)
        if not admitted:
            return None
        match["$or"] = admitted
    return match


def _visibility_clauses(visibility: Visibility) -> list[Document]:
    clauses: list[Document] = []
    if visibility.unit_ids:
        # A scalar ancestors value is matched as itself, a list by any element: that is
        # $in's own semantics (documents.elements), no guard needed. documents.document_id:
        # an id stored as the ObjectId it spells is that id too.
        clauses.append({"departmentAncestors": {"$in": _id_forms(visibility.unit_ids)}})
    if visibility.department_ids:
        clauses.append(
            {"departmentId": {"$in": _id_forms(visibility.department_ids), **_NOT_ARRAY}}
        )
    if visibility.rooms_without_department:
        # Upstream's own clause: only a room without the field has no department.
        clauses.append({"departmentId": {"$exists": False}})
    return clauses


def _bit(condition: Document, bit: int) -> Document:
    return {"$cond": [condition, bit, 0]}


def _bit_unless(condition: Document, bit: int) -> Document:
    return {"$cond": [condition, 0, bit]}


def _is_true(path: str) -> Document:
    """``path`` is the boolean true: nothing but true is both at least and at most true.

    Comparisons order values by BSON type first; ``$eq`` with true would also hold for 1 on
    mongomock.
    """
    return {"$and": [{"$gte": [path, True]}, {"$lte": [path, True]}]}


def _falsy(path: str) -> Document:
    """Not documents.truthy: a missing value, null, false or a zero.

    Spelled out rather than left to ``$cond``, which mongomock decides by Python's truth (an
    empty string, array or document is false there, true in MongoDB).
    """
    return {"$in": [{"$ifNull": [path, None]}, [None, False, 0]]}


# documents.status_facts, bit by bit.
_STATUS_FACTS: Final = {
    "$add": [
        _bit(_is_true("$open"), doc.OPEN),
        _bit(_is_true("$onHold"), doc.ON_HOLD),
        _bit_unless(_falsy("$onHold"), doc.HELD),
        _bit_unless(_falsy("$servedBy"), doc.SERVED),
        _bit({"$eq": [{"$ifNull": ["$servedBy", None]}, None]}, doc.UNSERVED),
        _bit({"$ne": [_AGENT_KEY, None]}, doc.AGENT),
        _bit_unless(_falsy("$metrics.chatDuration"), doc.TIMED),
    ]
}


def _source_key(group: Any) -> Any:
    # A field path that finds nothing leaves its field out of the group's _id document.
    if not isinstance(group, Mapping):
        return (ABSENT, ABSENT)
    return tuple(doc.freeze(group[name]) if name in group else ABSENT for name in ("type", "alias"))


def _agent_key(group: Any) -> Any:
    # An agent id is a string (_AGENT_KEY); anything else is the servedBy._id as stored.
    return group if isinstance(group, str) else (doc.NO_AGENT, doc.freeze(group))


def _whole_value(group: Any) -> Any:
    # A missing field groups with null: both are placed the same in the readings that
    # read such a group (upstream's keeps missing fields apart with its own $match).
    return doc.freeze(group)


@attrs.frozen
class _Plan:
    """How one report groups rooms on the server: documents.raw_key restated in MQL."""

    #: The group key expression.
    key: Any
    #: The group's ``_id`` as documents.raw_key reads the room.
    raw: Callable[[Any], Any] = _whole_value
    #: Upstream's reading: only the rooms that match this reach its rows …
    only: Document | None = None
    #: … and the rooms that match this are its ``unspecified``, counted apart.
    apart: Document | None = None
    #: The group key expression of upstream's reading, when it keeps apart what ``key`` joins.
    upstream_key: Any = None


_PLANS: Final = {
    Grouping.STATUS: _Plan(key=_STATUS_FACTS, raw=int),
    # documents.raw_key: the source's type and alias (field paths), or no source at all,
    # which upstream's reading leaves out with its $match and this project's places as a
    # source without either.
    Grouping.SOURCE: _Plan(
        key={"type": "$source.type", "alias": "$source.alias"},
        raw=_source_key,
        only={"source": {"$exists": True}},
    ),
    Grouping.DEPARTMENT: _Plan(
        key="$departmentId",
        only={"departmentId": {"$exists": True}},
        apart={"departmentId": {"$exists": False}},
    ),
    # Upstream's $match and its count of the rest: {$ne: []} leaves out an array holding
    # [] as well as [] itself, and {$eq: []} counts both.
    Grouping.TAGS: _Plan(
        key="$tags",
        only={"tags": {"$exists": True, "$ne": []}},
        apart={"$or": [{"tags": {"$exists": False}}, {"tags": {"$eq": []}}]},
    ),
    # documents.raw_key: the agent (documents.served_agent). Upstream's reading keeps a
    # servedBy that names no agent as a row of its own, keyed by its servedBy._id as stored;
    # this project's places all of them in unspecified, so its key need not tell them apart.
    Grouping.AGENT: _Plan(
        key=_AGENT_KEY,
        raw=_agent_key,
        only={"servedBy": {"$exists": True}},
        apart={"servedBy": {"$exists": False}},
        # The agent, else the _id as stored: _AGENT_KEY is null for anything but an agent id.
        upstream_key={"$ifNull": [_AGENT_KEY, {"$ifNull": [_AGENT_ID, None]}]},
    ),
}


def grouping_pipeline(grouping: Grouping, match: Document, *, upstream: bool) -> list[Document]:
    """The aggregation that counts the rooms ``match`` finds per raw key of ``grouping``.

    Each result is ``{"_id": <raw key>, "conversations": <rooms>}``.
    """
    plan = _PLANS[grouping]
    key = plan.key
    if upstream:
        if plan.only is not None:
            match = {"$and": [match, plan.only]}
        if plan.upstream_key is not None:
            key = plan.upstream_key
    return [
        {"$match": match},
        {"$group": {"_id": key, "conversations": {"$sum": 1}}},
    ]
