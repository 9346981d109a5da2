"""A generated workspace as every contender is given it: columns, documents, an export.

A :class:`Workspace` is what ``--store package.module:factory`` receives: ``factory(workspace)``
returns any object with the room port's ``count_groups(grouping, window, visibility, mode)``
(``convstats.ports.RoomStore``). It may build from whichever form suits it:

- :meth:`Workspace.rooms`: the room documents as pymongo gives them (dates as datetimes),
  generated a chunk at a time, never all held;
- :attr:`Workspace.export_dir`: a ``mongoexport`` directory of the same workspace (JSON
  Lines), written on first use (``MemoryStore.from_path`` reads it);
- :attr:`Workspace.columns`: the numpy columns everything is generated from
  (:class:`benchmarks.data.Columns`);
- :meth:`Workspace.collections`: the users, units, departments and monitors.

The same seed gives the same workspace, so that two runs measure the same rooms.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks import data
from convstats import RocketChatAuthority, Visibility
from convstats.model import Caller

#: The scopes a query is asked in: everything, and a monitor of one unit of four.
SCOPES = ("all", "monitor")


class Workspace:
    """``rooms`` rooms and ``agents`` agents, drawn from ``seed`` (see the module's doc)."""

    def __init__(self, rooms: int, agents: int, seed: int = 0) -> None:
        self.size, self.agents, self.seed = rooms, agents, seed
        self._folder: Path | None = None

    def __repr__(self) -> str:
        return f"Workspace(rooms={self.size:,}, agents={self.agents:,}, seed={self.seed})"

    @functools.cached_property
    def columns(self) -> data.Columns:
        return data.columns(self.size, self.agents, self.seed)

    def rooms(self, chunk: int = 100_000) -> Iterator[data.Document]:
        """Every room document, generated ``chunk`` rooms at a time."""
        for first in range(0, self.size, chunk):
            yield from data.room_documents(self.columns, first, min(first + chunk, self.size))

    def collections(self) -> data.Collections:
        """The directory's collections: users, departments and units, the unit's monitor."""
        return data.directory(self.agents)

    @property
    def export_dir(self) -> Path:
        """A ``mongoexport`` directory of the workspace (JSON Lines), written on first use."""
        if self._folder is None:
            folder = Path(tempfile.mkdtemp(prefix="convstats-bench-"))
            data.write_export(folder, self.size, self.agents, self.seed)
            self._folder = folder
        return self._folder

    def visibility(self, scope: str) -> Visibility:
        """The visibility of a query of ``scope``: ``all``, or ``monitor`` (unit-0 of four)."""
        if scope == "all":
            return Visibility.everything()
        from convstats_adapters.memory import MemoryDirectory

        authority = RocketChatAuthority(directory=MemoryDirectory(self.collections()))
        return authority.visibility(Caller(data.MONITOR, roles=frozenset({"livechat-monitor"})))

    def close(self) -> None:
        """Remove the export, if one was written."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
