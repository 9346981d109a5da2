"""Reading Rocket.Chat data from files: Extended JSON, mongoexport layouts, bad files."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convstats import TimeWindow, Visibility
from convstats.dates import parse_iso_datetime
from convstats.errors import DataFormatError
from convstats_adapters.files import DateOutOfRange, decode_value, load_collections
from convstats_adapters.memory import MemoryStore

UTC = timezone.utc
JAN = TimeWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))

RELAXED = {
    "_id": "r1",
    "t": "l",
    "ts": {"$date": "2024-01-02T03:04:05.678Z"},
    "servedBy": {"_id": "ana"},
}
CANONICAL = {
    "_id": "r2",
    "t": "l",
    "ts": {"$date": {"$numberLong": "1704164645678"}},
    "metrics": {"chatDuration": {"$numberDouble": "12.5"}},
}


def test_extended_json_values(tmp_path):
    """Relaxed and canonical dates, numbers and ObjectIds become Python values."""
    path = tmp_path / "data.json"
    path.write_text(
        json.dumps(
            {
                "rocketchat_room": [RELAXED, CANONICAL],
                "users": [
                    {
                        "_id": {"$oid": "65a0c0ffee0000000000beef"},
                        "n": {"$numberLong": "7"},
                        "d": {"$numberDecimal": "1.10"},
                        "i": {"$numberInt": "3"},
                    }
                ],
            }
        )
    )
    data = load_collections(path)
    expected = datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert data["rocketchat_room"][0]["ts"] == expected
    assert data["rocketchat_room"][1]["ts"] == expected
    assert data["rocketchat_room"][1]["metrics"]["chatDuration"] == 12.5
    assert data["users"][0] == {
        "_id": "65a0c0ffee0000000000beef",
        "n": 7,
        "d": Decimal("1.10"),
        "i": 3,
    }


def test_mongoexport_directory_lines_and_arrays(tmp_path):
    """A directory holds JSON Lines files and --jsonArray files alike."""
    (tmp_path / "rocketchat_room.json").write_text(
        json.dumps(RELAXED) + "\n\n" + json.dumps(CANONICAL) + "\n"
    )
    (tmp_path / "users.json").write_text(json.dumps([{"_id": "ana", "name": "Ana"}], indent=2))
    store = MemoryStore.from_path(tmp_path)
    counts = store.count_conversations(JAN, Visibility.everything())
    assert dict(counts.per_agent) == {"ana": 1}
    assert counts.unspecified == 1
    assert store.agent_names(["ana"]) == {"ana": "Ana"}


def test_sample_workspace_loads():
    """The bundled sample loads and every room in it is a counted or a non-livechat room."""
    store = MemoryStore.from_path("examples/sample")
    counts = store.count_conversations(
        TimeWindow(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        Visibility.everything(),
    )
    assert counts.assigned + counts.unspecified == 420
    assert store.room_count == 432


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ('{"_id": "r1"}\n{"_id": \n', 2, "Expecting value"),
        ('{"_id": "r1"}\n[1, 2]\n', 2, "one JSON object"),
        ('{"_id": "r1"}\n\n{"ts": {"$date": "yesterday"}}\n', 3, r"invalid \$date"),
        ('{"ts": {"$date": "yesterday"}}\n', 1, r"invalid \$date"),
    ],
)
def test_bad_json_lines_name_file_and_line(tmp_path, content, line, message):
    """A malformed line is an error naming the file and the line."""
    (tmp_path / "rocketchat_room.json").write_text(content)
    with pytest.raises(DataFormatError, match=message) as caught:
        load_collections(tmp_path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{tmp_path / 'rocketchat_room.json'}, line {line}: ")


def test_bad_array_file_names_the_line(tmp_path):
    """Invalid JSON in an array file reports the line of the error."""
    path = tmp_path / "users.json"
    path.write_text('[\n  {"_id": "a"},\n  {"_id": }\n]')
    with pytest.raises(DataFormatError) as caught:
        load_collections(tmp_path)
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"rocketchat_room": {"_id": 1}}', "not an array"),
        ('{"rocketchat_room": [1]}', "document 0 of 'rocketchat_room' is not an object"),
        ('{"rocketchat_room": [{"ts": {"$date": {"$numberLong": "x"}}}]}', "invalid \\$numberLong"),
        ('{"rocketchat_room": [{"ts": {"$date": 1e300}}]}', "invalid \\$date"),
    ],
)
def test_bad_single_files(tmp_path, content, message):
    """A file of the wrong shape or with a bad Extended JSON value is refused by name."""
    path = tmp_path / "data.json"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message) as caught:
        load_collections(path)
    assert str(path) in str(caught.value)


def test_missing_and_empty_paths(tmp_path):
    """A missing path or a directory without exports is an error naming it."""
    with pytest.raises(DataFormatError, match="no such file"):
        load_collections(tmp_path / "nope.json")
    with pytest.raises(DataFormatError, match="no <collection>\\.json"):
        load_collections(tmp_path)


def test_non_utf8_file(tmp_path):
    """Bytes that are not UTF-8 are refused with the file's name."""
    (tmp_path / "users.json").write_bytes(b'{"name": "\xff"}\n')
    with pytest.raises(DataFormatError, match="UTF-8"):
        load_collections(tmp_path)


def test_duplicate_room_ids_are_refused():
    """Two rooms with one _id cannot both be kept, so loading refuses them."""
    with pytest.raises(ValueError, match="'r1'"):
        MemoryStore({"rocketchat_room": [{"_id": "r1"}, {"_id": "r1"}]})


def test_odd_documents_never_crash_a_report():
    """Rooms with odd ts, t or servedBy follow the counting rules instead of failing."""
    store = MemoryStore(
        {
            "rocketchat_room": [
                {
                    "_id": 1,
                    "t": "l",
                    "ts": datetime(2024, 1, 3),
                    "servedBy": {"_id": "ana"},
                },  # naive: UTC
                {"_id": 2, "t": "l", "ts": "2024-01-03T00:00:00Z", "servedBy": {"_id": "ana"}},
                {"_id": 3, "t": "l", "servedBy": {"_id": "ana"}},
                {"_id": 4, "t": "l", "ts": datetime(2024, 1, 3, tzinfo=UTC), "servedBy": ["ana"]},
                {
                    "_id": 5,
                    "t": "l",
                    "ts": datetime(2024, 1, 3, tzinfo=UTC),
                    "servedBy": {"_id": 9},
                },
                {"t": "l", "ts": datetime(2024, 1, 3, tzinfo=UTC)},  # no _id still counts
            ]
        }
    )
    counts = store.count_conversations(JAN, Visibility.everything())
    assert dict(counts.per_agent) == {"ana": 1}
    assert counts.unspecified == 3


def test_duplicate_user_ids_in_a_file_name_the_file(tmp_path):
    """A file whose users share an _id is refused, naming the path and the id."""
    (tmp_path / "users.json").write_text('{"_id": "ana"}\n{"_id": "ana"}\n')
    with pytest.raises(DataFormatError, match="'ana'") as caught:
        MemoryStore.from_path(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_odd_ids_never_crash_loading():
    """Array or object ids in any collection are kept out of look-ups instead of failing."""
    store = MemoryStore(
        {
            "rocketchat_room": [{"_id": ["x"], "t": "l", "ts": datetime(2024, 1, 3, tzinfo=UTC)}],
            "users": [{"_id": {"nested": 1}, "name": "Odd"}, {"_id": "ana", "name": "Ana"}],
            "rocketchat_livechat_unit_monitors": [{"monitorId": ["mon"], "unitId": "u1"}],
            "rocketchat_livechat_department_agents": [{"agentId": {"a": 1}, "departmentId": "d1"}],
        }
    )
    assert store.count_conversations(JAN, Visibility.everything()).unspecified == 1
    assert store.agent_names(["ana"]) == {"ana": "Ana"}
    assert store.monitored_units("mon") == frozenset()


def test_line_separators_inside_strings_are_not_line_breaks(tmp_path):
    """U+0085, U+2028 and U+2029 inside a JSON Lines string stay part of the string."""
    (tmp_path / "users.json").write_text(
        '{"_id": "u1", "name": "Ana\u0085Bo\u2028Cy\u2029"}\r\n{"_id": "u2"}\n', encoding="utf-8"
    )
    users = load_collections(tmp_path)["users"]
    assert [user["_id"] for user in users] == ["u1", "u2"]
    assert users[0]["name"] == "Ana\u0085Bo\u2028Cy\u2029"


def test_bad_decimal_is_a_data_error(tmp_path):
    """A $numberDecimal that is not a number string is refused naming the file."""
    (tmp_path / "users.json").write_text('{"n": {"$numberDecimal": [1, 2]}}\n')
    with pytest.raises(DataFormatError, match="numberDecimal"):
        load_collections(tmp_path)


def test_dates_beyond_python_years_are_kept_and_never_count(tmp_path):
    """A BSON date past year 9999 loads as DateOutOfRange, and its room counts nowhere."""
    (tmp_path / "rocketchat_room.json").write_text(
        '{"_id": "far", "t": "l", "ts": {"$date": {"$numberLong": "253402300800000"}}}\n'
        '{"_id": "near", "t": "l", "ts": {"$date": "9999-06-01T00:00:00Z"}}\n'
        '{"_id": "r1", "t": "l", "ts": {"$date": "2024-01-02T00:00:00Z"}}\n'
    )
    data = load_collections(tmp_path)
    assert data["rocketchat_room"][0]["ts"] == DateOutOfRange(253402300800000)
    store = MemoryStore(data)
    assert store.room_count == 3
    assert store.count_conversations(JAN, Visibility.everything()).unspecified == 1


def _exported_dates() -> st.SearchStrategy[str]:
    """Text in mongoexport's date shape, every field drawn from a little beyond its range."""

    def two(top: int) -> st.SearchStrategy[str]:
        return st.integers(0, top).map("{:02d}".format)

    fields = st.tuples(
        st.one_of(st.integers(0, 9999), st.sampled_from((1, 1969, 1970, 2024, 9999))).map(
            "{:04d}".format
        ),
        two(13),
        two(32),
        st.sampled_from(("T", "T", "T", " ", "t")),
        two(25),
        two(61),
        two(61),
        st.sampled_from(("", ".000", ".999", ".123", ".5", ".1234")),
        st.one_of(
            st.sampled_from(("Z", "Z", "", "z", "+00:00", "-00:00")),
            st.tuples(st.sampled_from("+-"), two(25), st.sampled_from((":", ":", "")), two(61)).map(
                "".join
            ),
        ),
    )
    return fields.map(lambda f: f"{f[0]}-{f[1]}-{f[2]}{f[3]}{f[4]}:{f[5]}:{f[6]}{f[7]}{f[8]}")


@given(st.one_of(_exported_dates(), st.text(max_size=30)))
def test_exported_dates_read_as_the_full_parser_reads_them(text):
    """The $date shortcut gives the full parser's instant and zone, or the same refusal."""
    expected = parse_iso_datetime(text)
    try:
        found = decode_value({"$date": text})
    except ValueError:
        assert expected is None
        return
    assert found == expected
    assert found.tzinfo is expected.tzinfo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29T23:59:59.999Z", datetime(2024, 2, 29, 23, 59, 59, 999_000, tzinfo=UTC)),
        ("2024-03-01T00:00:00+05:30", datetime(2024, 2, 29, 18, 30, tzinfo=UTC)),
        ("0001-01-01T00:00:00.000Z", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_exported_dates(text, expected):
    """mongoexport's own shape, with and without milliseconds or an offset, is read exactly."""
    assert decode_value({"$date": text}) == expected
