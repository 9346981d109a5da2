"""The reports of the Reports page over one store: count, label, rank (docs/behaviour.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from convstats.cache import TTLCache
from convstats.model import (
    ABSENT,
    UPSTREAM_STATUS_ORDER,
    FrozenDocument,
    GroupCounts,
    Grouping,
    Ranked,
    Report,
    Status,
    TimeWindow,
    TotalMode,
    Visibility,
    report_total,
)
from convstats.ports import Directory, RoomStore, Versioned
from convstats.sorting import Sort, default_sort, rank

__all__ = [
    "Conversations",
    "ConversationsByAgent",
    "ConversationsByDepartment",
    "ConversationsBySource",
    "ConversationsByStatus",
    "ConversationsByTags",
]

_EVERYTHING = Visibility.everything()
#: The groupings whose labels are names the directory holds.
_NAMED = (Grouping.AGENT, Grouping.DEPARTMENT)


@attrs.define(kw_only=True)
class Conversations:
    """One report of the Reports page over one store: count, label and rank a window's rows.

    ``grouping`` says which report (by status, source, department, tags or agent);
    ``total_mode`` which reading (this project's, or upstream's to the byte). Labels of
    agents and departments are names from ``directory``, the store itself by default when
    it is one (:class:`~convstats.ports.Workspace`). ``cache``, off by default, remembers
    reports keyed on the grouping, the window, the sort, the visibility, the total mode and,
    when the store is :class:`~convstats.ports.Versioned`, its ``data_version``, so that the
    store's own updates are seen at once. A cache serves one store: it is bound to this
    report's store, and a report over another store given the same cache raises
    :class:`ValueError` (docs/behaviour.md#caching); the reports of one store share one.

    >>> reports = Conversations(grouping=Grouping.TAGS, store=store)          # doctest: +SKIP
    >>> reports.report(validate_window(start, end)).rows                      # doctest: +SKIP
    (TagRow(tag='billing', label='billing', value=2),)
    """

    store: RoomStore
    grouping: Grouping = attrs.field(validator=attrs.validators.instance_of(Grouping))
    directory: Directory | None = attrs.field(default=None)
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
        if self.directory is None and isinstance(self.store, Directory):
            self.directory = self.store
        if self.directory is None and self.grouping in _NAMED:
            raise ValueError(
                f"the {self.grouping.route} report labels its rows with names: pass "
                f"directory=… (the store, a {type(self.store).__name__}, holds no users)"
            )
        # At construction, so that a cache wired to two stores fails where it is wired.
        if self.cache is not None:
            self.cache.bind(self.store)

    def report(
        self,
        window: TimeWindow,
        *,
        sort: Sort | None = None,
        visibility: Visibility = _EVERYTHING,
    ) -> Report:
        """The report of the conversations created in ``window`` that ``visibility`` admits.

        ``sort`` orders the rows of by-department, by-tags and by-agent (``None``: upstream's
        default, ``{"total": 1}`` or ``{"name": 1}``); by-status and by-source ignore it and
        are ordered by value, descending. Rows equal on every key are ordered by label, then
        key. No date rule is applied here: build the window with
        :func:`convstats.dates.validate_window` to apply upstream's. Raises
        :class:`~convstats.errors.StorageError` when the store fails.
        """
        if sort is None or not self.grouping.takes_sort:
            sort = default_sort(self.grouping)
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
            (self.grouping, window, sort, visibility, self.total_mode, version),
            lambda: self._compute(store, window, sort, visibility),
        )

    def _compute(
        self, store: RoomStore, window: TimeWindow, sort: Sort, visibility: Visibility
    ) -> Report:
        grouping, mode = self.grouping, self.total_mode
        counts = store.count_groups(grouping, window, visibility, mode)
        rows = _LABELLERS[grouping](self, counts)
        plain = grouping in _PLAIN[mode] or (
            # Upstream's by-agent keeps a room whose servedBy names no agent under that
            # servedBy's _id, null or another value.
            grouping is Grouping.AGENT and all(type(row[1]) is str for row in rows)
        )
        rank(rows, sort, grouping, plain=plain)
        assigned = sum(value for _, _, value in rows)
        return Report(
            grouping=grouping,
            window=window,
            ranked=tuple(rows),
            unspecified=counts.unspecified,
            total=report_total(grouping, mode, assigned, counts.unspecified, counts.rooms),
            total_mode=mode,
        )

    # -- labels, by grouping --------------------------------------------------------------

    def _agents(self, counts: GroupCounts) -> list[Ranked]:
        keys = counts.keys
        assert self.directory is not None
        names: Mapping[str, str] = self.directory.agent_names(keys) if len(keys) else {}
        label = names.get
        return [
            (label(key, key), key, value) for key, value in zip(keys, counts.values, strict=True)
        ]

    def _departments(self, counts: GroupCounts) -> list[Ranked]:
        keys = counts.keys
        assert self.directory is not None
        names = self.directory.department_names(keys) if len(keys) else {}
        if self.total_mode is TotalMode.CONVSTATS:
            rows: list[Ranked] = []
            for key, value in zip(keys, counts.values, strict=True):
                name = names.get(key)
                rows.append((name if isinstance(name, str) else key, key, value))
            return rows
        # Upstream regroups by the department's name: one row a name, and the rooms of a
        # department without one (or of none) are dropped.
        merged: dict[Any, list[Any]] = {}
        for key, value in zip(keys, counts.values, strict=True):
            name = names.get(key)
            if name is None:
                continue
            row = merged.setdefault(_hashable(name), [name, 0])
            row[1] += value
        return [(name, None, value) for name, value in merged.values()]

    def _tags(self, counts: GroupCounts) -> list[Ranked]:
        return [(key, key, value) for key, value in zip(counts.keys, counts.values, strict=True)]

    def _sources(self, counts: GroupCounts) -> list[Ranked]:
        rows: list[Ranked] = []
        for key, value in zip(counts.keys, counts.values, strict=True):
            kind, alias = key
            rows.append((kind if alias is None or alias is ABSENT else alias, key, value))
        return rows

    def _statuses(self, counts: GroupCounts) -> list[Ranked]:
        found = dict(zip(counts.keys, counts.values, strict=True))
        if self.total_mode is TotalMode.ROCKETCHAT and not counts.rooms:
            return []  # upstream's aggregation returns no document for an empty window
        return [(status.value, status, found.get(status, 0)) for status in _STATUS_ORDER]


#: Per reading, the groupings whose rows have string labels and keys that compare as
#: strings where labels tie (status keys never do): their tuples order themselves.
_PLAIN = {
    TotalMode.CONVSTATS: frozenset(
        {Grouping.AGENT, Grouping.STATUS, Grouping.DEPARTMENT, Grouping.TAGS}
    ),
    TotalMode.ROCKETCHAT: frozenset({Grouping.STATUS}),
}
#: Rows listed in upstream's order, which stable ranking keeps among equal values.
_STATUS_ORDER: Sequence[Status] = UPSTREAM_STATUS_ORDER

_LABELLERS: dict[Grouping, Callable[[Conversations, GroupCounts], list[Ranked]]] = {
    Grouping.AGENT: Conversations._agents,
    Grouping.DEPARTMENT: Conversations._departments,
    Grouping.TAGS: Conversations._tags,
    Grouping.SOURCE: Conversations._sources,
    Grouping.STATUS: Conversations._statuses,
}


def _hashable(value: Any) -> Any:
    """``value`` in a form that can key a dict, equal when MongoDB's ``$group`` holds it equal."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return FrozenDocument(tuple((name, _hashable(item)) for name, item in value.items()))
    return value


@attrs.define(kw_only=True)
class ConversationsByStatus(Conversations):
    """Conversations by status: Open, Closed, Queued, On_Hold (see :class:`Conversations`)."""

    grouping: Grouping = attrs.field(default=Grouping.STATUS, init=False)


@attrs.define(kw_only=True)
class ConversationsBySource(Conversations):
    """Conversations by source type and alias (see :class:`Conversations`)."""

    grouping: Grouping = attrs.field(default=Grouping.SOURCE, init=False)


@attrs.define(kw_only=True)
class ConversationsByDepartment(Conversations):
    """Conversations by department (see :class:`Conversations`)."""

    grouping: Grouping = attrs.field(default=Grouping.DEPARTMENT, init=False)


@attrs.define(kw_only=True)
class ConversationsByTags(Conversations):
    """Conversations by tag; a room counts in each of its tags (see :class:`Conversations`)."""

    grouping: Grouping = attrs.field(default=Grouping.TAGS, init=False)


@attrs.define(kw_only=True)
class ConversationsByAgent(Conversations):
    """Conversations by the agent who serves them (see :class:`Conversations`)."""

    grouping: Grouping = attrs.field(default=Grouping.AGENT, init=False)
