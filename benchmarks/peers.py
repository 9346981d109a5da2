"""Analytics engines beside the strategies, on the same rooms: polars, duckdb and numpy.

Each peer answers the unscoped question of the report (livechat rooms created in the window,
per agent) over the same facts the store holds, as plain columns in memory: creation time
in ms (the store's NEVER for rooms that never count), agent code and partition code, in the
order the rooms were generated. polars and duckdb come with the dependency group ``bench``;
a peer that is not installed is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks.data import Columns

NEVER = 2**63 - 1


def _module(name: str) -> ModuleType | None:
    try:
        return __import__(name)
    except ImportError:
        return None


def installed() -> list[str]:
    """The peers that can run here."""
    return [name for name in ("polars", "duckdb") if _module(name) is not None] + ["numpy"]


def queries(drawn: Columns) -> dict[str, Callable[[int, int], Any]]:
    """A query per peer: ``query(start_ms, end_ms)`` counts the window's rooms per agent."""
    ts = np.where(drawn.livechat, drawn.ts, NEVER).astype(np.int64)
    agent = (drawn.agent + 1).astype(np.int32)  # 0: no agent
    partition = (drawn.department + 1).astype(np.int32)
    found: dict[str, Callable[[int, int], Any]] = {}

    def bincount(start: int, end: int) -> Any:
        return np.bincount(agent[(ts >= start) & (ts < end)], minlength=drawn.agents + 1)

    found["numpy bincount"] = bincount
    pl = _module("polars")
    if pl is not None:
        frame = pl.DataFrame({"ts": ts, "agent": agent, "partition": partition})

        def polars(start: int, end: int) -> Any:
            return (
                frame.lazy()
                .filter((pl.col("ts") >= start) & (pl.col("ts") < end))
                .group_by("agent")
                .agg(pl.len())
                .collect()
            )

        found["polars"] = polars
    duckdb = _module("duckdb")
    if duckdb is not None:
        connection = duckdb.connect()
        connection.register("rooms", {"ts": ts, "agent": agent, "partition": partition})
        connection.execute("CREATE TABLE held AS SELECT * FROM rooms")
        sql = "SELECT agent, count(*) FROM held WHERE ts >= ? AND ts < ? GROUP BY agent"

        def duck(start: int, end: int) -> Any:
            return connection.execute(sql, [start, end]).fetchall()

        found["duckdb"] = duck
    return found
