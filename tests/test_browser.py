"""The Reports page at ``/``, in headless Chromium against the app under uvicorn."""

from __future__ import annotations

import base64
import csv
import itertools
import json
import os
import re
import runpy
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convstats.authz import hash_login_token
from convstats.errors import StorageUnavailable
from convstats.model import GroupCounts, Grouping, TimeWindow, TotalMode, Visibility
from tests import browser_support

pytestmark = pytest.mark.browser

DASHBOARDS = "/api/v1/livechat/analytics/dashboards"
#: The cards, in the page's order; each is its report's route.
REPORTS = ("status", "source", "department", "tags", "agent")
SORTED = ("department", "tags", "agent")
SAMPLE = Path(__file__).parents[1] / "examples" / "sample"
DOCS = Path(__file__).parents[1] / "docs"
#: The browser's time zone in these tests; no summer time since 2019, so offsets are fixed.
ZONE = "America/Sao_Paulo"
HOSTILE = "<img src=x onerror=\"document.title='owned'\">"
FORMULA = '=HYPERLINK("http://example.com","x")'
#: A right-to-left override: drawn as itself, "invoice\u202egnp.exe" reads "invoiceexe.png".
RTL = "invoice\u202egnp.exe"
LONG = "L" + "o" * 298 + "ng"
HUGE = "W" * 10_000
#: What the page shows in place of a figure it does not have (an en dash).
NO_FIGURE = "\u2013"
#: Rows a card draws before "show all".
TOP = 10
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


def _sample_tokens() -> dict[str, str]:
    """The sample users' plain login tokens, from the script that writes their hashes."""
    return dict(runpy.run_path(str(SAMPLE.with_name("make_sample.py")))["TOKENS"])


#: Login tokens: the sample's, and the generated workspaces' administrator's.
TOKENS = {**_sample_tokens(), "u-root": "hostile-workspace-token"}


def token_of(user: str) -> str:
    return TOKENS[user]


def _app(data: Any, **settings: Any) -> Any:
    from convstats_adapters import MemoryStore
    from convstats_adapters.server import create_app

    store = data if not isinstance(data, Path) else MemoryStore.from_path(data)
    return create_app(store, **settings)


def _root() -> dict[str, Any]:
    login = {"hashedToken": hash_login_token(token_of("u-root"))}
    return {
        "_id": "u-root",
        "name": "Root",
        "roles": ["admin"],
        "services": {"resume": {"loginTokens": [login]}},
    }


# ---- what the page shows for a body, said again in Python ---------------------------------

# app.js's UNSAFE: controls, bidirectional marks and controls, line separators, surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(row: Mapping[str, Any], report: str) -> str:
    """The label the page shows for ``row`` of ``report``'s body, whole."""
    if "label" not in row:
        return "(no label)"
    label = row["label"]
    if label is None:
        return "(null)"
    if not isinstance(label, str):
        label = json.dumps(label, separators=(",", ":"))
    elif not label:
        return "(empty name)" if report == "agent" else "(empty)"
    elif report == "status" and label == "On_Hold":
        return "On hold"
    return _UNSAFE.sub(_escaped, label)


def expected_rows(body: Mapping[str, Any], report: str) -> list[tuple[str, int]]:
    return [(shown(row, report), row["value"]) for row in body["data"]]


# ---- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = browser_support.missing()
    if reason:
        pytest.skip(f"browser tests not run: {reason}")
    downloads = tmp_path_factory.mktemp("downloads")
    with browser_support.chromium(downloads) as driver:
        driver.downloads = downloads
        yield driver


@pytest.fixture(scope="module")
def sample_server(browser: Any) -> Iterator[str]:
    with browser_support.live_server(_app(SAMPLE)) as url:
        yield url


@pytest.fixture(scope="module")
def hostile_server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("hostile") / "workspace.json"
    data.write_text(json.dumps(_hostile_workspace()), encoding="utf-8")
    with browser_support.live_server(_app(data)) as url:
        yield url


#: Names from the data that a page could mistake for markup, a formula, or reorder.
HOSTILE_NAMES = (HOSTILE, FORMULA, "-1+2", RTL, LONG, HUGE)


def _hostile_workspace() -> dict[str, list[dict[str, Any]]]:
    """Agents, tags, source aliases and departments named as markup, formulas, RTL, long."""
    users = [
        {"_id": f"u-{n}", "name": name, "roles": ["livechat-agent"]}
        for n, name in enumerate(HOSTILE_NAMES)
    ]
    departments = [{"_id": f"d-{n}", "name": name} for n, name in enumerate(HOSTILE_NAMES)]
    rooms = [
        {
            "_id": f"room-{n}-{copy}",
            "t": "l",
            "ts": {"$date": f"2024-03-{10 + copy:02d}T12:00:00.000Z"},
            "servedBy": {"_id": f"u-{n}"},
            "departmentId": f"d-{n}",
            "tags": [name],
            "source": {"type": "api", "alias": name},
        }
        for n, name in enumerate(HOSTILE_NAMES)
        for copy in range(n + 1)
    ]
    return {
        "users": [*users, _root()],
        "rocketchat_room": rooms,
        "rocketchat_livechat_department": departments,
    }


class Page:
    """The Reports page in the browser, read and driven as an operator would."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base

    def by_id(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def card(self, report: str) -> Any:
        return self.by_id(f"card-{report}")

    def part(self, report: str, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.card(report).find_element(By.CSS_SELECTOR, selector)

    def wait(self, condition: Any) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, 30).until(lambda _: condition())

    def script(self, source: str, *arguments: Any) -> Any:
        return self.driver.execute_script(source, *arguments)

    def text(self, element_id: str) -> str:
        return str(self.by_id(element_id).get_property("textContent"))

    def visible(self, element_id: str) -> bool:
        return bool(self.by_id(element_id).is_displayed())

    def storage(self, key: str) -> str | None:
        return self.script("return sessionStorage.getItem(arguments[0])", key)

    def sign_in(self, user: str, token: str) -> None:
        self.by_id("user-id").send_keys(user)
        self.by_id("token").send_keys(token)
        self.by_id("sign-in-form").submit()

    def choose_days(self, first: date, last: date) -> None:
        """Type both days into the date fields, as a US-English keyboard user would."""
        for element_id, day in (("start-date", first), ("end-date", last)):
            field = self.by_id(element_id)
            field.send_keys(day.strftime("%m%d%Y"))
            assert field.get_property("value") == day.isoformat()

    def show(self) -> None:
        self.by_id("apply").click()

    def states(self) -> dict[str, str]:
        return dict(
            self.script(
                "return [...document.querySelectorAll('.report-card')]"
                ".map((card) => [card.dataset.report, card.dataset.state])"
            )
        )

    def settled(self) -> bool:
        """Every card has its answer, or the page said why none was asked."""
        states = set(self.states().values())
        if "loading" in states:
            return False
        return states != {"idle"} or any(
            self.visible(name) for name in ("date-error", "sign-in", "page-message")
        )

    def wait_for_answer(self) -> None:
        self.wait(self.settled)

    def show_all(self, report: str) -> None:
        """Press the card's "show all" (or "show more") until every row is drawn."""
        more = self.part(report, ".more")
        for _ in range(1000):  # bounded: each press draws more rows
            if not more.is_displayed():
                return
            more.click()
        raise AssertionError(f"{report}: show more never ran out")

    def rows(self, report: str) -> list[tuple[str, int]]:
        """The card's drawn rows as (whole label, value), in the order drawn."""
        return self._read(report, ".rows li", ".row-label", ".row-value", "title")

    def table(self, report: str) -> list[tuple[str, int]]:
        return self._read(report, "tbody tr", ".cell-label", "td", "textContent")

    def _read(
        self, report: str, rows: str, label: str, value: str, whole: str
    ) -> list[tuple[str, int]]:
        found = self.script(
            """
            const [card, rows, label, value, whole] = arguments;
            return [...card.querySelectorAll(rows)].map((row) => {
              const name = row.querySelector(label);
              const text = whole === "title" ? name.getAttribute("title") : name.textContent;
              return [text, Number(row.querySelector(value).textContent.replace(/\\D/g, ""))];
            });
            """,
            self.card(report),
            rows,
            label,
            value,
            whole,
        )
        return [(text, number) for text, number in found]

    def figure(self, report: str, name: str) -> int | str:
        """A card's figure (total, unspecified, rows) as a number, or the text in its place."""
        text = str(self.part(report, f".figure-{name}").get_property("textContent"))
        digits = re.sub(r"\D", "", text)
        return int(digits) if digits else text

    def requests(self, report: str | None = None) -> list[dict[str, list[str]]]:
        """The query of every report request the page has made, oldest first."""
        route = f"{DASHBOARDS}/conversations-by-{report or ''}"
        names = self.script(
            "return performance.getEntriesByType('resource').map((entry) => entry.name)"
        )
        return [
            urllib.parse.parse_qs(urllib.parse.urlsplit(name).query, keep_blank_values=True)
            for name in names
            if route in name
        ]

    def asked(self, report: str) -> dict[str, str]:
        """The query of the card's last request, as single values."""
        return {name: values[0] for name, values in self.requests(report)[-1].items()}

    def errors(self) -> list[str]:
        """What the page logged as severe (an exception, a refused resource)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
        ]


@pytest.fixture
def page(browser: Any, sample_server: str) -> Page:
    return _open(browser, sample_server)


def _open(driver: Any, base: str, zone: str = ZONE) -> Page:
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": zone})
    driver.get(f"{base}/")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    driver.get_log("browser")  # what an earlier page logged
    return Page(driver, base)


def fetch(base: str, report: str, user: str, **params: str) -> tuple[int, dict[str, Any]]:
    """The report's status and body, asked directly, without the page."""
    url = f"{base}{DASHBOARDS}/conversations-by-{report}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(
        url, headers={"X-User-Id": user, "X-Auth-Token": token_of(user)}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def midnight(day: date, zone: str = ZONE) -> str:
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    return start.isoformat(timespec="milliseconds")


MARCH = (date(2024, 3, 1), date(2024, 3, 31))
MARCH_QUERY = {"start": midnight(MARCH[0]), "end": midnight(date(2024, 4, 1))}
NAME_ORDER = '{"name":1}'


def show_march(page: Page, user: str) -> None:
    page.sign_in(user, token_of(user))
    page.wait_for_answer()
    page.choose_days(*MARCH)
    page.show()
    page.wait(lambda: page.asked("agent")["start"] == MARCH_QUERY["start"] and page.settled())


def assert_cards_equal_bodies(
    page: Page, user: str, reports: Collection[str] = REPORTS
) -> dict[str, dict[str, Any]]:
    """Each card's rows, table and figures are its endpoint's body for the card's request."""
    bodies = {}
    for report in reports:
        status, body = fetch(page.base, report, user, **page.asked(report))
        assert status == 200, body
        page.show_all(report)
        expected = expected_rows(body, report)
        assert page.rows(report) == expected, report
        assert page.table(report) == expected, report
        assert page.figure(report, "total") == body["total"], report
        assert page.figure(report, "rows") == len(body["data"]), report
        unspecified = page.figure(report, "unspecified")
        assert unspecified == body.get("unspecified", "not reported"), report
        bodies[report] = body
    return bodies


# ---- the five cards ----------------------------------------------------------------------


def test_signing_in_shows_the_five_reports_of_the_chosen_days(page: Page):
    """A manager types March 2024 and reads each report's own numbers on its card."""
    show_march(page, "u-manager")
    for report in REPORTS:
        asked = page.asked(report)
        assert (asked["start"], asked["end"]) == (MARCH_QUERY["start"], MARCH_QUERY["end"])
        assert ("sort" in asked) == (report in SORTED)
    bodies = assert_cards_equal_bodies(page, "u-manager")
    assert all(body["data"] for body in bodies.values())  # the sample fills every card
    assert page.text("status").startswith("5 of 5 reports drawn for")
    assert page.errors() == []
    page.script("document.querySelectorAll('.fewer').forEach((button) => button.click())")
    _keep_screenshot(page, DOCS / "dashboard.png")


def _keep_screenshot(page: Page, path: Path) -> None:
    if os.environ.get("CONVSTATS_SCREENSHOT") != "1":
        return
    shot = page.driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def test_a_monitor_sees_the_reports_as_the_endpoints_scope_them(page: Page):
    """The monitor's cards are the monitor's bodies, fewer conversations than the manager's."""
    show_march(page, "u-monitor")
    bodies = assert_cards_equal_bodies(page, "u-monitor")
    _, everything = fetch(page.base, "agent", "u-manager", **page.asked("agent"))
    assert bodies["agent"]["total"] < everything["total"]


def test_the_page_says_which_reading_the_server_runs(browser: Any, sample_server: str):
    """The default server says its totals hold every conversation; compat says Rocket.Chat's."""
    page = _open(browser, sample_server)
    page.wait(lambda: page.by_id("mode").get_attribute("data-compat") is not None)
    assert page.by_id("mode").get_attribute("data-compat") == ""
    assert "rows plus the unspecified" in page.text("mode")
    with browser_support.live_server(_app(SAMPLE, total_mode=TotalMode.ROCKETCHAT)) as url:
        compat = _open(browser, url)
        compat.wait(lambda: compat.by_id("mode").get_attribute("data-compat") is not None)
        assert compat.by_id("mode").get_attribute("data-compat") == "rocketchat"
        assert "--compat rocketchat" in compat.text("mode")


@pytest.fixture(scope="module")
def odd_server(browser: Any) -> Iterator[str]:
    """Upstream's reading of labels that are not strings: null, numbers, arrays, none."""
    from convstats_adapters import MemoryStore

    day = datetime(2024, 3, 10, 12, tzinfo=ZoneInfo("UTC"))
    rooms = [
        {"_id": "r1", "t": "l", "ts": day, "tags": [None, 7, ["x"]], "source": {}},
        {"_id": "r2", "t": "l", "ts": day, "tags": [""], "source": {"type": None, "alias": 5}},
        {"_id": "r3", "t": "l", "ts": day, "source": {"alias": ["a"]}, "departmentId": "d2"},
    ]
    departments = [{"_id": "d2", "name": 42}]
    store = MemoryStore(
        {
            "users": [_root()],
            "rocketchat_room": rooms,
            "rocketchat_livechat_department": departments,
        }
    )
    with browser_support.live_server(_app(store, total_mode=TotalMode.ROCKETCHAT)) as url:
        yield url


def test_labels_of_any_json_type_are_drawn_in_upstreams_reading(browser: Any, odd_server: str):
    """Under --compat rocketchat a null, a number, an array and a missing label each show."""
    page = _open(browser, odd_server)
    show_march(page, "u-root")
    bodies = assert_cards_equal_bodies(page, "u-root")
    tags = [label for label, _ in page.rows("tags")]
    assert {"(null)", "7", '["x"]', "(empty)"} <= set(tags)
    assert "(no label)" in [label for label, _ in page.rows("source")]
    assert "unspecified" not in bodies["source"]
    assert page.figure("status", "unspecified") == "not reported"
    assert page.errors() == []


def test_each_sort_control_asks_its_own_report_again(page: Page):
    """Name order redraws the agents in the endpoint's order; the other cards are not asked."""
    from selenium.webdriver.support.ui import Select

    show_march(page, "u-manager")
    before = {report: len(page.requests(report)) for report in REPORTS}
    Select(page.part("agent", ".sort")).select_by_value(NAME_ORDER)
    page.wait(lambda: page.asked("agent").get("sort") == NAME_ORDER and page.settled())
    assert {report: len(page.requests(report)) for report in REPORTS} == {
        **before,
        "agent": before["agent"] + 1,
    }
    assert page.asked("agent")["start"] == MARCH_QUERY["start"]
    assert_cards_equal_bodies(page, "u-manager", ["agent"])
    labels = [label for label, _ in page.rows("agent")]
    assert labels[1:] == sorted(labels[1:])  # after "(empty name)", the empty string
    Select(page.part("department", ".sort")).select_by_value('{"total":1}')
    page.wait(lambda: page.asked("department").get("sort") == '{"total":1}' and page.settled())
    values = [value for _, value in page.rows("department")]
    assert values == sorted(values)
    assert_cards_equal_bodies(page, "u-manager", ["department"])


def test_the_top_rows_come_first_and_a_filter_finds_the_rest(page: Page):
    """Ten agents are drawn; "show all" draws the eleventh, and the filter box narrows them."""
    show_march(page, "u-manager")
    _, body = fetch(page.base, "agent", "u-manager", **page.asked("agent"))
    everyone = expected_rows(body, "agent")
    assert len(everyone) > TOP
    assert page.rows("agent") == everyone[:TOP]
    assert page.table("agent") == everyone[:TOP]
    assert page.part("agent", ".shown").text == f"Showing {TOP} of {len(everyone)} agents"
    page.show_all("agent")
    assert page.rows("agent") == everyone
    page.part("agent", ".filter").send_keys("sam")
    page.wait(lambda: len(page.rows("agent")) == 2)
    assert page.rows("agent") == [row for row in everyone if "sam" in row[0].lower()]


def test_the_bars_are_scaled_by_the_rows_and_unspecified_is_apart(page: Page):
    """The busiest agent's bar is full length whatever the unspecified count; no bar for it."""
    show_march(page, "u-manager")
    widths = page.script(
        """
        return [...arguments[0].querySelectorAll('.bar-fill')]
          .map((fill) => Number(fill.style.getPropertyValue('--share')));
        """,
        page.card("tags"),
    )
    assert widths[0] == 1  # tags: unspecified (204) outnumbers the top tag, which still fills
    assert page.figure("tags", "unspecified") > page.rows("tags")[0][1]
    assert not [label for label, _ in page.rows("tags") if "nspecified" in label]


def test_a_period_without_conversations_says_so_on_every_card(page: Page):
    """Last 7 days has no room of the 2024 sample: each card says so and shows zeros."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    assert page.states() == dict.fromkeys(REPORTS, "empty")
    for report in REPORTS:
        assert page.part(report, ".card-empty").text == "No conversations in this period."
        assert page.figure(report, "total") == 0
        assert page.figure(report, "unspecified") == 0
    assert_cards_equal_bodies(page, "u-manager")


# ---- signing in and out --------------------------------------------------------------------


def test_the_token_stays_in_session_storage_and_the_headers(page: Page):
    """After signing in the token is in sessionStorage, and in no address the page loaded."""
    token = token_of("u-manager")
    page.sign_in("u-manager", token)
    page.wait_for_answer()
    assert page.storage("convstats.token") == token
    assert page.by_id("token").get_property("value") == ""
    loaded = page.script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    assert len(page.requests()) == len(REPORTS)
    assert not [address for address in loaded if token in address]


def test_signing_out_forgets_the_token(page: Page):
    """Sign out empties sessionStorage and brings back the sign-in form."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    page.by_id("sign-out").click()
    assert page.visible("sign-in")
    assert not page.visible("dashboard")
    assert page.storage("convstats.token") is None
    assert page.storage("convstats.userId") is None


def test_a_user_without_the_permission_is_told_once(page: Page):
    """All five 403s are said once, above the cards; the user stays signed in."""
    page.sign_in("u-plain", token_of("u-plain"))
    page.wait_for_answer()
    status, body = fetch(page.base, "agent", "u-plain", **page.asked("agent"))
    assert status == 403
    message = page.text("page-message")
    assert "view-livechat-reports" in message
    assert message.count(body["error"]) == 1
    assert set(page.states().values()) == {"forbidden"}
    assert (
        page.script("return document.querySelectorAll('.card-message:not([hidden])').length") == 0
    )
    assert all(page.rows(report) == [] for report in REPORTS)
    assert page.visible("dashboard")
    assert page.storage("convstats.userId") == "u-plain"


def test_a_wrong_token_signs_out_with_the_servers_words(page: Page):
    """A refused token brings back the sign-in form with the 401's message, token forgotten."""
    page.sign_in("u-manager", "not-the-token")
    page.wait(lambda: page.visible("sign-in") and page.visible("sign-in-message"))
    assert page.text("sign-in-message") == "You must be logged in to do this."
    assert not page.visible("dashboard")
    assert page.storage("convstats.token") is None


# ---- the period ------------------------------------------------------------------------------


def test_presets_are_days_of_the_browser_clock(page: Page):
    """Each preset names whole days relative to the moment it is given."""
    ranges = page.script(
        """
        const now = new Date(2024, 0, 15, 23, 59);  // 15 January 2024, local time
        return Object.fromEntries(["today", "last-7-days", "this-month", "last-month"]
          .map((name) => [name, convstats.presetDays(name, now)]));
        """
    )
    assert ranges == {
        "today": {"from": "2024-01-15", "to": "2024-01-15"},
        "last-7-days": {"from": "2024-01-09", "to": "2024-01-15"},
        "this-month": {"from": "2024-01-01", "to": "2024-01-31"},
        "last-month": {"from": "2023-12-01", "to": "2023-12-31"},
    }


def test_bounds_carry_the_offset_of_each_day_across_summer_time(browser: Any, sample_server: str):
    """In Berlin, March runs from midnight at +01:00 to the midnight after at +02:00."""
    page = _open(browser, sample_server, zone="Europe/Berlin")
    bounds = page.script("return convstats.bounds('2024-03-01', '2024-03-31')")
    assert bounds == {
        "start": "2024-03-01T00:00:00.000+01:00",
        "end": "2024-04-01T00:00:00.000+02:00",
    }


def test_choosing_a_preset_asks_every_report_for_its_days(page: Page):
    """Last month fills From and To and asks the five reports for exactly those bounds."""
    from selenium.webdriver.support.ui import Select

    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    asked = len(page.requests())
    Select(page.by_id("preset")).select_by_value("last-month")
    page.wait(lambda: len(page.requests()) == asked + len(REPORTS) and page.settled())
    first = date.fromisoformat(page.by_id("start-date").get_property("value"))
    last = date.fromisoformat(page.by_id("end-date").get_property("value"))
    assert first.day == 1
    assert (last + timedelta(days=1)).month != last.month
    for report in REPORTS:
        assert page.requests(report)[-1]["start"] == [midnight(first)]
        assert page.requests(report)[-1]["end"] == [midnight(last + timedelta(days=1))]


def test_a_period_refused_by_the_server_is_explained_beside_from_and_to(page: Page):
    """The one-year rule's message names From and To, keeps the API's words, and is said once."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    page.choose_days(date(2023, 1, 1), date(2024, 3, 1))
    page.show()
    page.wait(lambda: page.visible("date-error") and page.settled())
    message = page.text("date-error")
    api = 'The "start" and "end" query parameters must be less than 1 year apart.'
    assert message == f"From and To must be less than a year apart. The server said: {api}"
    for field in ("start-date", "end-date"):
        assert page.by_id(field).get_attribute("aria-invalid") == "true"
        assert "date-error" in page.by_id(field).get_attribute("aria-describedby").split()
    assert not page.visible("page-message")
    assert all(page.rows(report) == [] for report in REPORTS)


def test_from_after_to_is_caught_on_the_page(page: Page):
    """From after To is said beside the fields and no report is asked for."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    asked = len(page.requests())
    page.choose_days(date(2024, 3, 31), date(2024, 3, 1))
    page.show()
    page.wait(lambda: page.visible("date-error"))
    assert page.text("date-error") == "From is after To: choose a From day on or before To."
    assert page.by_id("start-date").get_attribute("aria-invalid") == "true"
    assert len(page.requests()) == asked
    assert set(page.states().values()) == {"idle"}
    assert page.figure("agent", "total") == NO_FIGURE


# ---- failures --------------------------------------------------------------------------


class _ReportDown:
    """A workspace whose one report fails while ``down``; sign-in and the others answer."""

    def __init__(self, inner: Any, grouping: Grouping) -> None:
        self.inner = inner
        self.grouping = grouping
        self.down = False

    def count_groups(
        self,
        grouping: Grouping,
        window: TimeWindow,
        visibility: Visibility,
        mode: TotalMode = TotalMode.CONVSTATS,
    ) -> GroupCounts:
        if self.down and grouping is self.grouping:
            raise StorageUnavailable("the tags are down")
        return self.inner.count_groups(grouping, window, visibility, mode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def tags_down_server(browser: Any) -> Iterator[tuple[str, _ReportDown]]:
    from convstats_adapters import MemoryStore

    store = _ReportDown(MemoryStore.from_path(SAMPLE), Grouping.TAGS)
    with browser_support.live_server(_app(store)) as url:
        yield url, store


def test_one_reports_503_leaves_the_other_cards_drawn(
    browser: Any, tags_down_server: tuple[str, _ReportDown]
):
    """The tags card says the server's words; the four others are drawn; nobody signs out."""
    base, store = tags_down_server
    page = _open(browser, base)
    store.down = True
    try:
        show_march(page, "u-manager")
        status, body = fetch(base, "tags", "u-manager", **page.asked("tags"))
    finally:
        store.down = False
    assert status == 503
    assert page.states()["tags"] == "error"
    assert page.part("tags", ".card-message").text == f"Unavailable (HTTP 503): {body['error']}"
    assert page.figure("tags", "total") == NO_FIGURE
    assert_cards_equal_bodies(page, "u-manager", [r for r in REPORTS if r != "tags"])
    assert not page.visible("page-message")
    assert page.storage("convstats.token") == token_of("u-manager")
    assert "unavailable: by tags" in page.text("status")


@pytest.fixture(scope="module")
def flaky_server(browser: Any) -> Iterator[tuple[str, Any]]:
    from convstats_adapters import MemoryStore
    from tests.http_support import FlakyStore

    store = FlakyStore(MemoryStore.from_path(SAMPLE))
    with browser_support.live_server(_app(store)) as url:
        yield url, store


def test_no_earlier_report_stays_on_screen_under_a_new_period(
    browser: Any, flaky_server: tuple[str, Any]
):
    """While a new period's answers are awaited every card is empty, then drawn with them."""
    from selenium.webdriver.support.ui import Select

    base, store = flaky_server
    page = _open(browser, base)
    show_march(page, "u-manager")
    store.hang()
    try:
        Select(page.by_id("preset")).select_by_value("last-month")
        page.wait(lambda: set(page.states().values()) == {"loading"})
        for report in REPORTS:
            assert page.figure(report, "total") == NO_FIGURE
            assert page.rows(report) == []
            assert page.table(report) == []
            assert page.card(report).get_attribute("aria-busy") == "true"
            assert not page.part(report, ".download").is_enabled()
    finally:
        store.release()
    page.wait(page.settled)
    assert page.asked("agent")["start"] != MARCH_QUERY["start"]
    assert_cards_equal_bodies(page, "u-manager")


# ---- hostile and huge data -----------------------------------------------------------------


def test_hostile_names_are_shown_as_inert_text(browser: Any, hostile_server: str):
    """Markup, an RTL override and 300 or 10,000 characters render as text in one line."""
    page = _open(browser, hostile_server)
    show_march(page, "u-root")
    assert_cards_equal_bodies(page, "u-root")
    for report in ("source", "department", "tags", "agent"):
        labels = [label for label, _ in page.rows(report)]
        assert HOSTILE in labels
        assert LONG in labels
        assert "invoice\\u202egnp.exe" in labels
    assert page.script("return document.querySelectorAll('main img').length") == 0
    assert page.driver.title != "owned"
    assert not page.script(
        """
        const main = document.querySelector('main');
        return main.textContent.includes('\\u202e')
          || [...main.querySelectorAll('[title]')].some((node) => node.title.includes('\\u202e'));
        """
    )
    sizes = page.script(
        """
        const size = (node) => node.getBoundingClientRect();
        return {
          viewport: window.innerWidth,
          page: document.documentElement.scrollWidth,
          rows: [...document.querySelectorAll('.rows li')].map((row) => size(row).height),
          cells: [...document.querySelectorAll('tbody tr')].map((row) => size(row).height),
        };
        """
    )
    assert sizes["page"] <= sizes["viewport"]
    assert max(sizes["rows"]) < 40  # one line
    for report in REPORTS:
        page.part(report, "details summary").click()
    heights = page.script(
        "return [...document.querySelectorAll('tbody tr')]"
        ".map((row) => row.getBoundingClientRect().height)"
    )
    assert max(heights) < 120  # a few lines, the rest of a long name scrolls in its cell
    assert HUGE in [label for label, _ in page.table("agent")]
    assert page.errors() == []


def test_the_csv_downloads_hold_the_rows_with_formulas_neutralised(
    browser: Any, hostile_server: str
):
    """Each card's CSV is label,value as its endpoint says, BOM first, formulas quoted."""
    page = _open(browser, hostile_server)
    show_march(page, "u-root")
    neutral = {FORMULA: f"'{FORMULA}", "-1+2": "'-1+2"}
    for report in ("tags", "agent"):
        target = browser.downloads / f"conversations-by-{report}_2024-03-01_2024-03-31.csv"
        target.unlink(missing_ok=True)
        page.part(report, ".download").click()
        page.wait(lambda target=target: target.exists() and target.stat().st_size > 0)
        _, body = fetch(page.base, report, "u-root", **page.asked(report))
        content = target.read_bytes()
        assert content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(content.decode("utf-8-sig").splitlines()))
        assert rows[0] == ["label", "value"]
        assert rows[1:] == [
            [neutral.get(row["label"], row["label"]), str(row["value"])] for row in body["data"]
        ]


#: More agents than a function's arguments may be: spreading the rows throws RangeError.
MANY = 140_000


@pytest.fixture(scope="module")
def crowded_server(browser: Any) -> Iterator[str]:
    from convstats_adapters import MemoryStore

    day = datetime(2024, 3, 10, tzinfo=ZoneInfo("UTC"))
    users = [{"_id": f"a{n}", "name": f"Agent {n:06d}"} for n in range(MANY)]
    rooms = [
        {"_id": f"r{n}", "t": "l", "ts": day + timedelta(seconds=n), "servedBy": {"_id": f"a{n}"}}
        for n in range(MANY)
    ]
    store = MemoryStore({"users": [*users, _root()], "rocketchat_room": rooms})
    with browser_support.live_server(_app(store)) as url:
        yield url


def test_a_huge_answer_is_drawn_a_page_at_a_time(browser: Any, crowded_server: str):
    """140,000 agents: no error, ten rows drawn, two hundred more on request, a filter finds one."""
    page = _open(browser, crowded_server)
    show_march(page, "u-root")
    assert page.states()["agent"] == "drawn"
    assert page.figure("agent", "rows") == MANY
    assert page.figure("agent", "total") == MANY
    assert len(page.rows("agent")) == TOP
    assert len(page.table("agent")) == TOP
    page.part("agent", ".more").click()
    assert len(page.rows("agent")) == TOP + 200
    page.part("agent", ".filter").send_keys("Agent 123456")
    page.wait(lambda: page.rows("agent") == [("Agent 123456", 1)])
    assert page.part("agent", ".shown").text == "Showing 1 of 1 matching agents"
    assert page.errors() == []


# ---- layout, keyboard, screen readers ----------------------------------------------------------


def test_the_cards_sit_two_by_two_at_1280_pixels(page: Page):
    """At 1280 px status and source share a row, and the agents' card spans the page."""
    show_march(page, "u-manager")
    boxes = {report: page.card(report).rect for report in REPORTS}
    assert boxes["status"]["y"] == boxes["source"]["y"]
    assert boxes["status"]["x"] < boxes["source"]["x"]
    assert boxes["department"]["y"] == boxes["tags"]["y"] > boxes["status"]["y"]
    assert boxes["agent"]["width"] > 1.9 * boxes["status"]["width"]


@pytest.fixture
def phone(browser: Any) -> Iterator[None]:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_on_a_phone_the_cards_stack_and_nothing_overflows(page: Page, phone: None):
    """At 390 by 844 pixels the cards are one column, the page is no wider, the user id one line."""
    page.driver.refresh()
    show_march(page, "u-manager")
    layout = page.script(
        """
        const box = (node) => node.getBoundingClientRect();
        const who = document.getElementById('account-user');
        return {
          viewport: window.innerWidth,
          page: document.documentElement.scrollWidth,
          cards: [...document.querySelectorAll('.report-card')].map((card) => {
            const { left, right, top, bottom } = box(card);
            return { left, right, top, bottom };
          }),
          who: { lines: who.getClientRects().length, height: box(who).height,
                 right: box(who).right, line: parseFloat(getComputedStyle(who).lineHeight) },
          signOut: box(document.getElementById('sign-out')).right,
        };
        """
    )
    assert layout["viewport"] == PHONE["width"]
    assert layout["page"] <= layout["viewport"]
    cards = layout["cards"]
    assert len({round(card["left"]) for card in cards}) == 1
    assert all(above["bottom"] <= below["top"] for above, below in itertools.pairwise(cards))
    assert all(card["right"] <= layout["viewport"] for card in cards)
    assert layout["who"]["lines"] == 1
    assert layout["who"]["height"] <= 1.5 * layout["who"]["line"]
    assert layout["signOut"] <= layout["viewport"]
    assert_cards_equal_bodies(page, "u-manager", ["agent"])
    page.script("document.querySelectorAll('.fewer').forEach((button) => button.click())")
    _keep_screenshot(page, DOCS / "dashboard-phone.png")


def test_the_page_works_from_the_keyboard(page: Page):
    """Signing in, choosing a preset and showing all agents need only Tab, keys and Enter."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    keys = ActionChains(page.driver)
    keys.send_keys("u-manager", Keys.TAB, token_of("u-manager"), Keys.ENTER).perform()
    page.wait_for_answer()
    assert page.driver.switch_to.active_element == page.by_id("preset")
    # A closed select changes its choice with the arrow keys.
    ActionChains(page.driver).send_keys(Keys.ARROW_DOWN).perform()
    page.wait(lambda: page.by_id("preset").get_property("value") == "this-month")
    page.wait(page.settled)
    assert page.figure("agent", "total") != NO_FIGURE


def test_controls_are_labelled_and_every_chart_is_a_list_of_label_and_value(page: Page):
    """Every control has a label; each chart is a labelled list read as "label, value"."""
    show_march(page, "u-manager")
    unlabelled = page.script(
        """
        return [...document.querySelectorAll("input, select")]
          .filter((control) => control.labels.length === 0).map((control) => control.id);
        """
    )
    assert unlabelled == []
    for report in REPORTS:
        card = page.card(report)
        assert page.text(card.get_attribute("aria-labelledby")).lower() == f"by {report}"
        chart = page.part(report, ".rows")
        assert chart.get_attribute("role") == "list"
        assert chart.get_attribute("aria-label").startswith("Conversations per ")
        first = page.script("return arguments[0].firstElementChild.textContent", chart)
        label, value = page.rows(report)[0]
        share = r", [\d.]+%" if report in ("status", "source") else ""
        assert re.fullmatch(rf"{re.escape(label)}, {value:,}{share}", first)
    assert page.by_id("status").get_attribute("role") == "status"
