"""The sort parameter and the order of rows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convstats.errors import InvalidSort
from convstats.http import error_response
from convstats.model import AgentRow
from convstats.sorting import DEFAULT_SORT, Sort, SortField, parse_sort, rank
from tests.generators import sort_parameters, sorts

ROWS = (
    AgentRow(agent_id="b", label="alice", value=3),
    AgentRow(agent_id="a", label="Zed", value=3),
    AgentRow(agent_id="c", label="Sam", value=1),
    AgentRow(agent_id="d", label="Sam", value=5),
)


def sort_rows(rows, sort=DEFAULT_SORT):
    """Agent rows ordered as a by-agent report ranks them."""
    ranked = rank([(row.label, row.agent_id, row.value) for row in rows], sort)
    return [AgentRow(agent_id=key, label=label, value=value) for label, key, value in ranked]


def ids(rows):
    return [row.agent_id for row in rows]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, DEFAULT_SORT),
        ("", DEFAULT_SORT),
        ("{}", Sort(())),
        ('{"name": 1}', Sort(((SortField.LABEL, 1),))),
        ('{"label": -1}', Sort(((SortField.LABEL, -1),))),
        ('{"value": -1, "_id": 1}', Sort(((SortField.VALUE, -1), (SortField.AGENT_ID, 1)))),
        ('{"total": 1.0}', Sort(((SortField.VALUE, 1),))),
        ('{"name": 1, "label": -1}', Sort(((SortField.LABEL, 1),))),
    ],
)
def test_valid_sorts(raw, expected):
    """Keys, aliases and the two directions are understood; a repeated field adds nothing."""
    assert parse_sort(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "x",
        "{",
        '{"name": "1"}',
        '{"name": "asc"}',
        '{"name": 2}',
        '{"name": true}',
        '{"name": 0}',
        '{"name": null}',
        '{"agent": 1}',
        "5",
        "[1]",
        '"name"',
        "null",
    ],
)
def test_invalid_sorts_name_the_raw_value(raw):
    """Anything else is error-invalid-sort, quoting the raw parameter."""
    with pytest.raises(InvalidSort) as caught:
        parse_sort(raw)
    assert error_response(caught.value).body == {
        "success": False,
        "error": f'Invalid sort parameter provided: "{raw}" [error-invalid-sort]',
        "errorType": "error-invalid-sort",
        "details": {"helperMethod": "parseJsonQuery"},
    }


def test_default_order_is_by_code_point_then_id():
    """Labels compare case-sensitively by code point; equal labels fall back to the id."""
    assert ids(sort_rows(ROWS)) == ["c", "d", "a", "b"]


def test_keys_apply_in_order_with_their_directions():
    """Several keys apply in order, each with its own direction, ties broken by label, id."""
    assert ids(sort_rows(ROWS, parse_sort('{"total": -1}'))) == ["d", "a", "b", "c"]
    assert ids(sort_rows(ROWS, parse_sort('{"total": -1, "name": -1}'))) == ["d", "b", "a", "c"]
    assert ids(sort_rows(ROWS, parse_sort('{"_id": -1}'))) == ["d", "c", "b", "a"]
    assert ids(sort_rows(ROWS, parse_sort("{}"))) == ["c", "d", "a", "b"]


@given(st.permutations(ROWS), sorts())
def test_order_does_not_depend_on_input_order(rows, sort):
    """Every sort gives one deterministic order."""
    assert sort_rows(rows, sort) == sort_rows(ROWS, sort)


@given(sort_parameters())
def test_generated_parameters_round_trip(raw):
    """A valid sort written back as JSON parses to the same sort."""
    sort = parse_sort(raw)
    assert parse_sort(sort.to_json()) == sort


def test_absurd_nesting_is_an_invalid_sort():
    """A sort nested too deeply to parse is refused like any other invalid sort."""
    with pytest.raises(InvalidSort):
        parse_sort("[" * 100_000)


@given(
    rows=st.lists(
        st.builds(
            AgentRow,
            agent_id=st.text(max_size=3),
            label=st.sampled_from(("Ana", "ana", "Bo", "", "Zed")),
            value=st.integers(0, 3),
        ),
        unique_by=lambda row: row.agent_id,
        max_size=12,
    ),
    sort=sorts(),
)
def test_rows_of_strings_rank_alike_by_either_path(rows, sort):
    """Rows of strings rank the same by their tuples' order and by MongoDB's value order."""
    plain = rank([(row.label, row.agent_id, row.value) for row in rows], sort)
    ordered = rank([(row.label, row.agent_id, row.value) for row in rows], sort, plain=False)
    assert plain == ordered
