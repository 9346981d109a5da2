"""The command line's reports beside by-agent: one subcommand each, as the endpoints answer."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from convstats import ConversationsEndpoint, Grouping, RocketChatAuthority, TotalMode
from convstats.report import Conversations
from convstats_adapters.cli import run
from convstats_adapters.memory import MemoryStore

SAMPLE = "examples/sample"
SPRING = ["--start", "2024-03-01", "--end", "2024-04-15"]
PARAMS = {"start": "2024-03-01", "end": "2024-04-15"}
STORE = MemoryStore.from_path(SAMPLE)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out=out, err=err, environ={})
    return status, out.getvalue(), err.getvalue()


def endpoint_body(grouping: Grouping, mode: TotalMode, user: str, **params: str) -> Any:
    endpoint = ConversationsEndpoint(
        reports=Conversations(store=STORE, grouping=grouping, total_mode=mode),
        authority=RocketChatAuthority(directory=STORE),
    )
    response = endpoint.handle({**PARAMS, **params}, user)
    return response.status, response.body


@pytest.mark.parametrize("grouping", list(Grouping))
@pytest.mark.parametrize("mode", list(TotalMode))
@pytest.mark.parametrize("user", ["u-manager", "u-monitor"])
def test_json_is_the_endpoints_body(grouping: Grouping, mode: TotalMode, user: str) -> None:
    """Each subcommand's --format json prints what its endpoint answers, caller and mode."""
    compat = ["--compat", "rocketchat"] if mode is TotalMode.ROCKETCHAT else []
    status, out, err = cli(
        grouping.route, "--data", SAMPLE, *SPRING, "--user", user, *compat, "--format", "json"
    )
    assert (status, err) == (0, "")
    assert (200, json.loads(out)) == endpoint_body(grouping, mode, user)


@pytest.mark.parametrize(
    ("grouping", "header"),
    [
        (Grouping.STATUS, ["status", "value"]),
        (Grouping.SOURCE, ["type", "alias", "label", "value"]),
        (Grouping.DEPARTMENT, ["department_id", "label", "value"]),
        (Grouping.TAGS, ["tag", "value"]),
        (Grouping.AGENT, ["agent_id", "label", "value"]),
    ],
)
def test_csv_names_each_row_by_its_key_first(grouping: Grouping, header: list[str]) -> None:
    """CSV starts with the key, so that two rows of one label stay two rows."""
    status, out, _ = cli(grouping.route, "--data", SAMPLE, *SPRING, "--format", "csv")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == header
    _, body = endpoint_body(grouping, TotalMode.CONVSTATS, "u-manager")
    assert [int(row[-1]) for row in rows[1:]] == [datum["value"] for datum in body["data"]]
    if grouping is Grouping.DEPARTMENT:
        supports = [row for row in rows if row[1] == "Support"]
        assert {row[0] for row in supports} == {"dep-support", "dep-helpdesk"}


def test_csv_keeps_upstreams_odd_labels_apart() -> None:
    """Upstream's by-source rows: a null alias, and a row without a label, as written."""
    status, out, _ = cli(
        "conversations-by-source", "--data", SAMPLE, *SPRING, "--format", "csv",
        "--compat", "rocketchat",
    )  # fmt: skip
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))[1:]
    assert ["widget", "null", "widget", "1"] in rows
    assert ["", "", "", "1"] in rows


@pytest.mark.parametrize("grouping", list(Grouping))
def test_the_table_titles_and_sums_each_report(grouping: Grouping) -> None:
    """The table names the report and ends with its rows, unspecified and total."""
    status, out, _ = cli(grouping.route, "--data", SAMPLE, *SPRING)
    assert status == 0
    _, body = endpoint_body(grouping, TotalMode.CONVSTATS, "u-manager")
    noun = {"status": "status", "tags": "tag"}.get(grouping.value, grouping.value)
    assert out.startswith(f"Conversations by {noun}, 2024-03-01")
    assert out.rstrip().endswith(f"Total: {body['total']}")
    assert f"Unspecified: {body['unspecified']}" in out


@pytest.mark.parametrize("grouping", [Grouping.STATUS, Grouping.SOURCE])
def test_reports_without_a_sort_take_one_and_ignore_it(grouping: Grouping) -> None:
    """By-status and by-source take --sort, even an invalid one, and ignore it, as upstream."""
    plain = cli(grouping.route, "--data", SAMPLE, *SPRING, "--format", "json")
    for sort in ('{"total": 1}', "{"):
        assert (
            cli(grouping.route, "--data", SAMPLE, *SPRING, "--format", "json", "--sort", sort)
            == plain
        )
    assert plain[0] == 0


@pytest.mark.parametrize("grouping", [Grouping.DEPARTMENT, Grouping.TAGS])
def test_a_bad_sort_of_a_sorted_report_is_the_endpoints_400(grouping: Grouping) -> None:
    """An invalid sort is error-invalid-sort, as the endpoint answers it."""
    status, out, _ = cli(
        grouping.route, "--data", SAMPLE, *SPRING, "--sort", "{", "--format", "json"
    )
    assert status == 2
    assert json.loads(out)["errorType"] == "error-invalid-sort"


@pytest.mark.parametrize("grouping", list(Grouping))
def test_help_shows_an_example_of_the_command(grouping: Grouping) -> None:
    """--help teaches by example, and names the endpoint the command follows."""
    status, out, _ = cli(grouping.route, "--help")
    assert status == 0
    assert f"convstats {grouping.route} --data examples/sample" in out
    assert f"dashboards/{grouping.route}" in out.replace("\n", "")
