"""convstats: Rocket.Chat's omnichannel Reports page, computed exactly and fast.

The five reports of the page count the conversations of a window by status, source,
department, tags and agent. The core is storage-agnostic: stores implement the Protocols of
:mod:`convstats.ports` (the adapters live in the ``convstats_adapters`` package),
:class:`Conversations` computes a report for a :class:`Grouping`, and
:class:`ConversationsEndpoint` answers upstream's HTTP request with upstream's statuses and
bodies. Errors are in :mod:`convstats.errors`.
"""

from convstats.authz import OperatorAuthority, RocketChatAuthority
from convstats.cache import TTLCache
from convstats.dates import validate_window
from convstats.errors import ConvstatsError
from convstats.http import ConversationsByAgentEndpoint, ConversationsEndpoint, Response
from convstats.model import (
    ABSENT,
    AgentRow,
    DepartmentRow,
    Grouping,
    MonitorRule,
    Report,
    SourceRow,
    Status,
    StatusRow,
    TagRow,
    TimeWindow,
    TotalMode,
    Visibility,
)
from convstats.report import (
    Conversations,
    ConversationsByAgent,
    ConversationsByDepartment,
    ConversationsBySource,
    ConversationsByStatus,
    ConversationsByTags,
)
from convstats.sorting import Sort, parse_sort

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)

__all__ = [
    "ABSENT",
    "AgentRow",
    "Conversations",
    "ConversationsByAgent",
    "ConversationsByAgentEndpoint",
    "ConversationsByDepartment",
    "ConversationsBySource",
    "ConversationsByStatus",
    "ConversationsByTags",
    "ConversationsEndpoint",
    "ConvstatsError",
    "DepartmentRow",
    "Grouping",
    "MonitorRule",
    "OperatorAuthority",
    "Report",
    "Response",
    "RocketChatAuthority",
    "Sort",
    "SourceRow",
    "Status",
    "StatusRow",
    "TTLCache",
    "TagRow",
    "TimeWindow",
    "TotalMode",
    "Visibility",
    "parse_sort",
    "validate_window",
]
