"""Rooms, workspaces and reports for tests, written once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timezone
from typing import Any, NamedTuple

from convstats import Conversations, Report, Sort, TimeWindow, TotalMode, Visibility
from convstats.model import Grouping
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


class AgentTally(NamedTuple):
    """A store's by-agent counts: conversations per agent id, and those without an agent."""

    per_agent: Mapping[str, int]
    unspecified: int

    @property
    def assigned(self) -> int:
        return sum(self.per_agent.values())


def named(names: Mapping[str, str], asked: list[str]) -> dict[str, str]:
    """What ``agent_names`` answered for the ids asked (it may hold other users' names too)."""
    return {agent_id: names[agent_id] for agent_id in asked if agent_id in names}


def by_agent(store: RoomStore, window: TimeWindow, visibility: Visibility) -> AgentTally:
    """The store's by-agent answer as a dict and ``unspecified``, comparable across stores."""
    answer = store.count_groups(Grouping.AGENT, window, visibility)
    assert len(answer.keys) == len(set(answer.keys)), "a key twice"
    assert all(answer.values), "a zero row"
    return AgentTally(dict(zip(answer.keys, answer.values, strict=True)), answer.unspecified)


def counts(store: RoomStore, window: TimeWindow, **scope: Any) -> dict[str, int]:
    """The store's counts as one dict, ``"<unspecified>"`` included; ``scope`` restricts."""
    visibility = Visibility(restricted=True, **scope) if scope else Visibility.everything()
    answer = by_agent(store, window, visibility)
    return {**answer.per_agent, "<unspecified>": answer.unspecified}


def build_report(
    store: RoomStore,
    window: TimeWindow,
    *,
    sort: Sort = DEFAULT_SORT,
    visibility: Visibility | None = None,
    total_mode: TotalMode = TotalMode.CONVSTATS,
    grouping: Grouping = Grouping.AGENT,
) -> Report:
    """The report of ``store`` for ``window``, without a cache (by agent unless told)."""
    reports = Conversations(store=store, grouping=grouping, total_mode=total_mode)
    return reports.report(window, sort=sort, visibility=visibility or Visibility.everything())


def every_report(
    store: RoomStore, window: TimeWindow, visibility: Visibility, sort: Sort = DEFAULT_SORT
) -> dict[tuple[Grouping, TotalMode], Report]:
    """Every report of the Reports page, in both readings, by grouping and reading."""
    return {
        (grouping, mode): build_report(
            store, window, sort=sort, visibility=visibility, total_mode=mode, grouping=grouping
        )
        for grouping in Grouping
        for mode in TotalMode
    }
