"""Seeded, Rocket.Chat-shaped synthetic workspaces, generated column first.

The columns (creation time, agent, department, served or not) are drawn with numpy in one go
(:func:`columns`); the room documents are then built in one tight loop that shares every
nested object it can (``servedBy`` objects, ancestor lists), so a million rooms take a few
seconds and about half a kilobyte each (:func:`generate`). :func:`write_export` writes the
same workspace as a ``mongoexport`` directory straight from the columns.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import numpy as np

UTC = timezone.utc
#: Rooms are created in the 400 days before END, so a one-year window is full.
END = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_DAYS = 400
DEPARTMENTS = 20
UNITS = 4
#: Share of rooms that are not livechat rooms (direct messages, channels): they never count.
OTHER_TYPES = 0.05
#: Share of livechat rooms without a department, and without an agent (queued, abandoned).
NO_DEPARTMENT = 0.10
UNASSIGNED = 0.12
MONITOR = "monitor-0"
#: A user who sees every room, for the end-to-end requests.
ADMIN = "admin-0"

Collections = dict[str, list[dict[str, Any]]]


@attrs.frozen
class Columns:
    """A workspace's rooms as numpy columns: ms since the epoch, and codes (-1 for none)."""

    ts: Any
    agent: Any
    department: Any
    livechat: Any
    agents: int

    @property
    def rooms(self) -> int:
        return len(self.ts)


def columns(rooms: int, agents: int, seed: int = 0) -> Columns:
    """The rooms of a workspace: 20 departments under 4 units, ``agents`` agents.

    Each agent works in one to three departments; a served room belongs to one of its
    agent's departments.
    """
    rng = np.random.default_rng(seed)
    end_ms = int(END.timestamp() * 1000)
    ts = end_ms - rng.integers(1, SPAN_DAYS * 86_400_000, size=rooms)
    home = rng.integers(0, DEPARTMENTS, size=(agents, 3))
    homes_per_agent = rng.integers(1, 4, size=agents)
    agent = rng.integers(0, agents, size=rooms)
    pick = rng.integers(0, 3, size=rooms) % homes_per_agent[agent]
    department = home[agent, pick]
    served = rng.random(rooms) >= UNASSIGNED
    department = np.where(served, department, rng.integers(0, DEPARTMENTS, size=rooms))
    department = np.where(rng.random(rooms) < NO_DEPARTMENT, -1, department)
    livechat = rng.random(rooms) >= OTHER_TYPES
    return Columns(ts, np.where(served, agent, -1), department, livechat, agents)


def directory(agents: int) -> Collections:
    """Users, units, departments and the monitor of ``unit-0``: all but the rooms."""
    users = [
        {
            "_id": f"agent-{n}",
            "username": f"agent{n}",
            "name": f"Agent {n}",
            "roles": ["livechat-agent"],
        }
        for n in range(agents)
    ]
    users.append(
        {"_id": MONITOR, "username": "monitor", "name": "Monitor", "roles": ["livechat-monitor"]}
    )
    users.append({"_id": ADMIN, "username": "admin", "name": "Admin", "roles": ["admin"]})
    units = [{"_id": f"unit-{n}", "name": f"Unit {n}", "type": "u"} for n in range(UNITS)]
    departments = [
        {"_id": f"dep-{n}", "name": f"Department {n}", "ancestors": [f"unit-{n % UNITS}"]}
        for n in range(DEPARTMENTS)
    ]
    return {
        "users": users,
        "rocketchat_livechat_department": units + departments,
        "rocketchat_livechat_unit_monitors": [
            {"_id": "um-0", "monitorId": MONITOR, "unitId": "unit-0"}
        ],
    }


def generate(rooms: int, agents: int, seed: int = 0) -> Collections:
    """A workspace of ``rooms`` room documents (see :func:`columns`) and its directory."""
    drawn = columns(rooms, agents, seed)
    served_by = [{"_id": f"agent-{n}", "username": f"agent{n}"} for n in range(agents)]
    department_ids = [f"dep-{n}" for n in range(DEPARTMENTS)]
    ancestors = [[f"unit-{n % UNITS}"] for n in range(DEPARTMENTS)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ms = timedelta(milliseconds=1)

    documents: list[dict[str, Any]] = []
    append = documents.append
    for n, (created, who, where, live) in enumerate(
        zip(
            drawn.ts.tolist(),
            drawn.agent.tolist(),
            drawn.department.tolist(),
            drawn.livechat.tolist(),
            strict=True,
        )
    ):
        room: dict[str, Any] = {
            "_id": f"room{n:013d}",
            "t": "l" if live else "d",
            "ts": epoch + created * ms,
        }
        if who >= 0:
            room["servedBy"] = served_by[who]
        if where >= 0:
            room["departmentId"] = department_ids[where]
            room["departmentAncestors"] = ancestors[where]
        append(room)
    return {"rocketchat_room": documents, **directory(agents)}


def write_export(path: Path, rooms: int, agents: int, seed: int = 0) -> int:
    """Write the workspace as a ``mongoexport`` directory (JSON Lines, relaxed dates).

    Each room line also carries fields the report does not read, as real rooms do
    (``fname``, ``msgs``, ``v``, ``_updatedAt``, ``source`` …): about 440 bytes a room.
    Returns the bytes of the rooms file.
    """
    drawn = columns(rooms, agents, seed)
    path.mkdir(parents=True, exist_ok=True)
    dates = np.datetime_as_string(drawn.ts.astype("datetime64[ms]"), unit="ms")
    served = [
        f',"servedBy":{{"_id":"agent-{n}","username":"agent{n}","ts":{{"$date":"%sZ"}}}}'
        for n in range(agents)
    ]
    placed = [
        f',"departmentId":"dep-{n}","departmentAncestors":["unit-{n % UNITS}"]'
        for n in range(DEPARTMENTS)
    ]
    visitor = (
        ',"v":{"_id":"visitor0000001","username":"guest-1","token":"tok123456789",'
        '"status":"online"},"open":true'
    )
    rooms_file = path / "rocketchat_room.json"
    with rooms_file.open("w", encoding="utf-8") as out:
        lines: list[str] = []
        for n, (date, who, where, live) in enumerate(
            zip(
                dates.tolist(),
                drawn.agent.tolist(),
                drawn.department.tolist(),
                drawn.livechat.tolist(),
                strict=True,
            )
        ):
            lines.append(
                f'{{"_id":"room{n:013d}","fname":"Visitor {n % 1000}","t":"{"l" if live else "d"}",'
                f'"msgs":{n % 50},"usersCount":2,"ts":{{"$date":"{date}Z"}}'
                + (served[who] % date if who >= 0 else "")
                + (placed[where] if where >= 0 else "")
                + visitor
                + f',"_updatedAt":{{"$date":"{date}Z"}},"source":{{"type":"widget"}}}}\n'
            )
            if len(lines) == 65_536:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    for name, documents in directory(agents).items():
        (path / f"{name}.json").write_text(
            "".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8"
        )
    return rooms_file.stat().st_size
