"""Upstream's endpoints: ``GET /api/v1/livechat/analytics/dashboards/conversations-by-…``.

This module owns the one table from an outcome to an HTTP status and JSON body
(:func:`error_response`, :func:`report_body`), the checks every request of the Reports page
passes in upstream's order (:func:`check_request`, docs/behaviour.md#request-validation), and
a framework-agnostic endpoint that runs them and answers. Entry points (an HTTP service, the
command line's ``--format json``) answer through it, so that every client sees the same
bodies.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
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
from convstats.model import (
    ABSENT,
    Caller,
    FrozenBool,
    FrozenDocument,
    Grouping,
    Report,
    TimeWindow,
    TotalMode,
    Visibility,
)
from convstats.ports import Authority
from convstats.report import Conversations
from convstats.sorting import Sort, default_sort, parse_sort
from convstats.workers import StoreCalls

__all__ = [
    "STORAGE_UNAVAILABLE",
    "ConversationsByAgentEndpoint",
    "ConversationsEndpoint",
    "Query",
    "Response",
    "check_request",
    "error_response",
    "is_tzinfo",
    "json_value",
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
    """The success body: ``{"total", "data": [{"label", "value"}…], "unspecified", "success"}``.

    Upstream's by-status and by-source bodies have no ``unspecified``, and neither do they in
    upstream's reading; labels that are not strings are written as Rocket.Chat writes them
    (:func:`json_value`), and a row upstream gives no label is ``{"value": …}``.
    """
    ranked = report.ranked
    if report.grouping is Grouping.AGENT and report.total_mode is TotalMode.CONVSTATS:
        # Names and ids: strings all (upstream's reading labels by servedBy._id as stored).
        data = [{"label": label, "value": value} for label, _, value in ranked]
    else:
        data = [_datum(label, value) for label, _, value in ranked]
    body: dict[str, Any] = {"total": report.total, "data": data}
    if report.total_mode is TotalMode.CONVSTATS or report.grouping.takes_sort:
        body["unspecified"] = report.unspecified
    body["success"] = True
    return body


def _datum(label: Any, value: int) -> dict[str, Any]:
    if label is ABSENT:
        return {"value": value}
    return {"label": label if type(label) is str else json_value(label), "value": value}


def json_value(value: Any) -> Any:
    """A stored value as Rocket.Chat's JSON writes it.

    A date as ISO 8601 in UTC to the millisecond, an integral double as an integer and a NaN
    or infinity as ``null`` (as JavaScript does), a decimal as ``{"$numberDecimal": …}``,
    arrays and documents member by member.
    """
    if isinstance(value, FrozenBool):
        return value.value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, Decimal):
        return {"$numberDecimal": str(value)}
    if isinstance(value, (tuple, list)):
        return [json_value(item) for item in value]
    if isinstance(value, FrozenDocument):
        return {name: json_value(item) for name, item in value.fields}
    if isinstance(value, Mapping):
        return {name: json_value(item) for name, item in value.items()}
    return value


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


@attrs.frozen
class Query:
    """A request that passed every check: who asks, for which window, order and rooms."""

    caller: Caller
    window: TimeWindow
    #: The order of the rows; ``None`` for a report that takes no sort.
    sort: Sort | None
    visibility: Visibility


def check_request(
    authority: Authority,
    grouping: Grouping,
    params: Mapping[Any, Any],
    user_id: str | None,
    token: str | None = None,
    *,
    server_tz: tzinfo = _UTC,
) -> Query:
    """Run a request's checks in upstream's order and return what it asks for.

    Authentication (``token`` proves ``user_id`` when given), parameters, permission, sort
    (for the reports that take one; by-status and by-source never read it), dates: the first
    failure is raised (docs/behaviour.md#request-validation). ``server_tz`` is the server's
    time zone: dates without an offset are read in it, and the one-year rule truncates to its
    days. Raises a :class:`~convstats.errors.RequestError`, or a
    :class:`~convstats.errors.StorageError` when the authority's directory fails.
    """
    caller = authority.authenticate(user_id, token)
    start, end, raw_sort = validate_params(params)
    authority.authorize(caller, VIEW_LIVECHAT_REPORTS)
    sort = parse_sort(raw_sort, default_sort(grouping)) if grouping.takes_sort else None
    window = window_from_strings(start, end, server_tz)
    return Query(caller, window, sort, authority.visibility(caller))


@attrs.define(kw_only=True)
class ConversationsEndpoint:
    """A report's endpoint: :func:`check_request`, then the report, as upstream answers it.

    The report (``reports.grouping``) decides the route it answers. ``server_tz`` is the
    server's time zone. No room is read until the caller is authenticated and permitted and
    every parameter is valid; a storage failure is answered with 503, never with an empty or
    partial report, and logged to the ``convstats`` logger.
    """

    reports: Conversations
    authority: Authority
    server_tz: tzinfo = attrs.field(default=_UTC, validator=is_tzinfo)
    #: Where :meth:`handle_async` runs the store calls: worker threads, bounded in number and
    #: in time (share one between endpoints to share the bound).
    calls: StoreCalls = attrs.field(factory=StoreCalls)

    def handle(
        self, params: Mapping[Any, Any], user_id: str | None, token: str | None = None
    ) -> Response:
        """Answer one request of ``user_id`` (``None``: nobody), proved by ``token`` if given."""
        try:
            body = report_body(self.report(params, user_id, token))
        except RequestError as error:
            return error_response(error)
        except StorageError as error:
            return storage_failure_response(error)
        return Response(status=200, body=body)

    __call__ = handle

    async def handle_async(
        self, params: Mapping[Any, Any], user_id: str | None, token: str | None = None
    ) -> Response:
        """:meth:`handle` for an asynchronous application: the event loop never waits on the store.

        The request runs in one of ``calls``' worker threads; when it has not been answered
        within ``calls.timeout`` seconds (or cannot start, because every worker is busy with
        a store that hangs) the answer is the 503 of a storage failure, and the call is left
        to finish on its own.
        """
        try:
            return await self.calls.run(lambda: self.handle(params, user_id, token))
        except StorageError as error:
            return storage_failure_response(error)

    def report(
        self, params: Mapping[Any, Any], user_id: str | None, token: str | None = None
    ) -> Report:
        """The typed report behind a success answer; raises what :meth:`handle` answers."""
        reports = self.reports
        query = check_request(
            self.authority, reports.grouping, params, user_id, token, server_tz=self.server_tz
        )
        return reports.report(query.window, sort=query.sort, visibility=query.visibility)


#: The endpoint of every report; the name it had when by-agent was the only one.
ConversationsByAgentEndpoint = ConversationsEndpoint
