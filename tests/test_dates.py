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
    parse_iso_datetime,
    validate_window,
    window_from_strings,
    year_diff,
)
from convstats.errors import InvalidDate
from convstats.model import TimeWindow
from convstats.moment_dates import RFC_2822, MomentDate, parse_moment

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
        "1704067200000",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        "9999-12-31T23:00:00-05:00",  # after year 9999 once in UTC
    ],
)
def test_anything_else_is_invalid(raw):
    """Non-ISO text, impossible calendar values and unrepresentable instants are invalid."""
    assert parse_instant(raw) is None


def _at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected", "form"),
    [
        # extended dates
        ("2024-03-01", _at(2024, 3, 1), "YYYY-MM-DD"),
        ("+002024-03-01", _at(2024, 3, 1), "YYYYYY-MM-DD"),
        ("2024-03", _at(2024, 3, 1), "YYYY-MM"),
        ("2024-W10-2", _at(2024, 3, 5), "GGGG-[W]WW-E"),
        ("2024-W10", _at(2024, 3, 4), "GGGG-[W]WW"),
        ("2020-W53-7", _at(2021, 1, 3), "GGGG-[W]WW-E"),
        ("2025-W01-1", _at(2024, 12, 30), "GGGG-[W]WW-E"),
        ("2024-060", _at(2024, 2, 29), "YYYY-DDD"),
        ("2024-366", _at(2024, 12, 31), "YYYY-DDD"),
        # basic dates
        ("20240301", _at(2024, 3, 1), "YYYYMMDD"),
        ("+0020240301", _at(2024, 3, 1), "YYYYYYMMDD"),
        ("202403", _at(2024, 3, 1), "YYYYMM"),
        ("2024", _at(2024, 1, 1), "YYYY"),
        ("2024W102", _at(2024, 3, 5), "GGGG[W]WWE"),
        ("2024W10", _at(2024, 3, 4), "GGGG[W]WW"),
        ("2024060", _at(2024, 2, 29), "YYYYDDD"),
        # times, extended and basic, with T or one space
        ("2024-03-01T09", _at(2024, 3, 1, 9), "YYYY-MM-DDTHH"),
        ("2024-03-01 09:30", _at(2024, 3, 1, 9, 30), "YYYY-MM-DD HH:mm"),
        ("2024-03-01T09:30:15", _at(2024, 3, 1, 9, 30, 15), "YYYY-MM-DDTHH:mm:ss"),
        ("2024-03-01T09:30:15,5", _at(2024, 3, 1, 9, 30, 15, 500_000), "YYYY-MM-DDTHH:mm:ss,SSSS"),
        ("20240301T0930", _at(2024, 3, 1, 9, 30), "YYYYMMDDTHHmm"),
        ("20240301 093015.25", _at(2024, 3, 1, 9, 30, 15, 250_000), "YYYYMMDD HHmmss.SSSS"),
        ("2024-W10-2T09", _at(2024, 3, 5, 9), "GGGG-[W]WW-ETHH"),
        ("2024-060T09:30", _at(2024, 2, 29, 9, 30), "YYYY-DDDTHH:mm"),
        # digits beyond the millisecond are dropped, not rounded
        (
            "2024-03-01T09:30:15.123999Z",
            _at(2024, 3, 1, 9, 30, 15, 123_000),
            "YYYY-MM-DDTHH:mm:ss.SSSSZ",
        ),
        (
            "2024-03-01T09:30:15.9995Z",
            _at(2024, 3, 1, 9, 30, 15, 999_000),
            "YYYY-MM-DDTHH:mm:ss.SSSSZ",
        ),
        # offsets, after a time only
        ("2024-03-01 09:00 Z", _at(2024, 3, 1, 9), "YYYY-MM-DD HH:mmZ"),
        ("2024-03-01T09:00\u00a0Z", _at(2024, 3, 1, 9), "YYYY-MM-DDTHH:mmZ"),
        ("2024-03-01T09:00+05:30", _at(2024, 3, 1, 3, 30), "YYYY-MM-DDTHH:mmZ"),
        ("20240301T0900-0330", _at(2024, 3, 1, 12, 30), "YYYYMMDDTHHmmZ"),
        ("2024-03-01T09-05", _at(2024, 3, 1, 14), "YYYY-MM-DDTHHZ"),
        ("2024-03-01T09:00+14:00", _at(2024, 2, 29, 19), "YYYY-MM-DDTHH:mmZ"),
        ("2024-03-01T09:00-12:00", _at(2024, 3, 1, 21), "YYYY-MM-DDTHH:mmZ"),
        # 24:00 is the midnight that ends the day
        ("2024-03-01T24:00", _at(2024, 3, 2), "YYYY-MM-DDTHH:mm"),
        ("2024-12-31T24:00:00.000Z", _at(2025, 1, 1), "YYYY-MM-DDTHH:mm:ss.SSSSZ"),
        # leading whitespace, JavaScript's kind
        (" 2024-03-01", _at(2024, 3, 1), "YYYY-MM-DD"),
        ("\t\ufeff\u00a02024-03-01", _at(2024, 3, 1), "YYYY-MM-DD"),
        # RFC 2822
        ("Fri, 01 Mar 2024 09:00:00 +0000", _at(2024, 3, 1, 9), RFC_2822),
        ("1 Mar 2024 09:00 EST", _at(2024, 3, 1, 14), RFC_2822),
        ("Fri, 1 Mar 24 09:00:00 GMT (Greenwich)", _at(2024, 3, 1, 9), RFC_2822),
        ("  01 Mar 1999\t09:00:00  z ", _at(1999, 3, 1, 9), RFC_2822),
        ("01 Mar 50 09:00 -0130", _at(1950, 3, 1, 10, 30), RFC_2822),
        # moment reads a six-digit year by a four-digit format when only that one matches
        ("+201203", _at(2012, 3, 1), "YYYYMM"),
        ("-002024-060", _at(20, 2, 29), "YYYY-DDD"),
    ],
)
def test_every_form_moment_reads(raw, expected, form):
    """Each form of the date grammar gives moment.js's instant and the format it matched."""
    assert parse_moment(raw) == MomentDate(expected, form)
    assert parse_instant(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        # basic and extended mixed
        "2024-03-01T0930",
        "20240301T09:30",
        "2024-0301",
        "202403-01",
        # an offset, or a time, where the form takes none
        "2024-03-01Z",
        "2024-03-01+01:00",
        "2024-03T09:00",
        "2024-W10T09",
        "2024T09",
        "202403T0900",
        # what only JavaScript's Date or ASP.NET's form reads
        "2024/03/01",
        "March 1, 2024",
        "2024-03-01 ",
        "2024-03-01\n",
        "Sat, 01 Mar 2024 09:00:00 +0000",
        "/Date(1709283600000)/",
        # out-of-range fields
        "2024-00-10",
        "2024-03-00",
        "2023-02-29",
        "2024-04-31",
        "2024-03-01T24:01",
        "2024-03-01T24:00:00.001",
        "2024-03-01T10:00:60",
        "2024-03-01T10:00:00.99999999999999999",
        "2024-W00-1",
        "2024-W53-1",
        "2024-W10-0",
        "2024-W10-8",
        "2024-000",
        "2023-366",
        "2024-367",
        "2024-03-01T10:00+05:99",
        "2024-03-01T10:00+14:01",
        "2024-03-01T10:00-12:01",
        "2024-03-01T10:00-24",
        "2024-03-01T10:00+2400",
        "31 Feb 2024 09:00 +0000",
        "01 Mar 2024 24:00 +0000",
        "01 Mar 2024 09:60 +0000",
        # case and spelling
        "2024-03-01t10:00",
        "2024-03-01T10:00z",
        "01 mar 2024 09:00 GMT",
        "01 Mar 2024 09:00 CET",
        "01 Mar 2024 09:00 +05:30",
    ],
)
def test_what_moment_refuses_or_reads_only_by_date_is_invalid(raw):
    """Mixed forms, misplaced offsets, Date-only text and out-of-range fields are invalid."""
    assert parse_moment(raw) is None
    assert parse_instant(raw) is None


def test_wall_times_a_dst_change_skips_or_repeats():
    """A skipped wall time moves forward, a repeated one is its first occurrence, as in JS."""
    assert parse_instant("2024-03-31T02:30", BERLIN) == _at(2024, 3, 31, 1, 30)
    assert parse_instant("2024-10-27T02:30", BERLIN) == _at(2024, 10, 27, 0, 30)
    assert parse_instant("2024-03-31T24:00", BERLIN) == _at(2024, 3, 31, 22)


def test_the_export_loader_keeps_reading_mongoexport_dates():
    """parse_iso_datetime reads a relaxed Extended JSON date, and years beyond the window."""
    assert parse_iso_datetime("2024-01-01T00:00:00.000Z") == _at(2024, 1, 1)
    assert parse_iso_datetime("9999-06-01T00:00:00.000Z") == _at(9999, 6, 1)
    assert parse_instant("9999-06-01T00:00:00.000Z") is None
    assert parse_iso_datetime("10000-01-01T00:00:00.000Z") is None


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
