"""The HTTP service in process: authentication, upstream's answers, faults, the document."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

# The whole module needs the server extra (and httpx); without it, it is skipped.
pytest.importorskip("starlette", reason="the server extra is not installed")
anyio = pytest.importorskip("anyio", reason="the server extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")

from convstats import (  # noqa: E402
    ConversationsByAgent,
    ConversationsByAgentEndpoint,
    MonitorRule,
    RocketChatAuthority,
    TotalMode,
)
from convstats.authz import hash_login_token  # noqa: E402
from convstats.errors import (  # noqa: E402
    AuthenticationRequired,
    InvalidParams,
    StorageTimeout,
    StorageUnavailable,
)
from convstats.http import error_response  # noqa: E402
from convstats_adapters.memory import MemoryStore  # noqa: E402
from convstats_adapters.openapi import (  # noqa: E402
    HEALTH_PATH,
    OPENAPI_PATH,
    READY_PATH,
    SETTINGS_PATH,
    openapi_document,
)
from convstats_adapters.server import create_app, query_params  # noqa: E402
from tests.http_support import (  # noqa: E402
    MANAGER_PAT,
    MARCH,
    SAMPLE,
    TOKENS,
    FlakyStore,
    InProcessClient,
    acheck_against_openapi,
    headers,
    report,
)

UTC = timezone.utc
NOT_LOGGED_IN = error_response(AuthenticationRequired()).body


@pytest.fixture(scope="module")
def sample() -> MemoryStore:
    return MemoryStore.from_path(SAMPLE)


@pytest.fixture
def client(sample):
    with InProcessClient(create_app(sample)) as http:
        yield http


def in_process(store: Any, params: dict[str, str], user_id: str) -> tuple[int, dict[str, Any]]:
    endpoint = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=store), authority=RocketChatAuthority(directory=store)
    )
    response = endpoint.handle(params, user_id)
    return response.status, response.body


@pytest.mark.parametrize(
    ("user_id", "params"),
    [
        ("u-manager", MARCH),
        ("u-admin", {**MARCH, "sort": '{"total": -1}'}),
        ("u-monitor", MARCH),  # scoped to its unit
        ("u-plain", MARCH),  # 403
        ("u-manager", {"start": "2024-03-01"}),  # 400 invalid-params
        ("u-manager", {**MARCH, "sort": "[1]"}),  # 400 error-invalid-sort
        ("u-manager", {"start": "2024-04-01", "end": "2024-03-01"}),  # 400 date order
        ("u-manager", {**MARCH, "count": "5"}),  # 400 additional property
    ],
)
def test_http_answers_what_the_endpoint_answers(client, sample, user_id, params):
    """Over HTTP a signed-in caller gets exactly the status and body of handle() in process."""
    response = report(client, params, **headers(user_id))
    assert (response.status_code, response.json()) == in_process(sample, params, user_id)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_a_monitor_sees_less_than_a_manager(client):
    """The token's user decides the visibility: the monitor's report covers its unit only."""
    manager = report(client, MARCH, **headers("u-manager")).json()
    monitor = report(client, MARCH, **headers("u-monitor")).json()
    assert 0 < monitor["total"] < manager["total"]


TOKEN_WORKSPACE: dict[str, list[dict[str, Any]]] = {
    "rocketchat_room": [
        {"_id": "r1", "t": "l", "ts": datetime(2024, 3, 2, tzinfo=UTC), "servedBy": {"_id": "ana"}},
        {"_id": "r2", "t": "l", "ts": datetime(2024, 3, 3, tzinfo=UTC)},
    ],
    "users": [
        {
            "_id": "boss",
            "name": "Boss",
            "roles": ["admin"],
            "services": {
                "resume": {
                    "loginTokens": [
                        {"hashedToken": hash_login_token("boss-session")},
                        {
                            "hashedToken": hash_login_token("boss-pat"),
                            "type": "personalAccessToken",
                            "name": "reports",
                        },
                    ]
                }
            },
        },
        {
            "_id": "ana",
            "name": "Ana",
            "roles": ["livechat-manager"],
            "services": {"resume": {"loginTokens": [{"hashedToken": hash_login_token("ana-t")}]}},
        },
        {
            "_id": "gone",
            "name": "Gone",
            "roles": ["admin"],
            "active": False,
            "services": {"resume": {"loginTokens": [{"hashedToken": hash_login_token("gone-t")}]}},
        },
    ],
}
ACCEPTED = {"total": 2, "data": [{"label": "Ana", "value": 1}], "unspecified": 1, "success": True}


@pytest.mark.parametrize(
    ("request_headers", "status"),
    [
        ({"X-User-Id": "boss", "X-Auth-Token": "boss-session"}, 200),
        ({"X-User-Id": "boss", "X-Auth-Token": "boss-pat"}, 200),  # personal access token
        ({"X-User-Id": "ana", "X-Auth-Token": "ana-t"}, 200),
        ({"X-User-Id": "boss", "X-Auth-Token": "boss-sessio"}, 401),  # wrong token
        ({"X-User-Id": "boss", "X-Auth-Token": "ana-t"}, 401),  # another user's token
        ({"X-User-Id": "ana", "X-Auth-Token": "boss-session"}, 401),
        ({"X-User-Id": "gone", "X-Auth-Token": "gone-t"}, 401),  # deactivated
        ({"X-User-Id": "nobody", "X-Auth-Token": "boss-session"}, 401),
        ({"X-Auth-Token": "boss-session"}, 401),  # missing user id
        ({"X-User-Id": "boss"}, 401),  # missing token
        ({}, 401),
        ({"X-User-Id": "", "X-Auth-Token": "boss-session"}, 401),  # empty
        ({"X-User-Id": "boss", "X-Auth-Token": ""}, 401),
        ({"X-User-Id": "boss", "X-Auth-Token": hash_login_token("boss-session")}, 401),
    ],
)
def test_token_authentication_over_every_store(workspace, request_headers, status):
    """Only a user's own login or personal token signs it in, on any store; else upstream's 401."""
    with InProcessClient(create_app(workspace(TOKEN_WORKSPACE))) as http:
        response = report(http, MARCH, **request_headers)
    assert response.status_code == status
    assert response.json() == (ACCEPTED if status == 200 else NOT_LOGGED_IN)


@pytest.mark.parametrize(
    "raw_headers",
    [
        [(b"X-User-Id", b"u-manager"), (b"X-Auth-Token", b"\xff\xfe\x00sample")],
        [(b"X-User-Id", "ü".encode()), (b"X-Auth-Token", b"sample-manager-token")],
        [(b"X-User-Id", b"u-manager\xc3"), (b"X-Auth-Token", b"sample-manager-token")],
        [(b"X-User-Id", b"u-manager"), (b"X-Auth-Token", "sample-manager-token😀".encode())],
        # a repeated header is joined with ", " as Node.js joins it, so nobody is found
        [
            (b"X-User-Id", b"u-plain"),
            (b"X-User-Id", b"u-manager"),
            (b"X-Auth-Token", b"sample-manager-token"),
        ],
        [
            (b"X-User-Id", b"u-manager"),
            (b"X-Auth-Token", b"sample-manager-token"),
            (b"X-Auth-Token", b"sample-manager-token"),
        ],
    ],
)
def test_odd_or_repeated_headers_get_the_401(client, raw_headers):
    """Header values of any bytes, or given twice, are refused with upstream's 401, never a 500."""
    response = client.get(
        "/api/v1/livechat/analytics/dashboards/conversations-by-agent",
        params=MARCH,
        headers=httpx.Headers(raw_headers),
    )
    assert (response.status_code, response.json()) == (401, NOT_LOGGED_IN)


def test_a_latin1_header_is_read_as_node_reads_it():
    """A header byte is one latin-1 character, hashed as UTF-8: a token "ÿ" sent as 0xFF works."""
    store = MemoryStore(
        {
            "users": [
                {
                    "_id": "ü",
                    "roles": ["admin"],
                    "services": {
                        "resume": {"loginTokens": [{"hashedToken": hash_login_token("ÿ")}]}
                    },
                }
            ]
        }
    )
    with InProcessClient(create_app(store)) as http:
        response = http.get(
            "/api/v1/livechat/analytics/dashboards/conversations-by-agent",
            params=MARCH,
            headers=httpx.Headers([(b"X-User-Id", b"\xfc"), (b"X-Auth-Token", b"\xff")]),
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("start=2024-03-01&start=2024-03-02&end=2024-04-01", "must be string"),
        ("start=2024-03-01&end=2024-04-01&end=2024-04-02", "must be string"),
        ("start=2024-03-01&end=2024-04-01&sort=%7B%7D&sort=%7B%7D", "must be string"),
        ("start=a&start=b", "must have required property 'end'"),
        ("start=2024-03-01&end=2024-04-01&start[]=x", "must NOT have additional properties"),
        ("start=2024-03-01&end=2024-04-01&%FF=1", "must NOT have additional properties"),
    ],
)
def test_repeated_or_extra_parameters_are_invalid_params(client, query, detail):
    """A parameter given twice is an array for upstream's validator: 400 invalid-params."""
    url = f"/api/v1/livechat/analytics/dashboards/conversations-by-agent?{query}"
    response = client.get(url, headers=headers("u-manager"))
    assert (response.status_code, response.json()) == (
        400,
        error_response(InvalidParams(detail)).body,
    )


@pytest.mark.parametrize(
    "query", ["start=%FF%FE&end=2024-04-01", "start=&end=", "start&end", "start=%00&end=%00"]
)
def test_odd_query_bytes_are_a_400(client, query):
    """Undecodable or empty values are dates nobody can read: a 400, never a 500."""
    url = f"/api/v1/livechat/analytics/dashboards/conversations-by-agent?{query}"
    assert client.get(url, headers=headers("u-manager")).status_code == 400


def test_authentication_comes_before_the_parameters(client):
    """Without a valid token even a request with no parameters gets the 401."""
    response = client.get("/api/v1/livechat/analytics/dashboards/conversations-by-agent")
    assert (response.status_code, response.json()) == (401, NOT_LOGGED_IN)


def test_query_params_make_repeated_names_arrays():
    """query_params keeps single values as strings and turns repeated ones into lists in order."""
    items = [("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")]
    assert query_params(items) == {"a": ["1", "3", "4"], "b": "2"}


def test_the_manager_personal_token_of_the_sample_works(client):
    """The sample's personal access token signs its manager in, like a session token."""
    response = report(client, MARCH, **headers("u-manager", MANAGER_PAT))
    assert response.status_code == 200
    assert response.json() == report(client, MARCH, **headers("u-manager")).json()


def test_a_failing_store_is_a_503_until_it_returns(sample):
    """A store failing while signing in or counting gives 503s, and 200s again once it is back."""
    store = FlakyStore(sample)
    with InProcessClient(create_app(store)) as http:
        assert report(http, MARCH, **headers("u-manager")).status_code == 200
        assert http.get(READY_PATH).json() == {"status": "ready"}
        store.down = True
        failed = report(http, MARCH, **headers("u-manager"))
        assert (failed.status_code, failed.json()) == (
            503,
            error_response(StorageUnavailable("the test store is down")).body,
        )
        not_ready = http.get(READY_PATH)
        assert (not_ready.status_code, not_ready.json()["status"]) == (503, "unavailable")
        assert http.get(HEALTH_PATH).status_code == 200  # alive, if not ready
        store.down = False
        assert report(http, MARCH, **headers("u-manager")).status_code == 200
        assert http.get(READY_PATH).status_code == 200


def test_a_hanging_store_is_a_503_within_the_timeout_then_recovers(sample, caplog):
    """A store that stops answering gives 503 once the request timeout passes, then 200 again."""
    store = FlakyStore(sample)
    app = create_app(store, timeout=0.2, ready_timeout=0.2, threads=2)
    with InProcessClient(app) as http:
        store.hang()
        try:
            for _ in range(3):  # more requests than threads: the later ones cannot start
                response = report(http, MARCH, **headers("u-manager"))
                assert response.status_code == 503
                assert response.json() == error_response(StorageTimeout("late")).body
            assert "StorageTimeout: the store did not answer within 0.2 s" in caplog.text
            assert http.get(READY_PATH).status_code == 503
        finally:
            store.release()
        assert report(http, MARCH, **headers("u-manager")).status_code == 200


def test_the_event_loop_keeps_answering_while_the_store_hangs(sample):
    """While a report waits on a hung store, the same server still answers /healthz."""
    store = FlakyStore(sample)
    app = create_app(store)
    answered: list[int] = []

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        hooks = {"response": [acheck_against_openapi]}
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1", event_hooks=hooks
            ) as http,
            anyio.create_task_group() as group,
        ):

            async def slow_report() -> None:
                response = await http.get(
                    "/api/v1/livechat/analytics/dashboards/conversations-by-agent",
                    params=MARCH,
                    headers=headers("u-manager"),
                )
                answered.append(response.status_code)

            store.hang()
            group.start_soon(slow_report)
            with anyio.fail_after(5):
                while store.calls == 0:  # the report has reached the store
                    await anyio.sleep(0.001)
            health = await http.get(HEALTH_PATH)
            answered.append(health.status_code)
            store.release()

    anyio.run(main)
    assert answered == [200, 200]  # /healthz first, then the report


def test_healthz_never_reads_the_store(sample):
    """Liveness answers without a single store call, even when the store is down."""
    store = FlakyStore(sample)
    store.down = True
    with InProcessClient(create_app(store)) as http:
        assert http.get(HEALTH_PATH).json() == {"status": "ok"}
    assert store.calls == 0


def test_an_unexpected_failure_is_a_json_500(sample, caplog):
    """A bug in a store is a JSON 500 without details, and logged, never a traceback on the wire."""

    class Buggy(FlakyStore):
        def count_groups(self, grouping, window, visibility, mode=TotalMode.CONVSTATS):
            raise ZeroDivisionError("secret internals")

    with InProcessClient(create_app(Buggy(sample))) as http:
        response = report(http, MARCH, **headers("u-manager"))
    assert (response.status_code, response.json()) == (
        500,
        {"success": False, "error": "Internal server error"},
    )
    assert "ZeroDivisionError" in caplog.text


def test_a_label_with_a_lone_surrogate_is_still_json():
    """A name holding invalid UTF-8 is sent escaped, as the same JSON string."""
    store = MemoryStore(
        {
            "rocketchat_room": [
                {
                    "_id": "r",
                    "t": "l",
                    "ts": datetime(2024, 3, 2, tzinfo=UTC),
                    "servedBy": {"_id": "x"},
                }
            ],
            "users": [
                {
                    "_id": "x",
                    "name": "bad \udcff name",
                    "roles": ["admin"],
                    "services": {
                        "resume": {"loginTokens": [{"hashedToken": hash_login_token("t")}]}
                    },
                }
            ],
        }
    )
    with InProcessClient(create_app(store)) as http:
        response = report(http, MARCH, **{"X-User-Id": "x", "X-Auth-Token": "t"})
    assert response.status_code == 200
    assert json.loads(response.content)["data"] == [{"label": "bad \udcff name", "value": 1}]


def test_the_openapi_document_is_served(client):
    """The document the service serves is the one the tests validate against."""
    assert client.get(OPENAPI_PATH).json() == openapi_document(metrics=True)


@pytest.mark.parametrize(
    ("total_mode", "monitor_rule", "expected"),
    [
        (TotalMode.CONVSTATS, MonitorRule.CURRENT, {"compat": None, "monitor_scope": "current"}),
        (
            TotalMode.ROCKETCHAT,
            MonitorRule.LEGACY,
            {"compat": "rocketchat", "monitor_scope": "legacy"},
        ),
    ],
)
def test_the_settings_say_how_the_service_reads_the_data(
    sample, total_mode, monitor_rule, expected
):
    """The page learns the total mode and the monitor rule without signing in."""
    app = create_app(sample, total_mode=total_mode, monitor_rule=monitor_rule)
    with InProcessClient(app) as http:
        answer = http.get(SETTINGS_PATH)
    assert answer.status_code == 200
    assert answer.json() == expected


def test_the_document_states_upstreams_401_body():
    """The 401 schema requires exactly the fields error_response sends, and its example is them."""
    document = openapi_document()
    schema = document["components"]["schemas"]["AuthorizationError"]
    assert schema["required"] == sorted(NOT_LOGGED_IN)
    example = document["components"]["responses"]["authorizationError"]["content"][
        "application/json"
    ]["examples"]["Authorization Error"]["value"]
    assert example == NOT_LOGGED_IN


def test_the_web_folder_is_served_at_the_root(sample, tmp_path):
    """Files of the web folder are served at / and may not be framed; the routes still win."""
    (tmp_path / "index.html").write_text("<h1>dashboard</h1>", encoding="utf-8")
    (tmp_path / "healthz").write_text("a file", encoding="utf-8")
    # The files are not part of the API document, so the answers are not checked against it.
    with InProcessClient(create_app(sample, web_directory=tmp_path), check=False) as http:
        page = http.get("/")
        assert page.text == "<h1>dashboard</h1>"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert http.get("/healthz").json() == {"status": "ok"}


def test_without_a_web_folder_the_root_is_free(sample, tmp_path):
    """Without the folder nothing is served at /."""
    app = create_app(sample, web_directory=tmp_path / "missing")
    with InProcessClient(app, check=False) as http:
        assert http.get("/").status_code == 404


@pytest.mark.parametrize("user_id", sorted(TOKENS))
def test_every_sample_token_is_documented_and_answers(client, user_id):
    """Each sample user signs in with its token; the deactivated one alone gets the 401."""
    status = report(client, MARCH, **headers(user_id)).status_code
    assert status == {"u-dana": 401, "u-ana": 403, "u-plain": 403}.get(user_id, 200)


def test_a_hung_store_holds_no_more_than_its_threads(sample):
    """With one thread and a hung store, later requests time out without reaching the store."""
    store = FlakyStore(sample)
    with InProcessClient(create_app(store, timeout=0.1, threads=1)) as http:
        store.hang()
        try:
            for _ in range(5):
                assert report(http, MARCH, **headers("u-manager")).status_code == 503
            assert store.calls == 1  # only the first request got a thread
        finally:
            store.release()
        assert report(http, MARCH, **headers("u-manager")).status_code == 200


def test_the_endpoint_settings_reach_the_answers(sample):
    """create_app's total mode, monitor rule and time zone change the answers as in process."""
    with InProcessClient(create_app(sample)) as http:
        plain = report(http, MARCH, **headers("u-monitor")).json()
    app = create_app(
        sample,
        total_mode=TotalMode.ROCKETCHAT,
        monitor_rule=MonitorRule.LEGACY,
        server_tz=ZoneInfo("Pacific/Kiritimati"),
    )
    endpoint = ConversationsByAgentEndpoint(
        reports=ConversationsByAgent(store=sample, total_mode=TotalMode.ROCKETCHAT),
        authority=RocketChatAuthority(directory=sample, monitor_rule=MonitorRule.LEGACY),
        server_tz=ZoneInfo("Pacific/Kiritimati"),
    )
    with InProcessClient(app, total_mode=TotalMode.ROCKETCHAT) as http:
        shifted = report(http, MARCH, **headers("u-monitor")).json()
    assert shifted == endpoint.handle(MARCH, "u-monitor").body
    assert shifted != plain
    assert shifted["total"] == sum(row["value"] for row in shifted["data"])


def test_the_cache_answers_repeated_reports_without_counting_again(sample):
    """With cache_ttl the rooms are counted once for the same window, sort and visibility."""

    class Counting(FlakyStore):
        counted = 0

        def count_groups(self, grouping, window, visibility, mode=TotalMode.CONVSTATS):
            Counting.counted += 1
            return super().count_groups(grouping, window, visibility, mode)

    for ttl, expected in ((None, 3), (60.0, 1)):
        Counting.counted = 0
        with InProcessClient(create_app(Counting(sample), cache_ttl=ttl)) as http:
            bodies = [report(http, MARCH, **headers("u-manager")).json() for _ in range(3)]
        assert Counting.counted == expected
        assert bodies[0] == bodies[1] == bodies[2]
