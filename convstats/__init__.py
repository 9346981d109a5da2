"""convstats: omnichannel conversations per agent, as Rocket.Chat's dashboard report.

The core is storage-agnostic: stores implement the Protocols of :mod:`convstats.ports`
(the adapters live in the ``convstats_adapters`` package), :class:`ConversationsByAgent`
computes the report, and :class:`ConversationsByAgentEndpoint` answers upstream's HTTP
request with upstream's statuses and bodies. Errors are in :mod:`convstats.errors`.
"""

from convstats.authz import OperatorAuthority, RocketChatAuthority
from convstats.cache import TTLCache
from convstats.dates import validate_window
from convstats.errors import ConvstatsError
from convstats.http import ConversationsByAgentEndpoint, Response
from convstats.model import AgentRow, MonitorRule, Report, TimeWindow, TotalMode, Visibility
from convstats.report import ConversationsByAgent
from convstats.sorting import Sort, parse_sort

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)

__all__ = [
    "AgentRow",
    "ConversationsByAgent",
    "ConversationsByAgentEndpoint",
    "ConvstatsError",
    "MonitorRule",
    "OperatorAuthority",
    "Report",
    "Response",
    "RocketChatAuthority",
    "Sort",
    "TTLCache",
    "TimeWindow",
    "TotalMode",
    "Visibility",
    "parse_sort",
    "validate_window",
]
