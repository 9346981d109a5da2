"""Dates of a request: parsing and the window rules (docs/behaviour.md#dates)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timezone, tzinfo

from convstats.errors import InvalidDate
from convstats.model import TimeWindow
from convstats.moment_dates import parse_moment

__all__ = [
    "EARLIEST",
    "END_INVALID",
    "LATEST",
    "MAX_YEARS",
    "NOT_BEFORE",
    "START_INVALID",
    "TOO_FAR_APART",
    "parse_instant",
    "parse_iso_datetime",
    "validate_window",
    "window_from_strings",
    "year_diff",
]

START_INVALID = 'The "start" query parameter must be a valid date.'
END_INVALID = 'The "end" query parameter must be a valid date.'
TOO_FAR_APART = 'The "start" and "end" query parameters must be less than 1 year apart.'
NOT_BEFORE = 'The "start" query parameter must be before the "end" query parameter.'

#: moment.js ``diff(…, 'year', true)`` above this is "more than a year" upstream.
MAX_YEARS = 1.01

#: The instants a window may have: the one-year rule looks a month and a day beyond its
#: bounds, which Python's calendar (years 1 to 9999) must still hold.
EARLIEST = datetime(2, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)


def parse_instant(raw: str, tz: tzinfo = timezone.utc) -> datetime | None:
    """Parse a request's date: :func:`parse_iso_datetime`, limited to the window's range.

    An instant outside [:data:`EARLIEST`, :data:`LATEST`) gives ``None``, as does anything
    :func:`parse_iso_datetime` refuses.
    """
    instant = parse_iso_datetime(raw, tz)
    return instant if instant is not None and EARLIEST <= instant < LATEST else None


def parse_iso_datetime(raw: str, tz: tzinfo = timezone.utc) -> datetime | None:
    """Parse a date as upstream's ``moment(raw)`` does; return an aware UTC datetime or ``None``.

    Every ISO 8601 form moment.js reads (``2024-03-01``, ``2024-03-01T09:30:00.000Z``,
    ``20240301T0930+0100``, ``2024-W09-5``, ``2024-061``, ``2024-03``, ``2024`` …) and RFC 2822
    (``Fri, 01 Mar 2024 09:30:00 +0000``) is accepted, to the millisecond, with the same
    instant; :mod:`convstats.moment_dates` states the grammar. A value without an offset is
    read in ``tz``. Anything else, an out-of-range field, or an instant outside Python's years
    1 to 9999 gives ``None``.
    """
    parsed = parse_moment(raw, tz)
    return None if parsed is None else parsed.instant


def _start_of_day(moment: datetime, tz: tzinfo) -> datetime:
    local = moment.astimezone(tz)
    midnight = datetime.combine(local.date(), time(), tzinfo=tz)
    # Where a DST change skips midnight, the day starts at the first wall time that exists
    # (01:00), as moment.js's startOf('day') has it; the round trip through UTC finds it.
    return midnight.astimezone(timezone.utc).astimezone(tz)


def _add_months(moment: datetime, months: int, tz: tzinfo) -> datetime:
    """moment.js ``add(n, 'months')``: same wall time, day clamped to the month's length."""
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return datetime.combine(date(year, month, day), moment.timetz().replace(tzinfo=None), tzinfo=tz)


def _month_diff(a: datetime, b: datetime, tz: tzinfo) -> float:
    """moment.js ``monthDiff(a, b)``: fractional calendar months from ``a`` to ``b``, negated."""
    if a.day < b.day:
        return -_month_diff(b, a, tz)
    whole = (b.year - a.year) * 12 + (b.month - a.month)
    # Differences are taken between instants, not wall times, as moment.js subtracts epoch
    # milliseconds: a month with a DST change is an hour shorter or longer.
    b_at = b.timestamp()
    anchor = _add_months(a, whole, tz).timestamp()
    if b_at < anchor:
        anchor2 = _add_months(a, whole - 1, tz).timestamp()
        adjust = (b_at - anchor) / (anchor - anchor2)
    else:
        anchor2 = _add_months(a, whole + 1, tz).timestamp()
        adjust = (b_at - anchor) / (anchor2 - anchor)
    return -(whole + adjust) or 0.0


def year_diff(start: datetime, end: datetime, tz: tzinfo = timezone.utc) -> float:
    """``moment(end).startOf('day').diff(moment(start).startOf('day'), 'year', true)``.

    Both instants are truncated to the start of their day in ``tz``; the result is the
    fractional number of calendar months between them divided by 12 (negative when ``end``
    is before ``start``).
    """
    return _month_diff(_start_of_day(end, tz), _start_of_day(start, tz), tz) / 12


def validate_window(start: datetime, end: datetime, tz: tzinfo = timezone.utc) -> TimeWindow:
    """Apply upstream's window rules to aware datetimes and return the window.

    Raises :class:`~convstats.errors.InvalidDate` with upstream's message: a bound outside
    [:data:`EARLIEST`, :data:`LATEST`) is not a valid date; then the more-than-a-year rule,
    then the order rule. ``start == end`` is valid. Naive datetimes raise :class:`ValueError`.
    """
    window = TimeWindow(start, end)
    if not EARLIEST <= window.start < LATEST:
        raise InvalidDate(START_INVALID)
    if not EARLIEST <= window.end < LATEST:
        raise InvalidDate(END_INVALID)
    if year_diff(window.start, window.end, tz) > MAX_YEARS:
        raise InvalidDate(TOO_FAR_APART)
    if window.start > window.end:
        raise InvalidDate(NOT_BEFORE)
    return window


def window_from_strings(start: str, end: str, tz: tzinfo = timezone.utc) -> TimeWindow:
    """Parse and validate the ``start`` and ``end`` query parameters, in upstream's order."""
    start_at = parse_instant(start, tz)
    if start_at is None:
        raise InvalidDate(START_INVALID)
    end_at = parse_instant(end, tz)
    if end_at is None:
        raise InvalidDate(END_INVALID)
    return validate_window(start_at, end_at, tz)
