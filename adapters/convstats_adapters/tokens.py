"""Rocket.Chat's REST authentication: a user id and a login token, checked against the store.

Over HTTP they are the headers ``X-User-Id`` and ``X-Auth-Token``
(docs/behaviour.md#authentication). The token is hashed as Rocket.Chat hashes it
(:func:`convstats_adapters.documents.hash_login_token`) and looked up with the user id in one
call of the directory (:meth:`~convstats.ports.Directory.user_with_token`). It is never
logged, echoed or kept: only its hash leaves :meth:`TokenAuthority.authenticate_token`, and
only towards the store.
"""

from __future__ import annotations

import attrs

from convstats.authz import RocketChatAuthority
from convstats.errors import AuthenticationRequired
from convstats.model import Caller, MonitorRule, Visibility
from convstats.ports import Authority, Directory
from convstats_adapters.documents import hash_login_token

__all__ = ["ProvenCaller", "TokenAuthority"]


@attrs.define(kw_only=True)
class TokenAuthority:
    """Signs callers in by user id and login token, then decides as Rocket.Chat's roles do.

    :meth:`authenticate_token` proves who the caller is; :meth:`authority_for` is the
    :class:`~convstats.ports.Authority` of that caller's request, which the endpoint then
    consults for the permission and the visibility (:class:`RocketChatAuthority` over the
    same directory, under ``monitor_rule``).
    """

    directory: Directory
    monitor_rule: MonitorRule = attrs.field(
        default=MonitorRule.CURRENT, validator=attrs.validators.instance_of(MonitorRule)
    )
    _roles: RocketChatAuthority = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._roles = RocketChatAuthority(directory=self.directory, monitor_rule=self.monitor_rule)

    def authenticate_token(self, user_id: str | None, token: str | None) -> Caller:
        """The caller whose login token ``token`` is, when it is ``user_id``'s.

        Raises :class:`~convstats.errors.AuthenticationRequired` for a missing or empty id or
        token, an unknown user, a token that is not one of that user's (another user's
        included) and a deactivated user; :class:`~convstats.errors.StorageError` when the
        directory cannot be read.
        """
        if not user_id or not token or not isinstance(user_id, str) or not isinstance(token, str):
            raise AuthenticationRequired
        user = self.directory.user_with_token(user_id, hash_login_token(token))
        if user is None or not user.active:
            raise AuthenticationRequired
        return Caller(user_id=user.id, roles=user.roles)

    def authority_for(self, caller: Caller) -> ProvenCaller:
        """The authority of one request of ``caller``, whom a token has already proved."""
        return ProvenCaller(caller=caller, roles=self._roles)


@attrs.frozen
class ProvenCaller:
    """The :class:`~convstats.ports.Authority` of one request whose caller is already proved.

    It knows that one caller and refuses every other id; permissions and visibility are
    ``roles``'s.
    """

    caller: Caller
    roles: Authority

    def authenticate(self, user_id: str | None) -> Caller:
        """The proved caller when ``user_id`` is its id; ``AuthenticationRequired`` otherwise."""
        if user_id != self.caller.user_id:
            raise AuthenticationRequired
        return self.caller

    def authorize(self, caller: Caller, permission: str) -> None:
        """See :meth:`convstats.ports.Authority.authorize`."""
        self.roles.authorize(caller, permission)

    def visibility(self, caller: Caller) -> Visibility:
        """See :meth:`convstats.ports.Authority.visibility`."""
        return self.roles.visibility(caller)
