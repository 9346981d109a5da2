"""The dashboard page at ``/``, in headless Chromium against the app under uvicorn."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import runpy
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convstats.authz import hash_login_token
from tests import browser_support

pytestmark = pytest.mark.browser

ENDPOINT = "/api/v1/livechat/analytics/dashboards/conversations-by-agent"
SAMPLE = Path(__file__).parents[1] / "examples" / "sample"
SCREENSHOT = Path(__file__).parents[1] / "docs" / "dashboard.png"
#: The browser's time zone in these tests; no summer time since 2019, so offsets are fixed.
ZONE = "America/Sao_Paulo"
HOSTILE = "<img src=x onerror=\"document.title='owned'\">"
FORMULA = '=HYPERLINK("http://example.com","x")'
#: What the page shows in place of a figure it does not have (an en dash).
NO_FIGURE = "\u2013"


def _sample_tokens() -> dict[str, str]:
    """The sample users' plain login tokens, from the script that writes their hashes."""
    return dict(runpy.run_path(str(SAMPLE.with_name("make_sample.py")))["TOKENS"])


#: Login tokens: the sample's, and the generated workspace's administrator's.
TOKENS = {**_sample_tokens(), "u-root": "hostile-workspace-token"}


def _app(data: Path) -> Any:
    from convstats_adapters import MemoryStore
    from convstats_adapters.server import create_app

    return create_app(MemoryStore.from_path(data))


def token_of(user: str) -> str:
    return TOKENS[user]


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


def _hostile_workspace() -> dict[str, list[dict[str, Any]]]:
    """Agents whose names are markup, a formula and a minus sign, with rooms in March 2024."""
    names = {"u-html": (HOSTILE, 3), "u-formula": (FORMULA, 2), "u-minus": ("-1+2", 1)}
    users = [
        {"_id": user, "name": name, "roles": ["livechat-agent"]}
        for user, (name, _) in names.items()
    ]
    login = {"hashedToken": hash_login_token(token_of("u-root"))}
    users.append(
        {
            "_id": "u-root",
            "name": "Root",
            "roles": ["admin"],
            "services": {"resume": {"loginTokens": [login]}},
        }
    )
    rooms = [
        {
            "_id": f"room-{user}-{n}",
            "t": "l",
            "ts": {"$date": f"2024-03-{10 + n:02d}T12:00:00.000Z"},
            "servedBy": {"_id": user},
        }
        for user, (_, count) in names.items()
        for n in range(count)
    ]
    return {"users": users, "rocketchat_room": rooms}


class Page:
    """The dashboard in the browser, read and driven as an operator would."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base

    def by_id(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def wait(self, condition: Any) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, 30).until(lambda _: condition())

    def text(self, element_id: str) -> str:
        return str(self.by_id(element_id).get_property("textContent"))

    def visible(self, element_id: str) -> bool:
        return bool(self.by_id(element_id).is_displayed())

    def storage(self, key: str) -> str | None:
        return self.driver.execute_script("return sessionStorage.getItem(arguments[0])", key)

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

    def settled(self) -> bool:
        report = self.by_id("report")
        return report.get_attribute("aria-busy") == "false" and (
            self.text("kpi-total") != NO_FIGURE
            or any(self.visible(name) for name in ("report-message", "date-error", "sign-in"))
        )

    def wait_for_answer(self) -> None:
        self.wait(self.settled)

    def chart(self) -> list[tuple[str, int]]:
        """The agents' bars as (label, value), in the order drawn."""
        return self._rows("#chart li:not(.bar-unspecified)", ".bar-label", ".bar-value")

    def table(self) -> list[tuple[str, int]]:
        return self._rows("#table-body tr", "th", "td")

    def _rows(self, rows: str, label: str, value: str) -> list[tuple[str, int]]:
        found = self.driver.execute_script(
            """
            return [...document.querySelectorAll(arguments[0])].map((row) => {
              const label = row.querySelector(arguments[1]);
              const text = label.classList.contains("is-empty") ? "" : label.textContent;
              const value = row.querySelector(arguments[2]).textContent;
              return [text, Number(value.replace(/\\D/g, ""))];
            });
            """,
            rows,
            label,
            value,
        )
        return [(text, number) for text, number in found]

    def number(self, element_id: str) -> int:
        return int(re.sub(r"\D", "", self.text(element_id)))

    def requests(self) -> list[dict[str, list[str]]]:
        """The query of every report request the page has made, oldest first."""
        names = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map((entry) => entry.name)"
        )
        return [
            urllib.parse.parse_qs(urllib.parse.urlsplit(name).query, keep_blank_values=True)
            for name in names
            if ENDPOINT in name
        ]


@pytest.fixture
def page(browser: Any, sample_server: str) -> Page:
    return _open(browser, sample_server)


def _open(driver: Any, base: str, zone: str = ZONE) -> Page:
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": zone})
    driver.get(f"{base}/")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    return Page(driver, base)


def fetch(base: str, user: str, token: str, **params: str) -> tuple[int, dict[str, Any]]:
    """The endpoint's status and body, asked directly, without the page."""
    url = f"{base}{ENDPOINT}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"X-User-Id": user, "X-Auth-Token": token})
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
NAME_ORDER = '{"name":1}'
MARCH_QUERY = {"start": "2024-03-01", "end": "2024-04-01"}


# ---- tests ---------------------------------------------------------------------------


def test_signing_in_with_a_token_shows_the_report_of_the_chosen_days(page: Page):
    """A manager signs in, types March 2024, and reads the endpoint's own numbers as bars."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.choose_days(*MARCH)
    page.show()
    page.wait_for_answer()

    start, end = midnight(MARCH[0]), midnight(MARCH[1] + timedelta(days=1))
    sort = page.by_id("sort").get_property("value")
    status, body = fetch(
        page.base, "u-manager", token_of("u-manager"), start=start, end=end, sort=sort
    )
    assert status == 200
    expected = [(row["label"], row["value"]) for row in body["data"]]
    assert page.chart() == expected
    assert page.table() == expected
    assert page.number("kpi-total") == page.number("table-total") == body["total"]
    assert page.number("kpi-unspecified") == body["unspecified"]
    assert page.number("table-unspecified") == body["unspecified"]
    unspecified = page.driver.execute_script(
        "return document.querySelector('#chart .bar-unspecified .bar-value').textContent"
    )
    assert int(unspecified) == body["unspecified"]
    assert page.requests()[-1] == {"start": [start], "end": [end], "sort": [sort]}
    _keep_screenshot(page)


def _keep_screenshot(page: Page) -> None:
    if os.environ.get("CONVSTATS_SCREENSHOT") != "1":
        return
    shot = page.driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))


def test_the_token_stays_in_session_storage_and_the_headers(page: Page):
    """After signing in the token is in sessionStorage, and in no address the page loaded."""
    token = token_of("u-manager")
    page.sign_in("u-manager", token)
    page.wait_for_answer()
    assert page.storage("convstats.token") == token
    assert page.by_id("token").get_property("value") == ""
    loaded = page.driver.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    assert page.requests()
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


def test_the_sort_choice_orders_the_bars_as_the_endpoint_does(page: Page):
    """Choosing name order redraws the bars in the order the endpoint returns for it."""
    from selenium.webdriver.support.ui import Select

    page.sign_in("u-manager", token_of("u-manager"))
    page.choose_days(*MARCH)
    page.show()
    page.wait_for_answer()
    Select(page.by_id("sort")).select_by_value(NAME_ORDER)
    page.wait(lambda: page.requests()[-1]["sort"] == [NAME_ORDER] and page.settled())
    query = {name: values[0] for name, values in page.requests()[-1].items()}
    _, body = fetch(page.base, "u-manager", token_of("u-manager"), **query)
    assert page.chart() == [(row["label"], row["value"]) for row in body["data"]]
    assert [label for label, _ in page.chart()] == sorted(label for label, _ in page.chart())


def test_the_page_works_from_the_keyboard(page: Page):
    """Signing in, choosing a preset and showing the report need only Tab, keys and Enter."""
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
    assert page.text("kpi-total") != NO_FIGURE


def test_controls_are_labelled_and_the_figures_are_text(page: Page):
    """Every control has a label, the chart is a labelled list, a status line says the totals."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.choose_days(*MARCH)
    page.show()
    page.wait_for_answer()
    unlabelled = page.driver.execute_script(
        """
        return [...document.querySelectorAll("input, select")]
          .filter((control) => control.labels.length === 0).map((control) => control.id);
        """
    )
    assert unlabelled == []
    chart = page.by_id("chart")
    assert chart.get_attribute("role") == "list"
    assert page.text(chart.get_attribute("aria-labelledby")).startswith("By agent")
    assert page.by_id("status").get_attribute("role") == "status"
    total, agents = page.number("kpi-total"), len(page.chart())
    assert page.text("status").startswith(f"{total} conversations, {agents} agents")


def test_presets_are_days_of_the_browser_clock(page: Page):
    """Each preset names whole days relative to the moment it is given."""
    ranges = page.driver.execute_script(
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
    bounds = page.driver.execute_script("return convstats.bounds('2024-03-01', '2024-03-31')")
    assert bounds == {
        "start": "2024-03-01T00:00:00.000+01:00",
        "end": "2024-04-01T00:00:00.000+02:00",
    }


def test_choosing_a_preset_fills_the_days_and_asks_for_them(page: Page):
    """Last month fills From and To with the preset's days and requests exactly those bounds."""
    from selenium.webdriver.support.ui import Select

    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    asked = len(page.requests())
    Select(page.by_id("preset")).select_by_value("last-month")
    page.wait(lambda: len(page.requests()) > asked and page.settled())
    first = date.fromisoformat(page.by_id("start-date").get_property("value"))
    last = date.fromisoformat(page.by_id("end-date").get_property("value"))
    assert first.day == 1
    assert (last + timedelta(days=1)).month != last.month
    assert page.requests()[-1]["start"] == [midnight(first)]
    assert page.requests()[-1]["end"] == [midnight(last + timedelta(days=1))]


def test_a_user_without_the_permission_is_told_so(page: Page):
    """A signed-in user without view-livechat-reports sees the 403 and stays signed in."""
    page.sign_in("u-plain", token_of("u-plain"))
    page.wait_for_answer()
    status, body = fetch(
        page.base, "u-plain", token_of("u-plain"), start=midnight(MARCH[0]), end=midnight(MARCH[1])
    )
    assert status == 403
    message = page.text("report-message")
    assert "permission" in message
    assert body["error"] in message
    assert page.chart() == []
    assert page.visible("dashboard")
    assert page.storage("convstats.userId") == "u-plain"


def test_a_wrong_token_signs_out_with_the_servers_words(page: Page):
    """A refused token brings back the sign-in form with the 401's message, token forgotten."""
    page.sign_in("u-manager", "not-the-token")
    page.wait(lambda: page.visible("sign-in") and page.visible("sign-in-message"))
    _, body = fetch(page.base, "u-manager", "not-the-token", **MARCH_QUERY)
    assert page.text("sign-in-message") == body["error"] == "You must be logged in to do this."
    assert not page.visible("dashboard")
    assert page.storage("convstats.token") is None


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (
            date(2023, 1, 1),
            date(2024, 3, 1),
            'The "start" and "end" query parameters must be less than 1 year apart.',
        ),
        (
            date(2024, 3, 31),
            date(2024, 3, 1),
            'The "start" query parameter must be before the "end" query parameter.',
        ),
    ],
)
def test_a_refused_period_is_explained_beside_the_dates(
    page: Page, first: date, last: date, message: str
):
    """The API's date message appears next to the date fields, which are marked invalid."""
    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    page.choose_days(first, last)
    page.show()
    page.wait(lambda: page.visible("date-error"))
    assert page.text("date-error") == message
    assert page.by_id("start-date").get_attribute("aria-invalid") == "true"
    assert "date-error" in page.by_id("start-date").get_attribute("aria-describedby").split()
    assert page.chart() == []


def test_hostile_agent_names_are_shown_as_text(browser: Any, hostile_server: str):
    """A name written as markup is drawn as its characters: no element, no script runs."""
    page = _open(browser, hostile_server)
    page.sign_in("u-root", token_of("u-root"))
    page.choose_days(*MARCH)
    page.show()
    page.wait_for_answer()
    labels = [label for label, _ in page.chart()]
    assert HOSTILE in labels
    assert labels == [label for label, _ in page.table()]
    assert page.driver.execute_script("return document.querySelectorAll('main img').length") == 0
    assert page.driver.title != "owned"


def test_the_csv_download_holds_the_rows_with_formulas_neutralised(
    browser: Any, hostile_server: str
):
    """The CSV is label,value per agent as the endpoint says, formula-leading cells quoted."""
    page = _open(browser, hostile_server)
    page.sign_in("u-root", token_of("u-root"))
    page.choose_days(*MARCH)
    page.show()
    page.wait_for_answer()
    target = browser.downloads / "conversations-by-agent_2024-03-01_2024-03-31.csv"
    target.unlink(missing_ok=True)
    page.by_id("download").click()
    page.wait(target.exists)
    query = {name: values[0] for name, values in page.requests()[-1].items()}
    _, body = fetch(page.base, "u-root", token_of("u-root"), **query)
    rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
    neutral = {FORMULA: f"'{FORMULA}", "-1+2": "'-1+2"}
    assert rows[0] == ["label", "value"]
    assert rows[1:] == [
        [neutral.get(row["label"], row["label"]), str(row["value"])] for row in body["data"]
    ]


@pytest.fixture(scope="module")
def flaky_server(browser: Any) -> Iterator[tuple[str, Any]]:
    from convstats_adapters import MemoryStore
    from convstats_adapters.server import create_app
    from tests.http_support import FlakyStore

    store = FlakyStore(MemoryStore.from_path(SAMPLE))
    with browser_support.live_server(create_app(store)) as url:
        yield url, store


def test_a_store_failure_is_reported_and_keeps_the_user_signed_in(
    browser: Any, flaky_server: tuple[str, Any]
):
    """A 503 shows the server's words above the report and signs nobody out."""
    base, store = flaky_server
    page = _open(browser, base)
    page.sign_in("u-manager", token_of("u-manager"))
    page.wait_for_answer()
    store.down = True
    try:
        page.show()
        page.wait_for_answer()
        status, body = fetch(base, "u-manager", token_of("u-manager"), **MARCH_QUERY)
    finally:
        store.down = False
    assert status == 503
    assert page.text("report-message") == (f"The report is unavailable (HTTP 503): {body['error']}")
    assert page.visible("dashboard")
    assert page.storage("convstats.token") == token_of("u-manager")
    assert page.text("kpi-total") == NO_FIGURE
