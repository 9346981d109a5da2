"""The MongoDB store: a live Rocket.Chat database, counted on the server.

Needs the ``mongo`` extra (``pip install 'convstats[mongo]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from convstats.errors import (
    MissingDependency,
    StorageError,
    StorageNotAuthorized,
    StorageTimeout,
    StorageUnavailable,
)
from convstats.model import AgentCounts, TimeWindow, UserRecord, Visibility
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
    from bson import ObjectId
    from pymongo import MongoClient
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
except ImportError as exc:
    raise MissingDependency("pymongo", "mongo") from exc

__all__ = ["MongoStore", "mask_uri"]

Document = dict[str, Any]
ReadPreferenceMode = Primary | PrimaryPreferred | Secondary | SecondaryPreferred | Nearest

_SCHEMES: Final = ("mongodb://", "mongodb+srv://")
_SECRET_OPTIONS: Final = frozenset({"authmechanismproperties", "tlscertificatekeyfilepassword"})
_UNAUTHORIZED_CODES: Final = frozenset({13, 18})  # Unauthorized, AuthenticationFailed
_MAX_TIME_EXPIRED: Final = 50
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
    """documents.document_id backwards: each id, and the ObjectId a 24-hex id may stand for."""
    forms: list[str | ObjectId] = sorted(set(ids))
    forms += [ObjectId(value) for value in forms if ObjectId.is_valid(value)]
    return forms


def mask_uri(uri: str) -> str:
    """``uri`` with its user name, password and secret options replaced by ``***``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority_and_path, qmark, query = rest.partition("?")
    at = authority_and_path.rfind("@")
    if at >= 0:
        authority_and_path = "***" + authority_and_path[at:]
    if query:
        query = "&".join(
            f"{part.partition('=')[0]}=***"
            if part.partition("=")[0].lower() in _SECRET_OPTIONS
            else part
            for part in query.split("&")
        )
    return f"{scheme}://{authority_and_path}{qmark}{query}"


def _uri_option_names(uri: str) -> frozenset[str]:
    return frozenset(name.lower() for name, _ in parse_qsl(urlsplit(uri).query))


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
    return repr(mask_uri(value)) if isinstance(value, str) else repr(value)


@attrs.define(kw_only=True)
class MongoStore:
    """Rocket.Chat collections in MongoDB; a ``RoomStore`` and a ``Directory``.

    ``client_or_uri`` is a ``MongoClient`` (the caller's to close) or a ``mongodb://`` /
    ``mongodb+srv://`` URI (the store builds a client and :meth:`close` closes it).
    ``database`` defaults to the URI's or the client's default database. Counting is one
    aggregation on the server; reads go to ``read_preference`` (a secondary when there is
    one, as upstream) and stop after ``max_time_ms``. Driver failures are raised as
    :class:`~convstats.errors.StorageError` subclasses.
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

    _client: MongoClient[Document] = attrs.field(init=False, repr=False)
    _owns_client: bool = attrs.field(init=False, repr=False)
    _db: Database[Document] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.client_or_uri, str):
            self._client = self._build_client(self.client_or_uri)
            self._owns_client = True
        else:
            self._client = self.client_or_uri
            self._owns_client = False
        try:
            self._db = self._open_database()
        except BaseException:
            self.close()
            raise

    def _build_client(self, uri: str) -> MongoClient[Document]:
        # Options the URI sets win: pymongo would let keyword arguments override them.
        given = _uri_option_names(uri)
        options: dict[str, Any] = {
            name: value
            for name, value in (
                ("serverSelectionTimeoutMS", self.server_selection_timeout_ms),
                ("connectTimeoutMS", self.connect_timeout_ms),
            )
            if name.lower() not in given
        }
        try:
            # connect=False: no I/O (not even the SRV look-up) before the first query.
            return MongoClient(uri, tz_aware=True, connect=False, **options)
        except ConfigurationError as exc:
            raise ValueError(
                f"invalid MongoDB URI {mask_uri(uri)!r}: {self._redact(str(exc))}"
            ) from exc

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
        if isinstance(self.client_or_uri, str):
            return mask_uri(self.client_or_uri)
        return f"{type(self._client).__name__} {self.database or '(default database)'}"

    def _redact(self, text: str) -> str:
        # Driver messages are not known to echo credentials; this makes sure of it.
        if isinstance(self.client_or_uri, str):
            authority = self.client_or_uri.partition("://")[2].partition("?")[0]
            userinfo = authority[: max(authority.rfind("@"), 0)]
            password = userinfo.partition(":")[2]
            for secret in (userinfo, password, unquote(password)):
                if secret:
                    text = text.replace(secret, "***")
        return text

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except PyMongoError as exc:
            raise self._storage_error(action, exc) from exc

    def _storage_error(self, action: str, exc: PyMongoError) -> StorageError:
        detail = self._redact(str(exc))
        where = f"MongoDB ({self._target}) {action}"
        if isinstance(exc, ExecutionTimeout) or (
            isinstance(exc, OperationFailure) and exc.code == _MAX_TIME_EXPIRED
        ):
            return StorageTimeout(f"{where}: exceeded max_time_ms={self.max_time_ms}: {detail}")
        if isinstance(exc, OperationFailure) and (
            exc.code in _UNAUTHORIZED_CODES or "not authorized" in str(exc).lower()
        ):
            return StorageNotAuthorized(f"{where}: not authorized: {detail}")
        if isinstance(exc, NetworkTimeout):
            # pymongo raises the same NetworkTimeout for a connect and for a reply that
            # came too late; before a server is selected the failure is a selection timeout.
            return StorageTimeout(f"{where}: the server did not answer in time: {detail}")
        if isinstance(exc, ConnectionFailure):
            return StorageUnavailable(f"{where}: server unavailable: {detail}")
        return StorageError(f"{where}: {type(exc).__name__}: {detail}")

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

    # -- RoomStore ---------------------------------------------------------------------------

    def count_conversations(self, window: TimeWindow, visibility: Visibility) -> AgentCounts:
        """See :meth:`convstats.ports.RoomStore.count_conversations`; one aggregation."""
        pipeline = conversations_pipeline(window, visibility)
        if pipeline is None:
            return AgentCounts()
        per_agent: dict[str, int] = {}
        unspecified = 0
        with self._translated(f"aggregate on {ROOMS}"):
            for group in self._collection(ROOMS).aggregate(pipeline, maxTimeMS=self.max_time_ms):
                agent, count = group["_id"], group["conversations"]
                if isinstance(agent, str):
                    per_agent[agent] = count
                else:
                    unspecified += count
        return AgentCounts(per_agent=per_agent, unspecified=unspecified)

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """See :meth:`convstats.ports.RoomStore.agent_names`; one ``$in`` look-up."""
        if not agent_ids:
            return {}
        users = self._find(USERS, {"_id": {"$in": _id_forms(agent_ids)}}, ["name"])
        names: dict[str, str] = {}
        for user in users:
            user_id, name = document_id(user.get("_id")), user.get("name")
            if user_id is not None and isinstance(name, str):
                names[user_id] = name
        return names

    # -- Directory ---------------------------------------------------------------------------

    def get_user(self, user_id: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.get_user`."""
        user = self._find_one(USERS, {"_id": {"$in": _id_forms([user_id])}}, _USER_FIELDS)
        return None if user is None else user_record(user_id, user)

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """See :meth:`convstats.ports.Directory.user_with_token`; one look-up on ``_id``."""
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
        documents = self._find(name, {key: {"$eq": user_id, **_NOT_ARRAY}}, [value])
        return frozenset(doc[value] for doc in documents if isinstance(doc.get(value), str))

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """See :meth:`convstats.ports.Directory.departments_under`."""
        units = sorted(set(unit_ids))
        if not units:
            return frozenset()
        # documents.department_ancestors: $in matches a scalar or an array's elements.
        clauses: list[Document] = [{"ancestors": {"$in": units}}]
        if include_own:
            clauses.append({"_id": {"$in": units}})
        documents = self._find(DEPARTMENTS, {"$or": clauses}, ["_id"])
        return frozenset(doc["_id"] for doc in documents if isinstance(doc.get("_id"), str))

    # -- indexes -----------------------------------------------------------------------------

    def ensure_indexes(self) -> list[str]:
        """Create the indexes the report reads with; the only write the store ever makes.

        - ``servedBy_1_ts_1``, partial on ``{servedBy: {$exists: true}, t: "l"}``: upstream
          Rocket.Chat's own index for this report (assigned livechat rooms by creation time).
        - ``t_1_ts_1``: this store's count, an equality on ``t`` and a range on ``ts`` that
          covers assigned and unassigned rooms alike.

        Returns the index names. Existing identical indexes are left as they are.
        """
        rooms = self._collection(ROOMS)
        with self._translated(f"create_index on {ROOMS}"):
            return [
                rooms.create_index(
                    [("servedBy", 1), ("ts", 1)],
                    partialFilterExpression={"servedBy": {"$exists": True}, "t": LIVECHAT},
                ),
                rooms.create_index([("t", 1), ("ts", 1)]),
            ]


def conversations_pipeline(window: TimeWindow, visibility: Visibility) -> list[Document] | None:
    """The aggregation that counts a window's conversations per agent id (``null``: none).

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
    return [
        {"$match": match},
        {"$group": {"_id": _AGENT_KEY, "conversations": {"$sum": 1}}},
    ]


def _visibility_clauses(visibility: Visibility) -> list[Document]:
    clauses: list[Document] = []
    if visibility.unit_ids:
        # A scalar ancestors value is matched as itself, a list by any element: that is
        # $in's own semantics (documents.elements), no guard needed.
        clauses.append({"departmentAncestors": {"$in": sorted(visibility.unit_ids)}})
    if visibility.department_ids:
        clauses.append({"departmentId": {"$in": sorted(visibility.department_ids), **_NOT_ARRAY}})
    if visibility.rooms_without_department:
        # {$eq: null} matches a missing field and null (and arrays holding null: guarded).
        clauses.append({"departmentId": {"$eq": None, **_NOT_ARRAY}})
    return clauses
