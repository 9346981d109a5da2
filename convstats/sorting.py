"""The ``sort`` parameter (docs/behaviour.md#sort): parsing, and ordering rows by it."""

from __future__ import annotations

import enum
import json
import operator
from collections.abc import Iterable
from typing import TypeAlias

import attrs

from convstats.errors import InvalidSort
from convstats.model import AgentRow

__all__ = ["DEFAULT_SORT", "Ranked", "Sort", "SortField", "parse_sort", "rank", "sort_rows"]


class SortField(enum.Enum):
    """What a report can be sorted by."""

    LABEL = "name"
    VALUE = "total"
    AGENT_ID = "_id"


_KEYS = {
    "name": SortField.LABEL,
    "label": SortField.LABEL,
    "total": SortField.VALUE,
    "value": SortField.VALUE,
    "_id": SortField.AGENT_ID,
}


@attrs.frozen
class Sort:
    """An ordered list of ``(field, direction)`` keys; direction is ``1`` or ``-1``.

    Rows equal on every key are ordered by label, then agent id, both ascending, so that
    every order is deterministic.
    """

    keys: tuple[tuple[SortField, int], ...] = ()

    def to_json(self) -> str:
        """The canonical ``sort`` parameter for this order."""
        return json.dumps({field.value: direction for field, direction in self.keys})


#: Upstream's default order: ``{"name": 1}``.
DEFAULT_SORT = Sort(((SortField.LABEL, 1),))


def parse_sort(raw: str | None) -> Sort:
    """Parse the ``sort`` query parameter.

    ``None`` or an empty string gives :data:`DEFAULT_SORT`, as upstream ignores an empty
    value; ``{}`` gives the tie-break order alone. Keys are ``name``/``label``,
    ``total``/``value`` and ``_id``; values the JSON numbers ``1`` or ``-1``. A key that
    repeats an earlier field (``{"name": 1, "label": -1}``) has no further effect.

    Raises :class:`~convstats.errors.InvalidSort` naming the raw value for invalid JSON, a
    non-object, an unknown key or any other value.
    """
    if raw is None or raw == "":
        return DEFAULT_SORT
    try:
        spec = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise InvalidSort(raw) from None
    if not isinstance(spec, dict):
        raise InvalidSort(raw)
    keys: list[tuple[SortField, int]] = []
    for key, direction in spec.items():
        field = _KEYS.get(key)
        if field is None or isinstance(direction, bool) or direction not in (1, -1):
            raise InvalidSort(raw)
        if all(field is not seen for seen, _ in keys):
            keys.append((field, int(direction)))
    return Sort(tuple(keys))


def sort_rows(rows: Iterable[AgentRow], sort: Sort = DEFAULT_SORT) -> tuple[AgentRow, ...]:
    """Order ``rows`` by ``sort``, then by label and agent id ascending.

    Strings compare by code point (case-sensitive), as MongoDB compares them without a
    collation.
    """
    ordered = sorted(rows, key=lambda row: (row.label, row.agent_id))
    # Stable sorts compose: sorting by the least significant key first leaves the more
    # significant keys in charge, each with its own direction.
    for field, direction in reversed(sort.keys):
        ordered.sort(key=_ATTRIBUTE[field], reverse=direction == -1)
    return tuple(ordered)


_ATTRIBUTE = {
    SortField.LABEL: operator.attrgetter("label"),
    SortField.VALUE: operator.attrgetter("value"),
    SortField.AGENT_ID: operator.attrgetter("agent_id"),
}


#: A row as ``(label, agent id, value)``: tuples of that order sort by the tie-break.
Ranked: TypeAlias = tuple[str, str, int]

_ITEM = {
    SortField.LABEL: operator.itemgetter(0),
    SortField.VALUE: operator.itemgetter(2),
    SortField.AGENT_ID: operator.itemgetter(1),
}


def rank(rows: list[Ranked], sort: Sort = DEFAULT_SORT) -> list[Ranked]:
    """Order ``(label, agent id, value)`` rows in place, as :func:`sort_rows` orders rows."""
    # Agent ids are unique, so the tuples' own order is the tie-break (label, then id), and
    # for the default sort, by name ascending, the whole order.
    rows.sort()
    if sort != DEFAULT_SORT:
        for field, direction in reversed(sort.keys):
            rows.sort(key=_ITEM[field], reverse=direction == -1)
    return rows
