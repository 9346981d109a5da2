"""Immutable values shared by the core, the ports and the adapters."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias

import attrs

__all__ = [
    "ABSENT",
    "EPOCH",
    "UPSTREAM_STATUS_ORDER",
    "Absent",
    "AgentRow",
    "Caller",
    "DepartmentRow",
    "FrozenBool",
    "FrozenDocument",
    "GroupCounts",
    "Grouping",
    "MonitorRule",
    "Partition",
    "Ranked",
    "Report",
    "Row",
    "SourceRow",
    "Status",
    "StatusRow",
    "TagRow",
    "TimeWindow",
    "TotalMode",
    "UserRecord",
    "Visibility",
    "epoch_ms",
    "report_total",
    "to_bson_precision",
]


class TotalMode(enum.Enum):
    """How a report reads the data: this project's reading, or upstream's to the byte.

    The name comes from the first difference, ``total``; the Rocket.Chat reading also keeps
    upstream's drops and merges in the reports of the Reports page
    (docs/behaviour.md#differences-from-upstream).
    """

    #: ``total = sum(values) + unspecified``: every visible conversation in the window; no
    #: room is lost, distinct things stay distinct rows, the order is deterministic.
    CONVSTATS = "convstats"
    #: Upstream Rocket.Chat's body: ``total = sum(values)`` (by-status: every room), with
    #: upstream's drops and merges.
    ROCKETCHAT = "rocketchat"


class MonitorRule(enum.Enum):
    """Which rooms a restricted caller sees (docs/behaviour.md#who-sees-what)."""

    #: Departments under the monitor's units or among them, and rooms without a department.
    CURRENT = "current"
    #: Departments under the monitor's units only; rooms without a department are hidden.
    LEGACY = "legacy"


class Grouping(enum.Enum):
    """What a report of the Reports page groups the conversations of a window by.

    Each is one route, ``/api/v1/livechat/analytics/dashboards/conversations-by-<value>``
    (:attr:`route`), and each keys its rows differently (docs/behaviour.md#the-reports):

    =============== ============================================================== ==========
    grouping        a row's key (this project's reading; upstream's)                takes sort
    =============== ============================================================== ==========
    ``STATUS``      a :class:`Status`                                               no
    ``SOURCE``      ``(type, alias)``: strings or ``None``; any value or ``ABSENT`` no
    ``DEPARTMENT``  the department id; the department's name (rows merged by name)  yes
    ``TAGS``        the tag; any element of ``tags``                                yes
    ``AGENT``       the agent id                                                    yes
    =============== ============================================================== ==========
    """

    STATUS = "status"
    SOURCE = "source"
    DEPARTMENT = "department"
    TAGS = "tags"
    AGENT = "agent"

    @property
    def route(self) -> str:
        """The last segment of the report's route, such as ``conversations-by-agent``."""
        return f"conversations-by-{self.value}"

    @property
    def takes_sort(self) -> bool:
        """Whether ``sort`` orders the rows; by-status and by-source take it and ignore it."""
        return self not in (Grouping.STATUS, Grouping.SOURCE)


class Status(enum.Enum):
    """A row of the by-status report; the value is upstream's label."""

    OPEN = "Open"
    CLOSED = "Closed"
    QUEUED = "Queued"
    ON_HOLD = "On_Hold"


#: The order in which upstream lists the four statuses before sorting them by value.
UPSTREAM_STATUS_ORDER = (Status.OPEN, Status.CLOSED, Status.QUEUED, Status.ON_HOLD)


class Absent(enum.Enum):
    """The value of a field a document does not have, which MongoDB keeps apart from null."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


#: A field that is not there: a by-source key's ``type`` or ``alias`` in upstream's
#: reading, or a row's label when upstream writes none.
ABSENT = Absent.ABSENT


class FrozenBool(enum.Enum):
    """A BSON boolean held as a key or a label: kept apart from the numbers 0 and 1.

    MongoDB groups ``true`` and ``1`` apart, while Python holds them equal; a stored boolean
    becomes one of these where values are grouped (``value`` is the boolean).
    """

    FALSE = False
    TRUE = True

    def __repr__(self) -> str:
        return repr(self.value)


@attrs.frozen
class FrozenDocument:
    """A BSON document held as a key or a label: its fields in order, hashable.

    Keys and labels of upstream's reading are values as stored: strings, numbers,
    :class:`FrozenBool`, ``None``, datetimes, tuples (arrays) and these (documents).
    """

    fields: tuple[tuple[str, Any], ...]


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
    read): ``department_id`` is the room's department when it is an id, ``ancestors`` the id
    ancestors, ``departmentless`` whether the room counts as having no department.
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
class GroupCounts:
    """What a room store answers for one grouping: a count per row key, and the rest.

    ``keys[i]`` has ``values[i]`` conversations; only keys with a non-zero count appear,
    each once, in no particular order, keyed as :class:`Grouping` says for the reading
    asked. ``unspecified`` counts the conversations that belong to no row and that the
    reading counts apart (no agent, no department, no tag, no source). ``rooms`` is how many
    rooms were counted when the store knows it; upstream's by-status total is that number,
    so a store must give it for that report.

    Sequences rather than a mapping: a store answers thousands of agents from arrays it
    already holds, without building a dict per query.
    """

    keys: Sequence[Any] = ()
    values: Sequence[int] = ()
    unspecified: int = 0
    rooms: int | None = None


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
    """A row of the by-agent report: an agent id, its label and its conversations."""

    agent_id: str
    label: str
    value: int


@attrs.frozen
class DepartmentRow:
    """A row of the by-department report.

    ``department_id`` is the department's id, ``label`` its name, else the id. In upstream's
    reading rows are names (departments of one name are one row): ``department_id`` is then
    ``None`` and ``label`` the name, which need not be a string.
    """

    department_id: str | None
    label: Any
    value: int


@attrs.frozen
class SourceRow:
    """A row of the by-source report: the source's ``type`` and ``alias``, and its label.

    In this project's reading ``type`` and ``alias`` are strings or ``None``, and the label is
    the alias, else the type. In upstream's they are the values as stored, :data:`ABSENT`
    for a missing field, and a label that would be absent is :data:`ABSENT`.
    """

    type: Any
    alias: Any
    label: Any
    value: int


@attrs.frozen
class TagRow:
    """A row of the by-tags report: a tag (its own label) and the conversations it tags."""

    tag: Any
    label: Any
    value: int


@attrs.frozen
class StatusRow:
    """A row of the by-status report."""

    status: Status
    label: str
    value: int


Row: TypeAlias = AgentRow | DepartmentRow | SourceRow | TagRow | StatusRow

#: A row as a report holds it: ``(label, key, value)``.
Ranked: TypeAlias = tuple[Any, Any, int]


def _source_row(label: Any, key: Any, value: int) -> SourceRow:
    kind, alias = key
    return SourceRow(type=kind, alias=alias, label=label, value=value)


_ROW_TYPES: dict[Grouping, Callable[[Any, Any, int], Row]] = {
    Grouping.AGENT: lambda label, key, value: AgentRow(agent_id=key, label=label, value=value),
    Grouping.DEPARTMENT: lambda label, key, value: DepartmentRow(
        department_id=key, label=label, value=value
    ),
    Grouping.SOURCE: _source_row,
    Grouping.TAGS: lambda label, key, value: TagRow(tag=key, label=label, value=value),
    Grouping.STATUS: lambda label, key, value: StatusRow(status=key, label=label, value=value),
}


@attrs.frozen
class Report:
    """One report of the Reports page.

    ``ranked`` holds the rows in order as ``(label, key, value)`` tuples (:attr:`rows` builds
    typed values from them when asked); ``total`` follows ``total_mode`` (see
    :func:`report_total`).
    """

    grouping: Grouping
    window: TimeWindow
    ranked: tuple[Ranked, ...]
    unspecified: int
    total: int
    total_mode: TotalMode = TotalMode.CONVSTATS

    @property
    def rows(self) -> tuple[Row, ...]:
        """The rows in order, as typed values (:class:`AgentRow`, :class:`DepartmentRow` …)."""
        build = _ROW_TYPES[self.grouping]
        return tuple(build(label, key, value) for label, key, value in self.ranked)

    @property
    def assigned(self) -> int:
        """The number of conversations counted in the rows."""
        return sum(value for _, _, value in self.ranked)


def report_total(
    grouping: Grouping, mode: TotalMode, assigned: int, unspecified: int, rooms: int | None
) -> int:
    """``total`` of a report whose rows hold ``assigned`` and which has ``unspecified``.

    This project's reading: ``assigned + unspecified``. Upstream's: ``assigned``, except for
    by-status, whose total is every room counted (``rooms``), however many rows hold each.
    """
    if mode is TotalMode.CONVSTATS:
        return assigned + unspecified
    if grouping is Grouping.STATUS:
        if rooms is None:
            raise ValueError("the store did not say how many rooms it counted for by-status")
        return rooms
    return assigned
