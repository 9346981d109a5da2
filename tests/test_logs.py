"""The service's log: a timestamp and a level on every line, text or JSON, floods held back."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys
from collections.abc import Iterator

import pytest

from convstats_adapters.logs import (
    JSONFormatter,
    ResourceErrorFilter,
    TextFormatter,
    logging_config,
)

STAMPED = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)
LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio", "convstats.server")


def record(
    name: str, level: int, msg: str, *args: object, failed: bool = False
) -> logging.LogRecord:
    exc_info = None
    if failed:
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, msg, args or None, exc_info)


def access_record() -> logging.LogRecord:
    # As uvicorn logs a request: client, method, path with query, HTTP version, status.
    return record(
        "uvicorn.access",
        logging.INFO,
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/healthz?x=1",
        "1.1",
        200,
    )


def test_every_text_line_has_the_time_and_level_a_traceback_too():
    """A record with a traceback is several lines, each starting with its time and level."""
    text = TextFormatter().format(record("convstats.server", logging.ERROR, "failed", failed=True))
    lines = text.splitlines()
    assert len(lines) > 3
    assert all(STAMPED.match(line) for line in lines)
    assert lines[0].endswith("ERROR convstats.server failed")
    assert lines[-1].endswith("OSError: [Errno 24] Too many open files")


def test_json_is_one_object_a_line_with_the_access_fields():
    """A JSON line holds time, level, logger and message, and an access line its parts."""
    entry = json.loads(JSONFormatter().format(access_record()))
    assert entry["level"] == "info"
    assert entry["logger"] == "uvicorn.access"
    assert entry["message"] == '127.0.0.1:5000 - "GET /healthz?x=1 HTTP/1.1" 200'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert {key: entry[key] for key in ("client", "method", "path", "http_version", "status")} == {
        "client": "127.0.0.1:5000",
        "method": "GET",
        "path": "/healthz?x=1",
        "http_version": "1.1",
        "status": 200,
    }
    failed = JSONFormatter().format(record("asyncio", logging.ERROR, "x", failed=True))
    assert "\n" not in failed
    assert json.loads(failed)["exception"].startswith("Traceback")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def resource_error() -> logging.LogRecord:
    # As asyncio's default exception handler logs a failed accept.
    return record(
        "asyncio",
        logging.ERROR,
        "socket.accept() out of system resource\nsocket: <socket>",
        failed=True,
    )


def test_resource_errors_are_one_line_per_interval_with_a_count():
    """Of a flood of accept errors one line passes per interval, without traceback, counted."""
    clock = Clock()
    errors = ResourceErrorFilter(interval=10.0, clock=clock)
    flood = [resource_error() for _ in range(1000)]
    passed = [entry for entry in flood if errors.filter(entry)]
    assert len(passed) == 1
    first = passed[0].getMessage()
    assert first.startswith("socket.accept() out of system resource: [Errno 24]")
    assert "\n" not in first
    assert passed[0].exc_info is None
    clock.now = 9.9
    assert not errors.filter(resource_error())
    clock.now = 10.0
    later = resource_error()
    assert errors.filter(later)
    assert "1000 more since the last such line" in later.getMessage()


def test_retries_failing_on_the_closed_listener_are_held_back_too():
    """asyncio's retries of accept() after the listener closed share the one line per interval."""
    clock = Clock()
    errors = ResourceErrorFilter(interval=10.0, clock=clock)
    assert errors.filter(resource_error())

    def failed_retry() -> logging.LogRecord:
        try:
            raise ValueError("Invalid file descriptor: -1")
        except ValueError:
            exc_info = sys.exc_info()
        message = (
            "Exception in callback BaseSelectorEventLoop._start_serving(<function>)\nhandle: x"
        )
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, exc_info)

    assert not any(errors.filter(failed_retry()) for _ in range(2000))
    clock.now = 10.0
    retry = failed_retry()
    assert errors.filter(retry)
    assert retry.getMessage() == (
        "a retry of socket.accept() after the listener closed failed: Invalid file descriptor: "
        "-1 (logged at most once per 10 s; 2000 more since the last such line)"
    )
    assert retry.exc_info is None


def test_other_records_pass_the_filter_untouched():
    """Only the accept error is held back; other asyncio records go through as they are."""
    errors = ResourceErrorFilter(clock=Clock())
    other = record("asyncio", logging.ERROR, "Task exception was never retrieved", failed=True)
    assert errors.filter(other)
    assert errors.filter(record("asyncio", logging.ERROR, "again"))
    assert other.getMessage() == "Task exception was never retrieved"
    assert other.exc_info is not None


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Whatever a test configures, the loggers are as they were afterwards."""
    names = ("", *LOGGERS)
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), list(logger.filters), logger.propagate)
    yield
    for name, (level, handlers, filters, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.propagate = propagate


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("form", ["text", "json"])
def test_the_configuration_puts_every_logger_in_one_form(form):
    """convstats, uvicorn's loggers and asyncio all write to the stream, at the level asked."""
    stream = io.StringIO()
    logging.config.dictConfig(logging_config("info", form, stream))
    for name in LOGGERS:
        logging.getLogger(name).info("from %s", name)
        logging.getLogger(name).debug("not at info")
    logging.getLogger("uvicorn.access").handle(access_record())
    *lines, access = stream.getvalue().splitlines()
    assert len(lines) == len(LOGGERS)
    for line, name in zip(lines, LOGGERS, strict=True):
        if form == "text":
            assert STAMPED.match(line)
            assert line.endswith(f"INFO {name} from {name}")
        else:
            assert json.loads(line)["message"] == f"from {name}"
            assert json.loads(line)["level"] == "info"
    if form == "text":
        assert access.endswith(
            'INFO uvicorn.access 127.0.0.1:5000 - "GET /healthz?x=1 HTTP/1.1" 200'
        )
    else:
        assert json.loads(access)["status"] == 200
    assert "not at info" not in stream.getvalue()


@pytest.mark.usefixtures("restored_logging")
def test_the_configuration_holds_back_the_flood_of_accept_errors():
    """Configured, asyncio's logger lets one accept error of a flood through, as one line."""
    stream = io.StringIO()
    logging.config.dictConfig(logging_config("warning", "text", stream))
    asyncio_logger = logging.getLogger("asyncio")
    for _ in range(500):
        asyncio_logger.handle(resource_error())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "socket.accept() out of system resource: [Errno 24]" in lines[0]


def test_unknown_levels_and_forms_are_refused():
    """A level or a form the service does not know is a ValueError naming it."""
    with pytest.raises(ValueError, match="'loud'"):
        logging_config("loud")
    with pytest.raises(ValueError, match="'xml'"):
        logging_config("info", "xml")
