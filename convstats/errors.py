"""The library's exceptions.

Every exception raised on purpose by convstats derives from :class:`ConvstatsError` and also
from the nearest builtin, so callers may catch either. The request errors carry the upstream
HTTP status and response body, which :mod:`convstats.handler` returns as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationRequired",
    "ConvstatsError",
    "DataFormatError",
    "InvalidDate",
    "InvalidParams",
    "InvalidSort",
    "MissingDependency",
    "PermissionDenied",
    "RequestError",
    "StorageError",
    "StorageNotAuthorized",
    "StorageTimeout",
    "StorageUnavailable",
]


class ConvstatsError(Exception):
    """Root of every exception convstats raises on purpose."""


class RequestError(ConvstatsError):
    """A request the report refuses; ``status`` and :meth:`body` are the upstream answer."""

    status: ClassVar[int] = 400
    error_type: ClassVar[str | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body upstream Rocket.Chat answers this error with."""
        body: dict[str, Any] = {"success": False, "error": self.message}
        if self.error_type is not None:
            body["errorType"] = self.error_type
        return body


class AuthenticationRequired(RequestError, PermissionError):
    """No caller, or a caller the authority does not know (HTTP 401)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("You must be logged in to do this.")


class InvalidParams(RequestError, ValueError):
    """The query parameters do not fit the endpoint's schema (HTTP 400, ``invalid-params``)."""

    error_type = "invalid-params"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail} [invalid-params]")
        self.detail = detail


class PermissionDenied(RequestError, PermissionError):
    """The caller lacks the permission the report needs (HTTP 403)."""

    status = 403

    def __init__(self, permission: str = "view-livechat-reports") -> None:
        super().__init__(
            "User does not have the permissions required for this action [error-unauthorized]"
        )
        self.permission = permission


class InvalidSort(RequestError, ValueError):
    """The ``sort`` parameter is not a valid sort specification (HTTP 400)."""

    error_type = "error-invalid-sort"

    def __init__(self, raw: str) -> None:
        super().__init__(f'Invalid sort parameter provided: "{raw}" [error-invalid-sort]')
        self.raw = raw


class InvalidDate(RequestError, ValueError):
    """The ``start``/``end`` window is not valid (HTTP 400, one of four exact messages)."""


class StorageError(ConvstatsError, ConnectionError):
    """The data store failed; a report is never answered with partial or empty data instead."""

    status: ClassVar[int] = 503

    def body(self) -> dict[str, Any]:
        """The JSON body the request handler answers a storage failure with."""
        return {"success": False, "error": str(self)}


class StorageUnavailable(StorageError):
    """The store cannot be reached (no server selectable, connection refused or reset)."""


class StorageTimeout(StorageError, TimeoutError):
    """The store did not answer within the configured time limit."""


class StorageNotAuthorized(StorageError, PermissionError):
    """The store refused the credentials or the operation (not the report's caller)."""


class DataFormatError(ConvstatsError, ValueError):
    """A data file cannot be read; the message names the file and, where known, the line."""

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class MissingDependency(ConvstatsError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'convstats[{extra}]'"
        )
        self.package = package
        self.extra = extra
