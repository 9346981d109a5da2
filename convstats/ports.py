"""The ports: what the core asks of the outside world.

Adapters implement these Protocols structurally; they subclass nothing. Each method's
docstring is its contract. A store signals a storage failure with
:class:`~convstats.errors.StorageError` (or a subclass), never with an empty answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable

from convstats.model import (
    Caller,
    GroupCounts,
    Grouping,
    TimeWindow,
    TotalMode,
    UserRecord,
    Visibility,
)

__all__ = ["Aged", "Authority", "Directory", "RoomStore", "Versioned", "Workspace"]


@runtime_checkable
class RoomStore(Protocol):
    """The rooms (``rocketchat_room``), counted as each report of the Reports page groups them."""

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        """Count the livechat conversations created in ``window`` that ``visibility`` admits.

        A room counts when ``t == "l"``, its ``ts`` is a date with
        ``window.start <= ts < window.end``, and ``visibility.admits`` its partition. Its
        open, closed or on-hold state does not matter (docs/behaviour.md#which-rooms-count).
        Each counted room then goes to the rows of ``grouping`` as ``mode`` reads it
        (docs/behaviour.md#the-reports), keyed as :class:`~convstats.model.Grouping` says:

        - ``AGENT``: the room's ``servedBy._id`` when it is an agent id (a string, or an
          ObjectId read as its hexadecimal string). Every other room (no ``servedBy``,
          ``servedBy: null``, no such ``_id``) is ``unspecified`` in this project's reading;
          upstream's keeps a room that has a ``servedBy`` field under its ``_id`` as stored
          (``None`` when missing), and only the others in ``unspecified``.
        - ``STATUS``, ``SOURCE``, ``DEPARTMENT``, ``TAGS``: as the behaviour document says
          for each reading; upstream's by-status also needs ``rooms``.

        No room is lost in this project's reading: each is in a row (in several for tags) or
        in ``unspecified``. Raises :class:`~convstats.errors.StorageError` when the data
        cannot be read.
        """
        ...


@runtime_checkable
class Versioned(Protocol):
    """A store that numbers the states of its data, so that a cache can tell stale answers.

    Optional: a store that has it (the in-memory store) has its changes seen at once by a
    cached report, since the report puts ``data_version`` in the cache key; a store without
    it (MongoDB, whose data other programs change) is seen through a cache after ``ttl``.
    """

    @property
    def data_version(self) -> int:
        """A number that takes a value it never had before whenever an answer may change.

        It changes once a change is visible to every query that starts afterwards, and before
        the call that made the change returns. So a query started after reading it answers
        from that state or a later one, and a change that has returned is never hidden by an
        answer computed before it.
        """
        ...


@runtime_checkable
class Aged(Protocol):
    """A store that knows how old its data is: a mirror that follows its source, say.

    Optional: the HTTP service reports the age as the gauge ``convstats_data_age_seconds``
    at ``/metrics`` when the store has it; no store of this package has it yet.
    """

    @property
    def data_age_seconds(self) -> float | None:
        """Seconds since the store's data last matched its source; ``None`` when unknown.

        Read on the service's event loop at each scrape, so it must not block: a value the
        store keeps, not a query.
        """
        ...


@runtime_checkable
class Directory(Protocol):
    """The users, permissions and units that decide who may see what.

    See docs/behaviour.md#who-sees-what.
    """

    def get_user(self, user_id: str) -> UserRecord | None:
        """Return the ``users`` document with ``_id == user_id``, or ``None`` when there is none.

        ``roles`` holds the string entries of the document's ``roles`` array (empty when
        missing); ``name`` is the name when it is a string, else ``None``; ``active`` is
        false only for a document whose ``active`` is ``false`` (a deactivated user).
        """
        ...

    def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
        """Return the user ``user_id`` when it holds the login token hashed as ``hashed_token``.

        ``hashed_token`` is what Rocket.Chat stores for a login token (the base64 of its
        SHA-256; ``convstats_adapters.documents.hash_login_token``). The answer is the
        ``users`` document with ``_id == user_id`` that has an entry of
        ``services.resume.loginTokens`` whose ``hashedToken`` equals it (personal access
        tokens live in the same array), read as :meth:`get_user` reads it, ``active``
        included: a deactivated user is returned, and refusing it is the authority's
        business. ``None`` when there is no such user, or the token matches none of its
        entries (another user's token included). The store never returns, logs or keeps
        any token. Raises :class:`~convstats.errors.StorageError` when the data cannot be read.
        """
        ...

    def agent_names(self, agent_ids: Collection[str]) -> Mapping[str, str]:
        """A mapping in which each of ``agent_ids`` whose user has a string name finds it.

        Ids without a ``users`` document, or whose ``name`` is missing, null or not a string,
        are not found in it; an empty-string name is ``""``. It may hold other users' names
        too (a store that holds every name answers them all, without building a mapping).
        Raises :class:`~convstats.errors.StorageError` when the data cannot be read.
        """
        ...

    def department_names(self, keys: Collection[Any]) -> Mapping[Any, Any]:
        """A mapping in which each of ``keys`` naming a department finds that department's name.

        A key is a department id, or, as upstream's reading of by-department keys its rows, a
        room's ``departmentId`` value as :meth:`RoomStore.count_groups` gives it (a tuple for
        an array, which names what its first element naming a department names). A key names a
        department when a ``rocketchat_livechat_department`` document (a unit included) has
        that ``_id`` and a ``name`` field; the name is found as it is stored, ``null`` and
        non-strings included. Keys naming none are not found. It may hold other keys too.
        Raises :class:`~convstats.errors.StorageError` when the data cannot be read.
        """
        ...

    def permission_roles(self, permission: str) -> frozenset[str] | None:
        """Return the roles of the ``rocketchat_permissions`` document ``_id == permission``.

        ``None`` when the workspace has no such document (the default grant then applies).
        """
        ...

    def has_units(self) -> bool:
        """Whether ``rocketchat_livechat_department`` holds any unit.

        A unit is a document whose ``type`` is ``"u"`` or an array holding ``"u"``, as MongoDB
        matches ``{type: "u"}``.
        """
        ...

    def monitored_units(self, user_id: str) -> frozenset[str]:
        """The ``unitId`` of every ``rocketchat_livechat_unit_monitors`` entry of ``user_id``."""
        ...

    def agent_departments(self, user_id: str) -> frozenset[str]:
        """The ``departmentId`` of each ``rocketchat_livechat_department_agents`` entry of it."""
        ...

    def departments_under(self, unit_ids: Collection[str], *, include_own: bool) -> frozenset[str]:
        """The ``_id`` of the departments whose ``ancestors`` intersect ``unit_ids``.

        With ``include_own``, also the ``_id`` of the documents of
        ``rocketchat_livechat_department`` whose ``_id`` is itself in ``unit_ids``.
        """
        ...


@runtime_checkable
class Authority(Protocol):
    """Authenticates callers, decides permissions and yields each caller's visibility."""

    def authenticate(self, user_id: str | None, token: str | None = None) -> Caller:
        """Return the caller for ``user_id``, proved by the login token ``token`` when given.

        Raises :class:`~convstats.errors.AuthenticationRequired` when ``user_id`` is ``None``
        or unknown, or when the token does not prove it (or is required and missing).
        """
        ...

    def authorize(self, caller: Caller, permission: str) -> None:
        """Return when ``caller`` holds ``permission``.

        Raises :class:`~convstats.errors.PermissionDenied` otherwise.
        """
        ...

    def visibility(self, caller: Caller) -> Visibility:
        """The rooms ``caller`` may see in the dashboards."""
        ...


@runtime_checkable
class Workspace(RoomStore, Directory, Protocol):
    """A whole Rocket.Chat workspace: its rooms and its directory, as every store offers."""
