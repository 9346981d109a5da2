r"""Dates read exactly as moment.js 2.x reads a string: its ISO 8601 reader, then RFC 2822.

Upstream passes the ``start`` and ``end`` query parameters to ``moment(value)``, which tries
ASP.NET's ``/Date(ms)/``, then ISO 8601, then RFC 2822, and last JavaScript's ``Date``. This
module reproduces the ISO 8601 and RFC 2822 readers of moment 2.31 to the letter (the
differential test ``tests/test_moment_oracle.py`` compares it with moment itself); whatever only
ASP.NET's form or the engine-specific, deprecated ``Date`` fallback would read is refused.

**ISO 8601** is read in four steps, as moment does.

1. *Shape.* The whole value must be one of (``d`` a digit ``0-9``, ``ws`` JavaScript's ``\s``)::

       value     = ws* ( extended | basic )
       extended  = year "-" date-ext [ sep time-ext [ zone ] ]
       basic     = year date-bas [ sep time-bas [ zone ] ]
       year      = ( "+" | "-" ) dddddd | dddd
       date-ext  = dd "-" dd | "W" dd "-" d | "W" dd | ddd | dd
       date-bas  = dddd | "W" ddd | "W" dd | ddd | dd | ""
       sep       = "T" | " "
       time-ext  = dd [ ":" dd [ ":" dd [ ( "." | "," ) d+ ] ] ]
       time-bas  = dd [ dd [ dd [ ( "." | "," ) d+ ] ] ]
       zone      = ws* "Z" | ( "+" | "-" ) dd [ [ ":" ] dd ]
       ws        = TAB LF VT FF CR SPACE U+00A0 U+1680 U+2000-U+200A U+2028 U+2029 U+202F
                   U+205F U+3000 U+FEFF

   Nothing may follow (no trailing space), a zone needs a time, and ``Z`` is upper case.

2. *Format.* The date part takes the first format of :data:`_DATE_FORMATS` whose pattern
   occurs *anywhere* in it, the time part the first of :data:`_TIME_FORMATS`; a zone adds
   ``Z``. A date-only format (``YYYY-MM``, ``GGGG-[W]WW``, ``YYYYMM``, ``YYYY`` …) with a time
   is not ISO 8601 at all: RFC 2822 is tried next.

3. *Fields.* Each token of the format, left to right, takes the first text its own pattern
   (:data:`_FIELDS`) finds in what is left of the value, skipping whatever comes before it;
   other characters of the format are found the same way. So a six-digit year in a date
   that only a four-digit-year format matched is read from its first four digits:
   ``+002024-03`` is March of the year 20 and ``+201203`` is March 2012.

4. *Value.* Month 1-12, day within its month, ordinal day 1-365 (366 in a leap year), ISO
   week 1-52 (53 where the ISO year has it) with weekday 1-7 (Monday = 1), hour 0-24
   (24 only as ``24:00``, with zero minutes, seconds and fraction: midnight ending the day),
   minute and second 0-59; the fraction gives ``floor(float("0." + digits) * 1000)``
   milliseconds, so digits beyond the millisecond are dropped, except that a run of nines
   rounding up to 1000 is out of range. An offset ``±hh:mm`` needs minutes 0-59 and lies
   within -12:00 and +14:00 (moment 2.30 and earlier took any: ``+01:70`` was 130 minutes
   east); ``Z`` is UTC. Without one the wall time is read in the server time zone: a time
   that a DST change skips is read as if the change had not happened yet (``02:30``
   becomes ``03:30`` of the new offset), a repeated one as its first occurrence.

**RFC 2822**: comments (innermost parentheses), tabs and line feeds become spaces, every run
of whitespace becomes one space, leading and trailing whitespace goes; then the whole must be::

    [ Day [","] ws ] d[d] ws Mon ws dd[d[d]] ws dd ":" dd [ ":" dd ] ws zone

with ``Day`` one of ``Mon`` … ``Sun`` and true of the date, ``Mon`` one of ``Jan`` … ``Dec``
(capitalised as written), a year of two to four digits where 0-49 means 20xx and 50-999
means 1900 + it, and a zone ``UT``, ``GMT``, ``EST``/``EDT``, ``CST``/``CDT``, ``MST``/``MDT``,
``PST``/``PDT``, ``Z``, ``z``, or ``±hhmm`` (60 * hours + minutes, whatever the digits).
The day must lie within its month, hours are 0-23, minutes and seconds 0-59.

Instants are kept at moment's millisecond precision and must lie within Python's years 1 to
9999; moment's wider range (years -271821 to 275760) gives ``None`` here.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone, tzinfo

import attrs

__all__ = ["RFC_2822", "MomentDate", "parse_moment"]

#: :attr:`MomentDate.form` of a value read as RFC 2822 (moment's own name for the format).
RFC_2822 = "RFC 2822"


@attrs.frozen
class MomentDate:
    """A value moment.js reads as a valid date: its instant and the format that read it."""

    #: The instant, an aware UTC datetime at millisecond precision.
    instant: datetime
    #: The ISO format moment matched (its ``_f``, e.g. ``"YYYY-MM-DDTHH:mmZ"``), or
    #: :data:`RFC_2822`.
    form: str


def parse_moment(raw: str, tz: tzinfo = timezone.utc) -> MomentDate | None:
    """Read ``raw`` as ``moment(raw)`` does by ISO 8601 or RFC 2822, in the server zone ``tz``.

    Returns ``None`` for a value moment would refuse, one only its ``Date`` fallback (or its
    ASP.NET ``/Date(ms)/`` form) would read, and one whose instant lies outside Python's
    years 1 to 9999. ``tz`` gives the wall time of a value without offset.
    """
    iso = _read_iso(raw)
    if iso is not None:
        form, fields = iso
        instant = _iso_instant(fields, tz)
    else:
        form, instant = RFC_2822, _rfc_2822_instant(raw)
    return None if instant is None else MomentDate(instant, form)


# -- ISO 8601 -----------------------------------------------------------------------------

#: JavaScript's ``\s``: its WhiteSpace and LineTerminator characters (not Python's ``\s``,
#: which adds U+001C-U+001F and U+0085 and lacks U+FEFF).
_JS_SPACE_CHARS = (
    "\t\n\v\f\r \u00a0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WS = "[" + re.escape(_JS_SPACE_CHARS) + "]"


def _js(pattern: str) -> re.Pattern[str]:
    r"""A JavaScript regular expression: ``\s`` is JavaScript's and ``\d`` means 0-9."""
    return re.compile(pattern.replace(r"\s", _WS), re.VERBOSE | re.ASCII)


# Step 1.
_YEAR = r"(?: [+-]\d{6} | \d{4} )"
_ZONE = r"(?P<zone> [+-]\d\d (?: :?\d\d )? | \s*Z )"
_EXTENDED = _js(
    r"\s* (?P<date>" + _YEAR + r" - (?: \d\d-\d\d | W\d\d-\d | W\d\d | \d{3} | \d\d ) )"
    r"(?: (?P<sep>[T\ ]) (?P<time> \d\d (?: :\d\d (?: :\d\d (?: [.,]\d+ )? )? )? )" + _ZONE + "? )?"
)
_BASIC = _js(
    r"\s* (?P<date>" + _YEAR + r" (?: \d{4} | W\d{3} | W\d\d | \d{3} | \d\d | ) )"
    r"(?: (?P<sep>[T\ ]) (?P<time> \d\d (?: \d\d (?: \d\d (?: [.,]\d+ )? )? )? )" + _ZONE + "? )?"
)

# Step 2: (moment format, pattern found anywhere in the date part, time allowed).
_DATE_FORMATS = tuple(
    (form, _js(pattern), timed)
    for form, pattern, timed in (
        ("YYYYYY-MM-DD", r"[+-]\d{6}-\d\d-\d\d", True),
        ("YYYY-MM-DD", r"\d{4}-\d\d-\d\d", True),
        ("GGGG-[W]WW-E", r"\d{4}-W\d\d-\d", True),
        ("GGGG-[W]WW", r"\d{4}-W\d\d", False),
        ("YYYY-DDD", r"\d{4}-\d{3}", True),
        ("YYYY-MM", r"\d{4}-\d\d", False),
        ("YYYYYYMMDD", r"[+-]\d{10}", True),
        ("YYYYMMDD", r"\d{8}", True),
        ("GGGG[W]WWE", r"\d{4}W\d{3}", True),
        ("GGGG[W]WW", r"\d{4}W\d\d", False),
        ("YYYYDDD", r"\d{7}", True),
        ("YYYYMM", r"\d{6}", False),
        ("YYYY", r"\d{4}", False),
    )
)
_TIME_FORMATS = tuple(
    (form, _js(pattern))
    for form, pattern in (
        ("HH:mm:ss.SSSS", r"\d\d:\d\d:\d\d\.\d+"),
        ("HH:mm:ss,SSSS", r"\d\d:\d\d:\d\d,\d+"),
        ("HH:mm:ss", r"\d\d:\d\d:\d\d"),
        ("HH:mm", r"\d\d:\d\d"),
        ("HHmmss.SSSS", r"\d{6}\.\d+"),
        ("HHmmss,SSSS", r"\d{6},\d+"),
        ("HHmmss", r"\d{6}"),
        ("HHmm", r"\d{4}"),
        ("HH", r"\d\d"),
    )
)

#: A format's tokens: a bracketed literal, a field, or any other character (a literal).
_TOKEN = re.compile(r"\[[^\[]*\]|YYYYYY|YYYY|GGGG|SSSS|DDD|MM|DD|WW|HH|mm|ss|E|Z|.")


@attrs.define
class _Fields:
    """What step 3 read; ``None`` where the format has no such token or it found nothing."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    day_of_year: int | None = None
    week_year: int | None = None
    week: int | None = None
    weekday: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    millisecond: int | None = None
    #: Minutes east of UTC; ``None`` without an offset (the server zone's wall time).
    offset: int | None = None
    offset_in_range: bool = True


def _milliseconds(digits: str) -> int:
    # moment computes toInt(('0.' + digits) * 1000): a double, so .9999999999999999999 is
    # 1000 and out of range, while .0009 is 0.
    return math.floor(float("0." + digits) * 1000)


def _set_offset(fields: _Fields, text: str) -> None:
    if text in ("Z", "z"):
        fields.offset = 0
        return
    hours, minutes = int(text[1:3]), int(text[3:].lstrip(":") or 0)
    total = hours * 60 + minutes
    fields.offset = total if text[0] == "+" else -total
    fields.offset_in_range = minutes <= 59 and total <= (14 * 60 if text[0] == "+" else 12 * 60)


def _setter(name: str, convert: Callable[[str], int] = int) -> Callable[[_Fields, str], None]:
    def set_field(fields: _Fields, text: str) -> None:
        setattr(fields, name, convert(text))

    return set_field


#: Step 3: each field token's own pattern (moment's, as it parses without strict mode) and
#: what it sets.
_FIELDS: dict[str, tuple[re.Pattern[str], Callable[[_Fields, str], None]]] = {
    token: (_js(pattern), setter)
    for token, pattern, setter in (
        ("YYYYYY", r"[+-]?\d{1,6}", _setter("year")),
        # Always four digits: moment's two-digit-year rule for YYYY never applies here.
        ("YYYY", r"\d{1,4}", _setter("year")),
        ("GGGG", r"\d{1,4}", _setter("week_year")),
        ("MM", r"\d\d?", _setter("month")),
        ("DD", r"\d\d?", _setter("day")),
        ("DDD", r"\d{1,3}", _setter("day_of_year")),
        ("WW", r"\d\d?", _setter("week")),
        ("E", r"\d\d?", _setter("weekday")),
        ("HH", r"\d\d?", _setter("hour")),
        ("mm", r"\d\d?", _setter("minute")),
        ("ss", r"\d\d?", _setter("second")),
        ("SSSS", r"\d+", _setter("millisecond", _milliseconds)),
        ("Z", r"[Zz]|[+-]\d\d(?::?\d\d)?", _set_offset),
    )
}


def _read_iso(raw: str) -> tuple[str, _Fields] | None:
    """Steps 1 to 3: the format and the fields, or ``None`` when ISO 8601 does not apply."""
    shape = _EXTENDED.fullmatch(raw) or _BASIC.fullmatch(raw)
    if shape is None:
        return None
    form, timed = next((f, t) for f, p, t in _DATE_FORMATS if p.search(shape["date"]))
    if shape["time"] is not None:
        if not timed:
            return None
        form += shape["sep"] + next(f for f, p in _TIME_FORMATS if p.search(shape["time"]))
    if shape["zone"] is not None:
        form += "Z"

    fields, rest = _Fields(), raw
    for token in _TOKEN.findall(form):
        if token in _FIELDS:
            pattern, set_field = _FIELDS[token]
        else:
            pattern, set_field = re.compile(re.escape(token.strip("[]"))), None
        found = pattern.search(rest)
        if found is not None:
            rest = rest[found.end() :]
            if set_field is not None:
                set_field(fields, found.group())
    return form, fields


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


def _iso_instant(fields: _Fields, tz: tzinfo) -> datetime | None:
    """Step 4: the instant the fields name, or ``None`` when one is out of range."""
    # The first token of every format is a year read from the value's leading digits.
    if fields.week_year is not None:
        day = _week_date(fields.week_year, _given(fields.week, 1), _given(fields.weekday, 1))
    elif fields.year is None:
        return None
    elif fields.day_of_year is not None:
        day = _ordinal_date(fields.year, fields.day_of_year)
    else:
        day = _calendar_date(fields.year, _given(fields.month, 1), _given(fields.day, 1))
    hour, minute = _given(fields.hour, 0), _given(fields.minute, 0)
    second, millisecond = _given(fields.second, 0), _given(fields.millisecond, 0)
    if (
        day is None
        or not fields.offset_in_range
        or hour > 24
        or (hour == 24 and (minute, second, millisecond) != (0, 0, 0))
        or minute > 59
        or second > 59
        or millisecond > 999
    ):
        return None
    # An hour of 24 runs on into the next day, as JavaScript's Date counts it.
    wall = ((day * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millisecond
    if fields.offset is not None:
        return _from_epoch_ms(wall - fields.offset * 60_000)
    return _from_wall_time(wall, tz)


# -- RFC 2822 -----------------------------------------------------------------------------

_RFC_COMMENT_OR_FOLD = _js(r"\( [^()]* \) | [\n\t]")
_RFC_SPACE_RUN = _js(r"\s{2,}")
_RFC_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_RFC_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RFC_2822 = _js(
    r"(?: (?P<weekday>" + "|".join(_RFC_DAYS) + r") ,? \s )?"
    r"(?P<day>\d{1,2}) \s (?P<month>" + "|".join(_RFC_MONTHS) + r") \s (?P<year>\d{2,4}) \s"
    r"(?P<hour>\d\d) : (?P<minute>\d\d) (?: : (?P<second>\d\d) )? \s"
    r"(?: (?P<named>UT|GMT|[ECMP][SD]T) | (?P<military>[Zz]) | (?P<offset>[+-]\d{4}) )"
)
#: RFC 2822's obsolete zone names, in minutes east of UTC.
_RFC_ZONES = {
    "UT": 0,
    "GMT": 0,
    "EDT": -4 * 60,
    "EST": -5 * 60,
    "CDT": -5 * 60,
    "CST": -6 * 60,
    "MDT": -6 * 60,
    "MST": -7 * 60,
    "PDT": -7 * 60,
    "PST": -8 * 60,
}


def _rfc_2822_instant(raw: str) -> datetime | None:
    text = _RFC_SPACE_RUN.sub(" ", _RFC_COMMENT_OR_FOLD.sub(" ", raw)).strip(_JS_SPACE_CHARS)
    match = _RFC_2822.fullmatch(text)
    if match is None:
        return None
    year = int(match["year"])
    year += 2000 if year <= 49 else 1900 if year <= 999 else 0
    month = _RFC_MONTHS.index(match["month"]) + 1
    day = _calendar_date(year, month, int(match["day"]))
    hour, minute = int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    if day is None or hour > 23 or minute > 59 or second > 59:
        return None
    weekday = match["weekday"]
    if weekday is not None and _RFC_DAYS.index(weekday) != (day + 3) % 7:
        return None
    if match["named"] is not None:
        offset = _RFC_ZONES[match["named"]]
    elif match["military"] is not None:
        offset = 0
    else:
        sign = -1 if match["offset"][0] == "-" else 1
        offset = sign * (int(match["offset"][1:3]) * 60 + int(match["offset"][3:]))
    return _from_epoch_ms((((day * 24 + hour) * 60 + minute - offset) * 60 + second) * 1000)


# -- the calendar, for any year -----------------------------------------------------------

#: The Gregorian calendar, weekdays included, repeats every 400 years (20,871 weeks).
_CYCLE_YEARS, _CYCLE_DAYS = 400, 146_097
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_MIN_MS = (datetime.min.replace(tzinfo=timezone.utc) - _EPOCH) // _MS
_MAX_MS = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // _MS


def _in_cycle(year: int) -> tuple[int, int]:
    """A year of Python's calendar with the same days as ``year``, and their distance in days."""
    cycles = year // _CYCLE_YEARS - 1
    return year - cycles * _CYCLE_YEARS, cycles * _CYCLE_DAYS


def _calendar_date(year: int, month: int, day: int) -> int | None:
    """Days from 1970-01-01 to the date, or ``None`` when it does not exist."""
    same, shift = _in_cycle(year)
    try:
        return date(same, month, day).toordinal() - _EPOCH_ORDINAL + shift
    except ValueError:
        return None


def _ordinal_date(year: int, day_of_year: int) -> int | None:
    same, shift = _in_cycle(year)
    if not 1 <= day_of_year <= (366 if calendar.isleap(same) else 365):
        return None
    return date(same, 1, 1).toordinal() - _EPOCH_ORDINAL + day_of_year - 1 + shift


def _week_date(week_year: int, week: int, weekday: int) -> int | None:
    same, shift = _in_cycle(week_year)
    try:
        return date.fromisocalendar(same, week, weekday).toordinal() - _EPOCH_ORDINAL + shift
    except ValueError:
        return None


def _from_epoch_ms(ms: int) -> datetime | None:
    if not _MIN_MS <= ms <= _MAX_MS:
        return None
    return _EPOCH + timedelta(milliseconds=ms)


def _from_wall_time(wall_ms: int, tz: tzinfo) -> datetime | None:
    """The instant of a wall time in ``tz``, resolved as JavaScript's local ``Date`` does."""
    wall = _from_epoch_ms(wall_ms)
    if wall is None:
        return None
    # fold=0 is the first occurrence of a repeated time and, for a skipped one, the offset
    # before the change: JavaScript's choice for both.
    local = wall.replace(tzinfo=tz, fold=0)
    offset = local.utcoffset()
    if offset is None:
        raise ValueError(f"time zone {tz!r} gives no UTC offset for {wall:%Y-%m-%d %H:%M}")
    try:
        return wall - offset
    except OverflowError:
        return None
