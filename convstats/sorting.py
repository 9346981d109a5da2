"""The ``sort`` parameter (docs/behaviour.md#sort): parsing, and ordering rows by it."""

from __future__ import annotations

import enum
import json
import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import attrs

from convstats.errors import InvalidSort
from convstats.model import ABSENT, FrozenBool, FrozenDocument, Grouping, Ranked

__all__ = [
    "BY_COUNT",
    "DEFAULT_SORT",
    "Sort",
    "SortField",
    "bson_order",
    "default_sort",
    "parse_sort",
    "rank",
]


class SortField(enum.Enum):
    """What a report can be sorted by."""

    LABEL = "name"
    VALUE = "total"
    #: The row's id: the agent id in by-agent, the name in by-department and by-tags, as
    #: upstream's ``_id`` is at the stage its sort applies to.
    ID = "_id"
    AGENT_ID = "_id"  # the same member, by the name it had when only agents were sorted


_KEYS = {
    "name": SortField.LABEL,
    "label": SortField.LABEL,
    "total": SortField.VALUE,
    "value": SortField.VALUE,
    "_id": SortField.ID,
}


@attrs.frozen
class Sort:
    """An ordered list of ``(field, direction)`` keys; direction is ``1`` or ``-1``.

    Rows equal on every key are ordered by label, then key, both ascending, so that every
    order is deterministic.
    """

    keys: tuple[tuple[SortField, int], ...] = ()

    def to_json(self) -> str:
        """The canonical ``sort`` parameter for this order."""
        return json.dumps({field.value: direction for field, direction in self.keys})


#: Upstream's default order of by-agent: ``{"name": 1}``.
DEFAULT_SORT = Sort(((SortField.LABEL, 1),))
#: Upstream's default order of by-department and by-tags: ``{"total": 1}``.
BY_COUNT = Sort(((SortField.VALUE, 1),))
#: The fixed order of by-status and by-source, which ignore ``sort``: by value, descending.
_BY_COUNT_DESCENDING = Sort(((SortField.VALUE, -1),))

_DEFAULTS = {
    Grouping.AGENT: DEFAULT_SORT,
    Grouping.DEPARTMENT: BY_COUNT,
    Grouping.TAGS: BY_COUNT,
    Grouping.STATUS: _BY_COUNT_DESCENDING,
    Grouping.SOURCE: _BY_COUNT_DESCENDING,
}


def default_sort(grouping: Grouping) -> Sort:
    """The order of ``grouping``'s report when no ``sort`` is given.

    By-status and by-source, which take none, are always in this order: by value, descending.
    """
    return _DEFAULTS[grouping]


def parse_sort(raw: str | None, default: Sort = DEFAULT_SORT) -> Sort:
    """Parse the ``sort`` query parameter.

    ``None`` or an empty string gives ``default`` (by-agent's ``{"name": 1}`` unless told),
    as upstream ignores an empty value; ``{}`` gives the tie-break order alone. Keys are
    ``name``/``label``, ``total``/``value`` and ``_id``; values the JSON numbers ``1`` or
    ``-1``. A key that repeats an earlier field (``{"name": 1, "label": -1}``) has no further
    effect.

    Raises :class:`~convstats.errors.InvalidSort` naming the raw value for invalid JSON, a
    non-object, an unknown key or any other value.
    """
    if raw is None or raw == "":
        return default
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


def bson_order(value: Any) -> tuple[Any, ...]:
    """A key that orders values as MongoDB's ``$sort`` orders BSON values.

    By type first (null and missing, numbers, strings, documents, arrays, booleans, dates),
    then by value: numbers by value (NaN first), strings by code point, documents and arrays
    field by field. Keys and labels of upstream's reading are ordered by it.
    """
    if value is ABSENT:  # a missing field, before null: every two values are ordered
        return (1, 0)
    if value is None:
        return (1, 1)
    if isinstance(value, (bool, FrozenBool)):
        return (8, value if isinstance(value, bool) else value.value)
    if isinstance(value, (int, float, Decimal)):
        if (isinstance(value, float) and math.isnan(value)) or (
            isinstance(value, Decimal) and value.is_nan()
        ):
            return (2, 0)
        return (2, 1, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, (FrozenDocument, Mapping)):
        fields = value.fields if isinstance(value, FrozenDocument) else value.items()
        return (4, tuple((name, bson_order(item)) for name, item in fields))
    if isinstance(value, (tuple, list)):
        return (5, tuple(bson_order(item) for item in value))
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return (9, moment)
    return (10, type(value).__name__, repr(value))


_LABEL = operator.itemgetter(0)
_KEY = operator.itemgetter(1)
_VALUE = operator.itemgetter(2)


def _fields(grouping: Grouping, plain: bool) -> dict[SortField, Callable[[Ranked], Any]]:
    # ``_id`` is the agent id in by-agent; in by-department and by-tags upstream's ``_id`` is
    # the name at the stage its sort applies to.
    label: Callable[[Ranked], Any] = _LABEL if plain else (lambda row: bson_order(row[0]))
    key: Callable[[Ranked], Any] = _KEY if plain else (lambda row: bson_order(row[1]))
    return {
        SortField.LABEL: label,
        SortField.VALUE: _VALUE,
        SortField.ID: key if grouping is Grouping.AGENT else label,
    }


def rank(
    rows: list[Ranked],
    sort: Sort = DEFAULT_SORT,
    grouping: Grouping = Grouping.AGENT,
    *,
    plain: bool = True,
) -> list[Ranked]:
    """Order ``(label, key, value)`` rows in place by ``sort``, then by label and key ascending.

    ``plain`` rows have string labels and keys that differ where labels tie (or keys that
    never need comparing), so that the tuples' own order is the tie-break; other rows (the
    values of upstream's reading) are compared by :func:`bson_order`. Strings compare by
    code point (case-sensitive), as MongoDB compares them without a collation.
    """
    if plain:
        # The tuples' own order is the tie-break (label, then key), and for by-agent's
        # default sort, by name ascending, the whole order.
        rows.sort()
        if sort == DEFAULT_SORT and grouping is Grouping.AGENT:
            return rows
    else:
        rows.sort(key=lambda row: (bson_order(row[0]), bson_order(row[1])))
    fields = _fields(grouping, plain)
    # Stable sorts compose: sorting by the least significant key first leaves the more
    # significant keys in charge, each with its own direction.
    for field, direction in reversed(sort.keys):
        rows.sort(key=fields[field], reverse=direction == -1)
    return rows
