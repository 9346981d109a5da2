"""A framework-agnostic request handler for the conversations-by-agent endpoint.

It turns the raw query parameters and the authenticated caller id of
``GET /api/v1/livechat/analytics/dashboards/conversations-by-agent`` into the HTTP status and
JSON body upstream Rocket.Chat answers, checks in upstream's order (SPEC §1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from convstats.authz import VIEW_LIVECHAT_REPORTS
from convstats.dates import window_from_strings
from convstats.errors import InvalidParams, RequestError, StorageError
from convstats.model import Report
from convstats.ports import Authority
from convstats.report import ConversationsByAgent
from convstats.sorting import parse_sort

__all__ = ["ConversationsByAgentEndpoint", "Response", "validate_params"]

_REQUIRED = ("start", "end")
_ALLOWED = frozenset({"start", "end", "sort"})


@attrs.frozen
class Response:
    """An HTTP answer: the status code and the JSON body.

    ``report`` is the typed report behind a success body (``None`` for errors), for callers
    that want more than the body carries, such as agent ids.
    """

    status: int
    body: dict[str, Any]
    report: Report | None = attrs.field(default=None, eq=False, repr=False)


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


@attrs.define(kw_only=True)
class ConversationsByAgentEndpoint:
    """The endpoint: authentication, parameters, permission, sort, dates, then the report.

    No room data is read until the caller is authenticated and permitted and every
    parameter is valid. Storage failures are answered with 503 and an error body, never with
    an empty or partial report.
    """

    reports: ConversationsByAgent
    authority: Authority

    def handle(self, params: Mapping[Any, Any], user_id: str | None) -> Response:
        """Answer one request; ``user_id`` is the authenticated caller, or ``None``."""
        try:
            caller = self.authority.authenticate(user_id)
            start, end, raw_sort = validate_params(params)
            self.authority.authorize(caller, VIEW_LIVECHAT_REPORTS)
            sort = parse_sort(raw_sort)
            window = window_from_strings(start, end, self.reports.server_tz)
            visibility = self.authority.visibility(caller)
            report = self.reports.report_window(window, sort=sort, visibility=visibility)
        except (RequestError, StorageError) as error:
            return Response(status=error.status, body=error.body())
        return Response(status=200, body=report.to_body(), report=report)

    __call__ = handle
