"""MongoDB Extended JSON as ``mongoexport`` writes it, read without a driver.

Files come from outside and are read defensively: only regular files are opened (a FIFO or
``/dev/zero`` would be read forever), gzip is recognised by its magic number, a UTF-8 byte
order mark is dropped, and every failure, including nesting too deep for the parser and
numbers too long to convert, is a :class:`~convstats.errors.DataFormatError` naming the file
and the line. The work and the memory are bounded by the document, not by the file: text is
read a block at a time, a line or a document longer than :data:`MAX_DOCUMENT_BYTES` is refused
before more of it is read, and runs of blank lines are skipped at the speed of a byte scan, so
that a small gzip file cannot expand into gigabytes held or hours of work.

Beside :func:`load_collections`, the module offers what a faster reader of one collection
needs to read exactly as it does (``convstats_adapters.memory.loader`` is one): the files of
a collection (:func:`export_files`, :func:`missing_rooms`), a file opened as it opens one
(:func:`open_export`), its text in blocks of whole lines (:class:`ExportLines`,
:func:`content_lines`), a line decoded and parsed with its errors (:func:`decode_line`,
:func:`parse_line`), the shortcut for ``mongoexport``'s dates (:func:`exported_date`), and a
whole file or one document of it read the reference's way (:func:`read_export_file`,
:func:`nth_document`). A reader that keeps to these gives the reference's errors, at the
reference's lines.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import math
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Collection, Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, NoReturn

import attrs

from convstats.dates import parse_iso_datetime
from convstats.errors import DataFormatError
from convstats.model import EPOCH
from convstats_adapters import documents as doc

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_NESTING",
    "REPORT_COLLECTIONS",
    "DateOutOfRange",
    "ExportLines",
    "ProgressCallback",
    "content_lines",
    "decode_line",
    "decode_value",
    "export_files",
    "exported_date",
    "load_collections",
    "missing_rooms",
    "nth_document",
    "open_export",
    "parse_line",
    "progress_callback",
    "read_export_file",
    "reporting_progress",
]

#: The collections the conversations-by-agent report reads; an export's others are skipped.
REPORT_COLLECTIONS: Final = (
    doc.ROOMS,
    doc.USERS,
    doc.PERMISSIONS,
    doc.DEPARTMENTS,
    doc.UNIT_MONITORS,
    doc.DEPARTMENT_AGENTS,
)

#: Called with a collection's name and how many of its documents have been read so far.
#: Readers that know more say it in keywords: ``read`` and ``total``, the bytes of the file
#: read so far and its size; ``step``, what is being done once the file has been read
#: (``"building"``: its rooms into the store). A callback takes ``**progress`` for them.
ProgressCallback = Callable[..., None]

_SUFFIXES: Final = (".json", ".json.gz")
_GZIP_MAGIC: Final = b"\x1f\x8b"
_BOM: Final = b"\xef\xbb\xbf"
# Without it, opening a FIFO would wait for a writer before the file type could be checked.
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_PROGRESS_EVERY: Final = 1024

#: The most bytes a line of a JSON Lines export, or a document of any other file, may hold:
#: 16 MiB, MongoDB's own limit on a document (as BSON). Rocket.Chat's rooms and users are a
#: few kilobytes; the limit bounds the memory one document can take while it is parsed.
MAX_DOCUMENT_BYTES: Final = 16 * 1024 * 1024
#: The deepest a document's arrays and objects may nest. MongoDB stores at most 100 levels;
#: 512 leaves the parsers, which recurse a level at a time, room within the interpreter's
#: default recursion limit (1,000), wherever the loader is called from.
MAX_NESTING: Final = 512
_TOO_DEEP: Final = f"arrays or objects nested too deep (more than {MAX_NESTING} levels)"
_TOO_DEEP_HERE: Final = "arrays or objects nested too deep for the stack left on this thread"
_TOO_LONG: Final = f"more than {MAX_DOCUMENT_BYTES // 2**20} MiB, larger than any MongoDB document"
#: Bytes read at a time by the reference reader (text, after gzip).
_BLOCK_BYTES: Final = 1 << 20
# The whitespace of bytes.isspace(): a line of nothing else is blank and skipped.
_BLANK: Final = re.compile(rb"[ \t\n\r\x0b\x0c]*")
# The whitespace JSON allows between values.
_JSON_SPACE: Final = re.compile(r"[ \t\n\r]*")
# A string token (no raw newline can occur in one), or a bracket.
_STRUCTURE: Final = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|[\[\]{}]')
_WRAPPERS: Final = frozenset(
    ("$date", "$oid", "$numberInt", "$numberLong", "$numberDouble", "$numberDecimal")
)

_progress: ContextVar[ProgressCallback | None] = ContextVar("convstats_progress", default=None)


class _BadValue(ValueError):
    pass


@attrs.frozen
class DateOutOfRange:
    """A BSON date before year 1 or after 9999, which a Python datetime cannot hold.

    MongoDB stores such dates; a room whose ``ts`` is one never falls in a window, so it is
    kept as this value (not a datetime) rather than refusing the whole file.
    """

    milliseconds: int


@contextlib.contextmanager
def reporting_progress(callback: ProgressCallback) -> Iterator[None]:
    """Within the block, call ``callback(collection, documents_read)`` as export files are read.

    A context rather than a parameter, so that it reaches the readers a caller does not call
    itself (``MemoryStore.from_path`` reads through them). It is called every thousand or so
    documents and once at the end of each collection, in the reading thread.
    """
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


def progress_callback() -> ProgressCallback | None:
    """The callback of the innermost :func:`reporting_progress` block, for export readers."""
    return _progress.get()


#: The fixed shape ``mongoexport`` writes a ``$date`` in; hour 24 is left to the full parser.
_EXPORTED_DATE = re.compile(
    # Only UTC, as mongoexport writes it: other offsets have limits of their own (moment
    # refuses beyond -12:00..+14:00) that the full parser knows.
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):\d{2}:\d{2}(?:\.\d{3})?(?:Z|[+-]00:00)",
    re.ASCII,
)


def exported_date(value: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS(.mmm)`` and ``Z`` (or ``±00:00``), as ``mongoexport`` writes dates.

    ``None`` for any other text, and for a value this shortcut cannot vouch for: the caller
    then asks :func:`~convstats.dates.parse_iso_datetime`, which decides. Whatever it
    returns, that parser would have returned the same.
    """
    if _EXPORTED_DATE.fullmatch(value) is None:
        return None
    try:
        # Python 3.10's fromisoformat does not read "Z".
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] == "Z" else value)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _date(value: Any) -> datetime | DateOutOfRange:
    if isinstance(value, str):
        # The full request-date parser costs about 30 times more than the fixed shape
        # mongoexport writes; it still decides every other text.
        parsed = exported_date(value) or parse_iso_datetime(value)
        if parsed is None:
            raise _BadValue(f"invalid $date {value!r}")
        return parsed
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            return DateOutOfRange(value)
    raise _BadValue(f"invalid $date {value!r}")


def _integer(value: Any, kind: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _BadValue(f"invalid {kind} {_shown(value)}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"


def _double(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _BadValue(f"invalid $numberDouble {_shown(value)}") from None
    if math.isnan(number) and value != "NaN":
        raise _BadValue(f"invalid $numberDouble {_shown(value)}")
    return number


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        raise _BadValue(f"invalid $numberDecimal {_shown(value)}") from None


def decode_value(document: dict[str, Any]) -> Any:
    """``json`` object hook: turn one Extended JSON wrapper into its Python value.

    ``$date`` (relaxed ISO string, canonical ``{"$numberLong": …}`` or legacy number) becomes
    an aware UTC datetime (a :class:`DateOutOfRange` beyond Python's years);
    ``$numberInt``/``$numberLong`` an int; ``$numberDouble`` a float; ``$numberDecimal`` a
    Decimal; ``$oid`` its hexadecimal string. Other objects are returned unchanged.
    """
    if len(document) != 1:
        return document
    ((key, value),) = document.items()
    if key == "$date":
        return _date(value)
    if key in ("$numberInt", "$numberLong"):
        return _integer(value, key)
    if key == "$numberDouble":
        return _double(value)
    if key == "$numberDecimal":
        return _decimal(value)
    if key == "$oid" and isinstance(value, str):
        return value
    return document


_DECODER: Final = json.JSONDecoder(object_hook=decode_value)


def _nesting_past(text: str, start: int = 0, end: int | None = None) -> int | None:
    """Where the nesting of ``text[start:end]`` first goes past :data:`MAX_NESTING`, or None."""
    if text.count("[", start, end) + text.count("{", start, end) <= MAX_NESTING:
        return None  # a bracket a level: too few to nest that deep, wherever they are
    depth = 0
    for match in _STRUCTURE.finditer(text, start, len(text) if end is None else end):
        token = match[0]
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_NESTING:
                return match.start()
        elif token in ("]", "}"):
            depth -= 1
    return None


def _long_number_at(text: str, start: int = 0) -> int | None:
    """Where the first integer longer than Python converts starts (read after a failure)."""
    # The limit exists from Python 3.10.7 (before it, no integer is too long to convert).
    limit: int = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    match = re.compile(rf"\d{{{limit + 1},}}").search(text, start) if limit else None
    return None if match is None else match.start()


def parse_line(path: Path, text: str, *, line: int) -> Any:
    """Parse ``text``, line ``line`` of the JSON Lines file ``path``, Extended JSON decoded.

    Raises :class:`~convstats.errors.DataFormatError` naming the file and the line for bad
    JSON, a bad Extended JSON value, nesting past :data:`MAX_NESTING` and a number too long.
    """
    if len(text) > 2 * MAX_NESTING and _nesting_past(text) is not None:
        raise DataFormatError(str(path), _TOO_DEEP, line=line)
    try:
        return json.loads(text, object_hook=decode_value)
    except json.JSONDecodeError as error:
        raise DataFormatError(str(path), error.msg, line=line) from None
    except _BadValue as error:
        raise DataFormatError(str(path), str(error), line=line) from None
    except RecursionError:  # within MAX_NESTING: called on a thread with little stack left
        raise DataFormatError(str(path), _TOO_DEEP_HERE, line=line) from None
    except ValueError:  # Python's limit on the digits of an integer it converts
        raise DataFormatError(str(path), "a number too long to read", line=line) from None


def decode_line(path: Path, data: bytes, *, line: int) -> str:
    """``data`` as text, ``line`` being the number of its first line in the file ``path``.

    Raises :class:`~convstats.errors.DataFormatError` naming the line of the first byte
    that is not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        at = line + data.count(b"\n", 0, error.start)
        raise DataFormatError(str(path), f"not UTF-8 text ({error.reason})", line=at) from None


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


@contextlib.contextmanager
def open_export(path: Path) -> Iterator[io.BufferedIOBase]:
    """``path`` opened for binary reading, decompressed when it is gzip (a context manager).

    Anything but a regular file is refused before a byte is read, with a
    :class:`~convstats.errors.DataFormatError` that says what it is.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except FileNotFoundError:
        raise DataFormatError(str(path), "no such file or directory") from None
    except OSError as error:
        raise DataFormatError(str(path), error.strerror or "cannot be opened") from None
    try:
        # Checked before open(): a directory opens as a descriptor but not as a file object.
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataFormatError(
                str(path), f"not a regular file ({_file_kind(mode)}); give an export file"
            )
        if _NONBLOCK:
            os.set_blocking(fd, True)
        raw = open(fd, "rb")  # noqa: SIM115 (owns fd from here on, closed below)
    except BaseException:
        os.close(fd)
        raise
    with raw:
        if raw.peek(2)[:2] != _GZIP_MAGIC:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped


class ExportLines:
    """A JSON Lines file's text in blocks of whole lines, none longer than the limit.

    Iterating gives ``(number, block)``: ``block`` holds whole lines, the file's last one
    perhaps without its LF, and ``number`` is the number of its first line. Lines end at LF
    only: U+0085, U+2028 and U+2029, which mongoexport writes unescaped inside strings, stay
    inside their line. A byte order mark before the first line is dropped. A line is refused
    as soon as more than :data:`MAX_DOCUMENT_BYTES` of it has been read.

    A file whose first character (after blank lines) is ``[`` is one JSON array, not lines:
    iterating stops before that line, and ``array`` is its number and the text read from its
    start, for the reference's JSON reader to read on (:func:`read_export_file`).
    A reader that counts a block's LFs itself gives the count to :meth:`counted`.
    """

    def __init__(self, path: Path, stream: io.BufferedIOBase, size: int) -> None:
        if not len(_BOM) <= size <= MAX_DOCUMENT_BYTES:
            raise ValueError(f"blocks of {size} bytes: from 3 bytes to the line limit")
        self.path, self.stream, self.size = path, stream, size
        self.array: tuple[int, bytes] | None = None
        self._pending = b""
        #: The number of the line ``_pending`` starts.
        self._line = 1
        self._breaks: int | None = None

    def counted(self, breaks: int) -> None:
        """Take the number of LFs in the block just given, counted by its reader already."""
        self._breaks = breaks

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        data = self._read().removeprefix(_BOM)
        content = False
        while data:
            held = len(self._pending)
            if held:
                data = self._pending + data
            if not content:
                at = _blank_end(data, 0)
                content = at < len(data)
                if data[at : at + 1] == b"[":
                    begin = data.rfind(b"\n", 0, at) + 1
                    self.array = self._line + data.count(b"\n", 0, begin), data[begin:]
                    return
            cut = data.rfind(b"\n", held) + 1
            if not cut:
                self._pending = data
                if len(data) > MAX_DOCUMENT_BYTES:
                    self._refuse()
            else:
                # Only the first line can be longer than a block: it carries on what was held.
                if held and data.find(b"\n", held) > MAX_DOCUMENT_BYTES:
                    self._refuse()
                block, self._pending = data[:cut], data[cut:]
                self._breaks = None
                yield self._line, block
                self._line += block.count(b"\n") if self._breaks is None else self._breaks
            data = self._read()
        if self._pending:
            yield self._line, self._pending

    def _read(self) -> bytes:
        try:
            return self.stream.read(self.size)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(str(self.path), _read_failure(error), line=self._line) from None

    def _refuse(self) -> NoReturn:
        raise DataFormatError(str(self.path), f"a line of {_TOO_LONG}", line=self._line)


def _blank_end(block: bytes, at: int) -> int:
    """Where the blank bytes (and lines) from ``at`` end."""
    blank = _BLANK.match(block, at)
    return at if blank is None else blank.end()


def content_lines(block: bytes, first: int) -> Iterator[tuple[int, bytes]]:
    """The lines of ``block`` that are not blank, each with its number (``first``: the first's).

    A line is blank when ``bytes.isspace`` says so; a run of them is skipped by one match of
    a regular expression, so that millions of blank lines cost what a scan of their bytes
    does. Lines are given without their LF.
    """
    number, at, size = first, 0, len(block)
    while at < size:
        content = _blank_end(block, at)
        if content == size:
            return
        begin = block.rfind(b"\n", at, content) + 1 or at
        number += block.count(b"\n", at, begin)
        end = block.find(b"\n", content)
        if end < 0:
            end = size
        yield number, block[begin:end]
        number, at = number + 1, end + 1


class _Json:
    """JSON text from a stream, decoded a block at a time and parsed a value at a time.

    ``text[pos:]`` is what is still to be parsed; the text before ``pos`` is dropped as more
    is read, so what is held is the value being parsed and a block. A value that would hold
    more than :data:`MAX_DOCUMENT_BYTES` is refused before more of it is read.
    """

    def __init__(self, path: Path, stream: io.BufferedIOBase, head: bytes, line: int) -> None:
        """Read ``stream`` on from ``head``, bytes read already, whose first line is ``line``."""
        self.path, self.stream = path, stream
        self.text, self.pos = "", 0
        # The line of text[_counted], moved on as the lines of parsed values are asked for.
        self._line, self._counted = line, 0
        # Bytes not yet decoded (the start of a character cut by a block), and their line.
        self._raw, self._raw_line = b"", line
        self._ended = False
        self._add(head)

    def skip(self) -> str:
        """Skip JSON whitespace; the next character, or ``""`` at the end of the text."""
        while True:
            space = _JSON_SPACE.match(self.text, self.pos)
            self.pos = self.pos if space is None else space.end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self._fill():
                return ""

    def value(self) -> tuple[Any, int]:
        """The JSON value after the whitespace at ``pos``, and the line it starts on."""
        self.skip()
        while True:
            start = self.pos
            try:
                value, end = _DECODER.raw_decode(self.text, start)
            except json.JSONDecodeError as error:
                if self._more(start):
                    continue
                self.fail(error.msg, error.pos)
            except _BadValue as error:
                self.fail(str(error), start)
            except RecursionError:
                deep = _nesting_past(self.text, start)
                if deep is None:  # within MAX_NESTING: a thread with little stack left
                    self.fail(_TOO_DEEP_HERE, start)
                self.fail(_TOO_DEEP, deep)
            except ValueError:  # Python's limit on the digits of an integer it converts
                long = _long_number_at(self.text, start)
                self.fail("a number too long to read", start if long is None else long)
            # A number or a literal that ends the text read so far may go on in the next block.
            if end < len(self.text) or not self._more(start):
                break
        size = end - start
        if (
            size * 4 > MAX_DOCUMENT_BYTES
            and len(self.text[start:end].encode()) > MAX_DOCUMENT_BYTES
        ):
            self.fail(f"a document of {_TOO_LONG}", start)
        deep = _nesting_past(self.text, start, end) if size > 2 * MAX_NESTING else None
        if deep is not None:
            self.fail(_TOO_DEEP, deep)
        self.pos = end
        return value, self._line_at(start)

    def expect(self, character: str, message: str) -> None:
        """Step over ``character``, the next after whitespace, or refuse with ``message``."""
        if self.skip() != character:
            self.fail(message)
        self.pos += 1

    def end(self) -> None:
        """Refuse anything but whitespace after the last value."""
        if self.skip():
            self.fail("Extra data")

    def fail(self, message: str, at: int | None = None) -> NoReturn:
        """Refuse the text with ``message``, naming the line of ``at`` (by default ``pos``)."""
        where = self._line_at(self.pos if at is None else at)
        raise DataFormatError(str(self.path), message, line=where)

    def _line_at(self, at: int) -> int:
        if at >= self._counted:
            self._line += self.text.count("\n", self._counted, at)
        else:
            self._line -= self.text.count("\n", at, self._counted)
        self._counted = at
        return self._line

    def _more(self, start: int) -> bool:
        """Read more of the value at ``start``; False at the end of the file."""
        if len(self.text) - start > MAX_DOCUMENT_BYTES:
            self.fail(f"a document of {_TOO_LONG}", start)
        return self._fill()

    def _fill(self) -> bool:
        """Read and decode another block; False at the end of the file."""
        if self._ended:
            return False
        try:
            block = self.stream.read(_BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(
                str(self.path), _read_failure(error), line=self._raw_line
            ) from None
        self._ended = not block
        self._add(block)
        return not self._ended

    def _add(self, block: bytes) -> None:
        data = self._raw + block if self._raw else block
        try:
            text, self._raw = data.decode("utf-8"), b""
        except UnicodeDecodeError as error:
            if self._ended or error.reason != "unexpected end of data":
                at = self._raw_line + data.count(b"\n", 0, error.start)
                reason = f"not UTF-8 text ({error.reason})"
                raise DataFormatError(str(self.path), reason, line=at) from None
            text, self._raw = data[: error.start].decode("utf-8"), data[error.start :]
        if not text:
            return  # positions in the text stay valid until something is added
        self._raw_line += text.count("\n")
        if self.pos:
            self._line_at(self.pos)
            self.text, self.pos, self._counted = self.text[self.pos :], 0, 0
        self.text += text


def _array_values(source: _Json) -> Iterator[tuple[int, Any]]:
    """The values of the JSON array next in ``source``, each with the line it starts on."""
    source.expect("[", "Expecting value")
    if source.skip() == "]":
        source.pos += 1
        return
    while True:
        value, line = source.value()
        yield line, value
        if source.skip() == "]":
            source.pos += 1
            return
        source.expect(",", "Expecting ',' delimiter")


def _read_failure(error: Exception) -> str:
    if isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"not a complete gzip file ({error})"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def _export_documents(
    path: Path, collection: str, stream: io.BufferedIOBase
) -> Iterator[tuple[int, dict[str, Any]]]:
    """One collection's documents with their lines: JSON Lines, or one array (``--jsonArray``)."""
    lines = ExportLines(path, stream, _BLOCK_BYTES)
    for first, block in lines:
        for number, text in content_lines(block, first):
            document = parse_line(path, decode_line(path, text, line=number), line=number)
            if not isinstance(document, dict):
                raise DataFormatError(str(path), "a line must hold one JSON object", line=number)
            yield number, document
    if lines.array is not None:
        line, head = lines.array
        yield from _array_documents(path, collection, _Json(path, stream, head, line))


def _array_documents(
    path: Path, collection: str, source: _Json
) -> Iterator[tuple[int, dict[str, Any]]]:
    # A value that is not a document is named once the whole array has been read: the
    # reference reads, and refuses bad JSON, to the end first.
    wrong: tuple[int, int] | None = None
    for index, (line, value) in enumerate(_array_values(source)):
        if isinstance(value, dict):
            yield line, value
        elif wrong is None:
            wrong = index, line
    source.end()
    if wrong is not None:
        index, line = wrong
        message = f"document {index} of {collection!r} is not an object"
        raise DataFormatError(str(path), message, line=line)


def _read_export(path: Path, collection: str, stream: io.BufferedIOBase) -> list[dict[str, Any]]:
    """One collection's documents: JSON Lines, or one array (``--jsonArray``), streamed."""
    report = _progress.get()
    documents: list[dict[str, Any]] = []
    for _, document in _export_documents(path, collection, stream):
        documents.append(document)
        if report is not None and len(documents) % _PROGRESS_EVERY == 0:
            report(collection, len(documents))
    if report is not None:
        report(collection, len(documents))
    return documents


def read_export_file(path: Path, collection: str) -> list[dict[str, Any]]:
    """Every document of ``collection``'s export file ``path``, as :func:`load_collections`.

    JSON Lines or one JSON array, plain or gzip; errors as :func:`load_collections` raises.
    """
    with open_export(path) as stream:
        try:
            return _read_export(path, collection, stream)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(str(path), _read_failure(error)) from None


def nth_document(path: Path, collection: str, index: int) -> tuple[int, dict[str, Any]] | None:
    """The line and the document of an export file's document ``index`` (from 0), if any.

    JSON Lines are counted, not parsed, up to that document.
    """
    with open_export(path) as stream:
        lines = ExportLines(path, stream, _BLOCK_BYTES)
        seen = 0
        for first, block in lines:
            for number, text in content_lines(block, first):
                if seen == index:
                    text_line = decode_line(path, text, line=number)
                    return number, parse_line(path, text_line, line=number)
                seen += 1
        if lines.array is None:
            return None
    with open_export(path) as stream:
        for seen, found in enumerate(_export_documents(path, collection, stream)):
            if seen == index:
                return found
    return None


def export_files(root: Path, name: str) -> list[Path]:
    """The export files of collection ``name`` in the folder ``root``: ``.json``, ``.json.gz``.

    Each that exists as a name (a broken link included), in that order; more than one is an
    error for :func:`load_collections`.
    """
    # lexists: a broken link is reported by name when opened, not taken for a missing file.
    candidates = (root / f"{name}{suffix}" for suffix in _SUFFIXES)
    return [path for path in candidates if os.path.lexists(path)]


def missing_rooms(root: Path) -> str:
    """Why the folder ``root`` has no rooms to read: what is missing, and a hint where known."""
    message = f"no {doc.ROOMS}.json or {doc.ROOMS}.json.gz, the mongoexport of the rooms"
    try:  # a bounded look around, for the hint only: dump folders can be large
        entries = list(itertools.islice(root.iterdir(), 1000))
    except OSError:
        return message
    inside = [entry for entry in entries if entry.is_dir() and export_files(entry, doc.ROOMS)]
    if inside:
        return f"{message}; {inside[0]} has it: give that folder"
    bson = any(entry.suffix == ".bson" for entry in entries) or any(
        (entry / f"{doc.ROOMS}.bson").exists() for entry in entries if entry.is_dir()
    )
    if bson:
        return (
            f"{message}; this is a mongodump (BSON), which is not read here: export each "
            f"collection with mongoexport, e.g. mongoexport --collection={doc.ROOMS} "
            f"--out={doc.ROOMS}.json"
        )
    return message


def _load_directory(root: Path, collections: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    files = _directory_files(root, collections)
    return {name: read_export_file(file, name) for name, file in files.items()}


def _directory_files(root: Path, collections: Collection[str]) -> dict[str, Path]:
    """The export file of each of ``collections`` the directory has, checked before any is read."""
    found: dict[str, Path] = {}
    for name in collections:
        files = export_files(root, name)
        if len(files) > 1:
            raise DataFormatError(
                str(root), f"both {files[0].name} and {files[1].name}: keep one of them"
            )
        if files:
            found[name] = files[0]
    if doc.ROOMS in collections and doc.ROOMS not in found:
        raise DataFormatError(str(root), missing_rooms(root))
    return found


def _one_collection_hint(path: Path) -> str:
    return (
        "expected a JSON object mapping collection names to arrays of documents, but this "
        "holds the documents of one collection, as mongoexport writes them: give the folder "
        f"that holds the exports, {path.parent}, instead"
    )


def _is_document(value: Any) -> bool:
    """Whether ``value`` reads as one document rather than an object of collections."""
    return isinstance(value, dict) and _document_like(
        {key: isinstance(item, list) for key, item in value.items()}
    )


def _document_like(arrays: dict[str, bool]) -> bool:
    """Whether an object of these keys, each marked if its value is an array, is a document."""
    return not all(arrays.values()) and not any(key in REPORT_COLLECTIONS for key in arrays)


def _first_line_is_a_document(path: Path) -> bool:
    """Whether the file's first line that is not blank is a JSON document on its own."""
    try:
        with open_export(path) as stream:
            for first, block in ExportLines(path, stream, _BLOCK_BYTES):
                for number, text in content_lines(block, first):
                    return _is_document(json.loads(decode_line(path, text, line=number)))
    except (ValueError, RecursionError):  # DataFormatError is a ValueError
        pass
    return False


@attrs.define
class _CollectionsObject:
    """What a collections file's top-level value was, read without holding all of it."""

    #: ``"array"`` (of documents only, when ``documents_only``), ``"object"`` or ``"other"``.
    kind: str
    documents_only: bool = False
    #: Each key of the object, with whether its value is an array.
    arrays: dict[str, bool] = attrs.Factory(dict)
    #: The documents of the collections asked for.
    kept: dict[str, list[dict[str, Any]]] = attrs.Factory(dict)
    #: Why a collection asked for is not an array of documents, and where.
    wrong: dict[str, tuple[str, int | None]] = attrs.Factory(dict)


def _read_collections(source: _Json, collections: Collection[str]) -> _CollectionsObject:
    """The file's top-level value, streamed: the arrays of ``collections`` kept, others dropped."""
    opening = source.skip()
    if opening == "[":
        count, documents_only = 0, True
        for _, value in _array_values(source):
            count, documents_only = count + 1, documents_only and isinstance(value, dict)
        source.end()
        return _CollectionsObject("array", documents_only=bool(count) and documents_only)
    if opening != "{":
        source.value()
        source.end()
        return _CollectionsObject("other")
    read = _CollectionsObject("object")
    source.pos += 1
    more = source.skip() != "}"
    while more:
        if source.skip() != '"':
            source.fail("Expecting property name enclosed in double quotes")
        key, _ = source.value()
        source.expect(":", "Expecting ':' delimiter")
        # As in a dict, a repeated key's last value is the one that counts.
        read.kept.pop(key, None)
        read.wrong.pop(key, None)
        read.arrays[key] = source.skip() == "["
        if not read.arrays[key]:
            source.value()
            if key in collections:
                read.wrong[key] = (f"collection {key!r} is not an array of documents", None)
        elif key not in collections:
            for _ in _array_values(source):
                pass
        else:
            documents = read.kept[key] = []
            for index, (line, value) in enumerate(_array_values(source)):
                if isinstance(value, dict):
                    documents.append(value)
                elif key not in read.wrong:
                    read.wrong[key] = (f"document {index} of {key!r} is not an object", line)
        more = source.skip() == ","
        source.expect("," if more else "}", "Expecting ',' delimiter")
    source.end()
    return read


def _load_file(path: Path, collections: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    with open_export(path) as stream:
        try:
            head = stream.read(_BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(str(path), _read_failure(error), line=1) from None
        try:
            read = _read_collections(_Json(path, stream, head.removeprefix(_BOM), 1), collections)
        except DataFormatError:
            # A first line that is a document on its own: JSON Lines, one collection's export.
            if _first_line_is_a_document(path):
                raise DataFormatError(str(path), _one_collection_hint(path)) from None
            raise
    # An object of one Extended JSON key is a value (a date, a number), not an object.
    wrapper = read.kind == "object" and len(read.arrays) == 1 and set(read.arrays) <= _WRAPPERS
    one_document = read.kind == "object" and not wrapper and _document_like(read.arrays)
    if read.documents_only or one_document:
        raise DataFormatError(str(path), _one_collection_hint(path))
    if read.kind != "object" or wrapper:
        raise DataFormatError(
            str(path), "expected a JSON object mapping collection names to arrays of documents"
        )
    if doc.ROOMS in collections and doc.ROOMS not in read.arrays:
        raise DataFormatError(str(path), f"no {doc.ROOMS!r} collection in the file")
    for name in collections:
        if name in read.wrong:
            message, line = read.wrong[name]
            raise DataFormatError(str(path), message, line=line)
    loaded = {name: read.kept[name] for name in collections if name in read.kept}
    report = _progress.get()
    if report is not None:
        for name, documents in loaded.items():
            report(name, len(documents))
    return loaded


def load_collections(
    path: str | os.PathLike[str], *, collections: Collection[str] = REPORT_COLLECTIONS
) -> dict[str, list[dict[str, Any]]]:
    """Read ``collections`` (by default the report's) from a file or a ``mongoexport`` directory.

    A file holds one JSON object mapping each collection name to an array of documents. A
    directory holds one ``<collection>.json`` (or gzip-compressed ``<collection>.json.gz``)
    file per collection, each either JSON Lines (``mongoexport``'s default) or a JSON array
    (``--jsonArray``); files of other collections are never opened. Every file is read a
    block at a time and parsed a document at a time. Values may use Extended JSON, and a
    UTF-8 byte order mark is allowed. The rooms are required (when asked for): an export
    without them would otherwise read as a workspace without conversations. Collections the
    export lacks are left out.

    Raises :class:`~convstats.errors.DataFormatError` naming the file and, where it is known,
    the line, for anything that cannot be read: a missing path, a FIFO, device or directory
    instead of a file, invalid UTF-8, JSON or gzip, a wrong shape, a line or document of more
    than :data:`MAX_DOCUMENT_BYTES`, nesting deeper than :data:`MAX_NESTING` or a number too
    long. Progress is reported to the callback of an enclosing :func:`reporting_progress`.
    """
    root = Path(path)
    if root.is_dir():
        return _load_directory(root, collections)
    return _load_file(root, collections)
