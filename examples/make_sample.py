"""Write the bundled sample: a small Rocket.Chat workspace as ``mongoexport`` files.

Run ``python examples/make_sample.py`` to regenerate ``examples/sample/``; the output is
the same on every run. The workspace has a unit with departments, a monitor, a manager, and
agents covering every label case: a plain name, two agents sharing a name, no name, a null
name, an empty name, a deactivated agent, a bot and an agent whose user was deleted.

Its rooms also show every case where the reports of the Reports page read differently from
upstream's (docs/behaviour.md#differences-from-upstream): sources of widget, email, SMS and
an app with an alias, a source without a type, one with a null alias, a null one and none;
rooms with two tags, a repeated tag and an empty list of tags; a deleted department, two
departments of one name and a null department; rooms open, queued, on hold, closed with and
without their duration, and reopened with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).with_name("sample")
START = datetime(2024, 3, 1, tzinfo=timezone.utc)
DAYS = 42
ROOMS = 420

USERS = [
    {
        "_id": "u-ana",
        "username": "ana.lima",
        "name": "Ana Lima",
        "roles": ["user", "livechat-agent"],
    },
    {
        "_id": "u-bruno",
        "username": "bruno",
        "name": "Bruno Costa",
        "roles": ["user", "livechat-agent"],
    },
    {
        "_id": "u-chen",
        "username": "chen.wei",
        "name": "Chen Wei",
        "roles": ["user", "livechat-agent"],
    },
    {
        "_id": "u-sam1",
        "username": "sam.t",
        "name": "Sam Taylor",
        "roles": ["user", "livechat-agent"],
    },
    {"_id": "u-sam2", "username": "sam.taylor", "name": "Sam Taylor", "roles": ["livechat-agent"]},
    {"_id": "u-noname", "username": "agent.noname", "roles": ["livechat-agent"]},
    {"_id": "u-nullname", "username": "agent.null", "name": None, "roles": ["livechat-agent"]},
    {"_id": "u-empty", "username": "agent.empty", "name": "", "roles": ["livechat-agent"]},
    {
        "_id": "u-dana",
        "username": "dana",
        "name": "dana (left)",
        "roles": ["livechat-agent"],
        "active": False,
    },
    {"_id": "u-bot", "username": "rocket.cat", "name": "Rocket Cat", "roles": ["bot"]},
    {"_id": "u-admin", "username": "admin", "name": "Administrator", "roles": ["admin", "user"]},
    {
        "_id": "u-manager",
        "username": "mia",
        "name": "Mia Manager",
        "roles": ["user", "livechat-manager"],
    },
    {
        "_id": "u-monitor",
        "username": "otto",
        "name": "Otto Monitor",
        "roles": ["user", "livechat-monitor"],
    },
    {"_id": "u-plain", "username": "paul", "name": "Paul", "roles": ["user"]},
]
# Plain login tokens (documented in the README): the files hold only their hashes, as
# Rocket.Chat stores them. u-dana is deactivated, so her token is refused.
TOKENS = {
    "u-admin": "sample-admin-token",
    "u-manager": "sample-manager-token",
    "u-monitor": "sample-monitor-token",
    "u-ana": "sample-ana-token",
    "u-plain": "sample-plain-token",
    "u-dana": "sample-dana-token",
}
# A personal access token lives in the same array, with a name and no expiry.
PERSONAL_TOKENS = {"u-manager": ("reports", "sample-manager-pat")}
# Agents and how often each serves; "u-gone" has no users document (a deleted user).
AGENTS = {
    "u-ana": 9,
    "u-bruno": 7,
    "u-chen": 5,
    "u-sam1": 4,
    "u-sam2": 3,
    "u-noname": 2,
    "u-nullname": 2,
    "u-empty": 2,
    "u-dana": 2,
    "u-bot": 1,
    "u-gone": 2,
}
DEPARTMENTS = [
    {"_id": "unit-eu", "name": "Europe", "type": "u"},
    {"_id": "dep-sales", "name": "Sales", "ancestors": ["unit-eu"]},
    {"_id": "dep-billing", "name": "Billing", "ancestors": ["unit-eu"]},
    {"_id": "dep-support", "name": "Support", "ancestors": []},
    # A second department of one name: upstream merges the two rows into one.
    {"_id": "dep-helpdesk", "name": "Support", "ancestors": []},
]
SOURCES = [{"type": "widget"}, {"type": "email"}, {"type": "app", "alias": "WhatsApp"}]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def date(moment: datetime, canonical: bool) -> dict[str, object]:
    if canonical:  # mongoexport --jsonFormat=canonical
        millis = int(moment.timestamp() * 1000)
        return {"$date": {"$numberLong": str(millis)}}
    return {"$date": iso(moment)}


def hashed(token: str) -> str:
    """Meteor's Accounts._hashLoginToken: base64 of the SHA-256 of the UTF-8 bytes."""
    return base64.b64encode(hashlib.sha256(token.encode()).digest()).decode()


def users() -> list[dict[str, object]]:
    documents = []
    for user in USERS:
        user_id = str(user["_id"])
        entries: list[dict[str, object]] = []
        if user_id in TOKENS:
            entries.append({"when": date(START, False), "hashedToken": hashed(TOKENS[user_id])})
        if user_id in PERSONAL_TOKENS:
            name, token = PERSONAL_TOKENS[user_id]
            entries.append(
                {
                    "hashedToken": hashed(token),
                    "type": "personalAccessToken",
                    "createdAt": date(START, False),
                    "lastTokenPart": token[-6:],
                    "name": name,
                    "bypassTwoFactor": False,
                }
            )
        documents.append(
            {**user, "services": {"resume": {"loginTokens": entries}}} if entries else user
        )
    return documents


def rooms(rng: random.Random) -> list[dict[str, object]]:
    agents = list(AGENTS)
    weights = list(AGENTS.values())
    documents = []
    for n in range(ROOMS):
        ts = START + timedelta(
            seconds=rng.randrange(DAYS * 86_400), milliseconds=rng.randrange(1000)
        )
        department = rng.choice([None, "dep-sales", "dep-sales", "dep-billing", "dep-support"])
        room: dict[str, object] = {
            "_id": f"room-{n:04d}",
            "t": "l",
            "ts": date(ts, canonical=n % 7 == 0),
            "fname": f"Visitor {n}",
            "v": {"_id": f"visitor-{n}", "username": f"guest-{n}", "token": f"tok{n}"},
            "source": rng.choice(SOURCES),
            "open": False,
        }
        if department is not None:
            room["departmentId"] = department
            ancestors = next(d.get("ancestors", []) for d in DEPARTMENTS if d["_id"] == department)
            room["departmentAncestors"] = ancestors
        fate = rng.random()
        if fate < 0.08:  # still queued
            room["open"] = True
        elif fate < 0.10:  # upstream edge: an explicit null
            room["servedBy"] = None
            room["open"] = True
        else:
            agent = rng.choices(agents, weights)[0]
            room["servedBy"] = {
                "_id": agent,
                "username": agent.removeprefix("u-"),
                "ts": date(ts, False),
            }
            if fate < 0.25:
                room["open"] = True
                room["onHold"] = rng.random() < 0.3
            else:
                room["closedAt"] = date(ts + timedelta(minutes=rng.randrange(2, 90)), False)
                room["metrics"] = {"chatDuration": rng.randrange(60, 5400)}
        if rng.random() < 0.1:
            room["tags"] = rng.sample(["vip", "refund", "bug"], rng.randrange(1, 3))
        documents.append(room)
    vary(documents, random.Random(20240302))
    # Rooms that are not omnichannel conversations: direct messages and channels.
    for n in range(12):
        ts = START + timedelta(hours=7 * n)
        documents.append(
            {"_id": f"dm-{n:02d}", "t": rng.choice(["d", "c", "p"]), "ts": date(ts, False)}
        )
    return documents


def vary(documents: list[dict[str, object]], rng: random.Random) -> None:
    """Give the rooms the odd sources, tags, departments and states real workspaces have.

    Only fields the by-agent report does not read change, and only rooms of departments
    outside the unit move, so its answers and the monitor's stay those of the rooms above.
    """
    tags = ["vip", "refund", "bug", "billing", "feedback"]
    odd_sources: dict[int, dict[str, object] | None] = {
        5: None,  # null: upstream's row without a label
        6: {"alias": "Kiosk"},  # no type
        7: {"type": "widget", "alias": None},  # a second "widget" row upstream
    }
    support = [room for room in documents if room.get("departmentId") == "dep-support"]
    for at, room in enumerate(support):
        if at in (1, 2):
            room["departmentId"] = "dep-retired"  # a deleted department
        elif at == 3:
            room["departmentId"] = None
        elif at % 3 == 0:
            room["departmentId"] = "dep-helpdesk"
    closed = [room for room in documents if "closedAt" in room]
    for room in closed[:4]:
        del room["metrics"]  # closed without a duration: in no status upstream
    for room in closed[4:7]:
        room["open"] = True  # reopened: upstream counts it open and closed
        del room["closedAt"]
    for n, room in enumerate(documents):
        if n % 9 == 4:
            room["source"] = {"type": "sms"}
        if n in odd_sources:
            room["source"] = odd_sources[n]
        if n == 8:
            del room["source"]
        if rng.random() < 0.35:
            room["tags"] = rng.sample(tags, rng.randrange(1, 3))
        else:
            room.pop("tags", None)
    documents[10]["tags"] = ["vip", "refund"]
    documents[11]["tags"] = ["bug", "bug"]  # a tag twice: counted twice upstream
    documents[12]["tags"] = []


def write(name: str, documents: list[dict[str, object]]) -> None:
    lines = (json.dumps(document, ensure_ascii=False) for document in documents)
    (OUT / f"{name}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    rng = random.Random(20240301)
    OUT.mkdir(exist_ok=True)
    write("rocketchat_room", rooms(rng))
    write("users", users())
    write("rocketchat_livechat_department", DEPARTMENTS)
    write(
        "rocketchat_livechat_unit_monitors",
        [{"_id": "um-1", "monitorId": "u-monitor", "unitId": "unit-eu"}],
    )
    write(
        "rocketchat_livechat_department_agents",
        [
            {"_id": "da-1", "agentId": "u-ana", "departmentId": "dep-sales"},
            {"_id": "da-2", "agentId": "u-bruno", "departmentId": "dep-support"},
            {"_id": "da-3", "agentId": "u-chen", "departmentId": "dep-billing"},
        ],
    )
    write(
        "rocketchat_permissions",
        [
            {
                "_id": "view-livechat-reports",
                "roles": ["admin", "livechat-manager", "livechat-monitor"],
            }
        ],
    )


if __name__ == "__main__":
    main()
