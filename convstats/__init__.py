"""convstats: omnichannel conversations per agent, as Rocket.Chat's dashboard report.

The core is storage-agnostic: stores implement the Protocols of :mod:`convstats.ports`, and
the adapters live in the ``convstats_adapters`` package.
"""

from convstats.authz import OperatorAuthority, RocketChatAuthority
from convstats.cache import TTLCache
from convstats.dates import parse_instant, validate_window
from convstats.errors import (
    AuthenticationRequired,
    ConvstatsError,
    DataFormatError,
    InvalidDate,
    InvalidParams,
    InvalidSort,
    MissingDependency,
    PermissionDenied,
    RequestError,
    StorageError,
    StorageNotAuthorized,
    StorageTimeout,
    StorageUnavailable,
)
from convstats.handler import ConversationsByAgentEndpoint, Response
from convstats.model import (
    AgentCounts,
    AgentRow,
    Caller,
    MonitorRule,
    Report,
    TimeWindow,
    TotalMode,
    UserRecord,
    Visibility,
)
from convstats.ports import Authority, Directory, RoomStore
from convstats.report import ConversationsByAgent, build_report
from convstats.sorting import DEFAULT_SORT, Sort, SortField, parse_sort

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SORT",
    "AgentCounts",
    "AgentRow",
    "AuthenticationRequired",
    "Authority",
    "Caller",
    "ConversationsByAgent",
    "ConversationsByAgentEndpoint",
    "ConvstatsError",
    "DataFormatError",
    "Directory",
    "InvalidDate",
    "InvalidParams",
    "InvalidSort",
    "MissingDependency",
    "MonitorRule",
    "OperatorAuthority",
    "PermissionDenied",
    "Report",
    "RequestError",
    "Response",
    "RocketChatAuthority",
    "RoomStore",
    "Sort",
    "SortField",
    "StorageError",
    "StorageNotAuthorized",
    "StorageTimeout",
    "StorageUnavailable",
    "TTLCache",
    "TimeWindow",
    "TotalMode",
    "UserRecord",
    "Visibility",
    "build_report",
    "parse_instant",
    "parse_sort",
    "validate_window",
]
