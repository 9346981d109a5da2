"""Seeded, Rocket.Chat-shaped synthetic workspaces, generated column first.

The columns (creation time, agent, department, served or not) are drawn with numpy in one go;
the room documents are then built in one tight loop that shares every nested object it can
(``servedBy`` objects, ancestor lists), so a million rooms take a few seconds and about half
a kilobyte each.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

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

Collections = dict[str, list[dict[str, Any]]]


def generate(rooms: int, agents: int, seed: int = 0) -> Collections:
    """A workspace of ``rooms`` rooms served by ``agents`` agents in 20 departments under 4 units.

    Each agent works in one to three departments; a served room belongs to one of its
    agent's departments. ``monitor-0`` is a livechat monitor of ``unit-0``.
    """
    rng = np.random.default_rng(seed)
    end_ms = int(END.timestamp() * 1000)
    ts = (end_ms - rng.integers(1, SPAN_DAYS * 86_400_000, size=rooms)).tolist()
    home = rng.integers(0, DEPARTMENTS, size=(agents, 3))
    homes_per_agent = rng.integers(1, 4, size=agents)
    agent = rng.integers(0, agents, size=rooms)
    pick = rng.integers(0, 3, size=rooms) % homes_per_agent[agent]
    department = home[agent, pick]
    served = rng.random(rooms) >= UNASSIGNED
    department = np.where(served, department, rng.integers(0, DEPARTMENTS, size=rooms))
    department = np.where(rng.random(rooms) < NO_DEPARTMENT, -1, department).tolist()
    kind = np.where(rng.random(rooms) < OTHER_TYPES, "d", "l").tolist()
    agent_or_none = np.where(served, agent, -1).tolist()

    served_by = [{"_id": f"agent-{n}", "username": f"agent{n}"} for n in range(agents)]
    department_ids = [f"dep-{n}" for n in range(DEPARTMENTS)]
    ancestors = [[f"unit-{n % UNITS}"] for n in range(DEPARTMENTS)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ms = timedelta(milliseconds=1)

    documents: list[dict[str, Any]] = []
    append = documents.append
    for n, (created, who, where, t) in enumerate(
        zip(ts, agent_or_none, department, kind, strict=True)
    ):
        room: dict[str, Any] = {"_id": f"room{n:013d}", "t": t, "ts": epoch + created * ms}
        if who >= 0:
            room["servedBy"] = served_by[who]
        if where >= 0:
            room["departmentId"] = department_ids[where]
            room["departmentAncestors"] = ancestors[where]
        append(room)

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
    units = [{"_id": f"unit-{n}", "name": f"Unit {n}", "type": "u"} for n in range(UNITS)]
    departments = [
        {"_id": department_ids[n], "name": f"Department {n}", "ancestors": ancestors[n]}
        for n in range(DEPARTMENTS)
    ]
    return {
        "rocketchat_room": documents,
        "users": users,
        "rocketchat_livechat_department": units + departments,
        "rocketchat_livechat_unit_monitors": [
            {"_id": "um-0", "monitorId": MONITOR, "unitId": "unit-0"}
        ],
    }
