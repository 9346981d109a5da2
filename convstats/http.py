"""Upstream's endpoint: ``GET /api/v1/livechat/analytics/dashboards/conversations-by-agent``.

This module owns the one table from an outcome to an HTTP status and JSON body
(:func:`error_response`, :func:`report_body`), and a framework-agnostic handler that runs
upstream's checks in upstream's order (docs/behaviour.md#request-validation). Entry points
(an HTTP service, the command line's ``--format json``) answer through it, so that every
client sees the same bodies.
"""

from __future__ import annotations

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
    "ConversationsByAgentEndpoint",
    "Response",
    "error_response",
    "report_body",
    "validate_params",
]

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


# Most specific first: the first row whose type the error is an instance of answers it.
_ANSWERS: tuple[tuple[type[ConvstatsError], _Answer], ...] = (
    (AuthenticationRequired, _Answer(401)),
    (InvalidParams, _Answer(400, "invalid-params", typed=True)),
    (PermissionDenied, _Answer(403, "error-unauthorized")),
    (InvalidSort, _Answer(400, "error-invalid-sort", typed=True)),
    (InvalidDate, _Answer(400)),
    (StorageError, _Answer(503)),
)
_INTERNAL = _Answer(500)


def error_response(error: ConvstatsError) -> Response:
    """The status and body upstream answers ``error`` with.

    401 and 403 for the caller, 400 for parameters, sort and dates (with upstream's error
    tags), 503 for a storage failure, 500 for anything else.
    """
    answer = next((found for kind, found in _ANSWERS if isinstance(error, kind)), _INTERNAL)
    message = str(error) if answer.tag is None else f"{error} [{answer.tag}]"
    body: dict[str, Any] = {"success": False, "error": message}
    if answer.typed:
        body["errorType"] = answer.tag
    return Response(status=answer.status, body=body)


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


def _is_tzinfo(_instance: object, attribute: attrs.Attribute[tzinfo], value: object) -> None:
    if not isinstance(value, tzinfo):
        raise TypeError(f"{attribute.name} must be a tzinfo such as ZoneInfo('UTC'), got {value!r}")


@attrs.define(kw_only=True)
class ConversationsByAgentEndpoint:
    """The endpoint: authentication, parameters, permission, sort, dates, then the report.

    ``server_tz`` is the server's time zone: dates without an offset are read in it, and the
    one-year rule truncates to its days. No room is read until the caller is authenticated
    and permitted and every parameter is valid; a storage failure is answered with 503,
    never with an empty or partial report.
    """

    reports: ConversationsByAgent
    authority: Authority
    server_tz: tzinfo = attrs.field(default=_UTC, validator=_is_tzinfo)

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
        except (RequestError, StorageError) as error:
            return error_response(error)
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
