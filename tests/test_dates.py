"""Request dates: parsing, the moment.js one-year rule, the order rule, precision."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convstats.dates import (
    END_INVALID,
    NOT_BEFORE,
    START_INVALID,
    TOO_FAR_APART,
    parse_instant,
    validate_window,
    window_from_strings,
    year_diff,
)
from convstats.errors import InvalidDate
from convstats.model import TimeWindow

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00.000Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T10:20:30Z", datetime(2024, 1, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-01-01T10:20Z", datetime(2024, 1, 1, 10, 20, tzinfo=UTC)),
        ("2024-01-01T10:20:30.5+02:00", datetime(2024, 1, 1, 8, 20, 30, 500_000, tzinfo=UTC)),
        ("2024-01-01T10:20:30-0130", datetime(2024, 1, 1, 11, 50, 30, tzinfo=UTC)),
        ("2024-01-01T10:20:30+05", datetime(2024, 1, 1, 5, 20, 30, tzinfo=UTC)),
        ("2024-01-01 10:20:30Z", datetime(2024, 1, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-01-01", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-02-29T23:59:59.999999Z", datetime(2024, 2, 29, 23, 59, 59, 999_000, tzinfo=UTC)),
    ],
)
def test_iso_8601_forms_are_read(raw, expected):
    """Dates, date-times with or without seconds, fractions and offsets are accepted."""
    assert parse_instant(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "2024-13-01",
        "2024-02-30",
        "2024-01-01T25:00:00Z",
        "2024-01-01T10:61Z",
        "2024-01-01T10:00:00+01:70",
        "2024-1-1",
        "01/02/2024",
        "2024-01-01T10:00:00ZZ",
        " 2024-01-01",
        "1704067200000",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:00:00-05:00",  # after year 9999 once in UTC
    ],
)
def test_anything_else_is_invalid(raw):
    """Non-ISO text, impossible calendar values and unrepresentable instants are invalid."""
    assert parse_instant(raw) is None


def test_values_without_offset_use_the_server_time_zone():
    """A date or date-time without an offset is read in the configured zone."""
    assert parse_instant("2024-07-01", BERLIN) == datetime(2024, 6, 30, 22, tzinfo=UTC)
    assert parse_instant("2024-01-01T12:00", BERLIN) == datetime(2024, 1, 1, 11, tzinfo=UTC)
    assert parse_instant("2024-01-01T12:00Z", BERLIN) == datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2023-01-01", "2024-01-04", 1.00806),
        ("2023-01-01", "2024-01-05", 1.01075),
        ("2023-01-01", "2024-01-01", 1.0),
        ("2024-01-31", "2024-02-29", 1 / 12),  # month-end clamping
        ("2024-01-01", "2023-01-01", -1.0),
    ],
)
def test_year_diff_matches_moment(start, end, expected):
    """The fractional year difference reproduces moment.js's worked values."""
    assert year_diff(parse_instant(start), parse_instant(end)) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("start", "end", "accepted"),
    [
        ("2023-01-01", "2024-01-04", True),
        ("2023-01-01", "2024-01-05", False),
        ("2023-03-01", "2024-03-04", True),
        ("2023-03-01", "2024-03-05", False),
        ("2023-01-01T00:00:00Z", "2024-01-04T23:59:59.999Z", True),  # days are truncated
    ],
)
def test_one_year_rule(start, end, accepted):
    """Ranges up to 1.01 calendar years (day-truncated) pass; longer ones are refused."""
    if accepted:
        window_from_strings(start, end)
    else:
        with pytest.raises(InvalidDate, match="less than 1 year apart") as caught:
            window_from_strings(start, end)
        assert str(caught.value) == TOO_FAR_APART


def test_day_truncation_uses_the_server_time_zone():
    """The same instants can be a year apart in one zone and more in another."""
    start, end = "2023-01-01T12:00:00Z", "2024-01-04T23:30:00Z"
    window_from_strings(start, end, UTC)
    with pytest.raises(InvalidDate):
        window_from_strings(start, end, BERLIN)  # 2024-01-05 00:30 in Berlin


def test_messages_and_their_order():
    """Start is checked before end, the year rule before the order rule."""
    cases = [
        (("nope", "nope"), START_INVALID),
        (("2024-01-01", "nope"), END_INVALID),
        (("2024-01-02", "2024-01-01"), NOT_BEFORE),
        (("2026-01-01", "2024-01-01"), NOT_BEFORE),  # reversed and long: still "before"
        (("2022-01-01", "2024-01-01"), TOO_FAR_APART),
    ]
    for (start, end), message in cases:
        with pytest.raises(InvalidDate) as caught:
            window_from_strings(start, end)
        assert str(caught.value) == message


def test_equal_bounds_are_valid_and_empty():
    """start == end is a valid, empty window."""
    window = window_from_strings("2024-01-01", "2024-01-01")
    assert not window.contains(datetime(2024, 1, 1, tzinfo=UTC))


def test_naive_datetimes_are_refused():
    """The typed API never guesses a zone for a naive datetime."""
    with pytest.raises(ValueError, match="naive"):
        validate_window(datetime(2024, 1, 1), datetime(2024, 1, 2, tzinfo=UTC))


@given(st.datetimes(timezones=st.just(UTC)))
def test_windows_keep_milliseconds(moment):
    """Window bounds are truncated to the millisecond, as BSON dates are."""
    window = TimeWindow(moment, moment + timedelta(days=1))
    assert window.start.microsecond % 1000 == 0
    assert timedelta(0) <= moment - window.start < timedelta(milliseconds=1)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    )
)
def test_formatted_instants_round_trip(moment):
    """Any instant written in ISO 8601 with an offset parses back to itself (to the ms)."""
    assert parse_instant(moment.isoformat()) == TimeWindow(moment, moment).start


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("0001-01-01", "0001-01-02", START_INVALID),
        ("2024-01-01", "9999-12-31", END_INVALID),
        ("9999-12-31", "9999-12-31", START_INVALID),
    ],
)
def test_dates_beyond_the_calendar_are_invalid(start, end, message):
    """Instants whose one-year check would leave Python's calendar are invalid dates."""
    with pytest.raises(InvalidDate) as caught:
        window_from_strings(start, end, ZoneInfo("America/New_York"))
    assert str(caught.value) == message
    with pytest.raises(InvalidDate):
        validate_window(datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 2, tzinfo=UTC))


def test_a_day_without_midnight_starts_at_its_first_hour():
    """Where DST skips midnight the day starts at 01:00, as moment.js's startOf('day')."""
    santiago = ZoneInfo("America/Santiago")
    start, end = parse_instant("2022-01-10T06:59Z"), parse_instant("2022-09-11T10:00Z")
    assert year_diff(start, end, santiago) == pytest.approx(0.6694668, abs=1e-6)
