"""Seeded, Rocket.Chat-shaped synthetic workspaces, generated column first.

The columns (creation time, agent, department, livechat or not, state, source, tags) are
drawn with numpy in one go (:func:`columns`); the room documents are then built in one tight
loop that shares every nested object it can (``servedBy`` objects, ancestor lists, sources,
tag lists), so a million rooms take a few seconds and about half a kilobyte each
(:func:`generate`). :func:`write_export` writes the same workspace as a ``mongoexport``
directory straight from the columns, and :func:`rooms` yields its documents a chunk at a
time, for sizes whose documents would not fit in memory at once.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterator
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
#: The sources of the rooms (``source.type`` and, for apps, ``source.alias``) and their shares.
SOURCES = (
    ("widget", None),
    ("email", None),
    ("sms", None),
    ("api", None),
    ("app", "WhatsApp"),
    ("app", "Telegram"),
)
SOURCE_SHARES = (0.52, 0.16, 0.07, 0.05, 0.13, 0.07)
TAGS = 30
#: How many tags a room has (0 to 3), and the shares; a room's tags are distinct, drawn
#: with Zipf-like shares (the first tag the most common).
TAG_COUNT_SHARES = (0.45, 0.40, 0.12, 0.03)
#: A room's state (``STATES``), for served and for unserved rooms.
OPEN, QUEUED, ON_HOLD, CLOSED, CLOSED_UNTIMED = range(5)
STATES = ("open", "queued", "on hold", "closed", "closed without chatDuration")
SERVED_STATE_SHARES = (0.07, 0.0, 0.03, 0.87, 0.03)
UNSERVED_STATE_SHARES = (0.0, 0.35, 0.0, 0.05, 0.60)
MONITOR = "monitor-0"
#: A user who sees every room, for the end-to-end requests.
ADMIN = "admin-0"

Collections = dict[str, list[dict[str, Any]]]
Document = dict[str, Any]


@attrs.frozen
class Columns:
    """A workspace's rooms as numpy columns: ms since the epoch, and codes (-1 for none)."""

    ts: Any
    agent: Any
    department: Any
    livechat: Any
    agents: int
    #: A code of STATES, an index of SOURCES, and up to three tag numbers (-1: none).
    state: Any
    source: Any
    tags: Any

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
    state = np.where(
        served,
        rng.choice(len(STATES), size=rooms, p=SERVED_STATE_SHARES),
        rng.choice(len(STATES), size=rooms, p=UNSERVED_STATE_SHARES),
    ).astype(np.int8)
    source = rng.choice(len(SOURCES), size=rooms, p=SOURCE_SHARES).astype(np.int8)
    return Columns(
        ts,
        np.where(served, agent, -1),
        department,
        livechat,
        agents,
        state,
        source,
        _tags(rng, rooms),
    )


def _tags(rng: np.random.Generator, rooms: int) -> Any:
    """Up to three distinct tags a room, as an (n, 3) array of tag numbers, -1 for none."""
    weights = 1 / np.arange(1, TAGS + 1)
    weights /= weights.sum()
    drawn = rng.choice(TAGS, size=(rooms, 3), p=weights).astype(np.int8)
    how_many = rng.choice(len(TAG_COUNT_SHARES), size=rooms, p=TAG_COUNT_SHARES)
    tags = np.where(np.arange(3) < how_many[:, None], drawn, -1).astype(np.int8)
    # A tag drawn twice for one room is kept once.
    tags[:, 1] = np.where(tags[:, 1] == tags[:, 0], -1, tags[:, 1])
    tags[:, 2] = np.where((tags[:, 2] == tags[:, 0]) | (tags[:, 2] == tags[:, 1]), -1, tags[:, 2])
    return tags


def tag_names() -> list[str]:
    """The tags' names, by number."""
    return [f"tag-{n:02d}" for n in range(TAGS)]


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
    return {
        "rocketchat_room": list(room_documents(columns(rooms, agents, seed))),
        **directory(agents),
    }


def room_documents(drawn: Columns, first: int = 0, stop: int | None = None) -> Iterator[Document]:
    """The room documents of rooms ``first`` to ``stop`` of ``drawn``, as pymongo gives them.

    Nested values are shared between rooms (they are never changed).
    """
    served_by = [{"_id": f"agent-{n}", "username": f"agent{n}"} for n in range(drawn.agents)]
    department_ids = [f"dep-{n}" for n in range(DEPARTMENTS)]
    ancestors = [[f"unit-{n % UNITS}"] for n in range(DEPARTMENTS)]
    sources = [
        {"type": kind} if alias is None else {"type": kind, "alias": alias, "id": alias.lower()}
        for kind, alias in SOURCES
    ]
    names = tag_names()
    tag_lists: dict[tuple[int, ...], list[str]] = {}
    durations = [{"chatDuration": 60 + 37 * n} for n in range(64)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ms = timedelta(milliseconds=1)
    stop = drawn.rooms if stop is None else stop
    part = slice(first, stop)
    for n, (created, who, where, live, state, source, tags) in enumerate(
        zip(
            drawn.ts[part].tolist(),
            drawn.agent[part].tolist(),
            drawn.department[part].tolist(),
            drawn.livechat[part].tolist(),
            drawn.state[part].tolist(),
            drawn.source[part].tolist(),
            map(tuple, drawn.tags[part].tolist()),
            strict=True,
        ),
        start=first,
    ):
        room: dict[str, Any] = {
            "_id": f"room{n:013d}",
            "t": "l" if live else "d",
            "ts": epoch + created * ms,
            "source": sources[source],
        }
        if who >= 0:
            room["servedBy"] = served_by[who]
        if where >= 0:
            room["departmentId"] = department_ids[where]
            room["departmentAncestors"] = ancestors[where]
        if state in (OPEN, QUEUED, ON_HOLD):
            room["open"] = True
            if state == ON_HOLD:
                room["onHold"] = True
        elif state == CLOSED:
            room["metrics"] = durations[n % 64]
        if tags[0] >= 0:
            found = tag_lists.get(tags)
            if found is None:
                found = tag_lists[tags] = [names[tag] for tag in tags if tag >= 0]
            room["tags"] = found
        yield room


def write_export(path: Path, rooms: int, agents: int, seed: int = 0, *, form: str = "lines") -> int:
    """Write the workspace as a ``mongoexport`` directory (relaxed dates), as ``form`` says.

    ``lines``: JSON Lines, ``mongoexport``'s default; ``gzip``: the same gzipped, as
    ``rocketchat_room.json.gz``; ``array``: one JSON array, as ``--jsonArray`` writes it.
    Each room line also carries fields the report does not read, as real rooms do
    (``fname``, ``msgs``, ``v``, ``_updatedAt``, ``closedAt`` …): about 500 bytes a room.
    Returns the bytes of the rooms file.
    """
    if form not in EXPORT_FORMS:
        raise ValueError(f"unknown export form {form!r}; choose one of {EXPORT_FORMS}")
    drawn = columns(rooms, agents, seed)
    path.mkdir(parents=True, exist_ok=True)
    name = "rocketchat_room.json.gz" if form == "gzip" else "rocketchat_room.json"
    rooms_file = path / name
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(rooms_file.open("wb"))
        out: Any = raw
        if form == "gzip":
            out = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6))
        if form == "array":
            out.write(b"[")
        for at, text in enumerate(export_lines(drawn)):
            if form == "array":  # mongoexport --jsonArray: one line, documents between commas
                text = ("," if at else "") + text.removesuffix("\n").replace("\n", ",")
            out.write(text.encode())
        if form == "array":
            out.write(b"]")
    for collection, documents in directory(agents).items():
        (path / f"{collection}.json").write_text(
            "".join(json.dumps(document) + "\n" for document in documents), encoding="utf-8"
        )
    return rooms_file.stat().st_size


#: The forms of the rooms file :func:`write_export` writes.
EXPORT_FORMS = ("lines", "gzip", "array")


def export_lines(drawn: Columns, batch: int = 65_536) -> Iterator[str]:
    """The rooms' export lines (LF-terminated), ``batch`` rooms a string."""
    dates = np.datetime_as_string(drawn.ts.astype("datetime64[ms]"), unit="ms")
    served = [
        f',"servedBy":{{"_id":"agent-{n}","username":"agent{n}","ts":{{"$date":"%sZ"}}}}'
        for n in range(drawn.agents)
    ]
    placed = [
        f',"departmentId":"dep-{n}","departmentAncestors":["unit-{n % UNITS}"]'
        for n in range(DEPARTMENTS)
    ]
    sources = [
        f',"source":{{"type":"{kind}"}}'
        if alias is None
        else f',"source":{{"type":"{kind}","alias":"{alias}","id":"{alias.lower()}"}}'
        for kind, alias in SOURCES
    ]
    names = tag_names()
    visitor = (
        ',"v":{"_id":"visitor0000001","username":"guest-1","token":"tok123456789",'
        '"status":"online"}'
    )
    states = {
        OPEN: ',"open":true',
        QUEUED: ',"open":true',
        ON_HOLD: ',"open":true,"onHold":true',
        CLOSED: ',"closedAt":{"$date":"%sZ"},"metrics":{"chatDuration":%d,"reaction":{"ft":12}}',
        CLOSED_UNTIMED: ',"closedAt":{"$date":"%sZ"}',
    }
    lines: list[str] = []
    for n, (date, who, where, live, state, source, tags) in enumerate(
        zip(
            dates.tolist(),
            drawn.agent.tolist(),
            drawn.department.tolist(),
            drawn.livechat.tolist(),
            drawn.state.tolist(),
            drawn.source.tolist(),
            drawn.tags.tolist(),
            strict=True,
        )
    ):
        status = states[state]
        if state == CLOSED:
            status %= (date, 60 + 37 * (n % 64))
        elif state == CLOSED_UNTIMED:
            status %= date
        tagged = [names[tag] for tag in tags if tag >= 0]
        lines.append(
            f'{{"_id":"room{n:013d}","fname":"Visitor {n % 1000}","t":"{"l" if live else "d"}",'
            f'"msgs":{n % 50},"usersCount":2,"ts":{{"$date":"{date}Z"}}'
            + (served[who] % date if who >= 0 else "")
            + (placed[where] if where >= 0 else "")
            + visitor
            + status
            + sources[source]
            + (f',"tags":{json.dumps(tagged, separators=(",", ":"))}' if tagged else "")
            + f',"_updatedAt":{{"$date":"{date}Z"}}}}\n'
        )
        if len(lines) == batch:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)
