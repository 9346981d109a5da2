"""The request handler's checks, their order, and the exact bodies."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convstats import (
    ConversationsByAgent,
    ConversationsByAgentEndpoint,
    OperatorAuthority,
    RocketChatAuthority,
    TimeWindow,
    TotalMode,
    TTLCache,
    Visibility,
)
from convstats.errors import StorageUnavailable
from convstats.http import report_body
from convstats.model import GroupCounts, Grouping
from convstats_adapters.memory import MemoryStore
from tests.generators import sort_parameters, windows, workspaces

UTC = timezone.utc

DATA = {
    "rocketchat_room": [
        {"_id": "r1", "t": "l", "ts": datetime(2024, 1, 5, tzinfo=UTC), "servedBy": {"_id": "ana"}},
        {"_id": "r2", "t": "l", "ts": datetime(2024, 1, 6, tzinfo=UTC)},
    ],
    "users": [
        {"_id": "ana", "name": "Ana", "roles": ["livechat-agent"]},
        {"_id": "boss", "name": "Boss", "roles": ["admin"]},
        {"_id": "plain", "name": "Plain", "roles": ["user"]},
    ],
}

UNAUTHORIZED = {
    "success": False,
    "error": "User does not have the permissions required for this action [error-unauthorized]",
}
NOT_LOGGED_IN = {
    "success": False,
    "error": "You must be logged in to do this.",
    "status": "error",
    "message": "You must be logged in to do this.",
}


class SpyStore:
    """A store that records every room read, delegating to a real one."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.room_reads = 0

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        self.room_reads += 1
        return self.inner.count_groups(grouping, window, visibility, mode)


def endpoint(store: Any = None) -> ConversationsByAgentEndpoint:
    directory = MemoryStore(DATA)
    return ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store or directory, directory=directory),
        authority=RocketChatAuthority(directory=directory),
    )


def invalid_params(detail: str) -> dict[str, Any]:
    return {"success": False, "error": f"{detail} [invalid-params]", "errorType": "invalid-params"}


def test_success_body():
    """A valid request gets the report body with success true."""
    response = endpoint().handle({"start": "2024-01-01", "end": "2024-02-01"}, "boss")
    assert response.status == 200
    assert response.body == {
        "total": 2,
        "data": [{"label": "Ana", "value": 1}],
        "unspecified": 1,
        "success": True,
    }
    json.dumps(response.body)  # serialisable as it is


@pytest.mark.parametrize(
    ("params", "user", "status", "body"),
    [
        # authentication comes first, whatever else is wrong
        ({}, None, 401, NOT_LOGGED_IN),
        ({"start": "x"}, "nobody", 401, NOT_LOGGED_IN),
        # parameters before permission
        (
            {"end": "2024-02-01"},
            "plain",
            400,
            invalid_params("must have required property 'start'"),
        ),
        ({"start": "2024-01-01"}, "boss", 400, invalid_params("must have required property 'end'")),
        ({}, "boss", 400, invalid_params("must have required property 'start'")),
        (
            {"start": "2024-01-01", "end": "2024-02-01", "count": "5"},
            "plain",
            400,
            invalid_params("must NOT have additional properties"),
        ),
        ({"start": 5, "end": "2024-02-01"}, "boss", 400, invalid_params("must be string")),
        ({"start": "a", "end": "b", "sort": ["x"]}, "boss", 400, invalid_params("must be string")),
        # permission before sort and dates
        ({"start": "x", "end": "y", "sort": "z"}, "plain", 403, UNAUTHORIZED),
        ({"start": "x", "end": "y", "sort": "z"}, "ana", 403, UNAUTHORIZED),
        # sort before dates
        (
            {"start": "x", "end": "y", "sort": "z"},
            "boss",
            400,
            {
                "success": False,
                "error": 'Invalid sort parameter provided: "z" [error-invalid-sort]',
                "errorType": "error-invalid-sort",
                "details": {"helperMethod": "parseJsonQuery"},
            },
        ),
        (
            {"start": "x", "end": "y"},
            "boss",
            400,
            {"success": False, "error": 'The "start" query parameter must be a valid date.'},
        ),
        (
            {"start": "2024-01-01", "end": "y"},
            "boss",
            400,
            {"success": False, "error": 'The "end" query parameter must be a valid date.'},
        ),
    ],
)
def test_checks_run_in_upstream_order(params, user, status, body):
    """The first failing check decides the status and the exact body."""
    response = endpoint().handle(params, user)
    assert (response.status, response.body) == (status, body)


def test_empty_sort_means_default():
    """An empty sort parameter is the default order, as upstream ignores it."""
    response = endpoint().handle({"start": "2024-01-01", "end": "2024-02-01", "sort": ""}, "boss")
    assert response.status == 200


def test_storage_failure_is_a_503():
    """A store that fails gives 503 with a body that names no host, never an empty report."""

    class BrokenStore(SpyStore):
        def count_groups(self, grouping, window, visibility, mode=TotalMode.CONVSTATS):
            raise StorageUnavailable("MongoDB at db.example:27017 is unreachable")

    response = endpoint(BrokenStore(MemoryStore(DATA))).handle(
        {"start": "2024-01-01", "end": "2024-02-01"}, "boss"
    )
    assert response.status == 503
    assert response.body == {"success": False, "error": "The data store is unavailable."}


PARAM_NAMES = st.sampled_from(["start", "end", "sort", "count", "offset", ""])
PARAM_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "2024-01-01",
            "2024-01-31T23:59:59Z",
            "2023-01-01",
            "0001-01-01",
            "9999-12-31",
            '{"total": -1}',
            "{}",
            "[" * 5000,
        ]
    ),
)


@given(
    st.dictionaries(PARAM_NAMES, PARAM_VALUES, max_size=4),
    st.sampled_from([None, "boss", "ana", "plain", "nobody"]),
)
def test_any_query_gets_a_spec_answer(params, user):
    """For any mapping of strings the handler answers 200, 400, 401 or 403, never raising."""
    spy = SpyStore(MemoryStore(DATA))
    response = endpoint(spy).handle(params, user)
    assert response.status in (200, 400, 401, 403)
    body = response.body
    if response.status == 200:
        assert set(body) == {"total", "data", "unspecified", "success"}
        assert body["success"] is True
        assert body["total"] == sum(row["value"] for row in body["data"]) + body["unspecified"]
    else:
        assert body["success"] is False
        assert isinstance(body["error"], str)
        fields = {401: {"status", "message"}, 400: {"errorType", "details"}}
        assert set(body) <= {"success", "error", *fields.get(response.status, ())}
        assert spy.room_reads == 0  # nothing read for a refused request
    if user not in ("boss",):
        assert spy.room_reads == 0  # not authenticated or not permitted: no room data read


@given(data=workspaces(), window=windows(), sort=sort_parameters(), mode=st.sampled_from(TotalMode))
def test_the_body_is_the_report_s_body(data, window, sort, mode):
    """handle() answers exactly report_body(report()), with or without a cache of reports."""
    store = MemoryStore(data)
    params = {"start": window.start.isoformat(), "end": window.end.isoformat(), "sort": sort}
    bodies = []
    for cache in (None, TTLCache(ttl=60)):
        endpoint = ConversationsByAgentEndpoint(
            reports=ConversationsByAgent(store=store, total_mode=mode, cache=cache),
            authority=OperatorAuthority(),
        )
        response = endpoint.handle(params, "operator")
        if response.status == 200:
            assert response.body == report_body(endpoint.report(params, "operator"))
        bodies.append(response)
    assert bodies[0] == bodies[1]
