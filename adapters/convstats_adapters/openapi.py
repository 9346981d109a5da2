"""The OpenAPI 3 document of the HTTP service: what it answers, status by status.

The report's operation keeps the names of Rocket.Chat's published document for the endpoint
(operation id, the ``UserId``/``AuthToken``/``start``/``end`` parameters, the
``startendError``/``authorizationError``/``permissionError`` responses) and states more
than it: which fields are always present, and the 503 of a store that fails. The
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
from convstats.model import Grouping

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "OPENAPI_PATH",
    "READY_PATH",
    "REPORTS",
    "REPORT_PATH",
    "openapi_document",
    "report_path",
]

#: The reports the service answers, one route each.
REPORTS: Final = (Grouping.AGENT,)
DASHBOARDS: Final = "/api/v1/livechat/analytics/dashboards"


def report_path(grouping: Grouping) -> str:
    """The route of ``grouping``'s report."""
    return f"{DASHBOARDS}/{grouping.route}"


REPORT_PATH: Final = report_path(Grouping.AGENT)
OPENAPI_PATH: Final = "/api/v1/livechat/analytics/dashboards/openapi.json"
HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"
METRICS_PATH: Final = "/metrics"

Schema = dict[str, Any]


def _json(schema: Schema, description: str, examples: dict[str, Any] | None = None) -> Schema:
    content: Schema = {"schema": schema}
    if examples:
        content["examples"] = {name: {"value": value} for name, value in examples.items()}
    return {"description": description, "content": {"application/json": content}}


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


def _components() -> Schema:
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
                    '`1` or `-1`, applied in order; default `{"name": 1}`.'
                ),
                "schema": {"type": "string"},
                "example": '{"total": -1}',
            },
        },
        "schemas": {
            "AgentCount": {
                "type": "object",
                "required": ["label", "value"],
                "properties": {
                    "label": {
                        "type": "string",
                        "description": "The agent's name, or its id when it has none.",
                    },
                    "value": {"type": "integer", "minimum": 1},
                },
                "additionalProperties": False,
            },
            "ConversationsByAgent": {
                "type": "object",
                "required": ["total", "data", "unspecified", "success"],
                "properties": {
                    "total": {"type": "integer", "minimum": 0},
                    "data": {"type": "array", "items": _ref("schemas", "AgentCount")},
                    "unspecified": {"type": "integer", "minimum": 0},
                    "success": {"type": "boolean", "enum": [True]},
                },
                "additionalProperties": False,
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
        "responses": {
            "startendError": _json(
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
            ),
            "authorizationError": _json(
                _ref("schemas", "AuthorizationError"),
                "Unauthorized: no, an unknown or a wrong user id and token, or a deactivated user",
                {"Authorization Error": not_logged_in},
            ),
            "permissionError": _json(
                _ref("schemas", "Error"),
                "Forbidden: the caller lacks view-livechat-reports",
                {"Permission Error": refused},
            ),
            "storageError": _json(
                _ref("schemas", "Error"),
                "Service Unavailable: the store failed or did not answer in time",
            ),
            "internalError": _json(_ref("schemas", "Error"), "Internal Server Error"),
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


def openapi_document(server_url: str = "/", *, metrics: bool = False) -> dict[str, Any]:
    """The service's OpenAPI 3.0 document, as a JSON-ready dict (a new one on each call).

    ``server_url`` is where the paths start: the prefix the service is mounted under, if
    any. ``metrics`` adds :data:`METRICS_PATH`, for a service that serves it.
    """
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "convstats",
            "version": convstats.__version__,
            "description": (
                "Rocket.Chat Enterprise's dashboard report Get Conversation by Agents, with "
                "upstream's statuses and bodies, authenticated by Rocket.Chat login tokens."
            ),
        },
        "servers": [{"url": server_url}],
        # One requirement naming both schemes: the headers sign a caller in together.
        "security": [{"UserId": [], "AuthToken": []}],
        "paths": {
            REPORT_PATH: {
                "get": {
                    "tags": ["Reports"],
                    "summary": "Get Conversation by Agents",
                    "description": (
                        "The omnichannel conversations created in [start, end), per agent "
                        "serving them, among the rooms the caller may see. Permission "
                        "required: `view-livechat-reports`."
                    ),
                    "operationId": (
                        "get-api-v1-livechat-analytics-dashboards-conversations-by-agent"
                    ),
                    "parameters": [
                        _ref("parameters", name)
                        for name in ("UserId", "AuthToken", "start", "end", "sort")
                    ],
                    "responses": {
                        "200": _json(_ref("schemas", "ConversationsByAgent"), "OK"),
                        "400": _ref("responses", "startendError"),
                        "401": _ref("responses", "authorizationError"),
                        "403": _ref("responses", "permissionError"),
                        "500": _ref("responses", "internalError"),
                        "503": _ref("responses", "storageError"),
                    },
                }
            },
            OPENAPI_PATH: {
                "get": {
                    "summary": "This document",
                    "operationId": "get-openapi",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document")},
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
        "components": _components(),
    }
    if metrics:
        document["paths"][METRICS_PATH] = _metrics_operation()
    return document
