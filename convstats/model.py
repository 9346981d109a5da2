"""Immutable values shared by the core, the ports and the adapters."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

import attrs

__all__ = [
    "EPOCH",
    "AgentCounts",
    "AgentRow",
    "Caller",
    "MonitorRule",
    "Partition",
    "Report",
    "TimeWindow",
    "TotalMode",
    "UserRecord",
    "Visibility",
    "epoch_ms",
    "report_total",
    "to_bson_precision",
]


class TotalMode(enum.Enum):
    """How ``total`` is defined in a report."""

    #: ``total = sum(values) + unspecified``: every visible conversation in the window.
    CONVSTATS = "convstats"
    #: ``total = sum(values)``, ``unspecified`` apart, as upstream Rocket.Chat answers.
    ROCKETCHAT = "rocketchat"


class MonitorRule(enum.Enum):
    """Which rooms a restricted caller sees (docs/behaviour.md#who-sees-what)."""

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
class Partition:
    """Where a room stands for visibility: its department and its department ancestors.

    Rooms with equal partitions are visible to exactly the same callers. A store derives it
    from a room document (``convstats_adapters.documents.partition`` says how odd values are
    read): ``department_id`` is the room's department when it is a string, ``ancestors`` the
    string ancestors, ``departmentless`` whether the room counts as having no department.
    """

    department_id: str | None = None
    ancestors: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    departmentless: bool = True


@attrs.frozen
class Visibility:
    """Which rooms a caller may see (docs/behaviour.md#who-sees-what).

    An unrestricted visibility admits every room. A restricted one admits a room whose
    ancestors meet ``unit_ids``, whose department is in ``department_ids``, or, with
    ``rooms_without_department``, that has no department. Values are hashable: a visibility
    is part of a cache key.
    """

    restricted: bool = False
    unit_ids: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    department_ids: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    rooms_without_department: bool = True

    @classmethod
    def everything(cls) -> Visibility:
        """The visibility of an unrestricted caller."""
        return cls()

    def admits(self, partition: Partition) -> bool:
        """Whether the rooms of ``partition`` are visible."""
        if not self.restricted:
            return True
        if not self.unit_ids.isdisjoint(partition.ancestors):
            return True
        if partition.department_id is not None and partition.department_id in self.department_ids:
            return True
        return partition.departmentless and self.rooms_without_department


@attrs.frozen
class AgentCounts:
    """What a room store answers: conversations per agent id, and those without an agent.

    ``per_agent`` holds only agents with at least one conversation; ``unspecified`` counts the
    conversations that have no agent.
    """

    per_agent: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    unspecified: int = 0

    @property
    def assigned(self) -> int:
        """The number of conversations that have an agent."""
        return sum(self.per_agent.values())


@attrs.frozen
class UserRecord:
    """The fields of a ``users`` document that the report reads.

    ``active`` is false for a deactivated user, who keeps its name but cannot sign in.
    """

    id: str
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_strings)
    name: str | None = None
    active: bool = True


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
        return report_total(self.assigned, self.unspecified, self.total_mode)


def report_total(assigned: int, unspecified: int, mode: TotalMode) -> int:
    """``total`` of a report with these counts: ``assigned`` alone under ``ROCKETCHAT``."""
    return assigned if mode is TotalMode.ROCKETCHAT else assigned + unspecified
