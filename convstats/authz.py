"""Authorities: Rocket.Chat's role model, and the operator who owns the data."""

from __future__ import annotations

import base64
import hashlib

import attrs

from convstats.errors import AuthenticationRequired, PermissionDenied
from convstats.model import Caller, MonitorRule, Visibility
from convstats.ports import Directory

__all__ = [
    "DEFAULT_GRANTS",
    "VIEW_LIVECHAT_REPORTS",
    "OperatorAuthority",
    "RocketChatAuthority",
    "hash_login_token",
]

VIEW_LIVECHAT_REPORTS = "view-livechat-reports"

#: Roles granted each permission by a fresh Rocket.Chat workspace; the workspace's
#: ``rocketchat_permissions`` document, when present, replaces the grant.
DEFAULT_GRANTS: dict[str, frozenset[str]] = {
    VIEW_LIVECHAT_REPORTS: frozenset({"admin", "livechat-manager", "livechat-monitor"}),
}

_UNRESTRICTED_ROLES = frozenset({"admin", "livechat-manager"})
#: The roles whose holders see only their units and departments, by rule: upstream's
#: current rule restricts agents too ("agents don't have units, only departments").
_RESTRICTED_ROLES = {
    MonitorRule.CURRENT: frozenset({"livechat-monitor", "livechat-agent"}),
    MonitorRule.LEGACY: frozenset({"livechat-monitor"}),
}


def hash_login_token(token: str) -> str:
    """The ``hashedToken`` Rocket.Chat stores for a login token.

    The base64 (standard alphabet, padded) of the SHA-256 of the token's UTF-8 bytes, as
    Meteor's ``Accounts._hashLoginToken`` computes it. A lone surrogate, which UTF-8 cannot
    encode, is hashed as U+FFFD, as Node.js encodes it.
    """
    try:
        data = token.encode("utf-8")
    except UnicodeEncodeError:
        data = token.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


@attrs.define(kw_only=True)
class RocketChatAuthority:
    """Rocket.Chat's role model, read through a :class:`~convstats.ports.Directory`.

    A caller is a ``users`` document, signed in by its id and, when given (always, with
    ``require_token``, as over HTTP), a login token (docs/behaviour.md#authentication); a
    permission is held when one of the caller's roles is granted it. Once the workspace has
    units at all, a monitor (and, under the current rule, an agent who holds the permission)
    without ``admin`` or ``livechat-manager`` sees only the rooms of their units and
    departments, as ``monitor_rule`` defines them
    (docs/behaviour.md#who-sees-what).
    """

    directory: Directory
    monitor_rule: MonitorRule = attrs.field(
        default=MonitorRule.CURRENT, validator=attrs.validators.instance_of(MonitorRule)
    )

    #: Whether every caller must prove its id with a login token (an HTTP service); without
    #: it, an id alone is trusted, as the application that established it vouches for it.
    require_token: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def authenticate(self, user_id: str | None, token: str | None = None) -> Caller:
        """Return the caller for an existing, active user id, proved by ``token`` when given.

        The token is one of the user's login or personal access tokens: the
        :func:`hash_login_token` of it is one of the user's stored hashes, looked up with the
        id in one call of the directory. Raises ``AuthenticationRequired`` for no id, an
        unknown one, a missing or empty token when one is required, a token that is not the
        user's (another user's included), or a deactivated user (``active: false``), as
        upstream refuses each of them with its 401. The token is never kept or logged.
        """
        if not user_id or not isinstance(user_id, str):
            raise AuthenticationRequired
        if token is None and not self.require_token:
            user = self.directory.get_user(user_id)
        elif not token or not isinstance(token, str):
            raise AuthenticationRequired
        else:
            user = self.directory.user_with_token(user_id, hash_login_token(token))
        if user is None or not user.active:
            raise AuthenticationRequired
        return Caller(user_id=user.id, roles=user.roles)

    def authorize(self, caller: Caller, permission: str) -> None:
        """Raise ``PermissionDenied`` unless one of the caller's roles is granted ``permission``."""
        granted = self.directory.permission_roles(permission)
        if granted is None:
            granted = DEFAULT_GRANTS.get(permission, frozenset({"admin"}))
        if caller.roles.isdisjoint(granted):
            raise PermissionDenied(permission)

    def visibility(self, caller: Caller) -> Visibility:
        """Everything, unless the rule restricts the caller's roles in a workspace with units."""
        if (
            caller.roles.isdisjoint(_RESTRICTED_ROLES[self.monitor_rule])
            or not caller.roles.isdisjoint(_UNRESTRICTED_ROLES)
            or not self.directory.has_units()
        ):
            return Visibility.everything()
        units = self.directory.monitored_units(caller.user_id) | self.directory.agent_departments(
            caller.user_id
        )
        current = self.monitor_rule is MonitorRule.CURRENT
        return Visibility(
            restricted=True,
            unit_ids=units,
            department_ids=self.directory.departments_under(units, include_own=current),
            rooms_without_department=current,
        )


@attrs.frozen
class OperatorAuthority:
    """The operator who owns the data: any caller, every permission, every room.

    For command-line use and trusted back-office code, where no end user is involved.
    """

    def authenticate(self, user_id: str | None, token: str | None = None) -> Caller:
        """Return a caller for ``user_id`` (``"operator"`` when none is given)."""
        return Caller(user_id=user_id or "operator")

    def authorize(self, caller: Caller, permission: str) -> None:
        """Allow everything."""

    def visibility(self, caller: Caller) -> Visibility:
        """Every room."""
        return Visibility.everything()
