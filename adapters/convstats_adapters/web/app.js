// The Reports page: sign-in, one period, then the five reports of Rocket.Chat's Reports page
// as cards, each drawn when its own answer arrives. Labels come from the workspace and are
// untrusted: they only ever reach the page through textContent and setAttribute, never as
// markup, with the characters that could reorder or break a row shown as escapes.
"use strict";

(() => {
  const DASHBOARDS = "api/v1/livechat/analytics/dashboards";
  const USER_KEY = "convstats.userId";
  const TOKEN_KEY = "convstats.token";
  // What the spreadsheet programs read as the start of a formula (OWASP's list, and NUL).
  const FORMULA_START = /^[=+\-@\t\r\0]/;
  // Rows drawn at first, and added by each "show more": drawing stays bounded by what is
  // shown, whatever the number of rows in the answer.
  const TOP = 10;
  const PAGE = 200;
  // Slices of a donut before the rest is one "Other" slice; colours 0-6 are Okabe and Ito's
  // colour-blind-safe set (style.css), 7 the grey of "Other".
  const SLICES = 7;
  const OTHER_COLOUR = 7;
  // A label longer than this is cut in the list (the table and the hover show it whole).
  const SHOWN_CHARACTERS = 120;

  // The five cards, in the order of upstream's Reports page.
  const REPORTS = [
    {
      key: "status", title: "By status", chart: "donut", sort: false,
      one: "state", many: "states", column: "State", unspecified: "Unspecified",
    },
    {
      key: "source", title: "By source", chart: "donut", sort: false,
      one: "source", many: "sources", column: "Source", unspecified: "Unspecified (no source)",
    },
    {
      key: "department", title: "By department", chart: "bars", sort: true,
      one: "department", many: "departments", column: "Department",
      unspecified: "Unspecified (no department)",
    },
    {
      key: "tags", title: "By tags", chart: "bars", sort: true,
      one: "tag", many: "tags", column: "Tag", unspecified: "Unspecified (no tag)",
    },
    {
      key: "agent", title: "By agent", chart: "bars", sort: true,
      one: "agent", many: "agents", column: "Agent", unspecified: "Unspecified (no agent)",
    },
  ];
  // By-status has four fixed labels: each keeps its colour from one period to the next.
  const STATUS_COLOURS = { Closed: 0, Open: 1, Queued: 2, On_Hold: 3 };
  const STATUS_NAMES = { On_Hold: "On hold" };

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
  function bounds(from, to) {
    const first = parseDay(from);
    const last = parseDay(to);
    return {
      start: isoWithOffset(first),
      end: isoWithOffset(localDate(last.getFullYear(), last.getMonth(), last.getDate() + 1)),
    };
  }

  // What is wrong with a period before it is asked for, in the fields' own names, or "".
  function periodProblem(from, to) {
    const first = parseDay(from);
    const last = parseDay(to);
    if (!first) return { fields: ["start-date"], text: "Choose the From day." };
    if (!last) return { fields: ["end-date"], text: "Choose the To day." };
    if (first > last) {
      return { fields: ["start-date", "end-date"], text: "From is after To: choose a From day on or before To." };
    }
    return null;
  }

  // The server's four date messages (SPEC §1), said again with the fields' names.
  const DATE_MESSAGES = [
    [/"start" query parameter must be a valid date/, ["start-date"], "From is not a date the server accepts."],
    [/"end" query parameter must be a valid date/, ["end-date"], "To is not a date the server accepts."],
    [/less than 1 year apart/, ["start-date", "end-date"], "From and To must be less than a year apart."],
    [/must be before the "end"/, ["start-date", "end-date"], "From must be before To."],
  ];

  // ---- labels: any JSON value, shown as inert text ---------------------------------------

  // Controls (C0, DEL, C1), bidirectional marks, embeddings, overrides and isolates, line and
  // paragraph separators, and lone surrogates: shown as escapes, as the command line does, so
  // that no label can reorder or break the rows around it.
  const UNSAFE =
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const NAMED_ESCAPES = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

  function escaped(char) {
    if (NAMED_ESCAPES[char]) return NAMED_ESCAPES[char];
    const code = char.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  }

  function neutral(text) {
    return text.replace(UNSAFE, escaped);
  }

  // A row's label as the page shows it: { text, note }. A note (in place of a label that is
  // empty, null or missing) is drawn in italics so that it cannot pass for a name.
  function shownLabel(row, report) {
    if (!Object.hasOwn(row, "label")) return { text: "(no label)", note: true };
    const label = row.label;
    if (label === null) return { text: "(null)", note: true };
    if (typeof label === "string") {
      if (!label) return { text: report && report.key === "agent" ? "(empty name)" : "(empty)", note: true };
      if (report && report.key === "status" && STATUS_NAMES[label]) return { text: STATUS_NAMES[label], note: false };
      return { text: neutral(label), note: false };
    }
    return { text: neutral(JSON.stringify(label)), note: false };
  }

  // ---- CSV: the body's rows (label,value), safe to open in a spreadsheet --------------------

  function csvCell(value) {
    let text = String(value);
    if (FORMULA_START.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  // A label that is not a string is written as JSON (null as null); a missing one is empty.
  function csvLabel(row) {
    if (!Object.hasOwn(row, "label")) return "";
    return typeof row.label === "string" ? row.label : JSON.stringify(row.label);
  }

  function csv(body) {
    const lines = ["label,value"];
    for (const row of body.data) lines.push(`${csvCell(csvLabel(row))},${row.value}`);
    lines.push("");
    return lines.join("\n");
  }

  window.convstats = Object.freeze({
    presetDays, bounds, periodProblem, isoWithOffset, csv, csvCell, neutral, shownLabel,
  });

  // ---- the page ------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const numbers = new Intl.NumberFormat();
  const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
  const days = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  const cards = [];
  let period = null; // the period asked for: { from, to, start, end }
  let pageMessage = ""; // said once, whichever card met it first
  let downloadUrl = null;

  function credentials() {
    const userId = sessionStorage.getItem(USER_KEY);
    const token = sessionStorage.getItem(TOKEN_KEY);
    return userId && token ? { userId, token } : null;
  }

  function show(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
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
    const who = $("account-user");
    who.textContent = neutral(userId);
    who.setAttribute("title", neutral(userId));
    $("account").hidden = false;
    $("dashboard").hidden = false;
  }

  function signOut(message) {
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    period = null;
    for (const card of cards) card.reset();
    clearMessages();
    $("period").textContent = "";
    $("status").textContent = "";
    showSignIn(message);
  }

  function clearMessages() {
    pageMessage = "";
    show($("page-message"), "");
    show($("date-error"), "");
    for (const id of ["start-date", "end-date"]) $(id).removeAttribute("aria-invalid");
  }

  function markDates(fields, text) {
    show($("date-error"), text);
    for (const id of fields) $(id).setAttribute("aria-invalid", "true");
  }

  function sayOnce(text) {
    if (pageMessage) return;
    pageMessage = text;
    show($("page-message"), text);
  }

  function applyPreset() {
    const preset = $("preset").value;
    if (preset === "custom") return false;
    const { from, to } = presetDays(preset, new Date());
    $("start-date").value = from;
    $("end-date").value = to;
    return true;
  }

  function describePeriod(from, to) {
    const first = parseDay(from);
    const last = parseDay(to);
    return first.getTime() === last.getTime() ? days.format(first) : days.formatRange(first, last);
  }

  // Every card is emptied at once and asked again: no figure of the earlier period stays on
  // screen under the new one, and each card is drawn as soon as its own answer arrives.
  function loadAll() {
    const signedIn = credentials();
    if (!signedIn) return showSignIn("");
    clearMessages();
    const from = $("start-date").value;
    const to = $("end-date").value;
    const problem = periodProblem(from, to);
    if (problem) {
      period = null;
      for (const card of cards) card.reset();
      $("period").textContent = "";
      markDates(problem.fields, problem.text);
      return;
    }
    period = { from, to, ...bounds(from, to) };
    $("period").textContent = describePeriod(from, to);
    $("status").textContent = "";
    for (const card of cards) card.load(period, signedIn);
  }

  function errorText(body, response) {
    if (body && typeof body.error === "string" && body.error) return body.error;
    if (body && typeof body.message === "string" && body.message) return body.message;
    return response.statusText || `HTTP ${response.status}`;
  }

  // A body the page can draw: success, a number total, and rows with number values.
  function readable(body) {
    if (!body || body.success !== true || !Array.isArray(body.data)) return false;
    if (typeof body.total !== "number") return false;
    if ("unspecified" in body && typeof body.unspecified !== "number") return false;
    for (const row of body.data) {
      if (row === null || typeof row !== "object" || typeof row.value !== "number") return false;
    }
    return true;
  }

  // Called by each card when its answer is in: the page-wide outcomes (401, 403, the dates)
  // are said once, and when every card is in, the status line says so.
  function settled(card, outcome) {
    if (outcome.status === 401) {
      signOut(outcome.said);
      return;
    }
    if (outcome.status === 403) {
      sayOnce(
        "Your account does not have the view-livechat-reports permission these reports " +
          `need. The server said: ${outcome.said}`,
      );
    } else if (outcome.dates) {
      const known = DATE_MESSAGES.find(([pattern]) => pattern.test(outcome.said));
      const fields = known ? known[1] : ["start-date", "end-date"];
      markDates(fields, known ? `${known[2]} The server said: ${outcome.said}` : outcome.said);
    }
    if (cards.some((each) => each.state === "loading")) return;
    const failed = cards.filter((each) => each.state === "error");
    const drawn = cards.filter((each) => each.state === "drawn" || each.state === "empty");
    let text = `${drawn.length} of ${cards.length} reports drawn for ${$("period").textContent}`;
    if (failed.length) text += `; unavailable: ${failed.map((each) => each.report.title.toLowerCase()).join(", ")}`;
    $("status").textContent = `${text}.`;
    $("cards").dataset.settled = "true";
    performance.mark("convstats-reports-settled");
  }

  function download(card) {
    if (!card.body) return;
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    // The byte-order mark makes spreadsheet programs read the file as UTF-8.
    const file = new Blob(["\ufeff", csv(card.body)], { type: "text/csv;charset=utf-8" });
    downloadUrl = URL.createObjectURL(file);
    const link = element("a");
    link.href = downloadUrl;
    link.download = `conversations-by-${card.report.key}_${card.period.from}_${card.period.to}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
  }

  // ---- one card ------------------------------------------------------------------------

  function makeCard(report) {
    const node = $("card-template").content.firstElementChild.cloneNode(true);
    const part = (selector) => node.querySelector(selector);
    const titleId = `card-${report.key}-title`;
    node.id = `card-${report.key}`;
    node.dataset.report = report.key;
    node.setAttribute("aria-labelledby", titleId);
    const title = part(".card-title");
    title.id = titleId;
    title.textContent = report.title;
    part(".unspecified-name").textContent = report.unspecified;
    part(".table-unspecified-name").textContent = report.unspecified;
    part(".rows-name").textContent = report.many[0].toUpperCase() + report.many.slice(1);
    part(".table-key").textContent = report.column;
    part(".rows").setAttribute("aria-label", `Conversations per ${report.one}`);
    part(".table-details summary").textContent = `Table of conversations per ${report.one}`;
    part(".filter-label").textContent = `Filter ${report.many}`;
    part(".download").setAttribute("aria-label", `Download CSV: conversations ${report.title.toLowerCase()}`);
    const sort = part(".sort");
    if (report.sort) {
      part(".sort-field").hidden = false;
      part(".sort-label").textContent = "Sort";
      sort.setAttribute("aria-label", `Sort ${report.many}`);
    }
    if (report.chart === "donut") {
      node.classList.add("card-donut");
      part(".donut-wrap").hidden = false;
    }

    const card = {
      report,
      node,
      state: "idle",
      body: null,
      period: null,
      request: null,
      limit: TOP,
      filter: "",
      searchable: null, // the rows' shown labels in lower case, made on the first filter
      peak: 0,
      sum: 0,
    };

    function figures(total, unspecified, rows) {
      part(".figure-total").textContent = total;
      part(".table-total").textContent = total;
      part(".figure-unspecified").textContent = unspecified;
      part(".table-unspecified").textContent = unspecified;
      part(".figure-rows").textContent = rows;
    }

    function setState(state) {
      card.state = state;
      node.dataset.state = state;
      node.setAttribute("aria-busy", String(state === "loading"));
    }

    card.reset = (state = "idle") => {
      if (card.request) card.request.abort();
      card.request = null;
      card.body = null;
      card.searchable = null;
      card.limit = TOP;
      card.filter = "";
      part(".filter").value = "";
      setState(state);
      figures("–", "–", "–");
      part(".figure-unspecified").classList.remove("is-note");
      part(".rows").replaceChildren();
      part(".numbers tbody").replaceChildren();
      part(".donut").replaceChildren();
      part(".rows-tools").hidden = true;
      part(".card-empty").hidden = true;
      show(part(".card-message"), "");
      part(".download").disabled = true;
    };

    card.load = async (asked, signedIn) => {
      card.reset("loading");
      $("cards").dataset.settled = "false";
      const request = new AbortController();
      card.request = request;
      card.period = asked;
      const query = new URLSearchParams({ start: asked.start, end: asked.end });
      if (report.sort) query.set("sort", sort.value);
      let response;
      let body = null;
      try {
        response = await fetch(`${DASHBOARDS}/conversations-by-${report.key}?${query}`, {
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
        card.request = null;
        setState("error");
        show(part(".card-message"), `Could not reach the server: ${error.message}`);
        settled(card, { status: 0 });
        return;
      }
      if (card.request !== request) return; // a newer request replaced this one
      card.request = null;
      if (response.ok && readable(body)) {
        try {
          draw(body);
        } catch (error) {
          // Never half a report, nor an earlier one: the card says what went wrong.
          card.reset("error");
          show(part(".card-message"), `This report could not be drawn: ${error.message}`);
        }
        settled(card, { status: response.status });
        return;
      }
      const said = errorText(body, response);
      // Only the four date messages come without an errorType.
      const dates = response.status === 400 && body && !body.errorType;
      if (response.status === 403 || response.status === 401 || dates) {
        setState(response.status === 403 ? "forbidden" : "refused");
      } else {
        setState("error");
        show(
          part(".card-message"),
          response.ok
            ? "The server's answer could not be read."
            : `Unavailable (HTTP ${response.status}): ${said}`,
        );
      }
      settled(card, { status: response.status, said, dates });
    };

    function draw(body) {
      card.body = body;
      const rows = body.data;
      let peak = 0;
      let sum = 0;
      let nonzero = false;
      for (const row of rows) {
        if (row.value > peak) peak = row.value;
        sum += row.value;
        if (row.value) nonzero = true;
      }
      card.peak = peak;
      card.sum = sum;
      const hasUnspecified = typeof body.unspecified === "number";
      figures(
        numbers.format(body.total),
        hasUnspecified ? numbers.format(body.unspecified) : "not reported",
        numbers.format(rows.length),
      );
      part(".figure-unspecified").classList.toggle("is-note", !hasUnspecified);
      const empty = body.total === 0 && !nonzero && !body.unspecified;
      setState(empty ? "empty" : "drawn");
      part(".card-empty").hidden = !empty;
      part(".download").disabled = false;
      if (report.chart === "donut") drawDonut(rows, sum);
      drawRows();
    }

    // The indexes of the rows to show: the first `limit` of the answer, or of those the
    // filter matches; and how many there are in all.
    function visibleRows() {
      const rows = card.body.data;
      const shown = [];
      if (!card.filter) {
        for (let index = 0; index < rows.length && index < card.limit; index += 1) shown.push(index);
        return { shown, matching: rows.length };
      }
      if (!card.searchable) {
        card.searchable = rows.map((row) => shownLabel(row, report).text.toLowerCase());
      }
      let matching = 0;
      for (let index = 0; index < rows.length; index += 1) {
        if (card.searchable[index].includes(card.filter)) {
          matching += 1;
          if (shown.length < card.limit) shown.push(index);
        }
      }
      return { shown, matching };
    }

    function drawRows() {
      const { shown, matching } = visibleRows();
      const list = document.createDocumentFragment();
      const table = document.createDocumentFragment();
      for (const index of shown) {
        const row = card.body.data[index];
        list.append(report.chart === "donut" ? legendRow(row, index) : barRow(row));
        table.append(tableRow(row));
      }
      part(".rows").replaceChildren(list);
      part(".numbers tbody").replaceChildren(table);

      const total = card.body.data.length;
      const tools = part(".rows-tools");
      tools.hidden = total <= TOP;
      const left = matching - shown.length;
      const more = part(".more");
      more.hidden = left <= 0;
      more.textContent = left <= PAGE ? `Show all ${numbers.format(matching)}` : `Show ${PAGE} more`;
      part(".fewer").hidden = card.limit <= TOP;
      const of = card.filter ? `matching ${report.many}` : report.many;
      part(".shown").textContent =
        `Showing ${numbers.format(shown.length)} of ${numbers.format(matching)} ${of}`;
    }

    function labelNode(tag, className, row, cut) {
      const { text, note } = shownLabel(row, report);
      const shown = cut && text.length > SHOWN_CHARACTERS ? `${text.slice(0, SHOWN_CHARACTERS)}…` : text;
      const label = element(tag, className, shown);
      label.setAttribute("dir", "auto"); // an isolate: a right-to-left name stays in its box
      label.setAttribute("title", text);
      if (note) label.classList.add("is-note");
      return label;
    }

    // "label, value" for a screen reader; the comma is not drawn.
    function valueNode(value, className) {
      const node = element("span", className);
      node.append(element("span", "visually-hidden", ", "), numbers.format(value));
      return node;
    }

    function barRow(row) {
      const line = element("li", "bar-row");
      line.append(labelNode("span", "row-label", row, true));
      const track = element("span", "bar-track");
      const fill = element("span", "bar-fill");
      fill.setAttribute("aria-hidden", "true");
      fill.style.setProperty("--share", String(card.peak ? row.value / card.peak : 0));
      track.append(fill, valueNode(row.value, "row-value"));
      line.append(track);
      return line;
    }

    function colourOf(row, index) {
      if (report.key === "status" && Object.hasOwn(STATUS_COLOURS, row.label)) return STATUS_COLOURS[row.label];
      return index < SLICES ? index : OTHER_COLOUR;
    }

    function legendRow(row, index) {
      const line = element("li", "legend-row");
      const swatch = element("span", `swatch colour-${colourOf(row, index)}`);
      swatch.setAttribute("aria-hidden", "true");
      line.append(swatch, labelNode("span", "row-label", row, true), valueNode(row.value, "row-value"));
      const share = element("span", "row-share");
      share.append(element("span", "visually-hidden", ", "), percent.format(card.sum ? row.value / card.sum : 0));
      line.append(share);
      return line;
    }

    function tableRow(row) {
      const line = element("tr");
      const heading = element("th");
      heading.setAttribute("scope", "row");
      heading.append(labelNode("div", "cell-label", row, false));
      line.append(heading, element("td", "num", numbers.format(row.value)));
      return line;
    }

    const SVG = "http://www.w3.org/2000/svg";
    // A circle of circumference 100, so that a slice's dash is its percentage.
    const RADIUS = "15.91549430918954";

    function circle(className) {
      const ring = document.createElementNS(SVG, "circle");
      ring.setAttribute("class", className);
      ring.setAttribute("cx", "21");
      ring.setAttribute("cy", "21");
      ring.setAttribute("r", RADIUS);
      return ring;
    }

    function drawDonut(rows, sum) {
      const parts = document.createDocumentFragment();
      parts.append(circle("donut-ring"));
      const slices = [];
      let rest = 0;
      rows.forEach((row, index) => {
        if (index < SLICES) slices.push({ value: row.value, colour: colourOf(row, index) });
        else rest += row.value;
      });
      if (rest) slices.push({ value: rest, colour: OTHER_COLOUR });
      let before = 0;
      const gap = slices.filter((slice) => slice.value).length > 1 ? 0.6 : 0;
      for (const slice of slices) {
        if (!slice.value || !sum) continue;
        const length = (slice.value / sum) * 100;
        const arc = circle(`donut-slice colour-${slice.colour}`);
        arc.setAttribute("stroke-dasharray", `${Math.max(length - gap, 0.2)} ${100 - Math.max(length - gap, 0.2)}`);
        arc.setAttribute("stroke-dashoffset", String(25 - before)); // from twelve o'clock
        parts.append(arc);
        before += length;
      }
      part(".donut").replaceChildren(parts);
    }

    part(".download").addEventListener("click", () => download(card));
    sort.addEventListener("change", () => {
      const signedIn = credentials();
      if (period && signedIn) card.load(period, signedIn);
    });
    part(".more").addEventListener("click", () => {
      card.limit += PAGE;
      drawRows();
    });
    part(".fewer").addEventListener("click", () => {
      card.limit = TOP;
      drawRows();
    });
    part(".filter").addEventListener("input", (event) => {
      if (!card.body) return;
      card.filter = event.target.value.trim().toLowerCase();
      card.limit = TOP;
      drawRows();
    });
    card.reset();
    return card;
  }

  // ---- what the server runs --------------------------------------------------------------

  // The server's reading changes the totals (SPEC §3, §7): the page says which it is.
  async function showMode() {
    let settings = null;
    try {
      const response = await fetch(`${DASHBOARDS}/settings`, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
      if (response.ok) settings = await response.json();
    } catch {
      return;
    }
    if (!settings || !("compat" in settings)) return;
    const flag = element("code", "", "--compat rocketchat");
    const mode = $("mode");
    if (settings.compat === "rocketchat") {
      mode.replaceChildren(
        "Totals as Rocket.Chat computes them (the server runs ",
        flag,
        "): a total is the sum of its rows, rooms Rocket.Chat drops are left out, and by " +
          "status and by source report no unspecified.",
      );
    } else {
      mode.replaceChildren(
        "Totals count every conversation of the period once per report: the rows plus the " +
          "unspecified. Rocket.Chat's own totals differ; a server run with ",
        flag,
        " gives them.",
      );
    }
    mode.hidden = false;
    $("mode").dataset.compat = settings.compat || "";
  }

  function zoneHint() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const offset = isoWithOffset(new Date()).slice(-6);
    return `Days run midnight to midnight in ${zone || "this browser's time zone"} (UTC${offset}).`;
  }

  function start() {
    $("zone").textContent = zoneHint();
    for (const report of REPORTS) {
      const card = makeCard(report);
      cards.push(card);
      $("cards").append(card.node);
    }
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
      loadAll();
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      applyPreset(); // a preset is relative to today, which may have changed
      loadAll();
    });
    $("preset").addEventListener("change", () => {
      if (applyPreset()) loadAll();
      else $("start-date").focus();
    });
    for (const id of ["start-date", "end-date"]) {
      $(id).addEventListener("input", () => {
        $("preset").value = "custom";
      });
    }

    showMode();
    applyPreset();
    const signedIn = credentials();
    if (signedIn) {
      showDashboard(signedIn.userId);
      loadAll();
    } else {
      showSignIn("");
    }
  }

  start();
})();
