"""The library's exceptions.

Every exception raised on purpose derives from :class:`ConvstatsError` and from the nearest
builtin, so callers may catch either. Each carries the offending value; none knows HTTP: the
statuses and wire bodies of upstream's endpoint are :mod:`convstats.http`'s business.
"""

from __future__ import annotations

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
    """A request the report refuses: the caller, the parameters or the window."""


class AuthenticationRequired(RequestError, PermissionError):
    """No caller, or a caller the authority does not know."""

    def __init__(self) -> None:
        super().__init__("You must be logged in to do this.")


class InvalidParams(RequestError, ValueError):
    """The query parameters do not fit the endpoint's schema; ``detail`` says how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PermissionDenied(RequestError, PermissionError):
    """The caller lacks ``permission``."""

    def __init__(self, permission: str = "view-livechat-reports") -> None:
        super().__init__("User does not have the permissions required for this action")
        self.permission = permission


class InvalidSort(RequestError, ValueError):
    """The ``sort`` parameter ``raw`` is not a valid sort specification."""

    def __init__(self, raw: str) -> None:
        super().__init__(f'Invalid sort parameter provided: "{raw}"')
        self.raw = raw


class InvalidDate(RequestError, ValueError):
    """The ``start``/``end`` window breaks a date rule; the message is upstream's."""


class StorageError(ConvstatsError, ConnectionError):
    """The data store failed; a report is never answered with partial or empty data instead."""


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
