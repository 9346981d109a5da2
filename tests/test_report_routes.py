"""The service's five report routes: each answers as its endpoint, checked against the document."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("starlette", reason="the HTTP service needs the server extra")
pytest.importorskip("httpx", reason="the HTTP tests need httpx")

from convstats import (
    Conversations,
    ConversationsEndpoint,
    Grouping,
    RocketChatAuthority,
    TotalMode,
)
from convstats_adapters.memory import MemoryStore
from convstats_adapters.openapi import REPORTS, report_path
from convstats_adapters.server import create_app
from tests.http_support import SAMPLE, FlakyStore, InProcessClient, headers

SPRING = {"start": "2024-03-01", "end": "2024-04-15"}


@pytest.fixture(scope="module")
def sample() -> MemoryStore:
    return MemoryStore.from_path(SAMPLE)


def library(store: Any, grouping: Grouping, mode: TotalMode, user: str) -> Any:
    endpoint = ConversationsEndpoint(
        reports=Conversations(store=store, grouping=grouping, total_mode=mode),
        authority=RocketChatAuthority(directory=store),
    )
    response = endpoint.handle(SPRING, user)
    return response.status, response.body


def test_every_report_of_the_page_has_a_route():
    """The service answers the five reports of upstream's Reports page."""
    assert set(REPORTS) == set(Grouping)


@pytest.mark.parametrize("mode", list(TotalMode))
@pytest.mark.parametrize("user", ["u-manager", "u-monitor", "u-ana", "u-dana"])
def test_each_route_answers_what_its_endpoint_answers(sample, mode, user):
    """Over HTTP, every report's status and body are the library's, for any caller and mode."""
    app = create_app(sample, total_mode=mode)
    with InProcessClient(app, total_mode=mode) as http:
        for grouping in REPORTS:
            response = http.get(report_path(grouping), params=SPRING, headers=headers(user))
            answer = (response.status_code, response.json())
            assert answer == library(sample, grouping, mode, user), grouping


def test_the_cache_keeps_each_report_apart(sample):
    """The cache counts each report once, and never answers one report with another."""

    class Counting(FlakyStore):
        counted: list[Grouping] = []  # noqa: RUF012

        def count_groups(self, grouping, window, visibility, mode=TotalMode.CONVSTATS):
            self.counted.append(grouping)
            return super().count_groups(grouping, window, visibility, mode)

    store = Counting(sample)
    with InProcessClient(create_app(store, cache_ttl=60)) as http:
        first = {}
        for grouping in REPORTS:
            response = http.get(report_path(grouping), params=SPRING, headers=headers("u-manager"))
            first[grouping] = response.json()
        assert sorted(store.counted, key=list(REPORTS).index) == list(REPORTS)
        for grouping in REPORTS:
            response = http.get(report_path(grouping), params=SPRING, headers=headers("u-manager"))
            assert response.json() == first[grouping]
        assert len(store.counted) == len(REPORTS)  # the second round counted nothing
    assert len({str(body) for body in first.values()}) == len(REPORTS)


@pytest.mark.parametrize("grouping", list(Grouping))
def test_each_reports_example_is_a_body_its_schema_takes_and_the_sample_gives(sample, grouping):
    """The document's example of each report is valid, and is the sample's March answer."""
    from openapi_schema_validator import OAS30Validator

    from convstats_adapters.openapi import openapi_document

    document = openapi_document()
    operation = document["paths"][report_path(grouping)]["get"]
    content = operation["responses"]["200"]["content"]["application/json"]
    schema_name = content["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = document["components"]["schemas"][schema_name]
    march = {"start": "2024-03-01", "end": "2024-04-01"}
    endpoint = ConversationsEndpoint(
        reports=Conversations(store=sample, grouping=grouping),
        authority=RocketChatAuthority(directory=sample),
    )
    answer = endpoint.handle(march, "u-manager").body
    for example in content["examples"].values():
        OAS30Validator(schema).validate(example["value"])
        if grouping is Grouping.AGENT:  # a few of the rows, for brevity
            assert all(row in answer["data"] for row in example["value"]["data"])
        else:
            assert example["value"] == answer
