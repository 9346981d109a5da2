"""Immutable values shared by the core, the ports and the adapters."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

__all__ = [
    "EPOCH",
    "AgentCounts",
    "AgentRow",
    "Caller",
    "MonitorRule",
    "Report",
    "TimeWindow",
    "TotalMode",
    "UserRecord",
    "Visibility",
    "epoch_ms",
    "to_bson_precision",
]


class TotalMode(enum.Enum):
    """How ``total`` is defined in a report."""

    #: ``total = sum(values) + unspecified``: every visible conversation in the window.
    CONVSTATS = "convstats"
    #: ``total = sum(values)``, ``unspecified`` apart, as upstream Rocket.Chat answers.
    ROCKETCHAT = "rocketchat"


class MonitorRule(enum.Enum):
    """Which rooms a livechat monitor sees (SPEC §5)."""

    #: Departments under the monitor's units or among them, and rooms without a department.
    CURRENT = "current"
    #: Departments under the monitor's units only; rooms without a department are hidden.
    LEGACY = "legacy"


def to_bson_precision(moment: datetime) -> datetime:
    """Return ``moment`` in UTC, truncated to the millisecond as a BSON date stores it.

    Raises :class:`ValueError` for a naive datetime: the library never guesses a time zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()!r}: pass a timezone-aware datetime")
    utc = moment.astimezone(timezone.utc)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


@attrs.frozen
class TimeWindow:
    """The half-open window ``start <= ts < end`` in UTC, at millisecond precision.

    Constructing one converts aware datetimes to UTC and truncates them to the millisecond;
    it does not apply the request rules (one year at most, start not after end): those belong
    to :func:`convstats.dates.validate_window`.
    """

    start: datetime = attrs.field(converter=to_bson_precision)
    end: datetime = attrs.field(converter=to_bson_precision)

    @property
    def start_ms(self) -> int:
        """``start`` as milliseconds since the Unix epoch."""
        return epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        """``end`` as milliseconds since the Unix epoch."""
        return epoch_ms(self.end)

    def contains(self, ts: datetime) -> bool:
        """Whether the instant ``ts`` (aware, or naive meaning UTC) falls in the window."""
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        return self.start <= ts < self.end


#: The Unix epoch, from which BSON dates count milliseconds.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds from the Unix epoch to ``moment`` (a naive datetime means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _frozen_strings(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class Visibility:
    """Which rooms a caller may see (SPEC §5).

    An unrestricted visibility admits every room. A restricted one admits a room when its
    ``departmentAncestors`` intersect ``unit_ids``, or its ``departmentId`` is in
    ``department_ids``, or it has no department and ``rooms_without_department`` is true.
    Values are hashable: a visibility is part of a cache key.
    """

    restricted: bool = False
    unit_ids: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    department_ids: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    rooms_without_department: bool = True

    @classmethod
    def everything(cls) -> Visibility:
        """The visibility of an unrestricted caller."""
        return cls()

    def admits(self, department_id: Any, department_ancestors: Any) -> bool:
        """Whether a room with these raw field values is visible.

        ``department_id`` is the room's raw ``departmentId`` (``None`` when missing);
        ``department_ancestors`` its raw ``departmentAncestors``. As in a MongoDB ``$in``
        query, a scalar ancestors value is matched as itself and a list (or tuple, which BSON
        stores as an array) by any element.
        """
        if not self.restricted:
            return True
        if self.unit_ids:
            ancestors = (
                department_ancestors
                if isinstance(department_ancestors, (list, tuple))  # BSON arrays, both
                else [department_ancestors]
            )
            if any(isinstance(a, str) and a in self.unit_ids for a in ancestors):
                return True
        if department_id is None:
            return self.rooms_without_department
        return isinstance(department_id, str) and department_id in self.department_ids


@attrs.frozen
class AgentCounts:
    """What a room store answers: conversations per agent id, and the unassigned ones.

    ``per_agent`` holds only agents with at least one conversation.
    """

    per_agent: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    unassigned: int = 0

    @property
    def assigned(self) -> int:
        """The number of conversations that have an agent."""
        return sum(self.per_agent.values())


@attrs.frozen
class UserRecord:
    """The fields of a ``users`` document that the report reads."""

    id: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    name: str | None = None


@attrs.frozen
class Caller:
    """An authenticated caller: the user id and the roles that decide permission and scope."""

    user_id: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)


@attrs.frozen
class AgentRow:
    """One row of the report: an agent id, its label and its number of conversations."""

    agent_id: str
    label: str
    value: int

    def to_json(self) -> dict[str, Any]:
        """The row as upstream serialises it: ``{"label": …, "value": …}``."""
        return {"label": self.label, "value": self.value}


@attrs.frozen
class Report:
    """The conversations-by-agent report.

    ``rows`` are sorted as requested; ``total`` follows ``total_mode``
    (:attr:`TotalMode.CONVSTATS`: ``sum(values) + unspecified``; :attr:`TotalMode.ROCKETCHAT`:
    ``sum(values)``).
    """

    window: TimeWindow
    rows: tuple[AgentRow, ...]
    unspecified: int
    total_mode: TotalMode = TotalMode.CONVSTATS

    @property
    def assigned(self) -> int:
        """The number of conversations counted in the rows."""
        return sum(row.value for row in self.rows)

    @property
    def total(self) -> int:
        """The report's ``total``, as defined by :attr:`total_mode`."""
        if self.total_mode is TotalMode.ROCKETCHAT:
            return self.assigned
        return self.assigned + self.unspecified

    def to_body(self) -> dict[str, Any]:
        """The success response body: ``{"total", "data", "unspecified", "success"}``."""
        return {
            "total": self.total,
            "data": [row.to_json() for row in self.rows],
            "unspecified": self.unspecified,
            "success": True,
        }
