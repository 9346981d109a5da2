"""Analytics engines beside the strategies, on the same rooms: numpy, polars and duckdb.

Each peer answers every report of the Reports page in this project's reading, scoped or
not, over the facts in the form most favourable to it: plain columns in memory, in the
order the rooms were generated, with each room's *row* already worked out at load time (its
agent, its department, its source, its one status; for tags, one row a (room, tag) pair,
the tags exploded beforehand, and one row with the tag code 0 for a room without tags).
A query filters the creation time (the store's NEVER for rooms that never count) and the
partition (when scoped: the partitions the caller may see, decided outside the timing), then
counts rows per code, code 0 being ``unspecified``. Turning codes back into keys happens
after the timing. polars and duckdb come with the dependency group ``bench``; a peer that
is not installed is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks import data
from benchmarks.workspace import Workspace
from convstats import Grouping, TimeWindow, Visibility
from convstats.model import Partition, Status

NEVER = 2**63 - 1
PEERS = ("numpy", "polars", "duckdb")
_STATUS_OF_STATE = {
    data.OPEN: Status.OPEN,
    data.QUEUED: Status.QUEUED,
    data.ON_HOLD: Status.ON_HOLD,
    data.CLOSED: Status.CLOSED,
    data.CLOSED_UNTIMED: Status.CLOSED,
}


def _module(name: str) -> ModuleType | None:
    try:
        return __import__(name)
    except ImportError:
        return None


def installed() -> list[str]:
    """The peers that can run here."""
    return [name for name in PEERS if name == "numpy" or _module(name) is not None]


class Facts:
    """The rooms as a peer holds them: columns of codes, and the keys of the codes."""

    def __init__(self, workspace: Workspace) -> None:
        drawn = workspace.columns
        self.ts = np.where(drawn.livechat, drawn.ts, NEVER).astype(np.int64)
        self.partition = (drawn.department + 1).astype(np.int32)  # 0: no department
        statuses = list(dict.fromkeys(_STATUS_OF_STATE.values()))
        state_row = np.array([statuses.index(_STATUS_OF_STATE[s]) + 1 for s in range(5)])
        #: Per grouping, the row code of each room (0: unspecified) and the key of each code.
        self.rows: dict[Grouping, Any] = {
            Grouping.AGENT: (drawn.agent + 1).astype(np.int32),
            Grouping.DEPARTMENT: (drawn.department + 1).astype(np.int32),
            Grouping.SOURCE: (drawn.source + 1).astype(np.int32),
            Grouping.STATUS: state_row[drawn.state].astype(np.int32),
        }
        self.keys: dict[Grouping, list[Any]] = {
            Grouping.AGENT: [None, *(f"agent-{n}" for n in range(drawn.agents))],
            Grouping.DEPARTMENT: [None, *(f"dep-{n}" for n in range(data.DEPARTMENTS))],
            Grouping.SOURCE: [None, *data.SOURCES],
            Grouping.STATUS: [None, *statuses],
            Grouping.TAGS: [None, *data.tag_names()],
        }
        # Tags exploded: a row a (room, tag), and a row of code 0 for a room without tags.
        tags = drawn.tags.astype(np.int32) + 1
        untagged = tags[:, 0] == 0
        rooms = np.concatenate(
            [np.flatnonzero(untagged)] + [np.flatnonzero(tags[:, k] > 0) for k in range(3)]
        )
        codes = np.concatenate(
            [np.zeros(int(untagged.sum()), np.int32)] + [tags[tags[:, k] > 0, k] for k in range(3)]
        )
        self.tag_ts, self.tag_partition, self.tag_row = self.ts[rooms], self.partition[rooms], codes
        self.partitions = [
            Partition(),
            *(
                Partition(f"dep-{n}", frozenset({f"unit-{n % data.UNITS}"}), departmentless=False)
                for n in range(data.DEPARTMENTS)
            ),
        ]

    def admitted(self, visibility: Visibility) -> list[int] | None:
        """The partition codes ``visibility`` admits; ``None`` for every one."""
        if not visibility.restricted:
            return None
        return [code for code, found in enumerate(self.partitions) if visibility.admits(found)]

    def columns(self, grouping: Grouping) -> tuple[Any, Any, Any]:
        """Creation time, partition and row code of each row counted for ``grouping``."""
        if grouping is Grouping.TAGS:
            return self.tag_ts, self.tag_partition, self.tag_row
        return self.ts, self.partition, self.rows[grouping]

    def answer(self, grouping: Grouping, pairs: Any) -> tuple[dict[Any, int], int]:
        """``(code, count)`` pairs as a report's counts: keys, and ``unspecified``."""
        keys = self.keys[grouping]
        found, unspecified = {}, 0
        for code, value in pairs:
            if not value:
                continue
            if code == 0:
                unspecified += int(value)
            else:
                found[keys[code]] = int(value)
        return found, unspecified


#: A peer's query: ``query(grouping, window, visibility)``, whose result
#: ``Peer.answer`` turns into counts.
Query = Callable[[Grouping, TimeWindow, Visibility], Any]


class Peer:
    """One engine over a workspace's :class:`Facts`."""

    def __init__(self, name: str, facts: Facts, query: Query, pairs: Callable[[Any], Any]) -> None:
        self.name, self.facts, self.query, self._pairs = name, facts, query, pairs

    def answer(self, grouping: Grouping, result: Any) -> tuple[dict[Any, int], int]:
        return self.facts.answer(grouping, self._pairs(result))


def build(name: str, workspace: Workspace, facts: Facts | None = None) -> Peer:
    """The peer ``name`` (one of :data:`PEERS`) over ``workspace``."""
    facts = facts or Facts(workspace)
    return {"numpy": _numpy, "polars": _polars, "duckdb": _duckdb}[name](facts)


def _numpy(facts: Facts) -> Peer:
    sizes = {grouping: len(keys) for grouping, keys in facts.keys.items()}

    def query(grouping: Grouping, window: TimeWindow, visibility: Visibility) -> Any:
        ts, partition, row = facts.columns(grouping)
        hits = (ts >= window.start_ms) & (ts < window.end_ms)
        admitted = facts.admitted(visibility)
        if admitted is not None:
            mask = np.zeros(len(facts.partitions), dtype=bool)
            mask[admitted] = True
            hits &= mask[partition]
        return np.bincount(row[hits], minlength=sizes[grouping])

    return Peer("numpy", facts, query, lambda counts: enumerate(counts.tolist()))


def _polars(facts: Facts) -> Peer:
    import polars as pl

    frames = {}
    for grouping in Grouping:
        ts, partition, row = facts.columns(grouping)
        frames[grouping] = pl.DataFrame({"ts": ts, "partition": partition, "row": row})

    def query(grouping: Grouping, window: TimeWindow, visibility: Visibility) -> Any:
        found = pl.col("ts").is_between(window.start_ms, window.end_ms, closed="left")
        admitted = facts.admitted(visibility)
        if admitted is not None:
            found &= pl.col("partition").is_in(admitted)
        return frames[grouping].lazy().filter(found).group_by("row").agg(pl.len()).collect()

    return Peer("polars", facts, query, lambda frame: frame.iter_rows())


def _duckdb(facts: Facts) -> Peer:
    import duckdb

    connection = duckdb.connect()
    for grouping in Grouping:
        ts, partition, row = facts.columns(grouping)
        connection.register("held", {"ts": ts, "partition": partition, "row": row})
        connection.execute(f"CREATE TABLE {grouping.value} AS SELECT * FROM held")
        connection.unregister("held")

    def query(grouping: Grouping, window: TimeWindow, visibility: Visibility) -> Any:
        admitted = facts.admitted(visibility)
        scope = "" if admitted is None else f" AND partition IN ({','.join(map(str, admitted))})"
        sql = (
            f"SELECT row, count(*) FROM {grouping.value} WHERE ts >= ? AND ts < ?{scope} "
            "GROUP BY row"
        )
        return connection.execute(sql, [window.start_ms, window.end_ms]).fetchall()

    return Peer("duckdb", facts, query, lambda rows: rows)
