"""The service's log: one form for convstats, uvicorn and asyncio, a timestamp and a level a line.

:func:`logging_config` is a :func:`logging.config.dictConfig` dictionary (standard library
only) that ``convstats serve`` applies before it starts uvicorn. Lines are text by default::

    2024-03-01T12:00:00.123Z INFO uvicorn.access 127.0.0.1:50312 - "GET /healthz HTTP/1.1" 200

or JSON objects, one a line (``time``, ``level``, ``logger``, ``message``; an access line adds
``client``, ``method``, ``path``, ``http_version`` and ``status``; a failure ``exception``).
A traceback in text form has the timestamp and level on each of its lines too.

Headers are never logged (the access line is uvicorn's: client, request line, status), so
neither is a token. asyncio's ``socket.accept() out of system resource``, which it logs with
a traceback for each failed accept when the process runs out of file descriptors, is let
through once per :data:`RESOURCE_ERROR_INTERVAL` as one line counting the ones held back
(:class:`ResourceErrorFilter`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, Final, TextIO

import attrs

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "RESOURCE_ERROR_INTERVAL",
    "JSONFormatter",
    "ResourceErrorFilter",
    "TextFormatter",
    "Throttle",
    "configured",
    "logging_config",
]

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")
#: Seconds between two log lines about the same exhausted resource.
RESOURCE_ERROR_INTERVAL: Final = 10.0

_RESOURCE_ERROR: Final = "socket.accept() out of system resource"
# After each such error asyncio schedules a retry (one per connection it failed to accept);
# those still pending when the listener closes fail with a traceback each.
_CLOSED_RETRY: Final = "Exception in callback BaseSelectorEventLoop._start_serving("
#: The arguments of uvicorn's access line: client, method, path, HTTP version, status.
_ACCESS_FIELDS: Final = ("client", "method", "path", "http_version", "status")


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger> <message>``, the prefix repeated on every line."""

    def format(self, record: logging.LogRecord) -> str:
        """``record`` as text, one or more lines."""
        text = super().format(record)  # the message, then the traceback if any
        prefix = f"{_timestamp(record)} {record.levelname} {record.name} "
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class JSONFormatter(logging.Formatter):
    """One JSON object a record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """``record`` as a JSON object on one line."""
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            entry.update(zip(_ACCESS_FIELDS, args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


@attrs.define
class Throttle:
    """Lets one event through per ``interval`` seconds of ``clock``, counting the others.

    :meth:`allow` answers ``None`` for an event to hold back, else how many were held back
    since the last one let through. Safe to share between threads.
    """

    interval: float = RESOURCE_ERROR_INTERVAL
    clock: Callable[[], float] = time.monotonic
    _last: float | None = attrs.field(init=False, default=None)
    _held: int = attrs.field(init=False, default=0)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def allow(self) -> int | None:
        """``None`` to hold this event back, else the number held back before it."""
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.interval:
                self._held += 1
                return None
            held, self._last, self._held = self._held, now, 0
            return held


class ResourceErrorFilter(logging.Filter):
    """Turns asyncio's flood of accept errors into one line per interval, with a count.

    Out of file descriptors, asyncio logs ``socket.accept() out of system resource`` with a
    traceback for every connection it fails to accept, thousands a second, and schedules a
    retry for each, which fails with a traceback of its own if the listener has closed
    meanwhile. Of all these, one record per ``interval`` goes through, without the
    traceback; the others are dropped and counted.
    """

    def __init__(
        self, interval: float = RESOURCE_ERROR_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.throttle = Throttle(interval, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged; a resource error let through is made one line."""
        message = record.msg
        if not (isinstance(message, str) and message.startswith((_RESOURCE_ERROR, _CLOSED_RETRY))):
            return True
        held = self.throttle.allow()
        if held is None:
            return False
        error = record.exc_info[1] if record.exc_info else None
        cause = f": {error}" if error is not None else ""
        also = f"; {held} more since the last such line" if held else ""
        interval = self.throttle.interval
        if message.startswith(_RESOURCE_ERROR):
            what = f"{_RESOURCE_ERROR}{cause}: new connections wait until connections close"
        else:
            what = f"a retry of socket.accept() after the listener closed failed{cause}"
        record.msg = f"{what} (logged at most once per {interval:g} s{also})"
        record.args = None
        record.exc_info = record.exc_text = None
        return True


def logging_config(
    level: str = "info", form: str = "text", stream: TextIO | None = None
) -> dict[str, Any]:
    """The :func:`logging.config.dictConfig` dictionary of the service's log.

    Every record of ``level`` (one of :data:`LOG_LEVELS`) or above, from convstats, uvicorn
    (its error and access loggers included) and asyncio, goes to ``stream`` (default:
    standard error) in ``form`` (one of :data:`LOG_FORMATS`).
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if form not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {form!r}")
    formatter = JSONFormatter if form == "json" else TextFormatter
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "line"}
    handler["stream"] = stream if stream is not None else "ext://sys.stderr"
    # uvicorn's loggers keep no handler of their own and pass their records up to the root's.
    passed_up: dict[str, Any] = {"level": "NOTSET", "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": formatter}},
        "filters": {"resource_errors": {"()": ResourceErrorFilter}},
        "handlers": {"line": handler},
        "root": {"level": level.upper(), "handlers": ["line"]},
        "loggers": {
            "uvicorn": dict(passed_up),
            "uvicorn.error": dict(passed_up),
            "uvicorn.access": dict(passed_up),
            "asyncio": {**passed_up, "filters": ["resource_errors"]},
        },
    }


#: The loggers :func:`logging_config` configures; the root logger is "".
_CONFIGURED: Final = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


@contextlib.contextmanager
def configured(
    level: str = "info", form: str = "text", stream: TextIO | None = None
) -> Iterator[None]:
    """The service's log (:func:`logging_config`) while the block runs, the loggers as before after.

    So that running the service in a process that logs otherwise (a test, say) leaves that
    process's logging as it was.
    """
    config = logging_config(level, form, stream)
    saved = []
    for name in _CONFIGURED:
        logger = logging.getLogger(name)
        saved.append(
            (logger, logger.level, logger.handlers[:], logger.filters[:], logger.propagate)
        )
    logging.config.dictConfig(config)
    try:
        yield
    finally:
        for logger, level_before, handlers, filters, propagate in saved:
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.setLevel(level_before)
            logger.handlers[:] = handlers
            logger.filters[:] = filters
            logger.propagate = propagate
