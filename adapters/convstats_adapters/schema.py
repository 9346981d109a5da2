"""Rocket.Chat's collection names (SPEC §8) and what the stores read of their documents.

Both stores read users and permissions through these helpers, so that they agree on every
odd document; what is read of a room is in :mod:`convstats_adapters.rooms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convstats.model import UserRecord

__all__ = [
    "DEPARTMENTS",
    "DEPARTMENT_AGENTS",
    "PERMISSIONS",
    "ROOMS",
    "UNIT_MONITORS",
    "USERS",
    "string_set",
    "user_record",
]

ROOMS = "rocketchat_room"
USERS = "users"
PERMISSIONS = "rocketchat_permissions"
DEPARTMENTS = "rocketchat_livechat_department"
UNIT_MONITORS = "rocketchat_livechat_unit_monitors"
DEPARTMENT_AGENTS = "rocketchat_livechat_department_agents"


def string_set(value: Any) -> frozenset[str]:
    """The string items of an array field (``roles``); empty for anything but an array."""
    if not isinstance(value, (list, tuple)):
        return frozenset()
    return frozenset(item for item in value if isinstance(item, str))


def user_record(user_id: str, document: Mapping[str, Any]) -> UserRecord:
    """The :class:`UserRecord` of a ``users`` document: string roles, a string name or none."""
    name = document.get("name")
    return UserRecord(
        id=user_id,
        roles=string_set(document.get("roles")),
        name=name if isinstance(name, str) else None,
    )
