"""The request date rules against moment.js itself, in several server zones.

Strings come from a seeded generator (the same ones every run): the grammar of
:mod:`convstats.moment_dates`, RFC 2822 variants, and mutations of both. Each is given to
``moment(s)`` in a Node process whose local zone is the server zone, and to
:func:`~convstats.moment_dates.parse_moment`. Whatever moment reads by ISO 8601 or RFC 2822
must give the same instant and format here; whatever it refuses or reads only through its
``Date`` fallback (or ASP.NET's ``/Date(ms)/``) must be refused. Instants beyond Python's
years, or outside the window's range, are a documented difference, counted apart.
"""

from __future__ import annotations

import calendar
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convstats.dates import (
    EARLIEST,
    LATEST,
    MAX_YEARS,
    NOT_BEFORE,
    TOO_FAR_APART,
    parse_instant,
    window_from_strings,
    year_diff,
)
from convstats.errors import InvalidDate
from convstats.model import epoch_ms
from convstats.moment_dates import RFC_2822, parse_moment
from tests.moment_support import SUMMARY, MomentOracle, find_moment

pytestmark = pytest.mark.moment

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
)
SEED = 20240301
STRINGS = 24_000
PAIRS_PER_ZONE = 1_500

_MIN_MS = epoch_ms(datetime.min.replace(tzinfo=timezone.utc))
_MAX_MS = epoch_ms(datetime.max.replace(tzinfo=timezone.utc))

# -- the generator --------------------------------------------------------------------------

#: JavaScript's whitespace (its ``\s``), some of it.
SPACES = ("\t", "\n", "\v", "\f", "\r", " ", "\u00a0", "\u1680", "\u2007", "\u2028", "\u3000")
SPACES += ("\ufeff", "\u202f", "\u205f")
#: Characters that are whitespace to Python or once were to Unicode, but not to JavaScript.
NOT_SPACES = ("\u180e", "\u200b", "\u0085", "\u001f")


def _pick(rng: random.Random, *weighted: tuple[float, Callable[[], str]]) -> str:
    total = sum(weight for weight, _ in weighted)
    at = rng.uniform(0, total)
    for weight, make in weighted:
        at -= weight
        if at <= 0:
            return make()
    return weighted[-1][1]()


def _year(rng: random.Random) -> str:
    def six() -> str:
        value = rng.choice([rng.randint(0, 999_999), rng.randint(1900, 2100), 10_000, 275_760])
        return rng.choice("+-") + f"{value:06d}"

    return _pick(
        rng,
        (60, lambda: str(rng.randint(1970, 2100))),
        (8, lambda: str(rng.randint(1900, 1969))),
        (4, lambda: str(rng.randint(2101, 2999))),
        (5, lambda: f"{rng.randint(0, 99):04d}"),
        (4, lambda: f"{rng.randint(100, 1899):04d}"),
        (4, lambda: str(rng.randint(9990, 9999))),
        (15, six),
    )


def _field(rng: random.Random, low: int, high: int, odd: tuple[int, ...], width: int = 2) -> str:
    value = rng.choice(odd) if rng.random() < 0.12 else rng.randint(low, high)
    return f"{value:0{width}d}"


def _iso_date(rng: random.Random, extended: bool) -> tuple[str, bool]:
    """A date part and whether its form takes a time."""
    year, dash = _year(rng), "-" if extended else ""
    month = _field(rng, 1, 12, (0, 12, 13, 19, 99))
    day = _field(rng, 1, 28, (0, 29, 30, 31, 32, 99))
    week = _field(rng, 1, 52, (0, 53, 54, 99))
    weekday = _field(rng, 1, 7, (0, 8, 9), width=1)
    ordinal = _field(rng, 1, 365, (0, 365, 366, 367, 999), width=3)
    forms = [
        (f"{year}{dash}{month}{dash}{day}", True),
        (f"{year}{dash}W{week}{dash}{weekday}", True),
        (f"{year}{dash}W{week}", False),
        (f"{year}{dash}{ordinal}", True),
        (f"{year}{dash}{month}", False),
    ]
    if not extended:
        forms.append((year, False))
    return rng.choices(forms, weights=[50, 12, 6, 10, 8, 4][: len(forms)])[0]


def _iso_time(rng: random.Random, extended: bool) -> str:
    colon = ":" if extended else ""
    hour = _field(rng, 0, 23, (0, 23, 24, 25, 99))
    minute = _field(rng, 0, 59, (0, 59, 60, 99))
    second = _field(rng, 0, 59, (0, 59, 60, 99))
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
    digits = rng.choice([digits, digits, "9" * rng.randint(4, 25), "0" * rng.randint(1, 6)])
    fraction = rng.choice(".,") + digits
    return rng.choice(
        [
            hour,
            f"{hour}{colon}{minute}",
            f"{hour}{colon}{minute}{colon}{second}",
            f"{hour}{colon}{minute}{colon}{second}{fraction}",
        ]
    )


def _zone(rng: random.Random) -> str:
    hours = _field(rng, 0, 14, (12, 13, 14, 15, 23, 24, 99))
    minutes = rng.choice(["00", "00", "30", "45", "15", "59", "60", "99"])
    sign = rng.choice("+-")
    return rng.choice(
        [
            "Z",
            "Z",
            rng.choice(SPACES) + "Z",
            f"{sign}{hours}:{minutes}",
            f"{sign}{hours}{minutes}",
            f"{sign}{hours}",
        ]
    )


def iso_string(rng: random.Random) -> str:
    """A value of moment's ISO 8601 shape, its fields mostly in range."""
    extended = rng.random() < 0.75
    lead = rng.choice(["", "", "", "", "", " ", "  ", rng.choice(SPACES)])
    value, timed = _iso_date(rng, extended)
    if rng.random() < (0.75 if timed else 0.2):
        value += rng.choice("TT ") + _iso_time(rng, extended)
        if rng.random() < 0.6:
            value += _zone(rng)
    return lead + value


def _rarely(rng: random.Random, usual: str, *odd: str, chance: float = 0.1) -> str:
    return rng.choice(odd) if rng.random() < chance else usual


def rfc_2822_string(rng: random.Random) -> str:
    """An RFC 2822 date-time; now and then a wrong weekday, an odd field, a comment."""
    year = _pick(
        rng,
        (80, lambda: str(rng.randint(1970, 2099))),
        (10, lambda: f"{rng.randint(0, 99):02d}"),
        (5, lambda: f"{rng.randint(0, 999):03d}"),
        (5, lambda: str(rng.randint(1000, 9999))),
    )
    full_year = int(year) + (2000 if int(year) <= 49 else 1900 if int(year) <= 999 else 0)
    month = rng.randint(1, 12)
    length = calendar.monthrange(full_year, month)[1]
    day = rng.choice([0, length + 1, 32, 99]) if rng.random() < 0.1 else rng.randint(1, length)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    try:
        weekday = days[date(full_year, month, day).weekday()]
    except ValueError:
        weekday = rng.choice(days)
    weekday = _rarely(rng, weekday, rng.choice(days), weekday.lower(), chance=0.15)
    comma = _rarely(rng, ",", "", ", ", chance=0.2)
    head = rng.choice(["", "", f"{weekday}{comma} "])
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    month_text = _rarely(rng, months[month - 1], "MAR", "mar", "Sept", chance=0.05)
    hour = _rarely(rng, f"{rng.randint(0, 23):02d}", "24", "25", "7", chance=0.05)
    minute = _rarely(rng, f"{rng.randint(0, 59):02d}", "60", "5", chance=0.05)
    second = rng.choice(["", f":{rng.randint(0, 59):02d}", _rarely(rng, ":00", ":60", ":5")])
    zone = _rarely(
        rng,
        rng.choice(["+0000", "-0000", "+0530", "-0330", "+1345", "-0800", "+0100"]),
        *("UT", "GMT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "Z", "z"),
        *("+9999", "-2400", "+05:30", "+05", "A", "CET", "UTC", "gmt", "Est"),
        chance=0.35,
    )
    spaces = [
        _rarely(rng, " ", "  ", "\t", "\n ", "\u00a0", "\u2003", " (a comment) ", " ((nested)) ")
        for _ in range(4)
    ]
    day_text = _rarely(rng, str(day), f"{day:02d}", chance=0.5)
    body = f"{day_text}{spaces[0]}{month_text}{spaces[1]}{year}{spaces[2]}"
    body += f"{hour}:{minute}{second}{spaces[3]}{zone}"
    lead = _rarely(rng, "", " ", "\t", "\u00a0", "\ufeff")
    tail = _rarely(rng, "", " ", "\n", " (UTC)", " (a (nested) comment)", "\u3000")
    return lead + head + body + tail


_INSERTS = tuple("0123456789 -:TtZzW.,+") + SPACES + NOT_SPACES + ("(", ")", "/")


def mutate(rng: random.Random, value: str) -> str:
    """One to three random edits: separators dropped or doubled, stray characters, mixes."""
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(value) + 1)
        edit = rng.randrange(8)
        if edit == 0 and value:  # drop a character
            at = min(at, len(value) - 1)
            value = value[:at] + value[at + 1 :]
        elif edit == 1 and value:  # double one
            at = min(at, len(value) - 1)
            value = value[:at] + value[at] + value[at:]
        elif edit == 2:  # insert a stray one
            value = value[:at] + rng.choice(_INSERTS) + value[at:]
        elif edit == 3 and value:  # replace one
            at = min(at, len(value) - 1)
            value = value[:at] + rng.choice(_INSERTS) + value[at + 1 :]
        elif edit == 4 and len(value) > 1:  # swap two neighbours
            at = min(at, len(value) - 2)
            value = value[:at] + value[at + 1] + value[at] + value[at + 2 :]
        elif edit == 5:  # cut it short
            value = value[:at]
        elif edit == 6:  # trailing whitespace
            value += rng.choice(SPACES + NOT_SPACES)
        else:  # mix basic and extended: drop the separators of one part only
            separator = rng.choice("-:")
            head, tail = value[:at], value[at:]
            value = head.replace(separator, "") + tail if rng.random() < 0.5 else head + tail
    return value


#: Values worth trying on their own: odd offsets, edges, and the other paths.
FIXED = [
    "",
    " ",
    "2024-03-01T10:00+05:99",
    "2024-03-01T10:00-24",
    "2024-03-01T10:00+2400",
    "2024-03-01T10:00+14:00",
    "2024-03-01T10:00+14:01",
    "2024-03-01T10:00-12:00",
    "2024-03-01T10:00-12:01",
    "2024-03-01T10:00-00:00",
    "2024-03-01T24:00:00.0001",
    "2024-12-31T24:00",
    "9999-12-31T24:00Z",
    "0000-01-01T00:00+01:00",
    "0001-01-01T00:00+01:00",
    "0001-01-01T00:00-01:00",
    "+010000-01-01T00:00+14:00",
    "-000000-01-01",
    "+275760-09-13T00:00:00Z",
    "+275760-09-13T00:00:00.001Z",
    "-271821-04-20T00:00:00Z",
    "-271821-04-19T23:59:59.999Z",
    "/Date(1704067200000)/",
    "Date(1704067200000",
    "2024-03-01T10:00:00.9999999999999999999",
    "2024-03-01T10:00:00.9995",
    "Fri, 01 Mar 2024 09:00:00 +0000",
    "Sat, 01 Mar 2024 09:00:00 +0000",
    "1 Mar 2024 09:00 GMT",
    "01 Mar 49 09:00 GMT",
    "01 Mar 50 09:00 GMT",
    "01 Mar 999 09:00 GMT",
    "2024/03/01",
    "March 1, 2024",
    "2024-03-01Z",
    "2024-03-01 ",
    "1704067200000",
]


def transition_days(zone: ZoneInfo, years: range) -> list[date]:
    """The days on which ``zone`` changes its offset, in ``years``."""
    days = []
    for year in years:
        day = date(year, 1, 1)
        while day.year == year:
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            if start.utcoffset() != (start + timedelta(days=1)).utcoffset():
                days.append(day)
            day += timedelta(days=1)
    return days


def dst_string(rng: random.Random, changes: list[date]) -> str:
    """A wall time near a DST change of one of the zones, in some ISO form."""
    day = rng.choice(changes) + timedelta(days=rng.choice([0, 0, 0, 1, -1]))
    hour, minute = rng.choice([0, 0, 1, 1, 2, 2, 3, 23, 24]), rng.choice([0, 0, 1, 30, 45, 59])
    if rng.random() < 0.5:
        return f"{day:%Y-%m-%d}T{hour:02d}:{minute:02d}" + rng.choice(["", "", ":00.000"])
    return f"{day:%Y%m%d}" + rng.choice(["", f"T{hour:02d}{minute:02d}", f" {hour:02d}"])


def generated_strings(seed: int = SEED, count: int = STRINGS) -> list[str]:
    """The same ``count`` strings for a seed: grammar, RFC 2822, mutations, and :data:`FIXED`."""
    rng = random.Random(seed)
    changes = [day for zone in ZONES for day in transition_days(ZoneInfo(zone), range(1970, 2031))]
    strings = list(FIXED)
    while len(strings) < count:
        kind = rng.random()
        if kind < 0.1:
            strings.append(dst_string(rng, changes))
            continue
        base = iso_string(rng) if kind < 0.75 else rfc_2822_string(rng)
        strings.append(mutate(rng, base) if rng.random() < 0.35 else base)
    return strings


def _local_text(moment: datetime, rng: random.Random) -> str:
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    if rng.random() < 0.6:
        text += f"T{moment:%H:%M}"
        if rng.random() < 0.3:
            text += rng.choice(["Z", "+05:30", "-03:00", "+13:45"])
    return text


def generated_pairs(
    zone: ZoneInfo, seed: int = SEED, count: int = PAIRS_PER_ZONE
) -> list[tuple[str, str]]:
    """Window bounds about a year apart, many on the zone's DST days and at month ends."""
    rng = random.Random(f"{seed}:{zone.key}")
    changes = transition_days(zone, range(1990, 2031)) or [date(2024, 3, 31)]
    pairs = []
    while len(pairs) < count:
        kind = rng.random()
        if kind < 0.4:
            day = rng.choice(changes) + timedelta(days=rng.randint(-1, 1))
        elif kind < 0.55:
            day = date(rng.randint(1990, 2030), rng.randint(1, 12), 1) - timedelta(days=1)
        elif kind < 0.6:
            day = date(rng.choice([rng.randint(2, 99), rng.randint(9990, 9996)]), 3, 1)
        else:
            day = date(rng.randint(1900, 2100), 1, 1) + timedelta(days=rng.randint(0, 364))
        start = datetime(day.year, day.month, day.day, rng.randint(0, 23), rng.randint(0, 59))
        span = rng.choice(
            [timedelta(days=365 + rng.randint(-3, 9)), timedelta(days=rng.randint(-400, 800))]
        )
        end = start + span + timedelta(minutes=rng.randint(-180, 180))
        if rng.random() < 0.3:
            end = datetime.combine(rng.choice(changes) + timedelta(days=366), end.time())
        pairs.append((_local_text(start, rng), _local_text(end, rng)))
    return pairs


# -- the comparison -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracles(pytestconfig) -> Iterator[dict[str, MomentOracle]]:
    setup = find_moment()
    if isinstance(setup, str):
        pytest.skip(f"moment.js oracle not run: {setup}")
    started: dict[str, MomentOracle] = {}
    try:
        for zone in ZONES:
            started[zone] = MomentOracle(setup, zone)
        about = started[ZONES[0]].about
        pytestconfig.stash.setdefault(SUMMARY, []).append(
            f"moment {about['moment']} on node {about['node']}, one process per zone (TZ)"
        )
        yield started
    finally:
        for oracle in started.values():
            oracle.close()


def _report(pytestconfig, what: str, counts: Counter[str], mismatches: list[str]) -> None:
    """Put the figures in the terminal summary; fail on the first mismatches."""
    figures = "; ".join(f"{key} {value:,}" for key, value in counts.items())
    pytestconfig.stash.setdefault(SUMMARY, []).append(
        f"{what}: {figures}; MISMATCHES {len(mismatches):,}"
    )
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:40])


def _expected(answer: dict[str, Any]) -> tuple[int, str] | None:
    """The instant and format convstats must give for moment's answer, or None to refuse."""
    if not answer["valid"] or answer["path"] not in ("iso", "rfc2822"):
        return None
    return answer["ms"], answer["format"] if answer["path"] == "iso" else RFC_2822


def test_strings_read_as_moment_reads_them(oracles, pytestconfig):
    """Every generated string gets moment's validity, instant and format in every zone."""
    strings = generated_strings()
    counts: Counter[str] = Counter(compared=len(strings) * len(oracles))
    mismatches: list[str] = []
    for zone, oracle in oracles.items():
        tz = ZoneInfo(zone)
        for raw, answer in zip(strings, oracle.parse(strings), strict=True):
            counts[f"{answer['path']} {'valid' if answer['valid'] else 'invalid'}"] += 1
            expected = _expected(answer)
            if expected is not None and not _MIN_MS <= expected[0] <= _MAX_MS:
                counts["valid beyond Python's years, refused"] += 1
                expected = None
            parsed = parse_moment(raw, tz)
            got = None if parsed is None else (epoch_ms(parsed.instant), parsed.form)
            if got != expected:
                mismatches.append(f"{zone} {raw!r}: moment {answer}, convstats {got}")
                continue
            in_window = parsed is not None and EARLIEST <= parsed.instant < LATEST
            if parsed is not None and not in_window:
                counts["valid outside the window's years, refused by parse_instant"] += 1
            window = parse_instant(raw, tz)
            if window != (parsed.instant if parsed is not None and in_window else None):
                mismatches.append(f"{zone} {raw!r}: parse_instant gave {window}")
    _report(pytestconfig, f"strings ({len(strings):,} in each zone)", counts, mismatches)


def _upstream_verdict(answer: dict[str, Any]) -> str | None:
    """Upstream's checkDates message for a pair both of whose bounds moment reads."""
    if answer["years"] > MAX_YEARS:
        return TOO_FAR_APART
    if answer["start_ms"] > answer["end_ms"]:
        return NOT_BEFORE
    return None


def test_one_year_rule_matches_moment(oracles, pytestconfig):
    """year_diff and the window's verdict match moment's diff in every zone, DST days too."""
    counts: Counter[str] = Counter()
    mismatches: list[str] = []
    for zone, oracle in oracles.items():
        tz = ZoneInfo(zone)
        pairs = generated_pairs(tz)
        counts["compared"] += len(pairs)
        for (start, end), answer in zip(pairs, oracle.years(pairs), strict=True):
            where = f"{zone} {start!r} → {end!r}"
            start_at, end_at = parse_instant(start, tz), parse_instant(end, tz)
            if start_at is None or end_at is None or answer["years"] is None:
                counts["outside the window's years"] += 1
                continue
            if (epoch_ms(start_at), epoch_ms(end_at)) != (answer["start_ms"], answer["end_ms"]):
                mismatches.append(f"{where}: instants differ from moment's {answer}")
                continue
            years, expected = year_diff(start_at, end_at, tz), answer["years"]
            counts["more than a year" if expected > MAX_YEARS else "a year or less"] += 1
            if abs(years - expected) > 1e-9 or (years > MAX_YEARS) != (expected > MAX_YEARS):
                mismatches.append(f"{where}: year_diff {years!r}, moment {expected!r}")
            try:
                window_from_strings(start, end, tz)
                verdict = None
            except InvalidDate as refused:
                verdict = str(refused)
            if verdict != _upstream_verdict(answer):
                mismatches.append(f"{where}: {verdict!r}, upstream {_upstream_verdict(answer)!r}")
    _report(pytestconfig, f"window pairs ({PAIRS_PER_ZONE:,} in each zone)", counts, mismatches)
