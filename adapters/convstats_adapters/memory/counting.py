"""How the in-memory store counts: strategies, the plans they take, and the fold.

A *strategy* counts the rooms of a window per group of one grouping's column; the fold
then keeps the groups a visibility admits and turns them into the report's rows
(:class:`~convstats_adapters.memory.table.Fold`). The built-in strategies, each in pure
Python and in numpy side by side:

========== ===========================================================================
``scan``     one Python pass over every room's facts; the reference
``columnar`` a few vectorised numpy passes over the columns (extra ``columnar``)
``indexed``  two bisections of the time-sorted rooms, then two rows of per-group
             checkpoint counts and the short runs of rooms around them
``auto``     the index (the default)
========== ===========================================================================

All give exactly the same counts; :func:`explain` says which plan a strategy takes.

**Your own strategy** is a function of the :data:`CountGroups` signature, given to
``MemoryStore(strategy=…)`` (or wrapped in a :class:`Strategy` to name it)::

    def count(table: FactTable, column: Column, window: TimeWindow, groups: int) -> PerGroup

It returns, for each group code ``g`` below ``groups``, how many rooms of ``column`` were
created in ``window`` (``window.start_ms <= ts < window.end_ms``): a numpy array or a
sequence indexed by group (shorter is fine: the rest count 0), or a mapping from group to
count. What it reads (:mod:`convstats_adapters.memory.table`):

- the *base*: ``table.base_ts``, the creation times in ms (an ``array("q")``, sorted), and
  ``column.base``, each place's group (``VOID`` for a place whose room is gone);
- the *overlay*: ``table.extra_ts`` and ``column.extra``, rooms added or changed since the
  base was built, in no order (a free slot has group ``VOID``);
- with an indexed table, ``column.checkpoints``: per-group counts of the base before every
  ``column.block``-th place, rows of ``column.width``.

Group ``VOID`` never counts, whatever is returned for it. The function runs under the
store's lock, never concurrently with a change. It may keep what it derives from the base
(a sorted array per group, say) keyed by ``table.version``, which changes with the base;
the overlay must be read at each call. ``benchmarks/examples/`` has one to copy.
"""

from __future__ import annotations

import enum
import numbers
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from types import ModuleType
from typing import Any, TypeAlias

import attrs

from convstats.errors import MissingDependency
from convstats.model import GroupCounts, Grouping, TimeWindow, TotalMode, Visibility
from convstats_adapters.memory.table import (
    NOWHERE,
    UNSPECIFIED_ROW,
    VOID,
    Column,
    Facet,
    FactTable,
    Fold,
    numpy_or_none,
    numpy_type,
    window_groups_python,
)

__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "CountGroups",
    "PerGroup",
    "Plan",
    "Strategy",
    "check_strategy",
    "count",
    "count_columns",
    "count_index",
    "count_scan",
    "explain",
    "load_numpy",
    "needs_index",
    "resolve",
]


class Plan(enum.Enum):
    """Which structure answers a query."""

    SCAN = "scan"
    COLUMNS = "columns"
    INDEX = "index"
    #: A strategy of the user's, whose plan the store does not know.
    CUSTOM = "custom"


#: Per group code, the rooms of a window: a numpy array, a sequence or a mapping.
PerGroup: TypeAlias = "Mapping[int, int] | Sequence[int] | Any"
#: A counting strategy: ``count(table, column, window, groups)`` (see the module's doc).
CountGroups: TypeAlias = Callable[[FactTable, Column, TimeWindow, int], PerGroup]


@attrs.frozen
class Strategy:
    """A named way of counting: its function, the plan it takes, and what the table keeps.

    ``indexed``: whether the table keeps the per-group checkpoints (under 2 bytes a room a
    grouping) for the function to read. A store built for a strategy that does not need
    them does not hold them.
    """

    name: str
    count: CountGroups = attrs.field(validator=attrs.validators.is_callable())
    plan: Plan = Plan.CUSTOM
    indexed: bool = True


def load_numpy() -> ModuleType:
    """Import numpy, or raise :class:`~convstats.errors.MissingDependency` naming the extra."""
    np = numpy_or_none()
    if np is None:
        raise MissingDependency("numpy", "columnar")
    return np


# -- per group: the rooms of a window ------------------------------------------------------


def count_scan(
    table: FactTable, column: Column, window: TimeWindow, groups: int = 0
) -> Counter[int]:
    """Per group, by looking at every room's facts, one at a time."""
    start, end = window.start_ms, window.end_ms
    per_group: Counter[int] = Counter()
    for ts, group in chain(
        zip(table.base_ts, column.base, strict=True),
        zip(table.extra_ts, column.extra, strict=True),
    ):
        if start <= ts < end:
            per_group[group] += 1
    return per_group


def count_columns(table: FactTable, column: Column, window: TimeWindow, groups: int) -> Any:
    """Per group, in a few vectorised passes: time mask, then a bincount of the groups.

    Costs a pass over every room whatever the window.
    """
    np = load_numpy()
    per_group = np.zeros(groups, dtype=np.int64)
    for times, codes in ((table.base_ts, column.base), (table.extra_ts, column.extra)):
        if times:
            # Zero-copy views, gone when this call returns: an array with an exported
            # buffer cannot grow.
            ts = np.frombuffer(times, dtype=np.int64)
            hits = (ts >= window.start_ms) & (ts < window.end_ms)
            found = np.bincount(np.frombuffer(codes, dtype=numpy_type(codes))[hits])
            per_group[: len(found)] += found
    return per_group


def count_index(
    table: FactTable, column: Column, window: TimeWindow, groups: int
) -> Counter[int] | Any:
    """Per group, from the checkpoints: O(groups + block) whatever the number of rooms held."""
    assert column.checkpoints is not None
    start, end = window.start_ms, window.end_ms
    np = numpy_or_none()
    if np is None:
        per_group = window_groups_python(table, column, start, end) if start < end else Counter()
        for ts, group in zip(table.extra_ts, column.extra, strict=True):
            if start <= ts < end:
                per_group[group] += 1
        return per_group
    per_group = np.zeros(groups, dtype=np.int64)
    if start < end:
        base = _window_groups(np, table, column, start, end)
        per_group[: len(base)] += base
        if table.extra_ts:
            ts = np.frombuffer(table.extra_ts, dtype=np.int64)
            codes = np.frombuffer(column.extra, dtype=np.int32)[(ts >= start) & (ts < end)]
            per_group += np.bincount(codes, minlength=groups)
    return per_group


def _window_groups(np: ModuleType, table: FactTable, column: Column, start: int, end: int) -> Any:
    """Per group, the base rooms created in ``[start, end)``."""
    ts = np.frombuffer(table.base_ts, dtype=np.int64) if table.base_ts else np.zeros(0, "int64")
    groups = np.frombuffer(column.base, dtype=numpy_type(column.base))
    width, block, size = column.width, column.block, len(ts)
    low, high = (int(at) for at in ts.searchsorted((start, end)))
    if high - low <= block:
        return np.bincount(groups[low:high], minlength=width)
    assert column.checkpoints is not None
    rows = np.frombuffer(column.checkpoints, dtype=np.int32).reshape(-1, width)

    def before(place: int) -> Any:
        # From the nearer checkpoint: at most half a block of rooms is looked at.
        row = place // block
        if place - row * block <= block // 2 or (row + 1) * block > size:
            return rows[row] + np.bincount(groups[row * block : place], minlength=width)
        return rows[row + 1] - np.bincount(groups[place : (row + 1) * block], minlength=width)

    return before(high) - before(low)


# -- per row: the groups a visibility admits, folded ---------------------------------------


def _fold_python(
    facet: Facet, fold: Fold, per_group: Mapping[int, int], admitted: list[bool]
) -> GroupCounts:
    group_partition, by_group = facet.group_partition, fold.by_group
    per_row: Counter[int] = Counter()
    rooms = 0
    for group, found in per_group.items():
        if group == VOID or not found or not admitted[group_partition[group]]:
            continue
        rooms += found
        for row, times in by_group[group]:
            per_row[row] += found * times
    unspecified = per_row.pop(UNSPECIFIED_ROW, 0)
    per_row.pop(NOWHERE, None)
    rows = fold.rows
    found_rows = [(rows[row], value) for row, value in per_row.items() if value]
    return GroupCounts(
        keys=[key for key, _ in found_rows],
        values=[value for _, value in found_rows],
        unspecified=unspecified,
        rooms=rooms,
    )


def _fold_numpy(
    np: ModuleType,
    facet: Facet,
    fold: Fold,
    per_group: Any,
    visibility: Visibility,
    admitted: list[bool],
) -> GroupCounts:
    if visibility.restricted:
        # VOID's partition is -1: the False appended here.
        by_partition = np.array([*admitted, False], dtype=bool)
        per_group = per_group * by_partition[np.frombuffer(facet.group_partition, np.int32)]
    # VOID's group folds to NOWHERE: only the rooms counted must leave it out.
    rooms = int(per_group.sum()) - int(per_group[VOID])
    rows = np.frombuffer(fold.pair_row, dtype=np.int32)
    if fold.single:
        weights = per_group  # one pair a group, in group order
    else:
        weights = per_group[np.frombuffer(fold.pair_group, dtype=np.int32)]
        weights *= np.frombuffer(fold.pair_times, dtype=np.int32)
    per_row = np.bincount(rows, weights=weights, minlength=len(fold.rows)).astype(np.int64)
    found = np.flatnonzero(per_row[2:]) + 2  # past UNSPECIFIED_ROW and NOWHERE
    return GroupCounts(
        keys=fold.row_array(np)[found].tolist(),
        values=per_row[found].tolist(),
        unspecified=int(per_row[UNSPECIFIED_ROW]),
        rooms=rooms,
    )


# -- strategies ----------------------------------------------------------------------------

#: The built-in strategies, by name. ``auto`` reads the index, always: choosing the columns
#: for few rooms and many groups bought nothing measurable
#: (benchmarks/README.md#the-auto-rule).
STRATEGIES: Mapping[str, Strategy] = {
    "scan": Strategy("scan", count_scan, Plan.SCAN, indexed=False),
    "columnar": Strategy("columnar", count_columns, Plan.COLUMNS, indexed=False),
    "indexed": Strategy("indexed", count_index, Plan.INDEX),
    "auto": Strategy("auto", count_index, Plan.INDEX),
}
#: The strategy names a store accepts.
STRATEGY_NAMES = tuple(sorted(STRATEGIES))


def resolve(strategy: str | Strategy | CountGroups) -> Strategy:
    """The strategy a store is asked for: a built-in name, a :class:`Strategy`, or a function.

    A function becomes a strategy named by its module and name, with an indexed table.
    Raises :class:`ValueError` for an unknown name, :class:`TypeError` for anything else
    that is not callable, and :class:`~convstats.errors.MissingDependency` for
    ``columnar`` without numpy.
    """
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, str):
        found = STRATEGIES.get(strategy)
        if found is None:
            known = ", ".join(STRATEGY_NAMES)
            raise ValueError(f"unknown strategy {strategy!r}; choose one of: {known}")
        if found.plan is Plan.COLUMNS:
            load_numpy()
        return found
    if not callable(strategy):
        raise TypeError(f"a strategy is a name or a counting function, not {strategy!r}")
    module = getattr(strategy, "__module__", None) or "?"
    name = getattr(strategy, "__qualname__", None) or repr(strategy)
    return Strategy(f"{module}:{name}", strategy)


def check_strategy(strategy: str | Strategy | CountGroups) -> None:
    """Refuse a strategy the store cannot use, as :func:`resolve` does."""
    resolve(strategy)


def needs_index(strategy: str | Strategy | CountGroups) -> bool:
    """Whether the strategy reads the per-group index (which the table must then keep)."""
    return resolve(strategy).indexed


def explain(strategy: str | Strategy | CountGroups, table: FactTable) -> Plan:
    """The plan ``strategy`` takes to count ``table``."""
    return resolve(strategy).plan


def count(
    strategy: str | Strategy | CountGroups,
    table: FactTable,
    grouping: Grouping,
    window: TimeWindow,
    visibility: Visibility,
    mode: TotalMode,
) -> GroupCounts:
    """Count ``table`` for ``grouping``'s report in ``mode``, by ``strategy``.

    Raises :class:`ValueError` when the table does not hold ``grouping``.
    """
    strategy = resolve(strategy)
    column = table.columns.get(grouping)
    if column is None:
        held = ", ".join(held.value for held in table.groupings)
        raise ValueError(
            f"this store holds no {grouping.value!r} facts (it holds: {held}); "
            "build it with that grouping"
        )
    facet = table.codes.facets[grouping]
    admitted = table.codes.admitted(visibility)
    fold = facet.fold(mode)
    groups = facet.groups
    per_group = strategy.count(table, column, window, groups)
    if STRATEGIES.get(strategy.name) is not strategy:  # the caller's function: checked
        _check_counts(strategy.name, per_group, groups)
    if isinstance(per_group, Mapping):
        return _fold_python(facet, fold, per_group, admitted)
    np = numpy_or_none()
    if np is None:
        return _fold_python(facet, fold, dict(enumerate(per_group)), admitted)
    found = np.asarray(per_group, dtype=np.int64)
    if len(found) < groups:
        found = np.concatenate([found, np.zeros(groups - len(found), dtype=np.int64)])
    return _fold_numpy(np, facet, fold, found, visibility, admitted)


def _check_counts(name: str, per_group: Any, groups: int) -> None:
    """Refuse counts a strategy of the caller's gave that are not rooms per group code.

    A mapping of group codes in ``range(groups)`` to whole numbers, or a sequence or array
    of at most ``groups`` whole numbers, none negative: anything else (a negative or
    unknown code, a fraction) would count rooms in the wrong rows, or lose them.
    """
    if isinstance(per_group, Mapping):
        for code, found in per_group.items():
            if not (_whole(code) and int(code) < groups and _whole(found)):
                raise ValueError(
                    f"strategy {name!r} gave {found!r} rooms to group {code!r}: counts are "
                    f"whole numbers of rooms, by group codes 0 to {groups - 1}"
                )
        return
    np = numpy_or_none()
    if np is None:
        counts = list(per_group)
        fine = len(counts) <= groups and all(map(_whole, counts))
    else:
        values: Any = np.asarray(per_group)
        if values.ndim != 1 or len(values) > groups:
            raise ValueError(
                f"strategy {name!r} gave counts of shape {values.shape} for {groups} groups"
            )
        # An empty list is an array of floats to numpy, and counts nothing.
        fine = len(values) == 0 or (values.dtype.kind in "iu" and int(values.min()) >= 0)
    if not fine:
        raise ValueError(
            f"strategy {name!r} gave counts that are not whole numbers of rooms, at most one "
            f"a group of the {groups}"
        )


def _whole(value: Any) -> bool:
    """A whole number, not negative: an int or a numpy integer, not a bool."""
    if value.__class__ is bool or not isinstance(value, numbers.Integral):
        return False
    return int(value) >= 0
