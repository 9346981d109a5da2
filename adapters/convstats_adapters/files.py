"""MongoDB Extended JSON as ``mongoexport`` writes it, read without a driver.

Files come from outside and are read defensively: only regular files are opened (a FIFO or
``/dev/zero`` would be read forever), gzip is recognised by its magic number, a UTF-8 byte
order mark is dropped, and every failure, including nesting too deep for the parser and
numbers too long to convert, is a :class:`~convstats.errors.DataFormatError` naming the file
and the line.
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
from typing import Any, Final

import attrs

from convstats.dates import parse_iso_datetime
from convstats.errors import DataFormatError
from convstats.model import EPOCH
from convstats_adapters import documents as doc

__all__ = [
    "REPORT_COLLECTIONS",
    "DateOutOfRange",
    "ProgressCallback",
    "decode_value",
    "load_collections",
    "progress_callback",
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
ProgressCallback = Callable[[str, int], None]

_SUFFIXES: Final = (".json", ".json.gz")
_GZIP_MAGIC: Final = b"\x1f\x8b"
_BOM: Final = b"\xef\xbb\xbf"
# Without it, opening a FIFO would wait for a writer before the file type could be checked.
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_PROGRESS_EVERY: Final = 1024
# A string token (no raw newline can occur in one), a bracket, or a line break.
_STRUCTURE: Final = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|[\[\]{}\n]')

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


def _exported_date(value: str) -> datetime | None:
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
        parsed = _exported_date(value) or parse_iso_datetime(value)
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


def _deepest_line(text: str) -> int:
    """The line where ``text`` first reaches its deepest nesting (only read after a failure)."""
    depth = deepest = 0
    line = found = 1
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token == "\n":
            line += 1
        elif token in ("[", "{"):
            depth += 1
            if depth > deepest:
                deepest, found = depth, line
        elif token in ("]", "}"):
            depth -= 1
    return found


def _long_number_line(text: str) -> int | None:
    """The line of the first integer longer than Python converts (only read after a failure)."""
    # The limit exists from Python 3.10.7 (before it, no integer is too long to convert).
    limit: int = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    match = re.search(rf"\d{{{limit + 1},}}", text) if limit else None
    return None if match is None else text.count("\n", 0, match.start()) + 1


def _parse(path: Path, text: str, *, line: int | None = None) -> Any:
    """Parse ``text``, the whole file or, for JSON Lines, its line number ``line``."""
    try:
        return json.loads(text, object_hook=decode_value)
    except json.JSONDecodeError as error:
        at = error.lineno if line is None else line  # a JSON line is one line, bar its "\n"
        raise DataFormatError(str(path), error.msg, line=at) from None
    except _BadValue as error:
        raise DataFormatError(str(path), str(error), line=line) from None
    except RecursionError:
        deep = _deepest_line(text) if line is None else line
        raise DataFormatError(str(path), "arrays or objects nested too deep", line=deep) from None
    except ValueError:  # Python's limit on the digits of an integer it converts
        long = _long_number_line(text) if line is None else line
        raise DataFormatError(str(path), "a number too long to read", line=long) from None


def _decode(path: Path, data: bytes, *, line: int) -> str:
    """``data`` as text, ``line`` being the number of its first line in the file."""
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
def _reading(path: Path) -> Iterator[io.BufferedIOBase]:
    """``path`` opened for binary reading, decompressed when it is gzip.

    Anything but a regular file is refused before a byte is read.
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


def _read_failure(error: Exception) -> str:
    if isinstance(error, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"not a complete gzip file ({error})"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def _documents(path: Path, value: Any, collection: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise DataFormatError(str(path), f"collection {collection!r} is not an array of documents")
    for index, document in enumerate(value):
        if not isinstance(document, dict):
            raise DataFormatError(str(path), f"document {index} of {collection!r} is not an object")
    return value


def _lines(path: Path, stream: io.BufferedIOBase) -> Iterator[bytes]:
    # Iterating bytes splits at b"\n" only: U+0085, U+2028 and U+2029, which mongoexport
    # writes unescaped inside strings, stay inside their line.
    number = 0
    try:
        for number, line in enumerate(stream, start=1):  # noqa: B007 (read by the handler)
            yield line
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(str(path), _read_failure(error), line=number + 1) from None


def _read_export(path: Path, collection: str, stream: io.BufferedIOBase) -> list[dict[str, Any]]:
    """One collection's documents: JSON Lines, streamed, or one array (``--jsonArray``)."""
    report = _progress.get()
    documents: list[dict[str, Any]] = []
    for number, raw in enumerate(_lines(path, stream), start=1):
        data = raw[len(_BOM) :] if number == 1 and raw.startswith(_BOM) else raw
        if data.isspace() or not data:
            continue
        if not documents and data.lstrip().startswith(b"["):
            # The blank lines before it, so that errors name the file's own line numbers.
            whole = b"\n" * (number - 1) + data + stream.read()
            documents = _documents(path, _parse(path, _decode(path, whole, line=1)), collection)
            break
        document = _parse(path, _decode(path, data, line=number), line=number)
        if not isinstance(document, dict):
            raise DataFormatError(str(path), "a line must hold one JSON object", line=number)
        documents.append(document)
        if report is not None and len(documents) % _PROGRESS_EVERY == 0:
            report(collection, len(documents))
    if report is not None:
        report(collection, len(documents))
    return documents


def _load_export_file(path: Path, collection: str) -> list[dict[str, Any]]:
    with _reading(path) as stream:
        try:
            return _read_export(path, collection, stream)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(str(path), _read_failure(error)) from None


def _export_files(root: Path, name: str) -> list[Path]:
    # lexists: a broken link is reported by name when opened, not taken for a missing file.
    candidates = (root / f"{name}{suffix}" for suffix in _SUFFIXES)
    return [path for path in candidates if os.path.lexists(path)]


def _missing_rooms(root: Path) -> str:
    message = f"no {doc.ROOMS}.json or {doc.ROOMS}.json.gz, the mongoexport of the rooms"
    try:  # a bounded look around, for the hint only: dump folders can be large
        entries = list(itertools.islice(root.iterdir(), 1000))
    except OSError:
        return message
    inside = [entry for entry in entries if entry.is_dir() and _export_files(entry, doc.ROOMS)]
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
    found: dict[str, Path] = {}
    for name in collections:
        files = _export_files(root, name)
        if len(files) > 1:
            raise DataFormatError(
                str(root), f"both {files[0].name} and {files[1].name}: keep one of them"
            )
        if files:
            found[name] = files[0]
    if doc.ROOMS in collections and doc.ROOMS not in found:
        raise DataFormatError(str(root), _missing_rooms(root))
    return {name: _load_export_file(file, name) for name, file in found.items()}


def _one_collection_hint(path: Path) -> str:
    return (
        "expected a JSON object mapping collection names to arrays of documents, but this "
        "holds the documents of one collection, as mongoexport writes them: give the folder "
        f"that holds the exports, {path.parent}, instead"
    )


def _is_document(value: Any) -> bool:
    """Whether ``value`` reads as one document rather than an object of collections."""
    return (
        isinstance(value, dict)
        and not all(isinstance(item, list) for item in value.values())
        and not any(key in REPORT_COLLECTIONS for key in value)
    )


def _is_one_collection(value: Any) -> bool:
    """Whether ``value`` reads as one collection's export: an array of documents, or one."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, dict) for item in value)
    return _is_document(value)


def _parse_collections_file(path: Path, text: str) -> Any:
    try:
        return _parse(path, text)
    except DataFormatError:
        # A first line that is a document on its own: JSON Lines, one collection's export.
        first = text.lstrip().partition("\n")[0]
        try:
            one_document = _is_document(json.loads(first))
        except (ValueError, RecursionError):
            one_document = False
        if one_document:
            raise DataFormatError(str(path), _one_collection_hint(path)) from None
        raise


def _load_file(path: Path, collections: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    with _reading(path) as stream:
        try:
            data = stream.read()
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(str(path), _read_failure(error)) from None
    data = data.removeprefix(_BOM)
    value = _parse_collections_file(path, _decode(path, data, line=1))
    if _is_one_collection(value):
        raise DataFormatError(str(path), _one_collection_hint(path))
    if not isinstance(value, dict):
        raise DataFormatError(
            str(path), "expected a JSON object mapping collection names to arrays of documents"
        )
    if doc.ROOMS in collections and doc.ROOMS not in value:
        raise DataFormatError(str(path), f"no {doc.ROOMS!r} collection in the file")
    loaded = {name: _documents(path, value[name], name) for name in collections if name in value}
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
    file per collection, each either JSON Lines (``mongoexport``'s default, streamed) or a JSON
    array (``--jsonArray``); files of other collections are never opened. Values may use
    Extended JSON, and a UTF-8 byte order mark is allowed. The rooms are required (when asked
    for): an export without them would otherwise read as a workspace without conversations.
    Collections the export lacks are left out.

    Raises :class:`~convstats.errors.DataFormatError` naming the file and, where it is known,
    the line, for anything that cannot be read: a missing path, a FIFO or device instead of a
    file, invalid UTF-8, JSON or gzip, a wrong shape, nesting too deep or a number too long.
    Progress is reported to the callback of an enclosing :func:`reporting_progress`.
    """
    root = Path(path)
    if root.is_dir():
        return _load_directory(root, collections)
    return _load_file(root, collections)
