"""The conversations-by-agent report: the typed API for callers that hold datetimes."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo

import attrs

from convstats.cache import TTLCache
from convstats.dates import validate_window
from convstats.model import AgentRow, Report, TimeWindow, TotalMode, Visibility
from convstats.ports import RoomStore
from convstats.sorting import DEFAULT_SORT, Sort, sort_rows

__all__ = ["ConversationsByAgent", "build_report"]


def build_report(
    store: RoomStore,
    window: TimeWindow,
    *,
    sort: Sort = DEFAULT_SORT,
    visibility: Visibility | None = None,
    total_mode: TotalMode = TotalMode.CONVSTATS,
) -> Report:
    """Count, label and sort the conversations of ``window`` that ``visibility`` admits.

    One row per agent id with at least one conversation; its label is the agent's name when
    the user exists and has a string name, else the agent id. Agents sharing a name stay
    separate rows. No date rules are applied here.
    """
    counts = store.count_conversations(window, visibility or Visibility.everything())
    names = store.agent_names(tuple(counts.per_agent)) if counts.per_agent else {}
    rows = (
        AgentRow(agent_id=agent_id, label=names.get(agent_id, agent_id), value=value)
        for agent_id, value in counts.per_agent.items()
    )
    return Report(
        window=window,
        rows=sort_rows(rows, sort),
        unspecified=counts.unassigned,
        total_mode=total_mode,
    )


_UTC: tzinfo = timezone.utc


def _is_tzinfo(instance: object, attribute: attrs.Attribute[tzinfo], value: object) -> None:
    if not isinstance(value, tzinfo):
        raise TypeError(f"{attribute.name} must be a tzinfo such as ZoneInfo('UTC'), got {value!r}")


@attrs.define(kw_only=True)
class ConversationsByAgent:
    """The report over one store, with the workspace's settings.

    ``server_tz`` is the time zone of the one-year rule's day truncation (and, in the request
    handler, of date strings without an offset). ``cache``, off by default, remembers reports
    keyed on the window, the sort and the visibility; give each instance a cache of its own,
    since the key does not name the store.

    >>> reports = ConversationsByAgent(store=store)                      # doctest: +SKIP
    >>> reports.report(start, end).to_body()                             # doctest: +SKIP
    {'total': 3, 'data': [{'label': 'Ana', 'value': 2}], 'unspecified': 1, 'success': True}
    """

    store: RoomStore
    server_tz: tzinfo = attrs.field(default=_UTC, validator=_is_tzinfo)
    total_mode: TotalMode = attrs.field(
        default=TotalMode.CONVSTATS, validator=attrs.validators.instance_of(TotalMode)
    )
    cache: TTLCache[Report] | None = None

    def report(
        self,
        start: datetime,
        end: datetime,
        *,
        sort: Sort = DEFAULT_SORT,
        visibility: Visibility | None = None,
    ) -> Report:
        """The report for ``start <= ts < end`` (aware datetimes), as ``visibility`` allows.

        Raises :class:`~convstats.errors.InvalidDate` when the window breaks upstream's rules
        (more than a year, or start after end), :class:`ValueError` for naive datetimes and
        :class:`~convstats.errors.StorageError` when the store fails.
        """
        window = validate_window(start, end, self.server_tz)
        return self.report_window(window, sort=sort, visibility=visibility)

    def report_window(
        self,
        window: TimeWindow,
        *,
        sort: Sort = DEFAULT_SORT,
        visibility: Visibility | None = None,
    ) -> Report:
        """The report for an already validated window."""
        scope = visibility or Visibility.everything()

        def compute() -> Report:
            return build_report(
                self.store, window, sort=sort, visibility=scope, total_mode=self.total_mode
            )

        if self.cache is None:
            return compute()
        return self.cache.get_or_compute((window, sort, scope, self.total_mode), compute)
