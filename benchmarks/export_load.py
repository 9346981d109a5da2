"""One load of a ``mongoexport`` directory, in a process of its own, for its peak RSS.

``python -m benchmarks.export_load KIND PATH [--trace] [--groupings all|agent]`` prints one
JSON object: seconds, peak RSS (MiB, of this process alone), rooms, and for ``convstats`` the
bytes it holds a room (``footprint_b``; with ``--trace``, ``held_b``: tracemalloc, allocated
during the load and still held). The rooms file is ``rocketchat_room.json`` (JSON Lines or
one array) or ``rocketchat_room.json.gz``. KIND is

- ``convstats``: ``MemoryStore.from_path`` (the fast loader when msgspec is installed, its
  chunks decoded by a worker process a core), of every report's groupings or
  (``--groupings agent``) of by-agent's alone; its peak RSS is the parent's plus each
  worker's (the largest worker's, times the workers);
- ``convstats-serial``: the same in one process;
- ``reference``: ``MemoryStore.from_path`` through ``files.load_collections``;
- ``duckdb``: ``read_json`` of the rooms file, the eleven fields the five reports read
  (given as ``columns=``, so nothing else is parsed into values), then the count;
- ``duckdb-table``: the same fields into a table, then the count;
- ``polars``: ``scan_ndjson`` of those fields, then the count (JSON Lines only).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOM_FIELDS = (
    "{_id: 'VARCHAR', t: 'VARCHAR', ts: 'STRUCT(\"$date\" VARCHAR)', "
    "servedBy: 'STRUCT(_id VARCHAR)', departmentId: 'VARCHAR', "
    "departmentAncestors: 'VARCHAR[]', open: 'BOOLEAN', onHold: 'BOOLEAN', "
    "metrics: 'STRUCT(chatDuration DOUBLE)', source: 'STRUCT(type VARCHAR, alias VARCHAR)', "
    "tags: 'VARCHAR[]'}"
)
SELECT = (
    'SELECT _id, t, ts."$date" AS ts, servedBy._id AS agent, departmentId, '
    "departmentAncestors, open, onHold, metrics.chatDuration AS duration, "
    "source.type AS source_type, source.alias AS source_alias, tags"
)


def rooms_file(path: Path) -> Path:
    plain = path / "rocketchat_room.json"
    return plain if plain.exists() else path / "rocketchat_room.json.gz"


def _is_array(path: Path) -> bool:
    import gzip

    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as file:
        return file.read(1) == b"["


def _duckdb(path: Path, table: bool) -> int:
    import duckdb

    layout = "array" if _is_array(path) else "newline_delimited"
    source = f"read_json('{path}', format='{layout}', columns={ROOM_FIELDS})"
    connection = duckdb.connect()
    if table:
        connection.execute(f"CREATE TABLE rooms AS {SELECT} FROM {source}")
        return int(connection.execute("SELECT count(*) FROM rooms").fetchone()[0])
    return int(connection.execute(f"SELECT count(*) FROM ({SELECT} FROM {source})").fetchone()[0])


def _polars(path: Path) -> int:
    import polars as pl

    schema = {
        "_id": pl.Utf8,
        "t": pl.Utf8,
        "ts": pl.Struct({"$date": pl.Utf8}),
        "servedBy": pl.Struct({"_id": pl.Utf8}),
        "departmentId": pl.Utf8,
        "departmentAncestors": pl.List(pl.Utf8),
        "open": pl.Boolean,
        "onHold": pl.Boolean,
        "metrics": pl.Struct({"chatDuration": pl.Float64}),
        "source": pl.Struct({"type": pl.Utf8, "alias": pl.Utf8}),
        "tags": pl.List(pl.Utf8),
    }
    if _is_array(path):
        raise SystemExit("polars reads JSON Lines only here")
    frame = pl.scan_ndjson(path, schema=schema).select(list(schema)).collect()
    return frame.height


def _queries(store: Any, repeat: int) -> dict[str, float]:
    from benchmarks.data import END
    from convstats import Grouping, TimeWindow, Visibility

    window = TimeWindow(END - timedelta(days=30), END)
    everything = Visibility.everything()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        store.count_groups(Grouping.AGENT, window, everything)
        samples.append(time.perf_counter() - began)
    return {
        "query_ms": statistics.median(samples) * 1e3,
        "plan": store.explain(window, everything).value,
    }


def peak_rss_mib() -> float:
    """This process's peak resident set, in MiB.

    ``VmHWM`` where Linux has it: ``ru_maxrss`` survives ``exec``, so a child started from
    a large benchmark process would report its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export_load")
    parser.add_argument(
        "kind",
        choices=("convstats", "convstats-serial", "reference", "duckdb", "duckdb-table", "polars"),
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--query", type=int, default=0, help="queries to time after the load")
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--groupings", choices=("all", "agent"), default="all")
    args = parser.parse_args(argv)
    rooms = rooms_file(args.path)
    result: dict[str, Any] = {"kind": args.kind}
    workers = 0
    if args.kind in ("convstats", "convstats-serial", "reference"):
        from convstats import Grouping
        from convstats_adapters.memory import MemoryStore, loader

        if args.kind == "reference":
            loader.msgspec = None  # type: ignore[assignment]
        if args.kind == "convstats-serial":
            loader.PARALLEL_BYTES = 2**62
        workers = loader.workers_for(rooms) if loader.fast_loader_available() else 0
        # numpy is imported now, so that its modules are not counted as the store's.
        with contextlib.suppress(ImportError):
            import numpy  # noqa: F401
        if args.trace:
            tracemalloc.start()
        began = time.perf_counter()
        groupings = [Grouping.AGENT] if args.groupings == "agent" else list(Grouping)
        store = MemoryStore.from_path(args.path, strategy=args.strategy, groupings=groupings)
        result["seconds"] = time.perf_counter() - began
        result["rooms"] = store.room_count
        if args.trace:
            result["held_b"] = tracemalloc.get_traced_memory()[0] / store.room_count
            tracemalloc.stop()
        footprint = store.footprint()
        result["footprint_b"] = sum(footprint.values()) / store.room_count
        if args.query:
            result.update(_queries(store, args.query))
    else:
        began = time.perf_counter()
        if args.kind == "polars":
            count = _polars(rooms)
        else:
            count = _duckdb(rooms, table=args.kind == "duckdb-table")
        result["seconds"] = time.perf_counter() - began
        result["rooms"] = count
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["workers"] = workers
    result["peak_rss_mib"] = peak_rss_mib() + (workers * children if workers else 0)
    result["bytes"] = os.path.getsize(rooms)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
