"""Invariants of the report for generated Rocket.Chat-shaped workspaces."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from convstats import ConversationsByAgent, TimeWindow, TotalMode
from convstats.http import report_body
from convstats_adapters.memory import MemoryStore
from tests.builders import build_report, by_agent
from tests.generators import instants, sorts, visibilities, windows, workspaces


@given(workspaces(), windows(), visibilities(), sorts(), st.sampled_from(TotalMode))
def test_total_invariant(data, window, visibility, sort, mode):
    """total = sum(values) + unspecified, or sum(values) in Rocket.Chat compatibility mode."""
    report = build_report(
        MemoryStore(data), window, sort=sort, visibility=visibility, total_mode=mode
    )
    body = report_body(report)
    values = sum(row["value"] for row in body["data"])
    expected = values if mode is TotalMode.ROCKETCHAT else values + body["unspecified"]
    assert body["total"] == expected
    assert all(row["value"] > 0 for row in body["data"])
    assert len({row.agent_id for row in report.rows}) == len(report.rows)


@given(workspaces(), windows(), visibilities(), sorts(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(data, window, visibility, sort, rng: random.Random):
    """Shuffling every collection gives the same report."""
    shuffled = {name: rng.sample(docs, len(docs)) for name, docs in data.items()}
    reports = [
        build_report(MemoryStore(d), window, sort=sort, visibility=visibility)
        for d in (data, shuffled)
    ]
    assert reports[0] == reports[1]


@given(workspaces(), windows(), instants(), visibilities())
def test_split_windows_add_up(data, window, cut, visibility):
    """Cutting a window at any instant splits every agent's count into two parts that add up."""
    cut = min(max(cut, window.start), window.end)
    store = MemoryStore(data)
    whole = by_agent(store, window, visibility)
    left = by_agent(store, TimeWindow(window.start, cut), visibility)
    right = by_agent(store, TimeWindow(cut, window.end), visibility)
    agents = set(whole.per_agent) | set(left.per_agent) | set(right.per_agent)
    for agent in agents:
        assert whole.per_agent.get(agent, 0) == (
            left.per_agent.get(agent, 0) + right.per_agent.get(agent, 0)
        )
    assert whole.unspecified == left.unspecified + right.unspecified


@given(workspaces(), windows())
def test_labels_are_names_else_ids(data, window):
    """Each row's label is its agent's string name when the user exists, else the agent id."""
    names = {
        str(user["_id"]): user["name"]
        for user in data["users"]
        if isinstance(user.get("name"), str)
    }
    report = ConversationsByAgent(store=MemoryStore(data)).report(window)
    for row in report.rows:
        assert row.label == names.get(row.agent_id, row.agent_id)
