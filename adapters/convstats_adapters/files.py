"""MongoDB Extended JSON as ``mongoexport`` writes it, read without a driver."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from convstats.dates import parse_iso_datetime
from convstats.errors import DataFormatError
from convstats.model import EPOCH

__all__ = ["DateOutOfRange", "decode_value", "load_collections"]


class _BadValue(ValueError):
    pass


@attrs.frozen
class DateOutOfRange:
    """A BSON date before year 1 or after 9999, which a Python datetime cannot hold.

    MongoDB stores such dates; a room whose ``ts`` is one never falls in a window, so it is
    kept as this value (not a datetime) rather than refusing the whole file.
    """

    milliseconds: int


#: The fixed shape ``mongoexport`` writes a ``$date`` in; hour 24 is left to the full parser.
_EXPORTED_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):\d{2}:\d{2}(?:\.\d{3})?(?:Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def _exported_date(value: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS(.mmm)`` and ``Z`` or ``±HH:MM``, as ``mongoexport`` writes dates.

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
        raise _BadValue(f"invalid {kind} {value!r}") from None


def _double(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _BadValue(f"invalid $numberDouble {value!r}") from None
    if math.isnan(number) and value != "NaN":
        raise _BadValue(f"invalid $numberDouble {value!r}")
    return number


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        raise _BadValue(f"invalid $numberDecimal {value!r}") from None


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


def _loads(text: str) -> Any:
    return json.loads(text, object_hook=decode_value)


def _parse(path: Path, text: str, *, line: int | None = None) -> Any:
    """Parse ``text``, the whole file or, for JSON Lines, its line number ``line``."""
    try:
        return _loads(text)
    except json.JSONDecodeError as error:
        at = error.lineno if line is None else line + error.lineno - 1
        raise DataFormatError(str(path), error.msg, line=at) from None
    except _BadValue as error:
        raise DataFormatError(str(path), str(error), line=line) from None


def _documents(path: Path, value: Any, collection: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise DataFormatError(str(path), f"collection {collection!r} is not an array of documents")
    for index, document in enumerate(value):
        if not isinstance(document, dict):
            raise DataFormatError(str(path), f"document {index} of {collection!r} is not an object")
    return value


def _json_lines(path: Path, text: str) -> Iterator[dict[str, Any]]:
    # Only "\n" ends a line: str.splitlines would also split at U+0085, U+2028 and U+2029,
    # which mongoexport writes unescaped inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        document = _parse(path, line, line=number)
        if not isinstance(document, dict):
            raise DataFormatError(str(path), "a line must hold one JSON object", line=number)
        yield document


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(str(path), f"not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise DataFormatError(str(path), error.strerror or "cannot be read") from None


def _load_export_file(path: Path) -> list[dict[str, Any]]:
    text = _read_text(path)
    collection = path.stem
    if text.lstrip().startswith("["):
        return _documents(path, _parse(path, text), collection)
    return list(_json_lines(path, text))


def load_collections(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Read collections from a file or a ``mongoexport`` directory.

    A file holds one JSON object mapping each collection name to an array of documents. A
    directory holds one ``<collection>.json`` file per collection, each either JSON Lines
    (``mongoexport``'s default) or a JSON array (``--jsonArray``). Values may use Extended
    JSON. Raises :class:`~convstats.errors.DataFormatError` naming the file and, where it is
    known, the line.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(root.glob("*.json"))
        if not files:
            raise DataFormatError(str(root), "the directory holds no <collection>.json file")
        return {file.stem: _load_export_file(file) for file in files}
    if not root.exists():
        raise DataFormatError(str(root), "no such file or directory")
    value = _parse(root, _read_text(root))
    if not isinstance(value, dict):
        raise DataFormatError(
            str(root), "expected a JSON object mapping collection names to arrays of documents"
        )
    return {name: _documents(root, documents, name) for name, documents in value.items()}
