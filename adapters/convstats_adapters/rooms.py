"""What the report reads of a ``rocketchat_room`` document, in one place (SPEC §2)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from convstats.model import epoch_ms

__all__ = [
    "LIVECHAT",
    "ODD_DEPARTMENT",
    "READ_FIELDS",
    "created_ms",
    "department_key",
    "served_agent",
]

LIVECHAT = "l"
#: The fields of a room the report reads; nothing else decides whether or for whom it counts.
READ_FIELDS = ("t", "ts", "servedBy", "departmentId", "departmentAncestors")


def served_agent(room: Mapping[str, Any]) -> str | None:
    """The agent a room counts for: ``servedBy._id`` when it is a string, else ``None``.

    ``servedBy`` may be any mapping (a driver's raw document as well as a dict).
    """
    served_by = room.get("servedBy")
    if isinstance(served_by, Mapping):
        agent = served_by.get("_id")
        if isinstance(agent, str):
            return agent
    return None


def created_ms(room: Mapping[str, Any]) -> int | None:
    """A livechat room's ``ts`` in epoch milliseconds, or ``None`` when the room never counts.

    Only rooms with ``t == "l"`` and a date ``ts`` can fall in a window; a naive ``ts`` (as a
    driver without ``tz_aware`` returns it) is UTC.
    """
    if room.get("t") != LIVECHAT:
        return None
    ts = room.get("ts")
    if not isinstance(ts, datetime):
        return None
    return epoch_ms(ts)


class _OddDepartment:
    """Stands for a ``departmentId`` that is neither missing, null nor a string."""

    def __repr__(self) -> str:
        return "<odd departmentId>"


ODD_DEPARTMENT = _OddDepartment()


def department_key(room: Mapping[str, Any]) -> tuple[object, tuple[str, ...]]:
    """The room's visibility partition: its department and its string ancestors.

    Rooms with the same key are visible to exactly the same callers. A missing or null
    ``departmentId`` is ``None``; any other non-string value is :data:`ODD_DEPARTMENT`
    (never admitted by department); a scalar ancestors value stands for itself, as in a
    MongoDB ``$in`` query.
    """
    department = room.get("departmentId")
    if department is not None and not isinstance(department, str):
        department = ODD_DEPARTMENT
    ancestors = room.get("departmentAncestors")
    if not isinstance(ancestors, (list, tuple)):  # a tuple is stored as an array
        ancestors = [ancestors]
    return department, tuple(sorted({a for a in ancestors if isinstance(a, str)}))
