"""The conversations-by-agent report over one store."""

from __future__ import annotations

import attrs

from convstats.cache import TTLCache
from convstats.model import AgentRow, Report, TimeWindow, TotalMode, Visibility
from convstats.ports import RoomStore
from convstats.sorting import DEFAULT_SORT, Ranked, Sort, rank

__all__ = ["ConversationsByAgent"]

_EVERYTHING = Visibility.everything()


@attrs.define(kw_only=True)
class ConversationsByAgent:
    """The report over one store: count, label and sort the conversations of a window.

    ``total_mode`` chooses how ``total`` is defined. ``cache``, off by default, remembers
    reports keyed on the window, the sort and the visibility; give each instance a cache of
    its own, since the key does not name the store.

    >>> reports = ConversationsByAgent(store=store)                           # doctest: +SKIP
    >>> reports.report(validate_window(start, end)).rows                      # doctest: +SKIP
    (AgentRow(agent_id='u-ana', label='Ana', value=2),)
    """

    store: RoomStore
    total_mode: TotalMode = attrs.field(
        default=TotalMode.CONVSTATS, validator=attrs.validators.instance_of(TotalMode)
    )
    cache: TTLCache[Report] | None = None

    def report(
        self,
        window: TimeWindow,
        *,
        sort: Sort = DEFAULT_SORT,
        visibility: Visibility = _EVERYTHING,
    ) -> Report:
        """The report of the conversations created in ``window`` that ``visibility`` admits.

        One row per agent id with at least one conversation; its label is the agent's name
        when the user exists and has a string name, else the agent id; agents sharing a name
        stay separate rows (docs/behaviour.md#labels-and-the-response). No date rule is
        applied here: build the window with :func:`convstats.dates.validate_window` to apply
        upstream's. Raises :class:`~convstats.errors.StorageError` when the store fails.
        """
        if self.cache is None:
            return self._compute(window, sort, visibility)
        return self.cache.get_or_compute(
            (window, sort, visibility, self.total_mode),
            lambda: self._compute(window, sort, visibility),
        )

    def ranked(
        self,
        window: TimeWindow,
        *,
        sort: Sort = DEFAULT_SORT,
        visibility: Visibility = _EVERYTHING,
    ) -> tuple[list[Ranked], int]:
        """The report's rows as ``(label, agent id, value)`` in order, and ``unspecified``.

        What :meth:`report` holds, without building a value per row (for answers that only
        serialise the rows); never cached. Raises what :meth:`report` raises.
        """
        counts = self.store.count_conversations(window, visibility)
        per_agent = counts.per_agent
        names = self.store.agent_names(tuple(per_agent)) if per_agent else {}
        label = names.get
        rows = [
            (label(agent_id, agent_id), agent_id, value) for agent_id, value in per_agent.items()
        ]
        return rank(rows, sort), counts.unspecified

    def _compute(self, window: TimeWindow, sort: Sort, visibility: Visibility) -> Report:
        rows, unspecified = self.ranked(window, sort=sort, visibility=visibility)
        return Report(
            window=window,
            rows=tuple(
                AgentRow(agent_id=agent_id, label=label, value=value)
                for label, agent_id, value in rows
            ),
            unspecified=unspecified,
            total_mode=self.total_mode,
        )
