"""Rooms, workspaces and reports for tests, written once."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from convstats import ConversationsByAgent, Report, Sort, TimeWindow, TotalMode, Visibility
from convstats.ports import RoomStore
from convstats.sorting import DEFAULT_SORT

UTC = timezone.utc
Collections = dict[str, list[dict[str, Any]]]


def served(agent: Any) -> dict[str, Any]:
    """A ``servedBy`` value for ``agent``."""
    return {"_id": agent, "username": f"user-{agent}"}


def room(room_id: Any, ts: Any, agent: Any = None, /, **fields: Any) -> dict[str, Any]:
    """A livechat room created at ``ts``, served by ``agent`` when one is given."""
    document: dict[str, Any] = {"_id": room_id, "t": "l", "ts": ts}
    if agent is not None:
        document["servedBy"] = served(agent)
    document.update(fields)
    return document


def only_rooms(*rooms: dict[str, Any]) -> Collections:
    """A workspace that holds these rooms and nothing else."""
    return {"rocketchat_room": list(rooms)}


def counts(store: RoomStore, window: TimeWindow, **scope: Any) -> dict[str, int]:
    """The store's counts as one dict, ``"<unspecified>"`` included; ``scope`` restricts."""
    visibility = Visibility(restricted=True, **scope) if scope else Visibility.everything()
    answer = store.count_conversations(window, visibility)
    return {**answer.per_agent, "<unspecified>": answer.unspecified}


def build_report(
    store: RoomStore,
    window: TimeWindow,
    *,
    sort: Sort = DEFAULT_SORT,
    visibility: Visibility | None = None,
    total_mode: TotalMode = TotalMode.CONVSTATS,
) -> Report:
    """The report of ``store`` for ``window``, without a cache."""
    reports = ConversationsByAgent(store=store, total_mode=total_mode)
    return reports.report(window, sort=sort, visibility=visibility or Visibility.everything())
