"""A ``mongoexport`` directory straight into the table, a few megabytes at a time.

:func:`convstats_adapters.files.load_collections` reads every value of every document into
Python objects through ``json``'s object hook: about 30 µs and a few kilobytes a room. Here
the JSON Lines file of rooms is read in chunks and decoded by msgspec (extra ``fast``) into
typed structs that name only the fields the reports read (``_id``, ``t``, ``ts``,
``servedBy``, ``departmentId``, ``departmentAncestors``, ``open``, ``onHold``,
``metrics.chatDuration``, ``source.type``, ``source.alias``, ``tags``); every other field is
skipped in C. A chunk's rooms become columns at once: their ids' fingerprints, their
creation times (mongoexport's fixed ``$date`` shape parsed for the whole chunk in numpy)
and a group code for each report, from the few distinct combinations of fields seen.

Any line the typed structs do not take (another shape of a read field, an Extended JSON
wrapper where a plain value is expected, a blank line, bad JSON or UTF-8), and any line long
enough to nest deeper than :data:`~convstats_adapters.files.MAX_NESTING` or to hold an integer
longer than Python converts, is decoded by the reference loader, line by line, so the facts
are exactly the reference's and every error is the reference's, naming the file and the line.
Lines are read by the reference's own reader, with its limit on a line's length. One
difference remains: a field the report does not read is checked for JSON syntax but not for
valid Extended JSON, so a ``{"$date": "yesterday"}`` in ``_updatedAt`` is no error here.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import multiprocessing
import operator
import os
import re
import signal
import stat
import sys
import threading
import warnings
import zlib
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from convstats.errors import DataFormatError, MissingDependency
from convstats.model import Grouping, epoch_ms
from convstats_adapters import documents as doc
from convstats_adapters.files import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING,
    ExportLines,
    content_lines,
    decode_line,
    decode_value,
    export_files,
    exported_date,  # the reference's own shortcut, for values numpy cannot take
    missing_rooms,
    nth_document,
    open_export,
    parse_line,
    progress_callback,
    read_export_file,
)
from convstats_adapters.memory.table import (
    GROUPINGS,
    NEVER,
    VOID,
    DuplicateRooms,
    FactTable,
    RoomColumns,
    numpy_or_none,
)

__all__ = [
    "CHUNK_BYTES",
    "LARGE_LOAD_BYTES",
    "FastLoaderHint",
    "Rooms",
    "duplicate_room_error",
    "fast_loader_available",
    "hint_fast_loader",
    "read_rooms",
    "streamable_rooms",
]

#: Bytes read at a time: a few thousand rooms, decoded together.
CHUNK_BYTES = 4 << 20

try:
    import msgspec
except ImportError:  # the extra "fast" is not installed
    msgspec = None  # type: ignore[assignment]


def fast_loader_available() -> bool:
    """Whether msgspec (extra ``fast``) is installed, so that :func:`read_rooms` can run."""
    return msgspec is not None


#: A rooms file at least this large, loaded without msgspec, is said to be slow.
LARGE_LOAD_BYTES = 64 << 20
#: How many times faster the fast loader read a million rooms than the reference, measured
#: (benchmarks/README.md): said in the hint.
FAST_LOADER_GAIN = 8


class FastLoaderHint(UserWarning):
    """A large load is about to run without the extra that makes it several times faster."""


def hint_fast_loader(root: Path) -> None:
    """Warn, before a large load without msgspec, which extra makes it faster and by how much.

    A :class:`FastLoaderHint` (shown once per process by Python's default warning filter;
    the command line prints it as one line on stderr), for a rooms file of at least
    :data:`LARGE_LOAD_BYTES`; nothing otherwise.
    """
    if fast_loader_available():
        return
    files = export_files(root, doc.ROOMS) if root.is_dir() else [root]
    try:
        size = sum(os.stat(path).st_size for path in files)
    except OSError:
        return
    if size >= LARGE_LOAD_BYTES:
        warnings.warn(
            f"loading {size / 2**20:,.0f} MiB of rooms with the standard library's JSON "
            f"reader; pip install 'convstats[fast]' loads them about {FAST_LOADER_GAIN} times "
            "faster",
            FastLoaderHint,
            stacklevel=3,
        )


@attrs.frozen
class Rooms:
    """What :func:`read_rooms` read: the rooms as a table.

    ``anonymous`` is how many rooms had no ``_id``: their keys are ``("<no _id>", 0)`` to
    ``("<no _id>", anonymous - 1)``.
    """

    table: FactTable
    anonymous: int


def streamable_rooms(root: Path) -> Path | None:
    """The rooms file of a ``mongoexport`` directory when :func:`read_rooms` can stream it.

    That is a regular ``rocketchat_room.json`` or ``rocketchat_room.json.gz`` (plain or
    gzip, JSON Lines or one array), alone; for anything else ``None``, and the reference
    loader reads, checks and explains.
    """
    files = export_files(root, doc.ROOMS)
    if len(files) != 1:
        return None
    try:
        if not stat.S_ISREG(os.stat(files[0]).st_mode):
            return None
    except OSError:
        return None
    return files[0]


def read_rooms(
    path: str | os.PathLike[str],
    *,
    indexed: bool,
    groupings: Iterable[Grouping] = GROUPINGS,
) -> Rooms:
    """Read a ``mongoexport`` directory's rooms into a :class:`FactTable` of ``groupings``.

    The rooms file must be one :func:`streamable_rooms` finds. JSON Lines and one JSON array,
    plain or gzip, are streamed; an array the streaming reader cannot vouch for is read by
    the reference loader, and so is any file, gzip or array, in which the streaming reader
    finds an error, so that the error is the reference's (which reads a block at a time in
    an order of its own). Raises
    :class:`~convstats.errors.DataFormatError` naming the file and, where known, the line;
    :class:`~convstats.errors.MissingDependency` without msgspec.
    """
    if msgspec is None:
        raise MissingDependency("msgspec", "fast")
    root = Path(path)
    room_file = streamable_rooms(root)
    if room_file is None:
        if not export_files(root, doc.ROOMS):
            raise DataFormatError(str(root), missing_rooms(root))
        raise DataFormatError(str(root), f"{doc.ROOMS}.json cannot be streamed: read it whole")
    table = FactTable(indexed=indexed, groupings=groupings)
    columns = RoomColumns()
    reader = _RoomReader(room_file, table, columns)
    workers = workers_for(room_file)
    try:
        with open_export(room_file) as stream:
            gzipped = not isinstance(stream, io.BufferedReader)
            if workers:
                reader.stream_parallel(stream, workers)
            else:
                reader.stream(stream)
    except DataFormatError:
        if not (gzipped or reader.array):
            raise  # the streaming reader's errors in a plain JSON Lines file are the reference's
        streamed = False
    except _NotStreamed:
        streamed = False
    else:
        streamed = True
    if not streamed:
        # The reference reads the file; its rooms go in as documents (or its error is raised).
        table = FactTable(indexed=indexed, groupings=groupings)
        columns = RoomColumns()
        reader = _RoomReader(room_file, table, columns)
        for document in read_export_file(room_file, doc.ROOMS):
            key = reader.key_of(document)
            columns.add(key, *table.codes.facts(document))
    report = progress_callback()
    name, rooms = _name(room_file), len(columns)

    def on_step(step: str) -> None:
        if report is not None:
            report(name, rooms, step=f"building the store: {step}")

    try:
        table.load_columns(columns, on_step)
    except DuplicateRooms as error:
        raise duplicate_room_error(root, error) from None
    return Rooms(table, reader.anonymous)


def duplicate_room_error(path: str | os.PathLike[str], error: DuplicateRooms) -> DataFormatError:
    """Two rooms with one ``_id`` in what was loaded from ``path``, named as well as can be.

    For an export directory, the rooms file and the line of the second of them, whichever
    loader read it; for a file of collections, the file.
    """
    root = Path(path)
    files = export_files(root, doc.ROOMS) if root.is_dir() else []
    found = nth_document(files[0], doc.ROOMS, error.rows[1]) if files else None
    if found is None:
        return DataFormatError(str(root), str(error))
    line, room = found
    key = doc.id_key(room["_id"]) if "_id" in room else error.key
    return DataFormatError(str(files[0]), f"two rooms have the _id {key!r}", line=line)


# -- decoding -------------------------------------------------------------------------------

if msgspec is not None:
    _UNSET = msgspec.UNSET
    _Unset = msgspec.UnsetType

    class _Oid(msgspec.Struct, forbid_unknown_fields=True, gc=False):
        value: str = msgspec.field(name="$oid")

    class _Date(msgspec.Struct, forbid_unknown_fields=True, gc=False):
        value: str | int = msgspec.field(name="$date")

    class _Served(msgspec.Struct, gc=False):
        id: str | _Oid | _Unset | None = msgspec.field(name="_id", default=_UNSET)
        # An object of one of these keys alone is an Extended JSON value, not a document:
        # no JSON value decodes as UnsetType, so such a servedBy is left to the reference.
        date: _Unset = msgspec.field(name="$date", default=_UNSET)
        oid: _Unset = msgspec.field(name="$oid", default=_UNSET)
        int32: _Unset = msgspec.field(name="$numberInt", default=_UNSET)
        int64: _Unset = msgspec.field(name="$numberLong", default=_UNSET)
        double: _Unset = msgspec.field(name="$numberDouble", default=_UNSET)
        decimal: _Unset = msgspec.field(name="$numberDecimal", default=_UNSET)

    class _Metrics(msgspec.Struct, gc=False):
        chat_duration: Any = msgspec.field(name="chatDuration", default=_UNSET)

    class _Source(msgspec.Struct, gc=False):
        type: Any = _UNSET
        alias: Any = _UNSET

    class _Room(msgspec.Struct, gc=False):
        id: str | _Oid | _Unset = msgspec.field(name="_id", default=_UNSET)
        t: str | _Unset | None = _UNSET
        ts: _Date | _Unset | None = _UNSET
        served_by: _Served | _Unset | None = msgspec.field(name="servedBy", default=_UNSET)
        department: str | _Oid | _Unset | None = msgspec.field(name="departmentId", default=_UNSET)
        ancestors: tuple[str, ...] | str | _Unset | None = msgspec.field(
            name="departmentAncestors", default=_UNSET
        )
        open: Any = _UNSET
        on_hold: Any = msgspec.field(name="onHold", default=_UNSET)
        metrics: _Metrics | _Unset | None = _UNSET
        source: _Source | _Unset | None = _UNSET
        tags: Any = _UNSET


class _Unreadable(Exception):
    """The typed structs cannot vouch for this line: the reference decodes it."""


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.lru_cache(maxsize=4)
def _digits(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"\d{%d}" % (limit + 1))


def _digit_limit() -> int:
    """The most digits Python converts to an integer, 0 for no limit (before Python 3.10.7)."""
    limit: int = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    return limit


def _long_line() -> int:
    """The longest line too short to nest past :data:`MAX_NESTING` or to hold too many digits."""
    limit = _digit_limit()
    return min(2 * MAX_NESTING, limit) if limit else 2 * MAX_NESTING


def _beyond_structs(data: bytes, start: int, stop: int) -> bool:
    """Whether line ``data[start:stop]`` may hold what only the reference checks.

    That is nesting deeper than :data:`MAX_NESTING` (a bracket a level) and an integer longer
    than Python converts (``sys.get_int_max_str_digits``), which the structs skip unread.
    """
    if stop - start <= _long_line():
        return False
    if data.count(b"[", start, stop) + data.count(b"{", start, stop) > MAX_NESTING:
        return True
    limit = _digit_limit()
    return 0 < limit < stop - start and _digits(limit).search(data, start, stop) is not None


def _one_value_a_line(np: ModuleType | None, chunk: bytes, values: int) -> tuple[bool, int]:
    """Whether ``values`` decoded from ``chunk`` are one a line, each for the structs alone.

    Also how many LFs the chunk has. ``decode_lines`` skips blank lines and takes two values
    on one line: when every line starts with ``{`` (as mongoexport writes them) no line is
    blank, and equal counts then rule out a line of two. A long line goes to the reference
    when :func:`_beyond_structs` says it may need its checks.
    """
    ended = chunk.endswith(b"\n")
    if np is None:
        lines = chunk.count(b"\n")
        starts = chunk.count(b"\n{") + chunk.startswith(b"{")
        if values != lines + (not ended) or values != starts:
            return False, lines
        threshold = _long_line()
        long = [line for line in chunk.split(b"\n") if len(line) > threshold]
        return not any(_beyond_structs(line, 0, len(line)) for line in long), lines
    text = np.frombuffer(chunk, dtype=np.uint8)
    ends = np.flatnonzero(text == 10)
    lines = len(ends)
    after = ends[:-1] + 1 if ended else ends + 1
    starts = int(np.count_nonzero(text[after] == 123)) + chunk.startswith(b"{")
    if values != lines + (not ended) or values != starts:
        return False, lines
    stops = ends if ended else np.append(ends, len(chunk))
    lengths = np.diff(stops, prepend=-1) - 1
    for at in np.flatnonzero(lengths > _long_line()).tolist():
        stop = int(stops[at])
        if _beyond_structs(chunk, stop - int(lengths[at]), stop):
            return False, lines
    return True, lines


def _stream(
    path: Path,
    stream: Any,
    decoder: Any,
    on_chunk: Callable[[list[Any], int], None],
    on_line: Callable[[Any, int], None],
    on_document: Callable[[dict[str, Any], int], None],
    *,
    lines: ExportLines,
) -> bool:
    """Feed a JSON Lines file's values to the handlers; ``False`` for a JSON array file.

    A chunk decodes at once when every line holds one value the structs take
    (``on_chunk(values, first line)``); otherwise each line is tried alone
    (``on_line(value, line)``) and, when the structs or the handler cannot take it, goes
    through the reference (``on_document(document, line)``). For a JSON array, the text
    after the array's ``[`` is left in ``stream`` and :func:`_stream_array` reads on.
    """
    np = numpy_or_none()
    report = progress_callback()
    for first, chunk in lines:
        breaks = _chunk_values(path, np, chunk, first, decoder, on_chunk, on_line, on_document)
        if breaks >= 0:
            lines.counted(breaks)
        if report is not None:
            breaks = chunk.count(b"\n") if breaks < 0 else breaks
            report(_name(path), first + breaks - 1, **_position(path, stream))
    return lines.array is None


def _chunk_values(
    path: Path,
    np: ModuleType | None,
    chunk: bytes,
    first: int,
    decoder: Any,
    on_chunk: Callable[[list[Any], int], None],
    on_line: Callable[[Any, int], None],
    on_document: Callable[[dict[str, Any], int], None],
) -> int:
    """Give the values of ``chunk``, whole lines from line ``first``, to the handlers.

    Returns the chunk's LFs when they were counted on the way, else -1.
    """
    refused = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
    text = chunk.isascii() or _is_utf8(chunk)
    values: list[Any] = []
    ok, breaks = False, -1
    if text:
        with contextlib.suppress(*refused):
            values = decoder.decode_lines(chunk)
            ok, breaks = _one_value_a_line(np, chunk, len(values))
    try:
        if not ok:
            raise _Unreadable
        on_chunk(values, first)
    except _Unreadable:
        for number, line in content_lines(chunk, first):
            # Bad UTF-8 is named at its line, after every line before it.
            decoded = line.decode("utf-8") if text else decode_line(path, line, line=number)
            if not _beyond_structs(line, 0, len(line)):
                try:
                    on_line(decoder.decode(line), number)
                    continue
                except (*refused, _Unreadable):
                    pass  # the reference reads it
            document = parse_line(path, decoded, line=number)
            if not isinstance(document, dict):
                raise DataFormatError(
                    str(path), "a line must hold one JSON object", line=number
                ) from None
            on_document(document, number)
    return breaks


def _name(path: Path) -> str:
    return path.name.partition(".")[0]


def _position(path: Path, stream: Any) -> dict[str, int]:
    """How far into the file on disk ``stream`` has read (``read``), of ``total`` bytes."""
    raw = getattr(stream, "fileobj", stream)  # a GzipFile reads from its fileobj
    try:
        return {"read": raw.tell(), "total": os.fstat(raw.fileno()).st_size}
    except (OSError, AttributeError, ValueError):
        return {}


#: Where one element of a JSON array of documents may end and the next begin.
_BETWEEN = re.compile(rb"}[ \t\n\r]*,[ \t\n\r]*{")
#: Bytes of an array decoded at a time, at most, and how far back from a chunk's end a
#: boundary between documents is looked for first.
_ARRAY_CHUNK = 1 << 20
_TAIL = 1 << 18


def _last_between(text: bytes, end: int) -> re.Match[bytes] | None:
    """The last boundary between two documents in ``text[:end]``, if any."""
    found = None
    for found in _BETWEEN.finditer(text, 0, end):  # noqa: B007
        pass
    return found


class _NotStreamed(Exception):
    """The array's text is not one the streaming reader can vouch for: the reference reads it."""


def _stream_array(
    path: Path,
    stream: Any,
    head: bytes,
    decoder: Any,
    on_chunk: Callable[[list[Any], int], None],
    on_line: Callable[[Any, int], None],
    on_document: Callable[[dict[str, Any], int], None],
) -> None:
    """Feed the documents of a JSON array (``--jsonArray``) to the handlers, a chunk at a time.

    ``head`` is the text read from the line of the ``[`` on; ``stream`` holds the rest. The
    documents come from :func:`_array_texts`, as the lines of a JSON Lines chunk, whose
    numbers are the documents' (from 1). Raises :class:`_NotStreamed` as it does.
    """
    np = numpy_or_none()
    report = progress_callback()
    for first, text, count in _array_texts(stream, head):
        _chunk_values(path, np, text, first, decoder, on_chunk, on_line, on_document)
        if report is not None:
            report(_name(path), first + count - 1, **_position(path, stream))


def _array_texts(stream: Any, head: bytes) -> Iterator[tuple[int, bytes, int]]:
    """The documents of a JSON array, a chunk at a time, as lines: ``(first, text, count)``.

    A chunk ends at a ``}`` followed by ``,`` and ``{``: msgspec splits the documents before
    it (as ``msgspec.Raw``, which proves the boundary: a cut inside a string or a nested
    value is not valid JSON), and they are joined by LFs. Raises :class:`_NotStreamed` for
    anything else: a value that is no document, text after the array, a document longer
    than the limit.
    """
    splitter = msgspec.json.Decoder(list[msgspec.Raw])
    pending = head.lstrip(b" \t\n\r")  # JSON's whitespace, as the reference reads it
    if not pending.startswith(b"["):
        raise _NotStreamed
    size = min(CHUNK_BYTES, _ARRAY_CHUNK)
    pending, ended, first, wanted = pending[1:], False, 1, size
    while True:
        while not ended and len(pending) < wanted:
            try:
                block = stream.read(size)
            except (OSError, EOFError, zlib.error):  # a broken gzip file: the reference says so
                raise _NotStreamed from None
            ended = not block
            pending += block
        if ended:
            piece, pending = b"[" + pending, b""  # its "]" and what follows are checked
        else:
            # mongoexport writes "},{"; other whitespace between documents is looked for after.
            end = min(len(pending), wanted)
            at = pending.rfind(b"},{", max(0, end - _TAIL), end)
            cut = _BETWEEN.match(pending, at) if at >= 0 else _last_between(pending, end)
            if cut is None:  # a document longer than the chunk: read on
                if len(pending) > size + MAX_DOCUMENT_BYTES:
                    raise _NotStreamed
                wanted = len(pending) + size
                continue
            piece, pending = b"[" + pending[: cut.start() + 1] + b"]", pending[cut.end() - 1 :]
            wanted = size
        try:
            documents = splitter.decode(piece)
        except msgspec.DecodeError:
            raise _NotStreamed from None
        text = b"\n".join(documents)
        if b"\n" in piece:  # whitespace between tokens (a string holds no raw LF)
            text = b"\n".join(bytes(document).replace(b"\n", b" ") for document in documents)
        if documents:
            yield first, text, len(documents)
        first += len(documents)
        if ended:
            return


# -- in parallel ---------------------------------------------------------------------------

#: A rooms file at least this large is decoded by worker processes, when the system forks.
PARALLEL_BYTES = 32 << 20
#: Chunks sent to the workers and not yet taken back, a worker.
_IN_FLIGHT = 2


def workers_for(path: Path) -> int:
    """How many processes decode ``path``: one a core for a large file, else none.

    Workers are forked (they share the parent's hash seed, which the ids' fingerprints
    need), so only where the system forks, and only from a process without other threads.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        large = os.stat(path).st_size >= PARALLEL_BYTES
    except OSError:
        return 0
    return min(cores or 1, 8) if large and (cores or 1) > 1 else 0


def _no_id_key(number: int) -> Hashable:
    return ("<no _id>", number)


class _Anonymous(tuple[int]):
    """The key a worker gives a room without ``_id``: the parent numbers it in file order."""


_worker: _RoomReader | None = None


def _start_worker(path: Path, groupings: tuple[Grouping, ...]) -> None:
    global _worker
    # Ctrl-C reaches the whole process group: the parent alone stops the load, and ends
    # its workers; a worker interrupted mid-message would leave the pool's pipe out of step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    table = FactTable(indexed=False, groupings=groupings)
    _worker = _RoomReader(path, table, RoomColumns())
    _worker.anonymous_key = lambda n: _Anonymous((n,))


def _decode_in_worker(first: int, text: bytes) -> Any:
    """One chunk of lines in a worker: its rooms as columns, with the groups it numbered.

    Returns ``("error", message, line)`` for a data error, for the parent to raise in turn.
    """
    reader = _worker
    assert reader is not None
    try:
        _chunk_values(
            reader.path, reader.np, text, first, reader.decoder,
            reader._chunk, reader._line, reader._document,
        )  # fmt: skip
    except DataFormatError as error:
        shown = (
            f"{error.path}, line {error.line}: " if error.line is not None else f"{error.path}: "
        )
        return ("error", str(error)[len(shown) :], error.line)
    columns, reader.columns = reader.columns, RoomColumns()
    new_groups = []
    codes = reader.codes
    for grouping, sent in zip(reader.groupings, reader.sent, strict=True):
        facet = codes.facets[grouping]
        new_groups.append(
            [
                (
                    codes.partitions[facet.group_partition[group]],
                    facet.raw_keys[facet.group_raw[group]],
                )
                for group in range(sent, facet.groups)
            ]
        )
    reader.sent = [codes.facets[grouping].groups for grouping in reader.groupings]
    return (
        os.getpid(),
        columns.first.tobytes(),
        columns.second.tobytes(),
        columns.ts.tobytes(),
        columns.groups.tobytes(),
        sorted(columns.others.items(), key=lambda item: item[1]),
        None if columns.duplicate is None else (columns.duplicate.rows, columns.duplicate.key),
        new_groups,
    )


class _Merger:
    """The parent's side: chunks sent in order, their columns taken back in the same order."""

    def __init__(self, reader: _RoomReader, pool: Any, workers: int, stream: Any) -> None:
        self.reader, self.pool, self.stream = reader, pool, stream
        self.limit = workers * _IN_FLIGHT
        self.pending: collections.deque[Any] = collections.deque()
        #: Per worker process, per grouping, its group codes as the parent's.
        self.codes: dict[int, list[array[int]]] = {}
        self.report = progress_callback()

    def send(self, first: int, text: bytes) -> None:
        self.pending.append(self.pool.apply_async(_decode_in_worker, (first, text)))
        while len(self.pending) > self.limit:
            self._take()

    def drain(self) -> None:
        while self.pending:
            self._take()

    def _take(self) -> None:
        result = self.pending.popleft().get()
        reader = self.reader
        if result[0] == "error":
            _, message, line = result
            raise DataFormatError(str(reader.path), message, line=line)
        pid, first, second, ts, groups, others, duplicate, new_groups = result
        codes = reader.codes
        mapping = self.codes.setdefault(pid, [array("i", [VOID]) for _ in reader.groupings])
        for grouping, known, found in zip(reader.groupings, mapping, new_groups, strict=True):
            facet = codes.facets[grouping]
            for partition, raw in found:
                known.append(facet.group(codes.partition(partition), facet.raw(raw)))
        columns = reader.columns
        offset = len(columns)
        local = array("i")
        local.frombytes(groups)
        columns.groups.extend(_remap(reader.np, local, mapping))
        columns.first.frombytes(first)
        columns.second.frombytes(second)
        columns.ts.frombytes(ts)
        # The room named is the one the reference meets first as a repeat: the least second
        # row, whether the worker found it within its chunk or it repeats an earlier chunk's.
        found_here: list[DuplicateRooms] = []
        if duplicate is not None:
            (one, two), key = duplicate
            found_here.append(DuplicateRooms((one + offset, two + offset), key))
        for key, row in others:
            if isinstance(key, _Anonymous):
                key = reader.key_of({})
            if key in columns.others:
                found_here.append(DuplicateRooms((columns.others[key], offset + row), key))
            else:
                columns.others[key] = offset + row
        if found_here and columns.duplicate is None:
            columns.duplicate = min(found_here, key=lambda found: found.rows[1])
        if self.report is not None:
            self.report(_name(reader.path), len(columns), **_position(reader.path, self.stream))


def _remap(np: ModuleType | None, local: array[int], mapping: list[array[int]]) -> array[int]:
    """Group codes laid out a room after another, each grouping's mapped to the parent's."""
    width = len(mapping)
    if np is None:
        return array("i", (mapping[at % width][code] for at, code in enumerate(local)))
    values = np.frombuffer(local, dtype=np.int32).reshape(-1, width).copy()
    for at, known in enumerate(mapping):
        values[:, at] = np.frombuffer(known, dtype=np.int32)[values[:, at]]
    out = array("i")
    out.frombytes(values.tobytes())
    return out


# -- rooms ----------------------------------------------------------------------------------


class _RoomReader:
    """Rooms of one file into ``columns``, coded by ``table.codes``."""

    def __init__(self, path: Path, table: FactTable, columns: RoomColumns) -> None:
        self.path, self.table, self.columns = path, table, columns
        self.codes = table.codes
        self.np = numpy_or_none()
        self.anonymous = 0
        #: The key of the ``n``-th room without ``_id``.
        self.anonymous_key: Callable[[int], Hashable] = _no_id_key
        #: Per grouping, the groups a worker has told its parent of (VOID goes without saying).
        self.sent = [1] * len(table.groupings)
        #: Whether the file is one JSON array.
        self.array = False
        # What a room's decoded fields give, by its decoded fields: its partition code (or
        # None when it never counts), then its group in each grouping. A few thousand
        # entries: rooms repeat the same few values.
        self._places: dict[tuple[Any, Any, Any], int | None] = {}
        self.groupings = table.groupings
        self._groups: tuple[dict[tuple[int, Any], int], ...] = tuple({} for _ in self.groupings)
        self._signatures = tuple(_SIGNATURES[grouping] for grouping in self.groupings)
        self._voids = table.codes.voids
        self.decoder = msgspec.json.Decoder(_Room)

    def stream(self, stream: Any) -> None:
        """Read JSON Lines or a JSON array; raises _NotStreamed for an array it cannot take."""
        handlers = (self.decoder, self._chunk, self._line, self._document)
        lines = ExportLines(self.path, stream, CHUNK_BYTES)
        if not _stream(self.path, stream, *handlers, lines=lines):
            assert lines.array is not None
            self.array = True
            _stream_array(self.path, stream, lines.array[1], *handlers)

    def key_of(self, document: dict[str, Any]) -> Hashable:
        if "_id" not in document:
            self.anonymous += 1
            return self.anonymous_key(self.anonymous - 1)
        return doc.id_key(document["_id"])

    def stream_parallel(self, stream: Any, workers: int) -> None:
        """:meth:`stream`, with the chunks decoded by ``workers`` forked processes."""
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, _start_worker, (self.path, self.groupings)) as pool:
            merger = _Merger(self, pool, workers, stream)
            chunks = self._chunks(stream)
            while True:
                try:
                    first, chunk = next(chunks)
                except StopIteration:
                    break
                except (DataFormatError, _NotStreamed):
                    merger.drain()  # what the chunks before say comes first
                    raise
                merger.send(first, chunk)  # raises the error of the earliest chunk sent
            merger.drain()

    def _chunks(self, stream: Any) -> Iterator[tuple[int, bytes]]:
        """The file's chunks of whole lines (of documents, for an array), with their first."""
        lines = ExportLines(self.path, stream, CHUNK_BYTES)
        yield from lines
        if lines.array is not None:
            self.array = True
            for first, text, _ in _array_texts(stream, lines.array[1]):
                yield first, text

    def _document(self, document: dict[str, Any], line: int) -> None:
        self.columns.add(self.key_of(document), *self.codes.facts(document))

    def _line(self, room: Any, line: int) -> None:
        key, ts, groups, date = self._facts(room)
        if date is not None:
            ts = self._date(date, line)
        if ts == NEVER:
            groups = self._voids
        self.columns.add(key, ts, groups)

    def _chunk(self, rooms: list[Any], first: int) -> None:
        lines = list(range(first, first + len(rooms)))
        try:
            self._typical(rooms, lines)
        except (AttributeError, TypeError, _Unreadable):
            self._each(rooms, lines)

    def _typical(self, rooms: list[Any], lines: list[int]) -> None:
        """Rooms of the usual shape, column by column; raises for any other shape.

        Usual: a string ``_id``, a ``$date`` string ``ts`` and fields of hashable values. A
        null ``ts`` raises AttributeError, an unhashable value TypeError.
        """
        keys = list(map(_ID, rooms))
        if set(map(type, keys)) != {str}:
            raise _Unreadable
        texts = list(map(_DATE_TEXT, rooms))
        places = list(map(self._place, rooms))
        groups: list[list[int]] = []
        for at, (signature, cache) in enumerate(zip(self._signatures, self._groups, strict=True)):
            # Looked up a chunk at a time; only a room of a new group, or of no group, is
            # looked at alone.
            look_up: Callable[[Any], Any] = cache.get
            codes: list[Any] = list(map(look_up, zip(places, map(signature, rooms), strict=True)))
            if None in codes:
                for row, code in enumerate(codes):
                    if code is None:
                        place = places[row]
                        codes[row] = VOID if place is None else self._group(at, place, rooms[row])
            groups.append(codes)
        stamps = self._dates(texts, lines)
        if None in places:  # not livechat rooms: their dates are read, and never count
            for at, place in enumerate(places):
                if place is None:
                    stamps[at] = NEVER
        self._append(keys, stamps, groups)

    def _each(self, rooms: list[Any], lines: list[int]) -> None:
        keys: list[Hashable] = []
        stamps: list[int] = []
        rows: list[tuple[int, ...]] = []
        dated: list[int] = []
        texts: list[str] = []
        for room in rooms:
            key, stamp, groups, text = self._facts(room)
            if text is not None:
                dated.append(len(keys))
                texts.append(text)
            keys.append(key)
            stamps.append(stamp)
            rows.append(groups)
        found = self._dates(texts, [lines[at] for at in dated])
        for at, value in zip(dated, found, strict=True):
            stamps[at] = value
        self._append(keys, stamps, [list(column) for column in zip(*rows, strict=True)])

    def _append(self, keys: list[Hashable], stamps: list[int], groups: list[list[int]]) -> None:
        # A room whose date is beyond Python's years never counts.
        np = self.np
        if not keys:
            return
        codes = array("i")
        if np is None:
            for at, stamp in enumerate(stamps):
                if stamp == NEVER:
                    for column in groups:
                        column[at] = VOID
            times = array("q", stamps)
            for row in zip(*groups, strict=True):
                codes.extend(row)
        else:
            time_values = np.array(stamps, dtype=np.int64)
            values = np.array(groups, dtype=np.int32).T  # a row a room, as the columns hold them
            values[time_values == NEVER] = VOID
            times = array("q")
            times.frombytes(time_values.tobytes())
            codes.frombytes(np.ascontiguousarray(values).tobytes())
        if set(map(type, keys)) == {str}:
            strings: list[str] = keys  # type: ignore[assignment]
            self.columns.extend_strings(strings, times, codes, np)
        else:
            width = len(groups)
            for at, (key, stamp) in enumerate(zip(keys, times, strict=True)):
                self.columns.add(key, stamp, codes[at * width : (at + 1) * width])

    def _facts(self, room: Any) -> tuple[Hashable, int, tuple[int, ...], str | None]:
        """A decoded room's key, time, groups, and its ``$date`` text when still to be read.

        A ``$date`` is read even for a room that cannot count, as the reference reads (and
        refuses a bad) one wherever it is; the time is then :data:`NEVER` whatever it says.
        Raises _Unreadable for values the structs cannot vouch for.
        """
        room_id = room.id
        if room_id.__class__ is not str:
            if room_id is _UNSET:
                # A lone wrapper key on the line could make the line a value, not a room.
                raise _Unreadable
            room_id = room_id.value
        ts = room.ts
        if ts is None or ts is _UNSET:
            return room_id, NEVER, self._voids, None
        value = ts.value
        try:
            place = self._place(room)
            groups = self._voids if place is None else self._groups_of(place, room)
        except TypeError:  # an unhashable value: the reference reads the line
            raise _Unreadable from None
        if place is None:
            if value.__class__ is str:
                return room_id, NEVER, self._voids, value
            self._legacy_date(value)
            return room_id, NEVER, self._voids, None
        if value.__class__ is str:
            return room_id, 0, groups, value
        legacy = self._legacy_date(value)
        return room_id, legacy, groups if legacy != NEVER else self._voids, None

    def _place(self, room: Any) -> int | None:
        """The partition code of a decoded room, ``None`` when it is not a livechat room."""
        department = room.department
        if department.__class__ is _Oid:
            department = department.value
        signature = (room.t, department, room.ancestors)
        code = self._places.get(signature, _UNSEEN)
        if code != _UNSEEN:
            return code
        code = None
        if room.t == doc.LIVECHAT:
            code = self.codes.partition(doc.partition(_fields(room)))
        self._places[signature] = code
        return code

    def _groups_of(self, place: int, room: Any) -> tuple[int, ...]:
        return tuple(self._group(at, place, room) for at in range(len(self.groupings)))

    def _group(self, at: int, place: int, room: Any) -> int:
        """The group of a decoded room in the ``at``-th grouping held."""
        key = (place, self._signatures[at](room))
        cache = self._groups[at]
        group = cache.get(key)
        if group is None:
            # The rules are documents.py's: they read a document of the decoded fields.
            grouping = self.groupings[at]
            facet = self.codes.facets[grouping]
            raw = facet.raw(doc.raw_key(grouping, _fields(room)))
            group = cache[key] = facet.group(place, raw)
        return group

    @staticmethod
    def _legacy_date(value: int) -> int:
        moment = decode_value({"$date": value})
        return epoch_ms(moment) if isinstance(moment, datetime) else NEVER

    def _date(self, text: str, line: int) -> int:
        moment = exported_date(text)
        if moment is None:
            try:
                moment = decode_value({"$date": text})
            except ValueError as error:
                raise DataFormatError(str(self.path), str(error), line=line) from None
        return epoch_ms(moment) if isinstance(moment, datetime) else NEVER

    def _dates(self, texts: list[str], lines: list[int]) -> list[int]:
        """Epoch milliseconds of ``$date`` texts, the fixed shape read for all at once."""
        np = self.np
        if np is None or not texts:
            return [self._date(text, line) for text, line in zip(texts, lines, strict=True)]
        found = _fixed_dates(np, texts)
        if found is None:
            return [self._date(text, line) for text, line in zip(texts, lines, strict=True)]
        values, ok = found
        result: list[int] = values.tolist()
        for at in np.flatnonzero(~ok).tolist():
            result[at] = self._date(texts[at], lines[at])
        return result


_UNSEEN = -2  # no partition code
_ID = operator.attrgetter("id")
_DATE_TEXT = operator.attrgetter("ts.value")


def _typed(value: Any) -> Any:
    # Python holds True == 1 == 1.0 while the reports do not: a cache of decoded fields keys
    # each value with its type.
    return (value.__class__, value)


def _served_signature(room: Any) -> Any:
    served = room.served_by
    if served.__class__ is _Served:
        agent = served.id
        return ("doc", agent.value if agent.__class__ is _Oid else agent)
    return served  # missing or null


def _metrics_signature(room: Any) -> Any:
    metrics = room.metrics
    if metrics.__class__ is not _Metrics:
        return metrics
    duration = metrics.chat_duration
    if duration.__class__ is int or duration.__class__ is float:
        # Only whether it is zero counts (documents.truthy), and durations are all different.
        return (duration.__class__, duration != 0)
    return _typed(duration)


def _source_signature(room: Any) -> Any:
    source = room.source
    if source.__class__ is _Source:
        return (_typed(source.type), _typed(source.alias))
    return source


def _tags_signature(room: Any) -> Any:
    tags = room.tags
    if tags.__class__ is list:
        return tuple(map(_typed, tags))
    return _typed(tags)


def _department_signature(room: Any) -> Any:
    department = room.department
    return department.value if department.__class__ is _Oid else department


#: Per grouping, the decoded fields its raw key depends on, beside the partition: equal
#: signatures give equal groups.
_SIGNATURES: dict[Grouping, Callable[[Any], Any]] = {
    Grouping.STATUS: lambda room: (
        _typed(room.open),
        _typed(room.on_hold),
        _served_signature(room),
        _metrics_signature(room),
    ),
    Grouping.SOURCE: _source_signature,
    Grouping.DEPARTMENT: _department_signature,
    Grouping.TAGS: _tags_signature,
    Grouping.AGENT: lambda room: _served_signature(room),
}


def _fields(room: Any) -> dict[str, Any]:
    """The decoded room as a document of the fields the reports read, for documents.py."""
    document: dict[str, Any] = {"t": room.t}
    department = _department_signature(room)
    for name, value in (
        ("departmentId", department),
        ("departmentAncestors", room.ancestors),
        ("open", room.open),
        ("onHold", room.on_hold),
        ("tags", room.tags),
    ):
        if value is not _UNSET:
            document[name] = list(value) if value.__class__ is tuple else value
    served = room.served_by
    if served.__class__ is _Served:
        agent = _served_signature(room)[1]
        document["servedBy"] = {} if agent is _UNSET else {"_id": agent}
    elif served is not _UNSET:
        document["servedBy"] = served
    metrics = room.metrics
    if metrics.__class__ is _Metrics:
        duration = metrics.chat_duration
        document["metrics"] = {} if duration is _UNSET else {"chatDuration": duration}
    elif metrics is not _UNSET:
        document["metrics"] = metrics
    source = room.source
    if source.__class__ is _Source:
        document["source"] = {
            name: value
            for name, value in (("type", source.type), ("alias", source.alias))
            if value is not _UNSET
        }
    elif source is not _UNSET:
        document["source"] = source
    return document


#: Offsets of the digits in ``YYYY-MM-DDTHH:MM:SS.mmmZ``, and of its other characters.
_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22)
_MARKS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 23: b"Z"}


def _fixed_dates(np: ModuleType, texts: list[str]) -> tuple[Any, Any] | None:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` texts as epoch ms, with a mask of those that are.

    ``None`` when the texts are not all of that length in ASCII; a text of the shape with
    an impossible field (month 13, 30 February, hour 24) is left out of the mask, for the
    reference to judge.
    """
    if set(map(len, texts)) != {24}:
        return None
    try:
        raw = "".join(texts).encode("ascii")
    except UnicodeEncodeError:
        return None
    chars = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 24)
    ok = np.ones(len(texts), dtype=bool)
    for at, mark in _MARKS.items():
        ok &= chars[:, at] == mark[0]
    digits = chars[:, _DIGITS].astype(np.int64) - 48
    ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    d = digits.T
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]
    month, day = d[4] * 10 + d[5], d[6] * 10 + d[7]
    hour, minute, second = d[8] * 10 + d[9], d[10] * 10 + d[11], d[12] * 10 + d[13]
    milli = d[14] * 100 + d[15] * 10 + d[16]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    longest = month_days[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= longest)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    values = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + milli
    return values, ok
