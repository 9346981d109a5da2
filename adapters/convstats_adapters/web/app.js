// The conversations-by-agent dashboard: sign-in, period and sort, then the report as bars
// and a table. Agent names come from the workspace and are untrusted: they only ever reach
// the page through textContent and setAttribute, never as markup.
"use strict";

(() => {
  const ENDPOINT = "api/v1/livechat/analytics/dashboards/conversations-by-agent";
  const USER_KEY = "convstats.userId";
  const TOKEN_KEY = "convstats.token";
  // What the spreadsheet programs read as the start of a formula (OWASP's list).
  const FORMULA_START = /^[=+\-@\t\r]/;

  // ---- dates: days of the browser's time zone, sent as ISO 8601 with the offset ----------

  const pad = (number, width = 2) => String(number).padStart(width, "0");

  // new Date(y, m, d) reads years below 100 as 19xx; setFullYear does not.
  function localDate(year, monthIndex, day) {
    const date = new Date(2000, 0, 1);
    date.setFullYear(year, monthIndex, day);
    date.setHours(0, 0, 0, 0);
    return date;
  }

  function dayString(date) {
    return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  function parseDay(text) {
    const match = /^(\d{4,6})-(\d{2})-(\d{2})$/.exec(text);
    return match ? localDate(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : null;
  }

  function isoWithOffset(date) {
    const east = -Math.round(date.getTimezoneOffset());
    const sign = east < 0 ? "-" : "+";
    const minutes = Math.abs(east);
    return (
      `${dayString(date)}T${pad(date.getHours())}:${pad(date.getMinutes())}:` +
      `${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}` +
      `${sign}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`
    );
  }

  // The first and last day (inclusive) of a preset, as date-input strings, relative to `now`.
  function presetDays(name, now) {
    const year = now.getFullYear();
    const month = now.getMonth();
    const today = now.getDate();
    const span = {
      today: [localDate(year, month, today), localDate(year, month, today)],
      "last-7-days": [localDate(year, month, today - 6), localDate(year, month, today)],
      "this-month": [localDate(year, month, 1), localDate(year, month + 1, 0)],
      "last-month": [localDate(year, month - 1, 1), localDate(year, month, 0)],
    }[name];
    if (!span) throw new RangeError(`unknown preset ${name}`);
    return { from: dayString(span[0]), to: dayString(span[1]) };
  }

  // The request's start (midnight of the first day) and end (midnight after the last day).
  // A day that is missing or not a date is sent as written, for the API to name the field.
  function bounds(from, to) {
    const first = parseDay(from);
    const last = parseDay(to);
    return {
      start: first ? isoWithOffset(first) : from,
      end: last
        ? isoWithOffset(localDate(last.getFullYear(), last.getMonth(), last.getDate() + 1))
        : to,
    };
  }

  // ---- CSV: the body's rows (label,value), safe to open in a spreadsheet --------------------

  function csvCell(value) {
    let text = String(value);
    if (FORMULA_START.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function csv(body) {
    const lines = ["label,value", ...body.data.map((row) => `${csvCell(row.label)},${row.value}`)];
    return `${lines.join("\n")}\n`;
  }

  window.convstats = Object.freeze({ presetDays, bounds, isoWithOffset, csv, csvCell });

  // ---- the page ------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const numbers = new Intl.NumberFormat();
  const days = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  let current = null; // the last report shown: { body, from, to }
  let inFlight = null;
  let downloadUrl = null;

  function credentials() {
    const userId = sessionStorage.getItem(USER_KEY);
    const token = sessionStorage.getItem(TOKEN_KEY);
    return userId && token ? { userId, token } : null;
  }

  function show(element, text) {
    element.textContent = text;
    element.hidden = !text;
  }

  function showSignIn(message) {
    $("dashboard").hidden = true;
    $("account").hidden = true;
    $("sign-in").hidden = false;
    show($("sign-in-message"), message || "");
    $("user-id").focus();
  }

  function showDashboard(userId) {
    $("sign-in").hidden = true;
    $("account-user").textContent = userId;
    $("account").hidden = false;
    $("dashboard").hidden = false;
  }

  function signOut(message) {
    if (inFlight) inFlight.abort();
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    clearReport();
    clearMessages();
    showSignIn(message);
  }

  function clearMessages() {
    show($("report-message"), "");
    show($("date-error"), "");
    for (const id of ["start-date", "end-date"]) $(id).removeAttribute("aria-invalid");
  }

  function setDays(from, to) {
    $("start-date").value = from;
    $("end-date").value = to;
  }

  function applyPreset() {
    const preset = $("preset").value;
    if (preset === "custom") return false;
    const { from, to } = presetDays(preset, new Date());
    setDays(from, to);
    return true;
  }

  function describePeriod(from, to) {
    const first = parseDay(from);
    const last = parseDay(to);
    if (!first || !last) return "";
    return first.getTime() === last.getTime()
      ? days.format(first)
      : days.formatRange(first, last);
  }

  async function load() {
    const signedIn = credentials();
    if (!signedIn) return showSignIn("");
    if (inFlight) inFlight.abort();
    const request = new AbortController();
    inFlight = request;
    const from = $("start-date").value;
    const to = $("end-date").value;
    const query = new URLSearchParams({ ...bounds(from, to), sort: $("sort").value });
    const report = $("report");
    report.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      response = await fetch(`${ENDPOINT}?${query}`, {
        headers: {
          Accept: "application/json",
          "X-User-Id": signedIn.userId,
          "X-Auth-Token": signedIn.token,
        },
        cache: "no-store",
        credentials: "omit",
        signal: request.signal,
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (request.signal.aborted) return;
      report.setAttribute("aria-busy", "false");
      clearReport();
      show($("report-message"), `Could not reach the server: ${error.message}`);
      return;
    }
    if (request !== inFlight) return;
    inFlight = null;
    report.setAttribute("aria-busy", "false");
    clearMessages();
    if (response.ok && body && body.success && Array.isArray(body.data)) {
      render(body, from, to);
      return;
    }
    clearReport();
    const said = errorText(body, response);
    if (response.status === 401) {
      signOut(said);
    } else if (response.status === 403) {
      show(
        $("report-message"),
        "Your account does not have the view-livechat-reports permission this report " +
          `needs. The server said: ${said}`,
      );
    } else if (response.status === 400 && body && !body.errorType) {
      // Only the four date messages come without an errorType.
      show($("date-error"), said);
      for (const id of ["start-date", "end-date"]) $(id).setAttribute("aria-invalid", "true");
    } else {
      show($("report-message"), `The report is unavailable (HTTP ${response.status}): ${said}`);
    }
  }

  function errorText(body, response) {
    if (body && typeof body.error === "string" && body.error) return body.error;
    if (body && typeof body.message === "string" && body.message) return body.message;
    return response.statusText || `HTTP ${response.status}`;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // An empty name is a real label (the user's name is ""): shown as a note, kept in the CSV.
  function labelNode(tag, className, label) {
    const text = String(label);
    const node = element(tag, className, text || "(empty name)");
    if (!text) node.classList.add("is-empty");
    node.setAttribute("title", text);
    return node;
  }

  function bar(label, value, peak, extraClass) {
    const row = element("li", `bar-row ${extraClass || ""}`.trim());
    row.append(labelNode("span", "bar-label", label));
    const track = element("span", "bar-track");
    const fill = element("span", "bar-fill");
    fill.setAttribute("aria-hidden", "true");
    fill.style.setProperty("--share", String(peak ? value / peak : 0));
    track.append(fill, element("span", "bar-value", numbers.format(value)));
    row.append(track);
    return row;
  }

  function render(body, from, to) {
    current = { body, from, to };
    const rows = body.data;
    const peak = Math.max(body.unspecified, ...rows.map((row) => row.value), 0);
    $("chart").replaceChildren(
      ...rows.map((row) => bar(row.label, row.value, peak)),
      bar("Unspecified (no agent)", body.unspecified, peak, "bar-unspecified"),
    );
    $("chart-empty").hidden = rows.length > 0 || body.unspecified > 0;
    $("table-body").replaceChildren(
      ...rows.map((row) => {
        const heading = labelNode("th", "", row.label);
        heading.setAttribute("scope", "row");
        const line = element("tr");
        line.append(heading, element("td", "num", numbers.format(row.value)));
        return line;
      }),
    );
    $("table-unspecified").textContent = numbers.format(body.unspecified);
    $("table-total").textContent = numbers.format(body.total);
    $("kpi-total").textContent = numbers.format(body.total);
    $("kpi-agents").textContent = numbers.format(rows.length);
    $("kpi-unspecified").textContent = numbers.format(body.unspecified);
    $("period").textContent = describePeriod(from, to);
    $("download").disabled = false;
    $("status").textContent =
      `${numbers.format(body.total)} conversations, ${numbers.format(rows.length)} agents, ` +
      `${numbers.format(body.unspecified)} unspecified: ${describePeriod(from, to)}`;
  }

  function clearReport() {
    current = null;
    $("chart").replaceChildren();
    $("table-body").replaceChildren();
    $("chart-empty").hidden = true;
    for (const id of ["table-unspecified", "table-total", "kpi-total", "kpi-agents", "kpi-unspecified"]) {
      $(id).textContent = "–";
    }
    $("period").textContent = "";
    $("status").textContent = "";
    $("download").disabled = true;
  }

  function download() {
    if (!current) return;
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    // The byte-order mark makes spreadsheet programs read the file as UTF-8.
    const file = new Blob(["\ufeff", csv(current.body)], { type: "text/csv;charset=utf-8" });
    downloadUrl = URL.createObjectURL(file);
    const link = element("a");
    link.href = downloadUrl;
    link.download = `conversations-by-agent_${current.from}_${current.to}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
  }

  function zoneHint() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const offset = isoWithOffset(new Date()).slice(-6);
    return `Days run midnight to midnight in ${zone || "this browser's time zone"} (UTC${offset}).`;
  }

  function start() {
    $("zone").textContent = zoneHint();
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const userId = $("user-id").value.trim();
      const token = $("token").value;
      if (!userId || !token) {
        show($("sign-in-message"), "Enter your user id and token.");
        return;
      }
      sessionStorage.setItem(USER_KEY, userId);
      sessionStorage.setItem(TOKEN_KEY, token);
      $("user-id").value = "";
      $("token").value = "";
      show($("sign-in-message"), "");
      showDashboard(userId);
      $("preset").focus();
      load();
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      applyPreset(); // a preset is relative to today, which may have changed
      load();
    });
    $("preset").addEventListener("change", () => {
      if (applyPreset()) load();
      else $("start-date").focus();
    });
    for (const id of ["start-date", "end-date"]) {
      $(id).addEventListener("input", () => {
        $("preset").value = "custom";
      });
    }
    $("sort").addEventListener("change", load);
    $("download").addEventListener("click", download);

    applyPreset();
    const signedIn = credentials();
    if (signedIn) {
      showDashboard(signedIn.userId);
      load();
    } else {
      showSignIn("");
    }
  }

  start();
})();
