"""Reading Rocket.Chat data from files: Extended JSON, mongoexport layouts, bad files."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sys
import threading
import tracemalloc
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convstats import TimeWindow, Visibility
from convstats.dates import parse_iso_datetime
from convstats.errors import DataFormatError
from convstats_adapters.files import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING,
    DateOutOfRange,
    decode_value,
    load_collections,
    reporting_progress,
)
from convstats_adapters.memory import MemoryStore
from tests.builders import by_agent

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
ROOMS_FILE = "rocketchat_room.json"


def no_rooms(folder):
    """Give ``folder`` the (empty) rooms export every export folder needs."""
    (folder / ROOMS_FILE).write_text("")


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
    counts = by_agent(store, JAN, Visibility.everything())
    assert dict(counts.per_agent) == {"ana": 1}
    assert counts.unspecified == 1
    assert store.agent_names(["ana"]).get("ana") == "Ana"


def test_sample_workspace_loads():
    """The bundled sample loads and every room in it is a counted or a non-livechat room."""
    store = MemoryStore.from_path("examples/sample")
    counts = by_agent(
        store,
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
    no_rooms(tmp_path)
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
    with pytest.raises(DataFormatError, match="no rocketchat_room\\.json") as caught:
        load_collections(tmp_path)
    assert caught.value.path == str(tmp_path)


def test_non_utf8_file(tmp_path):
    """Bytes that are not UTF-8 are refused with the file's name."""
    no_rooms(tmp_path)
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
    counts = by_agent(store, JAN, Visibility.everything())
    assert dict(counts.per_agent) == {"ana": 1}
    assert counts.unspecified == 3


def test_duplicate_user_ids_in_a_file_name_the_file(tmp_path):
    """A file whose users share an _id is refused, naming the path and the id."""
    no_rooms(tmp_path)
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
    assert by_agent(store, JAN, Visibility.everything()).unspecified == 1
    assert store.agent_names(["ana"]).get("ana") == "Ana"
    assert store.monitored_units("mon") == frozenset()


def test_line_separators_inside_strings_are_not_line_breaks(tmp_path):
    """U+0085, U+2028 and U+2029 inside a JSON Lines string stay part of the string."""
    no_rooms(tmp_path)
    (tmp_path / "users.json").write_text(
        '{"_id": "u1", "name": "Ana\u0085Bo\u2028Cy\u2029"}\r\n{"_id": "u2"}\n', encoding="utf-8"
    )
    users = load_collections(tmp_path)["users"]
    assert [user["_id"] for user in users] == ["u1", "u2"]
    assert users[0]["name"] == "Ana\u0085Bo\u2028Cy\u2029"


def test_bad_decimal_is_a_data_error(tmp_path):
    """A $numberDecimal that is not a number string is refused naming the file."""
    no_rooms(tmp_path)
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
    assert by_agent(store, JAN, Visibility.everything()).unspecified == 1


def room_lines(count):
    return "".join(
        json.dumps({"_id": f"r{n}", "t": "l", "ts": {"$date": "2024-01-02T00:00:00Z"}}) + "\n"
        for n in range(count)
    )


def test_only_the_reports_collections_are_read(tmp_path):
    """Files of collections the report does not read are never opened, however broken."""
    (tmp_path / ROOMS_FILE).write_text(json.dumps(RELAXED) + "\n")
    (tmp_path / "users.json").write_text('{"_id": "ana", "name": "Ana"}\n')
    (tmp_path / "rocketchat_message.json").write_text("{not json\n")
    (tmp_path / "rocketchat_settings.json").write_bytes(b"\xff\xfe")
    data = load_collections(tmp_path)
    assert set(data) == {"rocketchat_room", "users"}
    assert data["users"] == [{"_id": "ana", "name": "Ana"}]


def test_a_folder_without_rooms_says_what_is_missing(tmp_path):
    """A folder without the rooms' export is refused, never read as a workspace without rooms."""
    (tmp_path / "users.json").write_text('{"_id": "ana"}\n')
    with pytest.raises(
        DataFormatError, match=r"no rocketchat_room\.json or rocketchat_room\.json\.gz"
    ):
        load_collections(tmp_path)


def test_a_mongodump_folder_is_named_as_such(tmp_path):
    """A mongodump folder of BSON files is refused with how to export the collections instead."""
    (tmp_path / "rocketchat_room.bson").write_bytes(b"\x05\x00\x00\x00\x00")
    (tmp_path / "rocketchat_room.metadata.json").write_text("{}")
    with pytest.raises(DataFormatError, match="mongodump") as caught:
        load_collections(tmp_path)
    assert "mongoexport" in str(caught.value)
    assert "rocketchat_room.json" in str(caught.value)


def test_the_folder_above_the_exports_names_the_right_one(tmp_path):
    """Given the folder above the exports, the error names the folder that holds them."""
    exports = tmp_path / "rocketchat"
    exports.mkdir()
    no_rooms(exports)
    with pytest.raises(DataFormatError, match="give that folder") as caught:
        load_collections(tmp_path)
    assert str(exports) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(RELAXED) + "\n" + json.dumps(CANONICAL) + "\n",
        json.dumps([RELAXED, CANONICAL]),
        json.dumps(RELAXED) + "\n",
    ],
    ids=["lines", "array", "one-document"],
)
def test_one_collections_export_file_asks_for_its_folder(tmp_path, content):
    """Given rocketchat_room.json itself, the error says to give the folder holding it."""
    path = tmp_path / ROOMS_FILE
    path.write_text(content)
    with pytest.raises(DataFormatError, match="give the folder") as caught:
        load_collections(path)
    assert str(tmp_path) in str(caught.value).split(":", 1)[1]


def test_a_collections_file_without_rooms_is_refused(tmp_path):
    """An object of collections without the rooms is refused by name."""
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"users": [], "rocketchat_message": [{"x": 1}]}))
    with pytest.raises(DataFormatError, match="no 'rocketchat_room' collection"):
        load_collections(path)


def test_a_collections_file_keeps_only_the_reports_collections(tmp_path):
    """Other collections of an object of collections are left out, whatever their shape."""
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"rocketchat_room": [RELAXED], "rocketchat_message": 5}))
    assert set(load_collections(path)) == {"rocketchat_room"}


def test_gzip_exports_are_read(tmp_path):
    """<collection>.json.gz files and a gzip-compressed collections file read as plain ones."""
    with gzip.open(tmp_path / "rocketchat_room.json.gz", "wt") as rooms:
        rooms.write(json.dumps(RELAXED) + "\n" + json.dumps(CANONICAL) + "\n")
    with gzip.open(tmp_path / "users.json.gz", "wt") as users:
        users.write(json.dumps([{"_id": "ana", "name": "Ana"}]))
    store = MemoryStore.from_path(tmp_path)
    assert dict(by_agent(store, JAN, Visibility.everything()).per_agent) == {"ana": 1}
    assert store.agent_names(["ana"]).get("ana") == "Ana"
    single = tmp_path / "data.json.gz"
    single.write_bytes(gzip.compress(json.dumps({"rocketchat_room": [RELAXED]}).encode()))
    assert load_collections(single)["rocketchat_room"][0]["_id"] == "r1"


def test_a_broken_gzip_file_is_a_data_error(tmp_path):
    """A truncated gzip export is refused naming the file."""
    data = gzip.compress(room_lines(200).encode())
    (tmp_path / "rocketchat_room.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="gzip") as caught:
        load_collections(tmp_path)
    assert caught.value.path.endswith("rocketchat_room.json.gz")


def test_plain_and_gzip_of_one_collection_are_ambiguous(tmp_path):
    """Both users.json and users.json.gz in one folder are refused rather than one chosen."""
    no_rooms(tmp_path)
    (tmp_path / "users.json").write_text("")
    (tmp_path / "users.json.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(DataFormatError, match="keep one"):
        load_collections(tmp_path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    """A UTF-8 byte order mark before JSON Lines, an array or a collections file is skipped."""
    bom = b"\xef\xbb\xbf"
    (tmp_path / ROOMS_FILE).write_bytes(bom + (json.dumps(RELAXED) + "\n").encode())
    (tmp_path / "users.json").write_bytes(bom + json.dumps([{"_id": "ana"}]).encode())
    data = load_collections(tmp_path)
    assert data["rocketchat_room"][0]["_id"] == "r1"
    assert data["users"] == [{"_id": "ana"}]
    single = tmp_path / "data.json"
    single.write_bytes(bom + json.dumps({"rocketchat_room": []}).encode())
    assert load_collections(single) == {"rocketchat_room": []}


@pytest.mark.parametrize("array", [False, True], ids=["lines", "array"])
@pytest.mark.parametrize(
    ("value", "message"),
    [("1" * 5000, "number too long"), ("[" * 100_000 + "]" * 100_000, "nested too deep")],
    ids=["long-number", "deep-nesting"],
)
def test_absurd_values_are_data_errors_with_their_line(tmp_path, array, value, message):
    """A 5000-digit number or nesting deeper than the parser goes names its file and line."""
    document = '{"_id": "r2", "n": ' + value + "}"
    first = json.dumps(RELAXED)
    content = f"[{first},\n{document}]" if array else f"{first}\n{document}\n"
    (tmp_path / ROOMS_FILE).write_text(content)
    with pytest.raises(DataFormatError, match=message) as caught:
        load_collections(tmp_path)
    assert caught.value.line == 2
    assert caught.value.path == str(tmp_path / ROOMS_FILE)


def test_a_device_is_not_a_file():
    """A character device such as /dev/null is refused as not a regular file."""
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    with pytest.raises(DataFormatError, match="not a regular file"):
        load_collections("/dev/null")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    """A FIFO named like an export is refused before anything is read from it."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / ROOMS_FILE
    os.mkfifo(fifo)

    def writer():
        with contextlib.suppress(OSError), open(fifo, "w") as stream:
            stream.write(json.dumps(RELAXED) + "\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(DataFormatError, match="not a regular file") as caught:
            load_collections(tmp_path)
        assert "FIFO" in str(caught.value)
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer finish
        thread.join(timeout=30)
        os.close(reader)


def test_progress_is_reported_while_reading(tmp_path):
    """The progress callback hears each collection's count as it grows and when it ends."""
    (tmp_path / ROOMS_FILE).write_text(room_lines(2500))
    (tmp_path / "users.json").write_text('{"_id": "ana"}\n')
    heard = []
    with reporting_progress(lambda collection, read: heard.append((collection, read))):
        load_collections(tmp_path)
    assert heard == [
        ("rocketchat_room", 1024),
        ("rocketchat_room", 2048),
        ("rocketchat_room", 2500),
        ("users", 1),
    ]
    load_collections(tmp_path)
    assert len(heard) == 4  # outside the block nobody is told


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


@pytest.mark.parametrize("name", [ROOMS_FILE, "users.json", "rocketchat_room.json.gz"])
def test_a_directory_named_like_an_export_is_refused_and_closed(tmp_path, name):
    """A folder named like an export file is refused by name, and no descriptor stays open."""
    if name == "users.json":
        no_rooms(tmp_path)
    (tmp_path / name).mkdir()
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc/self/fd here")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(DataFormatError, match=r"not a regular file \(a directory\)") as caught:
            MemoryStore.from_path(tmp_path)
        assert caught.value.path == str(tmp_path / name)
    assert len(os.listdir("/proc/self/fd")) == before


def python_lines_run(function):
    """How many lines of Python ``function()`` runs: work counted without a clock."""
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        count += event == "line"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        function()
    finally:
        sys.settrace(previous)
    return count


def write_export(path, data):
    """Write ``data`` to ``path``, gzip-compressed when the name says so."""
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)


@pytest.mark.parametrize("name", [ROOMS_FILE, ROOMS_FILE + ".gz"])
@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda blank: blank + json.dumps(RELAXED).encode() + b"\n", id="lines"),
        pytest.param(lambda blank: b"[" + blank + json.dumps(RELAXED).encode() + b"]", id="array"),
    ],
)
def test_runs_of_blank_lines_cost_no_work_a_line(tmp_path, name, layout):
    """A million blank lines more add no line of Python: they are skipped by a scan of bytes."""

    def lines_run(blank_lines):
        write_export(tmp_path / name, layout(b"\n" * blank_lines + b" \r\n\t" * 1000))
        stores = []
        count = python_lines_run(lambda: stores.append(MemoryStore.from_path(tmp_path)))
        assert stores[0].room_count == 1
        return count

    lines_run(1000)  # the first load may import what loading needs
    assert lines_run(1_001_000) - lines_run(1000) < 1000


def huge_line_export(path, size):
    """Write ``path``: a room, then a line of ``size`` bytes in a string (gzip if so named)."""
    piece = b"a" * (1 << 20)
    head = json.dumps(RELAXED).encode() + b'\n{"_id": "r2", "note": "'
    if path.suffix != ".gz":
        with path.open("wb") as out:
            out.write(head)
            for _ in range(size >> 20):
                out.write(piece)
            out.write(b'"}\n')
        return
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(head)
        for _ in range(size >> 20):
            out.write(piece)
        out.write(b'"}\n')


@pytest.mark.parametrize("name", [ROOMS_FILE, ROOMS_FILE + ".gz"])
def test_a_huge_line_is_refused_before_it_is_held(tmp_path, name):
    """A line past 16 MiB is an error naming its file and line, read no further than that."""
    huge_line_export(tmp_path / name, 4 * MAX_DOCUMENT_BYTES)
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match="a line of more than 16 MiB") as caught:
            MemoryStore.from_path(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.path == str(tmp_path / name)
    assert caught.value.line == 2
    assert peak < 3 * MAX_DOCUMENT_BYTES


def test_a_line_of_the_limit_is_read(tmp_path):
    """A line of exactly 16 MiB, LF aside, is a line like any other."""
    room = json.dumps({**RELAXED, "note": ""}).encode()
    padded = room[:-2] + b"a" * (MAX_DOCUMENT_BYTES - len(room)) + b'"}'
    assert len(padded) == MAX_DOCUMENT_BYTES
    write_export(tmp_path / (ROOMS_FILE + ".gz"), padded + b"\n" + padded.replace(b"r1", b"r3"))
    assert MemoryStore.from_path(tmp_path).room_count == 2
    write_export(tmp_path / (ROOMS_FILE + ".gz"), padded + b"a\n")
    with pytest.raises(DataFormatError, match="a line of more than 16 MiB"):
        MemoryStore.from_path(tmp_path)


def test_an_array_longer_than_the_limit_is_read_a_document_at_a_time(tmp_path):
    """A --jsonArray export on one line may be any size; each of its documents is bounded."""
    note = "n" * 10_000
    rooms = [{**RELAXED, "_id": f"r{n}", "note": note} for n in range(2000)]
    (tmp_path / ROOMS_FILE).write_text(json.dumps(rooms))
    size = (tmp_path / ROOMS_FILE).stat().st_size
    assert size > MAX_DOCUMENT_BYTES
    tracemalloc.start()
    try:
        assert MemoryStore.from_path(tmp_path).room_count == 2000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * size  # the documents, and never the whole text beside them
    huge = {**RELAXED, "_id": "r2", "note": "n" * MAX_DOCUMENT_BYTES}
    text = json.dumps([RELAXED, huge], indent=1)
    (tmp_path / ROOMS_FILE).write_text(text)
    with pytest.raises(DataFormatError, match="a document of more than 16 MiB") as caught:
        load_collections(tmp_path)
    assert caught.value.line == text.count("\n", 0, text.index('"r2"'))  # its "{"


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_collections_file_is_read_a_document_at_a_time(tmp_path, gzipped):
    """A single JSON file of collections is bounded by the document too, not by the file."""
    path = tmp_path / ("data.json.gz" if gzipped else "data.json")
    huge = {**RELAXED, "_id": "r2", "note": "n" * MAX_DOCUMENT_BYTES}
    text = json.dumps({"users": [{"_id": "ana"}], "rocketchat_room": [RELAXED, huge]}, indent=1)
    write_export(path, text.encode())
    with pytest.raises(DataFormatError, match="a document of more than 16 MiB") as caught:
        load_collections(path)
    assert caught.value.line == text.count("\n", 0, text.index('"r2"'))  # its "{"
    deep = {"_id": "r2", "v": json.loads("[" * MAX_NESTING + "]" * MAX_NESTING)}
    write_export(path, json.dumps({"rocketchat_room": [RELAXED, deep]}).encode())
    with pytest.raises(DataFormatError, match="nested too deep") as caught:
        load_collections(path)
    assert caught.value.line == 1
    write_export(path, json.dumps({"rocketchat_room": [RELAXED], "other": [[1], 2]}).encode())
    assert load_collections(path) == load_collections(
        tmp_path / "data.json.gz" if gzipped else path
    )
