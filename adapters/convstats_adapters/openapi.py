"""The OpenAPI 3 document of the HTTP service: what it answers, status by status.

The operations of the five reports keep the names of Rocket.Chat's published document for
the endpoints (operation ids, the ``UserId``/``AuthToken``/``start``/``end`` parameters, the
``startendError``/``authorizationError``/``permissionError`` responses) and state more than
it: which fields are always present, how the bodies differ in upstream's reading, and the
503 of a store that fails. The
authentication and permission bodies, and their examples, are taken from
:func:`convstats.http.error_response`, so the document cannot drift from what is sent.

The two sign-in headers are also its security schemes (``apiKey`` in a header each), which
every operation requires together unless it says otherwise; the health, readiness, metrics
routes and the document itself need no sign-in.
"""

from __future__ import annotations

from typing import Any, Final

import convstats
from convstats.errors import AuthenticationRequired, InvalidParams, InvalidSort, PermissionDenied
from convstats.http import error_response
from convstats.model import Grouping, Status, TotalMode

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "OPENAPI_PATH",
    "READY_PATH",
    "REPORTS",
    "REPORT_PATH",
    "SETTINGS_PATH",
    "openapi_document",
    "report_path",
]

#: The reports the service answers, one route each, in the order of upstream's Reports page.
REPORTS: Final = (
    Grouping.STATUS,
    Grouping.SOURCE,
    Grouping.DEPARTMENT,
    Grouping.TAGS,
    Grouping.AGENT,
)
DASHBOARDS: Final = "/api/v1/livechat/analytics/dashboards"


def report_path(grouping: Grouping) -> str:
    """The route of ``grouping``'s report."""
    return f"{DASHBOARDS}/{grouping.route}"


REPORT_PATH: Final = report_path(Grouping.AGENT)
OPENAPI_PATH: Final = "/api/v1/livechat/analytics/dashboards/openapi.json"
HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"
SETTINGS_PATH: Final = "/api/v1/livechat/analytics/dashboards/settings"
METRICS_PATH: Final = "/metrics"

Schema = dict[str, Any]


def _json(schema: Schema, description: str, examples: dict[str, Any] | None = None) -> Schema:
    content: Schema = {"schema": schema}
    if examples:
        content["examples"] = {name: {"value": value} for name, value in examples.items()}
    return {"description": description, "content": {"application/json": content}}


def _report_answer(response: Schema) -> Schema:
    """``response``, as a report route sends it: with the freshness headers of a live store."""
    headers = {SOURCE_HEADER: _ref("headers", "Source"), AGE_HEADER: _ref("headers", "DataAge")}
    return {**response, "headers": headers}


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _authorization_error() -> Schema:
    body = error_response(AuthenticationRequired()).body
    # Upstream's document names status and message; current upstream adds success and
    # error. Every field is described; the ones this service sends are required.
    properties: Schema = {
        "success": {"type": "boolean", "enum": [False]},
        "error": {"type": "string"},
        "status": {"type": "string", "enum": ["error"]},
        "message": {"type": "string"},
    }
    properties.update({name: {"type": "string"} for name in body if name not in properties})
    return {
        "type": "object",
        "required": sorted(body),
        "properties": properties,
        "additionalProperties": False,
    }


def _components(total_mode: TotalMode) -> Schema:
    not_logged_in = error_response(AuthenticationRequired()).body
    refused = error_response(PermissionDenied()).body
    return {
        "securitySchemes": {
            "UserId": {
                "type": "apiKey",
                "in": "header",
                "name": "X-User-Id",
                "description": "The `userId` of the authenticated user; with `X-Auth-Token`.",
            },
            "AuthToken": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": (
                    "A login token or a personal access token of that user; with `X-User-Id`."
                ),
            },
        },
        "parameters": {
            "UserId": {
                "name": "X-User-Id",
                "in": "header",
                "required": True,
                "description": "The `userId` of the authenticated user.",
                "schema": {"type": "string"},
                "example": "u-manager",
            },
            "AuthToken": {
                "name": "X-Auth-Token",
                "in": "header",
                "required": True,
                "description": (
                    "The `authToken` of the authenticated user: a login token or a personal "
                    "access token, whose base64 SHA-256 is one of the user's "
                    "`services.resume.loginTokens[].hashedToken`."
                ),
                "schema": {"type": "string"},
            },
            "start": {
                "name": "start",
                "in": "query",
                "required": True,
                "description": (
                    "The start of the window, inclusive: ISO 8601 or RFC 2822, read in the "
                    "server's time zone when it has no offset."
                ),
                "schema": {"type": "string"},
                "example": "2024-03-01T00:00:00.000Z",
            },
            "end": {
                "name": "end",
                "in": "query",
                "required": True,
                "description": "The end of the window, exclusive; at most a year after start.",
                "schema": {"type": "string"},
                "example": "2024-04-01T00:00:00.000Z",
            },
            "sort": {
                "name": "sort",
                "in": "query",
                "required": False,
                "description": (
                    "A JSON object of keys `name` (`label`), `total` (`value`) or `_id`, each "
                    '`1` or `-1`, applied in order; by-agent\'s default is `{"name": 1}`, '
                    "by-department's and by-tags' `{\"total\": 1}`; by-status and by-source "
                    "take it and ignore it."
                ),
                "schema": {"type": "string"},
                "example": '{"total": -1}',
            },
        },
        "schemas": {
            **{
                _REPORT_NAMES[grouping]: _report_schema(grouping, total_mode)
                for grouping in REPORTS
            },
            "Error": {
                "type": "object",
                "required": ["success", "error"],
                "properties": {
                    "success": {"type": "boolean", "enum": [False]},
                    "error": {"type": "string"},
                    "errorType": {"type": "string"},
                    "details": {"type": "object"},
                },
                "additionalProperties": False,
            },
            "AuthorizationError": _authorization_error(),
            "Settings": {
                "type": "object",
                "required": ["compat", "monitor_scope"],
                "properties": {
                    "compat": {
                        "type": "string",
                        "enum": ["rocketchat", None],
                        "nullable": True,
                        "description": "`rocketchat` under `--compat rocketchat`, else null.",
                    },
                    "monitor_scope": {"type": "string", "enum": ["current", "legacy"]},
                },
                "additionalProperties": False,
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "ready"]},
                    **_LIVE_PROPERTIES,
                },
                "additionalProperties": False,
            },
            "Unavailable": {
                "type": "object",
                "required": ["status", "error"],
                "properties": {
                    "status": {"type": "string", "enum": ["unavailable"]},
                    "error": {"type": "string"},
                    **_LIVE_PROPERTIES,
                },
                "additionalProperties": False,
            },
        },
        "headers": _FRESHNESS_HEADERS,
        "responses": {
            "startendError": _report_answer(
                _json(
                    _ref("schemas", "Error"),
                    "Bad Request: a parameter, the sort or the dates",
                    {
                        "Missing start": error_response(
                            InvalidParams("must have required property 'start'")
                        ).body,
                        "Repeated parameter": error_response(InvalidParams("must be string")).body,
                        "Invalid sort": error_response(InvalidSort("x")).body,
                        "Invalid start": {
                            "success": False,
                            "error": 'The "start" query parameter must be a valid date.',
                        },
                    },
                )
            ),
            "authorizationError": _report_answer(
                _json(
                    _ref("schemas", "AuthorizationError"),
                    "Unauthorized: no, an unknown or a wrong user id and token, "
                    "or a deactivated user",
                    {"Authorization Error": not_logged_in},
                )
            ),
            "permissionError": _report_answer(
                _json(
                    _ref("schemas", "Error"),
                    "Forbidden: the caller lacks view-livechat-reports",
                    {"Permission Error": refused},
                )
            ),
            "storageError": _report_answer(
                _json(
                    _ref("schemas", "Error"),
                    "Service Unavailable: the store failed or did not answer in time",
                )
            ),
            "internalError": _report_answer(
                _json(_ref("schemas", "Error"), "Internal Server Error")
            ),
        },
    }


#: With a live store (``serve --live``), each report's answer says what answered it:
#: ``mirror`` (the store), ``mongodb`` (the fallback) or ``none`` (a 503: the store's data was
#: too old and there is no fallback) …
SOURCE_HEADER: Final = "X-Convstats-Source"
#: … and the age of the store's data in seconds when the request came (three decimals), or
#: ``unknown`` before it has any.
AGE_HEADER: Final = "X-Convstats-Data-Age"

#: The two headers, as the components of the document describe them.
_FRESHNESS_HEADERS: Final[Schema] = {
    "Source": {
        "description": "With `serve --live`: what answered, the live mirror, MongoDB, or none.",
        "schema": {"type": "string", "enum": ["mirror", "mongodb", "none"]},
    },
    "DataAge": {
        "description": (
            "With `serve --live`: the age of the mirror's data in seconds when the request "
            "came, or `unknown` before it has any."
        ),
        "schema": {"type": "string", "pattern": "^(unknown|[0-9]+\\.[0-9]{3})$"},
    },
}

#: What ``/readyz`` adds when the service answers from a live mirror (``serve --live``).
_LIVE_PROPERTIES: Final[Schema] = {
    "source": {"type": "string", "enum": ["mirror", "mongodb", "none"]},
    "data_age_seconds": {"type": "number", "nullable": True},
    "max_staleness_seconds": {"type": "number"},
}


def _metrics_operation() -> Schema:
    return {
        "get": {
            "summary": "The service's metrics, in the Prometheus text format",
            "operationId": "get-metrics",
            "security": [],
            "responses": {
                "200": {
                    "description": "Every metric",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }


def openapi_document(
    server_url: str = "/",
    *,
    metrics: bool = False,
    total_mode: TotalMode = TotalMode.CONVSTATS,
) -> dict[str, Any]:
    """The service's OpenAPI 3.0 document, as a JSON-ready dict (a new one on each call).

    ``server_url`` is where the paths start: the prefix the service is mounted under, if
    any. ``metrics`` adds :data:`METRICS_PATH`, for a service that serves it. The report
    bodies are described as ``total_mode`` reads the data (upstream's has labels of any
    JSON type and no ``unspecified`` in by-status and by-source).
    """
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "convstats",
            "version": convstats.__version__,
            "description": (
                "The five reports of Rocket.Chat Enterprise's Omnichannel Reports page "
                "(conversations by status, source, department, tags and agent), with "
                "upstream's statuses and bodies, authenticated by Rocket.Chat login tokens."
            ),
        },
        "servers": [{"url": server_url}],
        # One requirement naming both schemes: the headers sign a caller in together.
        "security": [{"UserId": [], "AuthToken": []}],
        "paths": {
            **{report_path(grouping): {"get": _report_operation(grouping)} for grouping in REPORTS},
            OPENAPI_PATH: {
                "get": {
                    "summary": "This document",
                    "operationId": "get-openapi",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document")},
                }
            },
            SETTINGS_PATH: {
                "get": {
                    "summary": "How the service reads the data, for the Reports page",
                    "operationId": "get-settings",
                    "security": [],
                    "responses": {"200": _json(_ref("schemas", "Settings"), "The settings")},
                }
            },
            HEALTH_PATH: {
                "get": {
                    "summary": "Liveness: the process answers; the store is not asked",
                    "operationId": "get-healthz",
                    "security": [],
                    "responses": {"200": _json(_ref("schemas", "Health"), "Alive")},
                }
            },
            READY_PATH: {
                "get": {
                    "summary": "Readiness: the store answered a read in the bounded time",
                    "operationId": "get-readyz",
                    "security": [],
                    "responses": {
                        "200": _json(_ref("schemas", "Health"), "Ready"),
                        "503": _json(_ref("schemas", "Unavailable"), "The store is unavailable"),
                    },
                }
            },
        },
        "components": _components(total_mode),
    }
    if metrics:
        document["paths"][METRICS_PATH] = _metrics_operation()
    return document


#: Per report: its schema's name, upstream's summary, what a row is.
_REPORT_NAMES: Final = {
    Grouping.STATUS: "ConversationsByStatus",
    Grouping.SOURCE: "ConversationsBySource",
    Grouping.DEPARTMENT: "ConversationsByDepartment",
    Grouping.TAGS: "ConversationsByTags",
    Grouping.AGENT: "ConversationsByAgent",
}
_SUMMARIES: Final = {
    Grouping.STATUS: "Get Conversations by Status",
    Grouping.SOURCE: "Get Conversations by Source",
    Grouping.DEPARTMENT: "Get Conversations by Department",
    Grouping.TAGS: "Get Conversations by Tags",
    Grouping.AGENT: "Get Conversation by Agents",
}
_ROWS: Final = {
    Grouping.STATUS: "by state: Open, Closed, Queued and On_Hold",
    Grouping.SOURCE: "per source (its alias, else its type)",
    Grouping.DEPARTMENT: "per department",
    Grouping.TAGS: "per tag (a conversation counts for each of its tags)",
    Grouping.AGENT: "per agent serving them",
}
_LABELS: Final = {
    Grouping.STATUS: "The state.",
    Grouping.SOURCE: "The source's alias, else its type.",
    Grouping.DEPARTMENT: "The department's name, or its id when it has none.",
    Grouping.TAGS: "The tag.",
    Grouping.AGENT: "The agent's name, or its id when it has none.",
}


def _body(rows: list[tuple[Any, int]], unspecified: int | None) -> Schema:
    body: Schema = {
        "total": sum(value for _, value in rows) + (unspecified or 0),
        "data": [{"label": label, "value": value} for label, value in rows],
    }
    if unspecified is not None:
        body["unspecified"] = unspecified
    return {**body, "success": True}


#: Each report's answers for March 2024 on the bundled sample, as the manager sees them.
_EXAMPLES: Final[dict[Grouping, dict[str, Any]]] = {
    Grouping.STATUS: {
        "Every conversation in one state": _body(
            [("Closed", 238), ("Open", 36), ("Queued", 26), ("On_Hold", 20)], 0
        ),
    },
    Grouping.SOURCE: {
        "By alias, else type": _body(
            [("email", 95), ("widget", 94), ("WhatsApp", 93), ("sms", 37), ("Kiosk", 1)], 0
        ),
    },
    Grouping.DEPARTMENT: {
        "Two departments of one name, and a deleted one": _body(
            [("dep-retired", 2), ("Support", 18), ("Support", 33), ("Billing", 67), ("Sales", 129)],
            71,
        ),
    },
    Grouping.TAGS: {
        "A conversation counts for each of its tags": _body(
            [("bug", 26), ("feedback", 35), ("billing", 36), ("vip", 36), ("refund", 39)], 204
        ),
    },
    Grouping.AGENT: {
        "Two agents of one name": _body(
            [("Ana Lima", 64), ("Bruno Costa", 61), ("Sam Taylor", 28), ("Sam Taylor", 23)], 26
        ),
    },
}


def _report_operation(grouping: Grouping) -> Schema:
    sort = (
        "the order of the rows"
        if grouping.takes_sort
        else "accepted and ignored, as upstream does: the rows are by value, descending"
    )
    return {
        "tags": ["Reports"],
        "summary": _SUMMARIES[grouping],
        "description": (
            f"The omnichannel conversations created in [start, end), {_ROWS[grouping]}, "
            "among the rooms the caller may see. Permission required: "
            f"`view-livechat-reports`. `sort`: {sort}."
        ),
        "operationId": f"get-api-v1-livechat-analytics-dashboards-{grouping.route}",
        "parameters": [
            _ref("parameters", name) for name in ("UserId", "AuthToken", "start", "end", "sort")
        ],
        "responses": {
            "200": _report_answer(
                _json(_ref("schemas", _REPORT_NAMES[grouping]), "OK", _EXAMPLES[grouping])
            ),
            "400": _ref("responses", "startendError"),
            "401": _ref("responses", "authorizationError"),
            "403": _ref("responses", "permissionError"),
            "500": _ref("responses", "internalError"),
            "503": _ref("responses", "storageError"),
        },
    }


def _report_schema(grouping: Grouping, total_mode: TotalMode) -> Schema:
    """The body of ``grouping``'s report as ``total_mode`` reads the data."""
    upstream = total_mode is TotalMode.ROCKETCHAT
    label: Schema = {"type": "string", "description": _LABELS[grouping]}
    if grouping is Grouping.STATUS:
        label["enum"] = [status.value for status in Status]
    elif upstream:
        # Upstream's values as stored (an agent's name, else its servedBy._id): any JSON
        # value, null included.
        label = {"description": f"{_LABELS[grouping]} Any JSON value, as stored."}
        label["nullable"] = True
    # By-status lists its four states, zeros included; other rows count at least one.
    value: Schema = {"type": "integer", "minimum": 0 if grouping is Grouping.STATUS else 1}
    row: Schema = {
        "type": "object",
        "required": ["value"] if upstream and grouping is Grouping.SOURCE else ["label", "value"],
        "properties": {"label": label, "value": value},
        "additionalProperties": False,
    }
    with_unspecified = grouping.takes_sort or not upstream
    required = ["total", "data", *(["unspecified"] if with_unspecified else []), "success"]
    properties: Schema = {
        "total": {"type": "integer", "minimum": 0},
        "data": {"type": "array", "items": row},
    }
    if with_unspecified:
        properties["unspecified"] = {"type": "integer", "minimum": 0}
    properties["success"] = {"type": "boolean", "enum": [True]}
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }
