"""The streaming loader reads exactly the facts, and the errors, of the reference loader."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from convstats import Grouping, TimeWindow, Visibility
from convstats.errors import DataFormatError, MissingDependency
from convstats_adapters import documents as doc
from convstats_adapters.files import MAX_NESTING, load_collections
from convstats_adapters.memory import MemoryStore, loader
from convstats_adapters.memory.table import FactTable
from tests.builders import by_agent
from tests.test_strategies import without_numpy

pytestmark = pytest.mark.skipif(
    not loader.fast_loader_available(), reason="msgspec (extra 'fast') is not installed"
)

HEX = "65f1a0000000000000000001"
#: Wrappers that the reference refuses: kept out of the fields the report does not read.
DATES = st.sampled_from(
    (
        {"$date": "2024-01-02T03:04:05.678Z"},
        {"$date": "2024-01-02T03:04:05.678Z"},
        {"$date": "2024-02-29T23:59:59.999Z"},
        {"$date": "2024-01-02T03:04:05Z"},
        {"$date": "2024-01-02T03:04:05.678+02:00"},
        {"$date": "0001-01-01T00:00:00.000Z"},
        {"$date": "9999-12-31T23:59:59.999Z"},
        {"$date": {"$numberLong": "1704164645678"}},
        {"$date": 1704164645678},
        {"$date": 253402300800000},
        {"$date": "2024-01-02T03:04:05.678Z", "note": 1},
        {},
    )
)
BAD_DATES = st.sampled_from(
    (
        {"$date": "2024-02-30T00:00:00.000Z"},
        {"$date": "2024-01-02T24:00:00.000Z"},
        {"$date": "0000-01-01T00:00:00.000Z"},
        {"$date": "yesterday"},
        {"$date": 1.5},
        {"$date": True},
        {"$date": {"$numberLong": "x"}},
    )
)
IDS = st.one_of(
    st.sampled_from(("r1", "r2", "r3", "room-\u00e9", "")),
    st.text(max_size=8),
    st.sampled_from(
        (
            {"$oid": HEX},
            7,
            {"$numberInt": "7"},
            None,
            {"a": 1},
            [1],
            True,
            {"$oid": 5},
        )
    ),
)
AGENT_IDS = st.one_of(
    st.sampled_from(("agent-1", "agent-2", "")),
    st.sampled_from(({"$oid": HEX}, 5, None, {"$oid": HEX, "x": 1}, ["agent-1"])),
)
SERVED = st.one_of(
    st.fixed_dictionaries({"_id": AGENT_IDS}, optional={"username": st.just("u")}),
    st.sampled_from(
        (
            {"username": "ghost"},
            None,
            "agent-1",
            [{"_id": "agent-1"}],
            {"$numberInt": "3"},
            {"$oid": "agent-1"},
            {"$date": "2024-01-02T03:04:05.678Z"},
            {"_id": "agent-1", "$date": "x"},
        )
    ),
)
DEPARTMENTS = st.sampled_from(("dep-1", "dep-2", None, 7, {"$oid": HEX}, ["dep-1"], {"a": 1}))
ANCESTORS = st.sampled_from(
    (["unit-1"], [], "unit-1", None, [1, "unit-2"], [{"$oid": HEX}], ("unit-1", "unit-2"))
)
STATES = st.sampled_from(
    (True, False, 1, 0, 1.0, "true", None, {"$numberInt": "1"}, [True], {"a": 1})
)
METRICS = st.sampled_from(
    (
        {"chatDuration": 12},
        {"chatDuration": 0},
        {"chatDuration": 0.0},
        {"chatDuration": {"$numberDouble": "1.5"}},
        {"chatDuration": {"$numberInt": "0"}},
        {"chatDuration": None, "reaction": {"ft": 3}},
        {},
        None,
        [{"chatDuration": 3}],
        [{}],
        {"$date": "2024-01-02T03:04:05.678Z"},
    )
)
SOURCES = st.sampled_from(
    (
        {"type": "widget"},
        {"type": "app", "alias": "WhatsApp", "id": "x"},
        {"alias": None},
        {"type": "widget", "alias": None},
        None,
        "widget",
        [{"type": "widget"}],
        {"type": {"$numberInt": "5"}},
        {"type": True},
        {"type": 1},
        {"$oid": HEX},
    )
)
TAGS = st.sampled_from(
    (
        ["vip"],
        ["vip", "vip"],
        [],
        None,
        "vip",
        [None, 5],
        [True, 1],
        [1, 1.0],
        [{"$date": "2024-01-02T03:04:05.678Z"}],
        [["a"]],
        [[]],
        [{"$oid": HEX}],
        {"$numberInt": "3"},
    )
)
UNREAD = st.dictionaries(
    st.sampled_from(("msgs", "v", "_updatedAt", "lm", "x")),
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=6),
        st.just({"_id": "v1", "token": "t"}),
        DATES,
    ),
    max_size=3,
)
MISSING = object()


@st.composite
def room_documents(draw: st.DrawFn, bad: bool) -> dict[str, Any]:
    """A room as Extended JSON: every read field sometimes odd, missing, or (``bad``) wrong."""
    room: dict[str, Any] = {}
    fields = {
        "_id": IDS,
        "t": st.sampled_from(("l", "l", "l", "c", ["l"], None, 5, {"$numberInt": "1"})),
        "ts": st.one_of(DATES, BAD_DATES) if bad else DATES,
        "servedBy": SERVED,
        "departmentId": DEPARTMENTS,
        "departmentAncestors": ANCESTORS,
        "open": STATES,
        "onHold": STATES,
        "metrics": METRICS,
        "source": SOURCES,
        "tags": TAGS,
    }
    for name, values in fields.items():
        value = draw(st.one_of(values, st.just(MISSING)) if name != "_id" else values)
        if value is not MISSING:
            room[name] = value
    if draw(st.integers(0, 9)) == 0:
        room.pop("_id", None)
    room.update(draw(UNREAD))
    keys = list(room)
    return {key: room[key] for key in draw(st.permutations(keys))}


SCALARS = st.sampled_from((True, False, 1, 0, 1.0, 0.0, "", "true", None))


@st.composite
def typical_rooms(draw: st.DrawFn, room_id: int) -> dict[str, Any]:
    """A room the typed structs take whole, which the streaming reader reads, not the reference.

    Its report fields hold scalars, in their usual containers.
    """
    room: dict[str, Any] = {
        "_id": f"room-{room_id}",
        "t": "l",
        "ts": {"$date": "2024-01-02T03:04:05.678Z"},
        "departmentId": draw(st.sampled_from(("dep-1", "dep-2"))),
    }
    optional = {
        "servedBy": st.fixed_dictionaries({"_id": st.sampled_from(("agent-1", "agent-2"))}),
        "open": SCALARS,
        "onHold": SCALARS,
        "metrics": st.fixed_dictionaries({}, optional={"chatDuration": SCALARS}),
        "source": st.fixed_dictionaries({}, optional={"type": SCALARS, "alias": SCALARS}),
        "tags": st.one_of(st.lists(SCALARS, max_size=3), SCALARS),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            room[name] = draw(values)
    return room


@given(
    data=st.data(),
    size=st.integers(1, 30),
    form=st.sampled_from(("lines", "gzip", "array", "pretty array")),
)
def test_typical_rooms_stream_to_the_reference_facts(
    tmp_path_factory: Any, data: Any, size: int, form: str
):
    """Rooms the structs take are streamed (in chunks and line by line) to the same facts.

    Whatever the form of the file: JSON Lines, gzipped, or one array (compact, as
    mongoexport --jsonArray writes it, or indented).
    """
    rooms = [data.draw(typical_rooms(n)) for n in range(size)]
    directory = tmp_path_factory.mktemp("export")
    if form == "array":
        (directory / "rocketchat_room.json").write_text(json.dumps(rooms, separators=(",", ":")))
    elif form == "pretty array":
        (directory / "rocketchat_room.json").write_text(json.dumps(rooms, indent=2))
    else:
        write_rooms(directory, [json.dumps(room) for room in rooms], "\n")
        if form == "gzip":
            plain = directory / "rocketchat_room.json"
            (directory / "rocketchat_room.json.gz").write_bytes(gzip.compress(plain.read_bytes()))
            plain.unlink()
    same_reading(directory)
    with small_chunks():
        same_reading(directory)
    if form == "gzip":  # one form of each example: a pool of workers takes a while to start
        with in_parallel():
            same_reading(directory)


@st.composite
def export_lines(draw: st.DrawFn) -> list[str]:
    """JSON Lines text of rooms, with the odd lines of real files mixed in."""
    bad = draw(st.booleans())
    rooms = draw(st.lists(room_documents(bad), max_size=12))
    lines = [json.dumps(room, ensure_ascii=draw(st.booleans())) for room in rooms]
    odd = st.sampled_from(
        (
            "",
            "   ",
            "\t",
            "[1, 2]",
            "{bad",
            '{"_id": "x"} {"_id": "y"}',
            '{"_id": "x"},{"_id": "y"}',
        )
        if bad
        else ("", "   ", "\t")
    )
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(odd))
    return lines


def reference_table(rooms: list[dict[str, Any]]) -> FactTable:
    """The rooms as MemoryStore builds them from documents (its keys for rooms without _id)."""
    built = FactTable(indexed=True)
    anonymous = iter(range(len(rooms)))
    built.load(
        (("<no _id>", next(anonymous)) if "_id" not in room else doc.id_key(room["_id"]), room)
        for room in rooms
    )
    return built


def outcome(read: Any) -> tuple[str, Any]:
    try:
        return "ok", read()
    except DataFormatError as error:
        return "error", (error.line, str(error))


def same_reading(directory: Path) -> None:
    """The loader reads ``directory`` as the reference does: facts, or the same error."""

    def reference() -> Any:
        rooms = load_collections(directory, collections=(doc.ROOMS,)).get(doc.ROOMS, [])
        try:
            facts: Any = reference_table(rooms).facts()
        except ValueError as error:
            facts = str(error)
        return (facts,)

    def fast() -> Any:
        try:
            read = loader.read_rooms(directory, indexed=True)
        except DataFormatError as error:
            if "two rooms have" not in str(error):
                raise
            return (str(error).split(": ", 1)[1],)
        return (read.table.facts(),)

    expected, found = outcome(reference), outcome(fast)
    if expected[0] == "ok" and isinstance(expected[1][0], str):
        # Two rooms with one _id: the same one is named (with its file and line, here).
        assert found[0] == "ok"
        assert found[1][0] == expected[1][0]
        return
    assert found == expected


def write_rooms(directory: Path, lines: list[str], ending: str) -> None:
    (directory / "rocketchat_room.json").write_bytes((ending.join(lines) + ending).encode())


@contextmanager
def small_chunks() -> Iterator[None]:
    """A chunk of 64 bytes: a few lines each, so that chunks of both kinds meet in one file."""
    saved = loader.CHUNK_BYTES
    loader.CHUNK_BYTES = 64
    try:
        yield
    finally:
        loader.CHUNK_BYTES = saved


@given(lines=export_lines(), ending=st.sampled_from(("\n", "\r\n", "\r")))
@example(lines=['{"_id": "a"} {"_id": "b"}', ""], ending="\n")
@example(lines=['{"$date": "2024-01-02T03:04:05.678Z"}'], ending="\n")
@example(lines=['{"_id": "a", "ts": {"$date": "x"}, "t": "c"}'], ending="\n")
def test_rooms_read_as_the_reference_reads_them(tmp_path_factory: Any, lines: Any, ending: str):
    """Every room line, odd or not, gives the reference's facts or the reference's error."""
    directory = tmp_path_factory.mktemp("export")
    write_rooms(directory, lines, ending)
    same_reading(directory)
    with small_chunks():
        same_reading(directory)
    with in_parallel():
        same_reading(directory)
    with without_numpy(), small_chunks():
        same_reading(directory)


USERS = st.fixed_dictionaries(
    {"_id": st.sampled_from(("ana", "bo", {"$oid": HEX}, 5))},
    optional={
        "name": st.sampled_from(("Ana", "", None, 7, {"$numberInt": "1"})),
        "roles": st.sampled_from((["admin"], [], "admin", None, [1, "bot"])),
        "services": st.just({"resume": {"loginTokens": [{"hashedToken": "h"}]}}),
    },
)


@given(users=st.lists(USERS, max_size=6), array=st.booleans())
def test_users_read_as_the_reference_reads_them(tmp_path_factory: Any, users: Any, array: bool):
    """Users keep exactly the fields the directory reads, whichever layout the file has."""
    directory = tmp_path_factory.mktemp("export")
    text = json.dumps(users) if array else "".join(json.dumps(user) + "\n" for user in users)
    (directory / "users.json").write_text(text)
    same_reading(directory)


def test_an_array_file_of_rooms_is_read_by_the_reference(tmp_path: Path) -> None:
    """A --jsonArray export of rooms gives the same facts as its JSON Lines twin."""
    rooms = [
        {"_id": "r1", "t": "l", "ts": {"$date": "2024-01-02T03:04:05.678Z"}},
        {"t": "l", "ts": {"$date": "2024-01-02T03:04:05.678Z"}, "servedBy": {"_id": "a"}},
    ]
    (tmp_path / "rocketchat_room.json").write_text(json.dumps(rooms, indent=2))
    same_reading(tmp_path)


def test_a_duplicate_room_names_its_file_and_line(tmp_path: Path) -> None:
    """Two rooms with one _id are refused at the line of the second."""
    write_rooms(tmp_path, ['{"_id": "r1"}', "", '{"_id": "r2"}', '{"_id": "r1"}'], "\n")
    with pytest.raises(DataFormatError, match="two rooms have the _id 'r1'") as caught:
        MemoryStore.from_path(tmp_path)
    assert caught.value.line == 4
    assert caught.value.path == str(tmp_path / "rocketchat_room.json")


def test_unread_fields_are_not_checked_for_extended_json(tmp_path: Path) -> None:
    """A bad wrapper in a field the report does not read is no error for the fast loader."""
    write_rooms(
        tmp_path,
        ['{"_id": "r1", "t": "l", "_updatedAt": {"$date": "yesterday"}}'],
        "\n",
    )
    with pytest.raises(DataFormatError, match="invalid"):
        load_collections(tmp_path)
    assert loader.read_rooms(tmp_path, indexed=False).table.facts()


def test_from_path_counts_as_the_documents_do(tmp_path: Path) -> None:
    """A store loaded by the fast loader answers as one built from the same documents."""
    lines = [
        json.dumps(
            {
                "_id": f"r{n}",
                "t": "l",
                "ts": {"$date": f"2024-01-{n + 1:02d}T00:00:00.000Z"},
                "servedBy": {"_id": f"agent-{n % 3}"},
                "departmentId": f"dep-{n % 2}",
            }
        )
        for n in range(20)
    ] + ['{"t": "l", "ts": {"$date": "2024-01-05T00:00:00.000Z"}}']
    write_rooms(tmp_path, lines, "\n")
    utc = timezone.utc
    window = TimeWindow(datetime(2024, 1, 3, tzinfo=utc), datetime(2024, 1, 15, tzinfo=utc))
    fast = MemoryStore.from_path(tmp_path)
    reference = MemoryStore(load_collections(tmp_path))
    for visibility in (
        Visibility.everything(),
        Visibility(restricted=True, department_ids={"dep-1"}),
    ):
        assert by_agent(fast, window, visibility) == by_agent(reference, window, visibility)
    # Rooms without _id loaded from the file keep their own keys: a new one is one more.
    fast.put_room({"t": "l", "ts": datetime(2024, 1, 5, tzinfo=utc)})
    assert fast.room_count == reference.room_count + 1


def test_without_msgspec_from_path_uses_the_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the extra 'fast', a directory is read by the reference loader, as before."""
    write_rooms(
        tmp_path, ['{"_id": "r1", "t": "l", "ts": {"$date": "2024-01-02T03:04:05.678Z"}}'], "\n"
    )
    monkeypatch.setattr(loader, "msgspec", None)
    assert not loader.fast_loader_available()
    assert MemoryStore.from_path(tmp_path).room_count == 1
    with pytest.raises(MissingDependency, match=r"convstats\[fast\]"):
        loader.read_rooms(tmp_path, indexed=False)


# -- both loaders through MemoryStore.from_path --------------------------------------------------


@contextmanager
def reference_loader() -> Iterator[None]:
    """MemoryStore.from_path as it loads without msgspec: through files.load_collections."""
    saved = loader.msgspec
    loader.msgspec = None  # type: ignore[assignment]
    try:
        yield
    finally:
        loader.msgspec = saved


def loaded(directory: Path) -> tuple[Any, ...]:
    """What MemoryStore.from_path makes of ``directory``: its rooms' facts, or its error."""
    try:
        store = MemoryStore.from_path(directory)
    except DataFormatError as error:
        return "error", str(error), error.path, error.line
    return "rooms", store.rooms._table.facts(), store.room_count


def same_outcome(directory: Path) -> tuple[Any, ...]:
    """Load ``directory`` with the fast loader and with the reference: the same rooms, or error."""
    with reference_loader():
        expected = loaded(directory)
    assert loaded(directory) == expected
    with small_chunks():
        assert loaded(directory) == expected
    with without_numpy(), small_chunks():
        assert loaded(directory) == expected
    return expected


ROOM = (
    '{"_id": "r%d", "t": "l", "ts": {"$date": "2024-01-02T03:04:05.678Z"}, '
    '"servedBy": {"_id": "a"}}'
)
GOOD = [ROOM % n for n in range(3)]
DEEP = MAX_NESTING  # the document is the first level: one more bracket goes past the limit
DIGITS = getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300


def nested(levels: int, array: bool = True) -> str:
    """A value nested ``levels`` deep."""
    return "[" * levels + "]" * levels if array else '{"a":' * levels + "1" + "}" * levels


def room_file(*lines: str | bytes, ending: bytes = b"\n", head: bytes = b"") -> bytes:
    parts = [line.encode() if isinstance(line, str) else line for line in lines]
    return head + ending.join(parts) + ending


def array_file(*elements: str, head: bytes = b"") -> bytes:
    return head + ("[" + ",\n".join(elements) + "]").encode()


def with_field(field: str, value: str, room: int = 9) -> str:
    """A counted room with one more field, written as given."""
    return ROOM[:-1] % room + f', "{field}": {value}}}'


#: Room files as an attacker writes them; each loads the same way through both loaders.
HOSTILE: dict[str, bytes] = {
    "plain": room_file(*GOOD),
    "nested past the limit, unread field": room_file(
        GOOD[0], with_field("v", nested(DEEP)), GOOD[1]
    ),
    "nested objects past the limit, unread field": room_file(
        GOOD[0], with_field("v", nested(DEEP, array=False))
    ),
    "nested at the limit, unread field": room_file(GOOD[0], with_field("v", nested(DEEP - 1))),
    "nested past the limit, read field": room_file(
        GOOD[0], with_field("departmentAncestors", nested(DEEP))
    ),
    "nested past the recursion limit": room_file(GOOD[0], with_field("v", nested(5000))),
    "nested in a string": room_file(GOOD[0], with_field("v", '"' + "[" * 5000 + '"')),
    "nested in ts": room_file(
        GOOD[0], '{"_id": "x", "ts": ' + '{"$date": ' * 600 + "1" + "}" * 601
    ),
    "a number too long, unread field": room_file(GOOD[0], with_field("msgs", "9" * (DIGITS + 1))),
    "a number just short enough": room_file(GOOD[0], with_field("msgs", "9" * DIGITS)),
    "a negative number too long": room_file(GOOD[0], with_field("msgs", "-" + "9" * (DIGITS + 1))),
    "a long fraction": room_file(GOOD[0], with_field("msgs", "1." + "9" * (DIGITS + 1))),
    "a number too long as _id": room_file(GOOD[0], '{"_id": ' + "9" * (DIGITS + 1) + "}"),
    "long digits in a string": room_file(GOOD[0], with_field("msgs", '"' + "9" * 9000 + '"')),
    "a huge float": room_file(GOOD[0], with_field("msgs", "1e999")),
    "bad UTF-8": room_file(GOOD[0], b'{"_id": "\xff"}', GOOD[1]),
    "bad UTF-8 after bad JSON": room_file(GOOD[0], "{bad", b'{"_id": "\xff"}'),
    "bad JSON after bad UTF-8": room_file(GOOD[0], b'{"_id": "\xff"}', "{bad"),
    "overlong UTF-8": room_file(GOOD[0], b'{"_id": "\xc0\xaf"}'),
    "a surrogate in UTF-8": room_file(GOOD[0], b'{"_id": "\xed\xa0\x80"}'),
    "UTF-8 cut at the end": room_file(GOOD[0]) + b'{"_id": "\xc3',
    "a lone surrogate escape": room_file(GOOD[0], '{"_id": "\\ud800", "t": "l"}'),
    "a lone surrogate agent": room_file(GOOD[0], with_field("servedBy", '{"_id": "\\udc00"}')),
    "NUL in a string": room_file(GOOD[0], b'{"_id": "q\x00"}'),
    "NUL alone": room_file(GOOD[0], b"\x00", GOOD[1]),
    "a byte order mark": room_file(*GOOD, head=b"\xef\xbb\xbf"),
    "two byte order marks": room_file(*GOOD, head=b"\xef\xbb\xbf\xef\xbb\xbf"),
    "a byte order mark on line 2": room_file(GOOD[0], b"\xef\xbb\xbf" + GOOD[1].encode()),
    "CRLF": room_file(*GOOD, ending=b"\r\n"),
    "CR": room_file(*GOOD, ending=b"\r"),
    "blank lines": room_file("", GOOD[0], "", "  ", "\t\r", GOOD[1], "", ""),
    "form feed and vertical tab lines": room_file(GOOD[0], "\x0c", "\x0b", GOOD[1]),
    "a form feed before a room": room_file(GOOD[0], "\x0c" + GOOD[1]),
    "unicode space lines": room_file(GOOD[0], "\x1c", GOOD[1]),
    "a NEL line": room_file(GOOD[0], "\x85", GOOD[1]),
    "a line separator line": room_file(GOOD[0], "\u2028", GOOD[1]),
    "a line separator in a string": room_file(GOOD[0], '{"_id": "a\u2028b\u0085c"}'),
    "two values on a line": room_file(GOOD[0], GOOD[1] + " " + ROOM % 7),
    "two values and a comma": room_file(GOOD[0], GOOD[1] + "," + ROOM % 7),
    "truncated JSON": room_file(GOOD[0], GOOD[1][:30]),
    "truncated at the end": room_file(GOOD[0]) + GOOD[1][:30].encode(),
    "trailing garbage": room_file(GOOD[0], GOOD[1] + "x"),
    "an array line": room_file(GOOD[0], "[1, 2]"),
    "a scalar line": room_file(GOOD[0], "5"),
    "a wrapper line": room_file(GOOD[0], '{"$date": "2024-01-02T03:04:05.678Z"}'),
    "an empty object": room_file(GOOD[0], "{}"),
    "bad $date": room_file(GOOD[0], with_field("t", '"l"').replace("2024-01-02", "2024-13-02")),
    "bad $date text": room_file(GOOD[0], '{"_id": "q", "t": "l", "ts": {"$date": "yesterday"}}'),
    "bad $oid": room_file(GOOD[0], '{"_id": {"$oid": 5}, "t": "l"}'),
    "bad $oid agent": room_file(GOOD[0], with_field("servedBy", '{"_id": {"$oid": [1]}}')),
    "bad $numberLong date": room_file(
        GOOD[0], '{"_id": "q", "ts": {"$date": {"$numberLong": "x"}}}'
    ),
    "bad $numberLong id": room_file(GOOD[0], '{"_id": {"$numberLong": "x"}}'),
    "a date beyond year 9999": room_file(
        GOOD[0], '{"_id": "q", "ts": {"$date": 1' + "0" * 20 + "}}"
    ),
    "duplicate _id": room_file(GOOD[0], GOOD[1], "", GOOD[0]),
    "duplicate ObjectId and string": room_file(
        '{"_id": {"$oid": "65f1a0000000000000000001"}}', '{"_id": "65f1a0000000000000000001"}'
    ),
    "duplicate numbers": room_file('{"_id": 5}', '{"_id": {"$numberInt": "5"}}', '{"_id": 5.0}'),
    "rooms without _id": room_file('{"t": "l"}', '{"t": "l"}', GOOD[0]),
    "duplicate keys": room_file('{"_id": "a", "_id": "b", "t": "l", "t": "c"}'),
    "NaN and Infinity": room_file(with_field("v", "NaN"), with_field("w", "-Infinity", room=8)),
    "single quotes": room_file("{'_id': 'a'}"),
    "a control character": room_file(GOOD[0], '{"_id": "a\tb"}'),
    "an array file": array_file(*GOOD),
    "an array file after blank lines": array_file(*GOOD, head=b"\n \n\r\n"),
    "an array file after a byte order mark": array_file(*GOOD, head=b"\xef\xbb\xbf\n"),
    "an array file after a form feed": array_file(*GOOD, head=b"\x0c"),
    "an array with a duplicate": array_file(GOOD[0], GOOD[1], GOOD[0]),
    "an array with a scalar": array_file(GOOD[0], "5", GOOD[1]),
    "an array nested past the limit": array_file(GOOD[0], with_field("v", nested(DEEP))),
    "an unclosed array": array_file(*GOOD)[:-1],
    "an array with a trailing comma": array_file(*GOOD, "")[:-2] + b",\n]",
    "an array and more": array_file(*GOOD) + b"\n[]",
    "an empty file": b"",
    "only blank lines": b"\n\n  \n\r\n",
    "only a byte order mark": b"\xef\xbb\xbf",
    "gzip magic in a plain name": b"\x1f\x8b\x08\x00",
    # The first repeat (line 3) in a later chunk than its first room, a repeat within it after.
    "numeric ids repeated across and within chunks": (
        b'{"_id": 1, "pad": "' + b"x" * 40 + b'"}\n{"_id": 2}\n{"_id": 1}\n{"_id": 2}\n'
    ),
}


@contextmanager
def in_parallel() -> Iterator[None]:
    """Worker processes for any file, and chunks of a few lines, so that several meet."""
    saved = loader.PARALLEL_BYTES
    loader.PARALLEL_BYTES = 0
    try:
        with small_chunks():
            yield
    finally:
        loader.PARALLEL_BYTES = saved


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_room_files_load_the_same_through_both_loaders(
    tmp_path: Path, content: bytes
) -> None:
    """Any room file gives the same rooms, or the same error at the same line, either way.

    Also when the chunks are decoded by worker processes.
    """
    (tmp_path / "rocketchat_room.json").write_bytes(content)
    expected = same_outcome(tmp_path)
    with in_parallel():
        if loader.workers_for(tmp_path / "rocketchat_room.json"):  # where the system forks
            assert loaded(tmp_path) == expected


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_gzipped_room_files_load_the_same_through_both_loaders(
    tmp_path: Path, content: bytes
) -> None:
    """A gzipped room file, whatever it holds, gives the same rooms or the same error too."""
    (tmp_path / "rocketchat_room.json.gz").write_bytes(gzip.compress(content))
    same_outcome(tmp_path)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no forked workers here"
)
def test_workers_leave_ctrl_c_to_the_parent(tmp_path: Path) -> None:
    """A worker ignores SIGINT, which a terminal sends the whole group: the parent ends it."""
    context = multiprocessing.get_context("fork")
    arguments = (tmp_path / "rocketchat_room.json", (Grouping.AGENT,))
    with context.Pool(1, loader._start_worker, arguments) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) == signal.SIG_IGN


@pytest.mark.parametrize("broken", ["truncated", "bad checksum", "garbage after"])
def test_a_broken_gzipped_array_gives_the_reference_error(tmp_path: Path, broken: str) -> None:
    """A gzipped --jsonArray file that breaks past its first read is the reference's error."""
    rooms = [json.loads(ROOM % n) for n in range(200)]
    packed = gzip.compress(json.dumps(rooms, separators=(",", ":")).encode())
    content = {
        "truncated": packed[: len(packed) * 3 // 4],
        "bad checksum": packed[:-8] + bytes(4) + packed[-4:],
        "garbage after": packed + b"garbage",
    }[broken]
    (tmp_path / "rocketchat_room.json.gz").write_bytes(content)
    outcome = same_outcome(tmp_path)
    assert outcome[0] == "error"
    with in_parallel():
        if loader.workers_for(tmp_path / "rocketchat_room.json.gz"):
            assert loaded(tmp_path) == outcome


def test_a_streamed_array_and_gzip_file_are_not_read_by_the_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A --jsonArray file and a gzipped file of rooms are streamed, not parsed whole."""
    rooms = [json.loads(ROOM % n) for n in range(50)]

    def refuse(*args: Any) -> None:
        raise AssertionError("the reference read the rooms")

    monkeypatch.setattr(loader, "read_export_file", refuse)
    (tmp_path / "rocketchat_room.json").write_text(json.dumps(rooms, separators=(",", ":")))
    assert MemoryStore.from_path(tmp_path).room_count == 50
    (tmp_path / "rocketchat_room.json").unlink()
    lines = "".join(json.dumps(room) + "\n" for room in rooms).encode()
    (tmp_path / "rocketchat_room.json.gz").write_bytes(gzip.compress(lines))
    assert MemoryStore.from_path(tmp_path).room_count == 50


@pytest.mark.skipif(
    not hasattr(sys, "set_int_max_str_digits"), reason="no limit on an integer's digits here"
)
@pytest.mark.parametrize("digits", [640, 641, 700])
def test_a_lowered_digit_limit_holds_for_both_loaders(tmp_path: Path, digits: int) -> None:
    """With Python's digit limit at its lowest, a short line's long integer is refused alike."""
    (tmp_path / "rocketchat_room.json").write_bytes(
        room_file(GOOD[0], with_field("msgs", "9" * digits), GOOD[1])
    )
    saved = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        outcome = same_outcome(tmp_path)
    finally:
        sys.set_int_max_str_digits(saved)
    assert outcome[0] == ("rooms" if digits == 640 else "error")


#: Lines that break something, as bytes: kept small, and mixed with generated rooms.
HOSTILE_LINES = st.sampled_from(
    (
        b"",
        b"  \t",
        b"\r",
        b"\x0c",
        b"\x1c",
        b"\xc2\x85",
        b"\x00",
        b"\xef\xbb\xbf{}",
        b'{"_id": "\xff"}',
        b'{"_id": "\xed\xa0\x80", "t": "l"}',
        b'{"_id": "\\ud800", "t": "l"}',
        b"[1, 2]",
        b"{bad",
        b'{"_id": "x"} {"_id": "y"}',
        b'{"_id": "x"},',
        b'{"$date": "2024-01-02T03:04:05.678Z"}',
        *(
            with_field(field, value, room=7).encode()
            for field in ("v", "departmentAncestors")
            for value in (nested(DEEP - 1), nested(DEEP), nested(DEEP - 1, array=False))
        ),
        with_field("v", nested(DEEP + 1000)).encode(),
        *(
            with_field("msgs", sign + "9" * digits, room=6).encode()
            for sign in ("", "-")
            for digits in (DIGITS, DIGITS + 1)
        ),
        ('{"_id": ' + "1" * (DIGITS + 1) + "}").encode(),
    )
)


@st.composite
def hostile_room_files(draw: st.DrawFn) -> bytes:
    """A rooms file of generated rooms and hostile lines, in any line ending, maybe an array."""
    rooms = draw(st.lists(room_documents(bad=True), max_size=6))
    lines = [json.dumps(room, ensure_ascii=draw(st.booleans())).encode() for room in rooms]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(HOSTILE_LINES))
    head = draw(st.sampled_from((b"", b"", b"\xef\xbb\xbf", b"\n\n")))
    if draw(st.integers(0, 5)) == 0:
        return head + b"[" + b",\n".join(lines) + b"]"
    ending = draw(st.sampled_from((b"\n", b"\r\n")))
    return head + ending.join(lines) + draw(st.sampled_from((ending, b"")))


@given(content=hostile_room_files())
@example(content=room_file(GOOD[0], with_field("v", nested(5000))))
@example(content=room_file(GOOD[0], b'{"_id": "\xff"}'))
@example(content=array_file(*GOOD, head=b"\n\n"))
@example(content=room_file(GOOD[0], GOOD[0]))
def test_rooms_load_the_same_through_both_loaders(tmp_path_factory: Any, content: bytes) -> None:
    """Generated hostile room files give the same rooms, or the same error, either way."""
    directory = tmp_path_factory.mktemp("export")
    (directory / "rocketchat_room.json").write_bytes(content)
    same_outcome(directory)


#: Export folders with something wrong in more than one file: (file name, content) pairs.
SEVERAL_WRONG = {
    "bad rooms and bad users": {
        "rocketchat_room.json": room_file(GOOD[0], "{bad"),
        "users.json": b"{bad\n",
    },
    "repeated rooms and repeated users": {
        "rocketchat_room.json": room_file(GOOD[0], GOOD[0]),
        "users.json": b'{"_id": "ana"}\n{"_id": "ana"}\n',
    },
    "repeated rooms and bad users": {
        "rocketchat_room.json": room_file(GOOD[0], GOOD[0]),
        "users.json": b'{"_id": "ana"}\n\xff\n',
    },
    "bad rooms and users twice": {
        "rocketchat_room.json": room_file(GOOD[0], "{bad"),
        "users.json": b"",
        "users.json.gz": gzip.compress(b""),
    },
    "bad rooms and a folder for the units": {
        "rocketchat_room.json": room_file(GOOD[0], "{bad"),
        "rocketchat_livechat_department.json/": b"",
    },
    "repeated rooms and a folder for the units": {
        "rocketchat_room.json": room_file(GOOD[0], GOOD[0]),
        "rocketchat_livechat_department.json/": b"",
    },
}


@pytest.mark.parametrize("files", SEVERAL_WRONG.values(), ids=SEVERAL_WRONG.keys())
def test_errors_in_several_files_come_in_the_same_order(
    tmp_path: Path, files: dict[str, bytes]
) -> None:
    """Both loaders check the files in one order: the same error comes first either way."""
    for name, content in files.items():
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_bytes(content)
    assert same_outcome(tmp_path)[0] == "error"


def test_a_large_load_without_msgspec_says_which_extra_is_faster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the extra 'fast', a large rooms file warns once that it makes loading faster."""
    write_rooms(tmp_path, GOOD, "\n")
    with reference_loader():
        monkeypatch.setattr(loader, "LARGE_LOAD_BYTES", 1)
        with pytest.warns(loader.FastLoaderHint, match=r"convstats\[fast\]' loads them about"):
            assert MemoryStore.from_path(tmp_path).room_count == 3
        monkeypatch.setattr(loader, "LARGE_LOAD_BYTES", 10_000)
        MemoryStore.from_path(tmp_path)  # a small file: no warning (warnings are errors here)
    monkeypatch.setattr(loader, "LARGE_LOAD_BYTES", 1)
    MemoryStore.from_path(tmp_path)  # with msgspec: none
