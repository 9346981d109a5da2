"""The conversations-by-agent report over one store."""

from __future__ import annotations

import attrs

from convstats.cache import TTLCache
from convstats.model import AgentRow, Report, TimeWindow, TotalMode, Visibility
from convstats.ports import RoomStore, Versioned
from convstats.sorting import DEFAULT_SORT, Ranked, Sort, rank

__all__ = ["ConversationsByAgent"]

_EVERYTHING = Visibility.everything()


@attrs.define(kw_only=True)
class ConversationsByAgent:
    """The report over one store: count, label and sort the conversations of a window.

    ``total_mode`` chooses how ``total`` is defined. ``cache``, off by default, remembers
    reports keyed on the window, the sort, the visibility, the total mode and, when the store
    is :class:`~convstats.ports.Versioned`, its ``data_version``, so that the store's own
    updates are seen at once. A cache serves one store: it is bound to this report's store,
    and a report over another store given the same cache raises :class:`ValueError`
    (docs/behaviour.md#caching).

    >>> reports = ConversationsByAgent(store=store)                           # doctest: +SKIP
    >>> reports.report(validate_window(start, end)).rows                      # doctest: +SKIP
    (AgentRow(agent_id='u-ana', label='Ana', value=2),)
    """

    store: RoomStore
    total_mode: TotalMode = attrs.field(
        default=TotalMode.CONVSTATS, validator=attrs.validators.instance_of(TotalMode)
    )
    cache: TTLCache[Report] | None = None
    # The store last asked whether it is Versioned, and the store again if it is: a Protocol
    # check costs more than a cache hit.
    _versioned: tuple[RoomStore, Versioned | None] | None = attrs.field(
        init=False, default=None, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        # At construction, so that a cache wired to two stores fails where it is wired.
        if self.cache is not None:
            self.cache.bind(self.store)

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
        store, cache = self.store, self.cache
        if cache is None:
            return self._compute(store, window, sort, visibility)
        cache.bind(store)  # again: the store or the cache may have been replaced since
        checked = self._versioned
        if checked is None or checked[0] is not store:
            checked = (store, store if isinstance(store, Versioned) else None)
            self._versioned = checked
        versioned = checked[1]
        # Read before counting: the answer is then of this state or a later one, never older.
        version = None if versioned is None else versioned.data_version
        return cache.get_or_compute(
            (window, sort, visibility, self.total_mode, version),
            lambda: self._compute(store, window, sort, visibility),
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
        return self._ranked(self.store, window, sort, visibility)

    def _ranked(
        self, store: RoomStore, window: TimeWindow, sort: Sort, visibility: Visibility
    ) -> tuple[list[Ranked], int]:
        counts = store.count_conversations(window, visibility)
        per_agent = counts.per_agent
        names = store.agent_names(tuple(per_agent)) if per_agent else {}
        label = names.get
        rows = [
            (label(agent_id, agent_id), agent_id, value) for agent_id, value in per_agent.items()
        ]
        return rank(rows, sort), counts.unspecified

    def _compute(
        self, store: RoomStore, window: TimeWindow, sort: Sort, visibility: Visibility
    ) -> Report:
        rows, unspecified = self._ranked(store, window, sort, visibility)
        return Report(
            window=window,
            rows=tuple(
                AgentRow(agent_id=agent_id, label=label, value=value)
                for label, agent_id, value in rows
            ),
            unspecified=unspecified,
            total_mode=self.total_mode,
        )
