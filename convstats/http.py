"""Upstream's endpoint: ``GET /api/v1/livechat/analytics/dashboards/conversations-by-agent``.

This module owns the one table from an outcome to an HTTP status and JSON body
(:func:`error_response`, :func:`report_body`), and a framework-agnostic handler that runs
upstream's checks in upstream's order (docs/behaviour.md#request-validation). Entry points
(an HTTP service, the command line's ``--format json``) answer through it, so that every
client sees the same bodies.
"""

from __future__ import annotations

import copy
import logging
import operator
from collections.abc import Mapping
from datetime import timezone, tzinfo
from typing import Any

import attrs

from convstats.authz import VIEW_LIVECHAT_REPORTS
from convstats.dates import window_from_strings
from convstats.errors import (
    AuthenticationRequired,
    ConvstatsError,
    InvalidDate,
    InvalidParams,
    InvalidSort,
    PermissionDenied,
    RequestError,
    StorageError,
)
from convstats.model import Report, TimeWindow, TotalMode, Visibility, report_total
from convstats.ports import Authority
from convstats.report import ConversationsByAgent
from convstats.sorting import Ranked, Sort, parse_sort

__all__ = [
    "STORAGE_UNAVAILABLE",
    "ConversationsByAgentEndpoint",
    "Response",
    "error_response",
    "is_tzinfo",
    "report_body",
    "storage_failure_response",
    "validate_params",
]

#: The whole message of a 503: which store failed, and how, is the operator's business (it
#: goes to the ``convstats`` logger), not the client's.
STORAGE_UNAVAILABLE = "The data store is unavailable."

_log = logging.getLogger("convstats")
_REQUIRED = ("start", "end")
_UTC: tzinfo = timezone.utc
_ALLOWED = frozenset({"start", "end", "sort"})


@attrs.frozen
class Response:
    """An HTTP answer: the status code and the JSON body."""

    status: int
    body: dict[str, Any]


@attrs.frozen
class _Answer:
    status: int
    #: Upstream's error tag, appended to the message as `` [tag]``.
    tag: str | None = None
    #: Whether the body also names the tag as ``errorType``.
    typed: bool = False
    #: The body's message whatever the error says; None: the error's own.
    message: str | None = None
    #: Further fields of upstream's body; ``"{message}"`` stands for the message.
    extra: tuple[tuple[str, Any], ...] = ()


# Most specific first: the first row whose type the error is an instance of answers it.
_ANSWERS: tuple[tuple[type[ConvstatsError], _Answer], ...] = (
    # The endpoint's OpenAPI document gives the 401 its own fields, status and message;
    # upstream sends them beside success and error, so that old and new clients read it.
    (AuthenticationRequired, _Answer(401, extra=(("status", "error"), ("message", "{message}")))),
    (InvalidParams, _Answer(400, "invalid-params", typed=True)),
    (PermissionDenied, _Answer(403, "error-unauthorized")),
    # Upstream's failure body copies the error's details.
    (
        InvalidSort,
        _Answer(
            400,
            "error-invalid-sort",
            typed=True,
            extra=(("details", {"helperMethod": "parseJsonQuery"}),),
        ),
    ),
    (InvalidDate, _Answer(400)),
    (StorageError, _Answer(503, message=STORAGE_UNAVAILABLE)),
)
_INTERNAL = _Answer(500)


def error_response(error: ConvstatsError) -> Response:
    """The status and body upstream answers ``error`` with.

    401 and 403 for the caller, 400 for parameters, sort and dates (with upstream's error
    tags), 503 for a storage failure (saying only that storage is unavailable), 500 for
    anything else.
    """
    answer = next((found for kind, found in _ANSWERS if isinstance(error, kind)), _INTERNAL)
    message = answer.message or str(error)
    if answer.tag is not None:
        message = f"{message} [{answer.tag}]"
    body: dict[str, Any] = {"success": False, "error": message}
    if answer.typed:
        body["errorType"] = answer.tag
    for field, value in answer.extra:
        body[field] = message if value == "{message}" else copy.deepcopy(value)
    return Response(status=answer.status, body=body)


def storage_failure_response(error: StorageError) -> Response:
    """The 503 for a store that failed, its detail logged to the ``convstats`` logger.

    The store's message says what failed (credentials masked): it is the operator's, in the
    log; the client hears only that storage is unavailable.
    """
    _log.error("answered 503: %s: %s", type(error).__name__, error)
    return error_response(error)


def report_body(report: Report) -> dict[str, Any]:
    """The success body: ``{"total", "data": [{"label", "value"}…], "unspecified", "success"}``."""
    return {
        "total": report.total,
        "data": [{"label": row.label, "value": row.value} for row in report.rows],
        "unspecified": report.unspecified,
        "success": True,
    }


_VALUE = operator.itemgetter(2)


def _ranked_body(rows: list[Ranked], unspecified: int, mode: TotalMode) -> dict[str, Any]:
    """:func:`report_body` of the report whose rows are ``rows`` (label, agent id, value)."""
    data = [{"label": label, "value": value} for label, _, value in rows]
    return {
        "total": report_total(sum(map(_VALUE, rows)), unspecified, mode),
        "data": data,
        "unspecified": unspecified,
        "success": True,
    }


def validate_params(params: Mapping[Any, Any]) -> tuple[str, str, str | None]:
    """Check the query parameters against the endpoint's schema; return start, end and sort.

    ``start`` and ``end`` are required strings, ``sort`` an optional string, nothing else is
    allowed. Raises :class:`~convstats.errors.InvalidParams` with the first failure, worded as
    upstream's schema validator words it.
    """
    for name in _REQUIRED:
        if name not in params:
            raise InvalidParams(f"must have required property '{name}'")
    if any(name not in _ALLOWED for name in params):
        raise InvalidParams("must NOT have additional properties")
    for name in ("start", "end", "sort"):
        if name in params and not isinstance(params[name], str):
            raise InvalidParams("must be string")
    return params["start"], params["end"], params.get("sort")


def is_tzinfo(_instance: object, attribute: attrs.Attribute[tzinfo], value: object) -> None:
    """An attrs validator: ``value`` is a ``tzinfo`` (a server time zone), else ``TypeError``."""
    if not isinstance(value, tzinfo):
        raise TypeError(f"{attribute.name} must be a tzinfo such as ZoneInfo('UTC'), got {value!r}")


@attrs.define(kw_only=True)
class ConversationsByAgentEndpoint:
    """The endpoint: authentication, parameters, permission, sort, dates, then the report.

    ``server_tz`` is the server's time zone: dates without an offset are read in it, and the
    one-year rule truncates to its days. No room is read until the caller is authenticated
    and permitted and every parameter is valid; a storage failure is answered with 503,
    never with an empty or partial report, and logged to the ``convstats`` logger.
    """

    reports: ConversationsByAgent
    authority: Authority
    server_tz: tzinfo = attrs.field(default=_UTC, validator=is_tzinfo)

    def handle(self, params: Mapping[Any, Any], user_id: str | None) -> Response:
        """Answer one request; ``user_id`` is the authenticated caller, or ``None``."""
        reports = self.reports
        try:
            window, sort, visibility = self._query(params, user_id)
            if reports.cache is not None:
                body = report_body(reports.report(window, sort=sort, visibility=visibility))
            else:
                # The rows go straight into the body: no AgentRow is built for them.
                rows, unspecified = reports.ranked(window, sort=sort, visibility=visibility)
                body = _ranked_body(rows, unspecified, reports.total_mode)
        except RequestError as error:
            return error_response(error)
        except StorageError as error:
            return storage_failure_response(error)
        return Response(status=200, body=body)

    __call__ = handle

    def report(self, params: Mapping[Any, Any], user_id: str | None) -> Report:
        """The typed report behind a success answer; raises what :meth:`handle` answers."""
        window, sort, visibility = self._query(params, user_id)
        return self.reports.report(window, sort=sort, visibility=visibility)

    def _query(
        self, params: Mapping[Any, Any], user_id: str | None
    ) -> tuple[TimeWindow, Sort, Visibility]:
        caller = self.authority.authenticate(user_id)
        start, end, raw_sort = validate_params(params)
        self.authority.authorize(caller, VIEW_LIVECHAT_REPORTS)
        sort = parse_sort(raw_sort)
        window = window_from_strings(start, end, self.server_tz)
        return window, sort, self.authority.visibility(caller)
