"""The ``convstats`` command line: the composition root that opens a store and runs a report.

Each report of the Reports page is a subcommand (``conversations-by-status``, ``-source``,
``-department``, ``-tags``, ``-agent``). The options are checked before any data is read;
then the small collections (users, permissions, units) are read and the request passes the
endpoint's checks in upstream's order (:func:`convstats.http.check_request`: who asks, the
permission, the sort, the dates), and only then are the rooms read. It answers with the
endpoint's bodies: ``--format json`` prints the body :mod:`convstats.http` gives for the
outcome, errors included, and the exit status follows it. Whatever the input, it never shows
a traceback: names from the data are escaped in the table and made inert for spreadsheets in
CSV, a closed pipe ends it quietly and Ctrl-C with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import json
import os
import sys
import textwrap
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timezone, tzinfo
from typing import Any, NoReturn, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from convstats import __version__
from convstats.authz import OperatorAuthority, RocketChatAuthority
from convstats.errors import ConvstatsError, InvalidParams, RequestError
from convstats.http import Query, check_request, error_response, json_value, report_body
from convstats.model import ABSENT, Grouping, MonitorRule, Ranked, Report, TotalMode
from convstats.ports import Authority, Directory, RoomStore, Workspace
from convstats.report import Conversations
from convstats_adapters import export, files, serve
from convstats_adapters.environment import VARIABLES, EnvironmentOptions, InvalidVariable

__all__ = ["main", "run"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_REQUEST = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

_BAR_WIDTH = 30
#: The widest a name or an id is shown in the table, in terminal columns.
_CELL_WIDTH = 40
_ELLIPSIS = "\u2026"
#: Seconds between two progress lines, and before the first one.
_PROGRESS_INTERVAL = 1.0

#: The reports a subcommand answers, by subcommand name.
REPORT_COMMANDS: dict[str, Grouping] = {grouping.route: grouping for grouping in Grouping}

#: What each report counts, for its --help.
_COUNTS = {
    Grouping.STATUS: (
        "count the conversations by status: Open, Closed, Queued, On_Hold",
        "Count the livechat conversations created in [START, END) by their state: Open (an "
        "agent serves it), Queued (waiting for one), On_Hold or Closed.",
    ),
    Grouping.SOURCE: (
        "count the conversations by source: widget, email, an app …",
        "Count the livechat conversations created in [START, END) by where they came from "
        "(source.type and source.alias), with those of no known source as 'unspecified'.",
    ),
    Grouping.DEPARTMENT: (
        "count the conversations by department",
        "Count the livechat conversations created in [START, END) per department, with "
        "those of no department as 'unspecified'.",
    ),
    Grouping.TAGS: (
        "count the conversations by tag",
        "Count the livechat conversations created in [START, END) per tag (a conversation "
        "counts for each of its tags), with the untagged ones as 'unspecified'.",
    ),
    Grouping.AGENT: (
        "count the conversations each agent served in a time window",
        "Count the livechat conversations created in [START, END), per agent that "
        "serves them, with the conversations nobody serves as 'unspecified'.",
    ),
}

_EXIT_STATUS = """\
Options that name the workspace or the service's settings may come from the environment
instead, each from the variable its help names (an option given wins): CONVSTATS_MONGODB_URI
keeps a MongoDB password off the command line, where ps shows it.

exit status: 0 success; 2 a bad request (400); 3 not authenticated or not permitted
(401/403); 130 interrupted (Ctrl-C); 1 anything else (unreadable data, storage failure),
with one line on stderr.
"""


def _epilog(grouping: Grouping) -> str:
    command = grouping.route
    sort = "--sort '{\"total\": -1}' " if grouping.takes_sort else ""
    return f"""\
examples:
  convstats {command} --data examples/sample \\
      --start 2024-03-01 --end 2024-04-01
  convstats {command} --data export/ --start 2024-03-01T00:00:00Z \\
      --end 2024-03-08T00:00:00Z {sort}--format json
  convstats {command} --mongo mongodb://localhost:27017/rocketchat \\
      --start 2024-03-01 --end 2024-04-01 --user <monitor user id> --format csv

{_EXIT_STATUS}"""


class _UsageError(Exception):
    """An option the command cannot use (exit status 2); the message says which and why."""

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self)


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":  # needs no time zone database
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "America"
        raise argparse.ArgumentTypeError(
            f"unknown time zone {name!r} (use an IANA name such as UTC or Europe/Berlin)"
        ) from None


def _workspace_options() -> _Parser:
    """The options every command shares: where the workspace is, and how to read it."""
    shared = _Parser(add_help=False)
    # Required, but either may come from the environment: _check_options says so.
    source = shared.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        metavar="PATH",
        help="a JSON file mapping collection names to documents, or a directory of "
        "mongoexport files named <collection>.json or <collection>.json.gz (JSON Lines or "
        "--jsonArray); only the report's collections are read, and the rooms must be there",
    )
    source.add_argument(
        "--mongo",
        metavar="URI",
        help="a MongoDB URI (mongodb:// or mongodb+srv://) of a Rocket.Chat database; "
        "needs the 'mongo' extra",
    )
    shared.add_argument(
        "--database",
        metavar="NAME",
        help="with --mongo: the database name, when the URI names none",
    )
    shared.add_argument(
        "--compat",
        choices=["rocketchat"],
        help="rocketchat: upstream's body to the byte: total = the rows' sum (by-status: every "
        "room), and its drops and merges (default: total = rows + unspecified, no room lost)",
    )
    shared.add_argument(
        "--monitor-scope",
        choices=[rule.value for rule in MonitorRule],
        default=MonitorRule.CURRENT.value,
        help="which rooms a monitor sees: current (with rooms that have no department) or "
        "legacy (units' departments only) (default: current)",
    )
    shared.add_argument(
        "--tz",
        type=_zone,
        default=timezone.utc,
        metavar="ZONE",
        help="IANA time zone of dates without an offset and of the one-year rule's day "
        "boundaries (default: UTC)",
    )
    return shared


def _parsers() -> tuple[
    argparse.ArgumentParser, dict[str, argparse.ArgumentParser], dict[str, EnvironmentOptions]
]:
    """The command's parser, and its subparsers and their environment options by command name."""
    parser = _Parser(
        prog="convstats",
        description=(
            "Omnichannel conversations by status, source, department, tags and agent, as "
            "the reports of Rocket.Chat's Reports page compute them."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    workspace = _workspace_options()
    parsers: dict[str, argparse.ArgumentParser] = {
        name: _report_command(commands, grouping, workspace)
        for name, grouping in REPORT_COMMANDS.items()
    }
    parsers["serve"] = serve.add_command(commands, parents=[workspace])
    shared = EnvironmentOptions()
    for command in parsers.values():
        shared.add(command)
    environments = dict.fromkeys(parsers, shared)
    parsers["export"] = export.add_command(commands)
    # Export's --mongo is an option of its own: its variable is read for it alone.
    environments["export"] = EnvironmentOptions()
    environments["export"].add(parsers["export"])
    return parser, parsers, environments


def _report_command(
    commands: Any, grouping: Grouping, workspace: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """The subcommand of ``grouping``'s report."""
    summary, description = _COUNTS[grouping]
    report: argparse.ArgumentParser = commands.add_parser(
        grouping.route,
        parents=[workspace],
        help=summary,
        description=textwrap.fill(
            f"{description} Validation, labels and order follow GET "
            f"/api/v1/livechat/analytics/dashboards/{grouping.route}.",
            width=88,
            break_on_hyphens=False,
        ),
        epilog=_epilog(grouping),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--start", metavar="S", required=True, help="window start, ISO 8601, inclusive"
    )
    report.add_argument("--end", metavar="E", required=True, help="window end, ISO 8601, exclusive")
    if grouping.takes_sort:
        default = '{"name": 1}' if grouping is Grouping.AGENT else '{"total": 1}'
        sorting = (
            "order of the rows, e.g. '{\"total\": -1}'; keys name|label, total|value, _id; "
            f"values 1 or -1 (default {default})"
        )
    else:
        sorting = "accepted and ignored, as the endpoint does: the rows are by value, descending"
    report.add_argument("--sort", metavar="JSON", help=sorting)
    report.add_argument(
        "--user",
        metavar="USER_ID",
        help="answer as this user: unknown users get 401, users without "
        "view-livechat-reports 403, monitors see only their units (default: the operator, "
        "who sees everything)",
    )
    columns = ",".join([*_csv_header(grouping), "value"])
    report.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="table: for people; json: exactly the endpoint's response body; "
        f"csv: {columns} rows (default: table)",
    )
    report.set_defaults(grouping=grouping)
    return report


def _check_options(
    args: argparse.Namespace, report: argparse.ArgumentParser, from_environment: frozenset[str]
) -> None:
    """Refuse options that cannot apply together, before anything is opened."""
    if args.data is None and args.mongo is None:
        raise _UsageError(
            "one of the arguments --data --mongo is required "
            f"(or {VARIABLES['data']} or {VARIABLES['mongo']} in the environment)",
            report,
        )
    if args.database is not None and args.mongo is None:
        if "database" not in from_environment:
            raise _UsageError("argument --database: only applies with --mongo", report)
        args.database = None  # the environment's database is the one of a MongoDB source
    if args.data == "":  # Path("") is the current directory, which nobody means by it
        raise _UsageError("argument --data: an empty path", report)


@attrs.define
class _Progress:
    """Shows on one terminal line how the load goes, about once a second.

    The documents read and their rate; from the streaming loader, the bytes read of the
    file's, the rate and the time left, then each step of building the store. Nothing is
    shown for a load shorter than the interval; :meth:`finish` erases the line.
    """

    stream: TextIO
    clock: Callable[[], float]
    verb: str = "reading"
    _shown_at: float = attrs.field(init=False)
    _last_call: float = attrs.field(init=False)
    _collection: str | None = attrs.field(init=False, default=None)
    _collection_start: float = attrs.field(init=False)
    _visible: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self._shown_at = self._last_call = self._collection_start = self.clock()

    def __call__(
        self,
        collection: str,
        documents: int,
        *,
        read: int | None = None,
        total: int | None = None,
        step: str | None = None,
    ) -> None:
        now = self.clock()
        if collection != self._collection:
            # Readers report each collection's end, so the last call is when this one began.
            self._collection, self._collection_start = collection, self._last_call
        self._last_call = now
        if now - self._shown_at < _PROGRESS_INTERVAL:
            return
        elapsed = now - self._collection_start
        if step is not None:
            line = f"{collection}: {step} ({documents:,} documents, {elapsed:,.0f} s)"
        elif read is not None and total and elapsed > 0:
            rate = read / elapsed
            left = f", about {(total - read) / rate:,.0f} s left" if rate > 0 else ""
            line = (
                f"{self.verb} {collection}: {_size(read)} of {_size(total)} "
                f"({100 * read / total:.0f}%), {documents:,} documents, {_size(rate)}/s{left}"
            )
        else:
            rate_text = f", {documents / elapsed:,.0f}/s" if elapsed > 0 else ""
            line = f"{self.verb} {collection}: {documents:,}{rate_text}"
        self.stream.write(f"\r\x1b[Kconvstats: {line}")
        self.stream.flush()
        self._shown_at, self._visible = now, True

    def finish(self) -> None:
        if self._visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._visible = False


def _size(size: float) -> str:
    """Bytes for people: ``512 KiB``, ``3.1 MiB``, ``503 MiB``, ``4.1 GiB``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return (
                f"{size / scale:,.1f} {unit}"
                if size < 10 * scale
                else f"{size / scale:,.0f} {unit}"
            )
    return f"{size / 2**10:,.0f} KiB"


@contextlib.contextmanager
def _showing(progress: _Progress | None) -> Iterator[None]:
    if progress is None:
        yield
        return
    try:
        with files.reporting_progress(progress):
            yield
    finally:
        progress.finish()  # before any message, which then starts on a clean line


@attrs.frozen
class _Workspace:
    """A workspace opened in two steps: its directory at once, its rooms when asked."""

    directory: Directory
    open_rooms: Callable[[], RoomStore]


@contextlib.contextmanager
def _open_workspace(args: argparse.Namespace, progress: _Progress | None) -> Iterator[_Workspace]:
    """The directory of ``--data`` or ``--mongo``, and a way to its rooms.

    A data folder's small collections are read at once and its rooms only when asked, so
    that a refused request never reads them.
    """
    if args.data is not None:
        from convstats_adapters.memory import MemoryDirectory, MemoryRooms, MemoryStore

        with _showing(progress):
            directory = MemoryDirectory.from_path(args.data)

        def rooms() -> RoomStore:
            with _showing(progress):
                return MemoryStore.of(MemoryRooms.from_path(args.data), directory)

        yield _Workspace(directory, rooms)
        return
    with _mongo_store(args) as store:
        yield _Workspace(store, lambda: store)


@contextlib.contextmanager
def _open_store(args: argparse.Namespace, progress: _Progress | None) -> Iterator[Workspace]:
    """The whole workspace of ``--data`` or ``--mongo``, for the HTTP service."""
    if args.data is not None:
        from convstats_adapters.memory import MemoryStore

        with _showing(progress):
            yield MemoryStore.from_path(args.data)
        return
    with _mongo_store(args) as store:
        yield store


@contextlib.contextmanager
def _mongo_store(args: argparse.Namespace) -> Iterator[Workspace]:
    from convstats_adapters.mongo import MongoStore  # MissingDependency without the extra

    try:
        store = MongoStore(args.mongo, database=args.database)
    except ValueError as error:  # a malformed URI or no database to read
        raise _UsageError(f"--mongo/--database: {error}") from None
    with store:
        yield store


def _export(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    err: TextIO,
    clock: Callable[[], float],
) -> int:
    if args.mongo is None:
        raise _UsageError(
            "the following arguments are required: --mongo "
            f"(or {VARIABLES['mongo']} in the environment)",
            parser,
        )
    if args.out == "":  # Path("") is the current directory, which nobody means by it
        raise _UsageError("argument --out: an empty path", parser)
    from convstats_adapters.mongo import MongoStore  # MissingDependency without the extra

    try:
        store = MongoStore(args.mongo, database=args.database)
    except ValueError as error:  # a malformed URI or no database to read
        raise _UsageError(f"--mongo/--database: {error}", parser) from None
    progress = _Progress(err, clock, verb="writing") if err.isatty() else None
    with store:
        try:
            written = export.export_workspace(
                store,
                args.out,
                compress=args.gzip,
                with_login_tokens=args.with_login_tokens,
                replace=args.force,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.finish()
    for exported in written:
        print(f"convstats: wrote {exported.documents:,} documents to {exported.path}", file=err)
    return EXIT_OK


def _exit_status(status: int) -> int:
    if status in (401, 403):
        return EXIT_REFUSED
    if 400 <= status < 500:
        return EXIT_BAD_REQUEST
    return EXIT_FAILURE


# -- names from the data, shown safely -----------------------------------------------------

_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Bidirectional overrides, embeddings, isolates and marks: they reorder what follows them,
# which could make one row read as another.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Cc: C0, DEL and C1 controls (ESC starts terminal sequences); Cs: lone surrogates, which
# cannot be written as text; Zl, Zp: line and paragraph separators, which break lines.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _escape(char: str) -> str | None:
    """How ``char`` is shown when it must not reach the terminal as itself, else ``None``."""
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if char not in _BIDI_CONTROLS and unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return None
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _columns(char: str) -> int:
    """The terminal columns ``char`` takes: 0 for marks and joiners, 2 for wide characters."""
    if char == "\u00ad":
        return 1  # the soft hyphen: a format character that terminals draw
    if unicodedata.category(char) in ("Mn", "Me", "Cf") or "\u1160" <= char <= "\u11ff":
        return 0  # combining marks, variation selectors, zero-width joiners; Hangul jamo vowels
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _cell(text: str, limit: int = _CELL_WIDTH) -> tuple[str, int]:
    """``text`` made safe for a terminal and at most ``limit`` columns wide, and its width.

    Control characters are shown as escapes; a longer text ends in an ellipsis. Marks stay
    with the character they modify, so shortening never separates them.
    """
    texts: list[str] = []
    widths: list[int] = []
    for char in text:
        escape = _escape(char)
        if escape is not None:
            texts.append(escape)
            widths.append(len(escape))
        elif (width := _columns(char)) == 0 and texts:
            texts[-1] += char
        else:
            texts.append(char)
            widths.append(width)
    total = sum(widths)
    if total <= limit:
        return "".join(texts), total
    used = count = 0
    while used + widths[count] <= limit - 1:  # bounded: total > limit
        used += widths[count]
        count += 1
    return "".join(texts[:count]) + _ELLIPSIS, used + 1


def _padded(cell: tuple[str, int], width: int) -> str:
    text, used = cell
    return text + " " * (width - used)


def _text(value: Any, upstream: bool) -> str:
    """A key or label as text: a string as itself, other stored values as JSON.

    A missing value is empty, and so is ``None`` in this project's reading, where it stands
    for a source's type or alias that is not a string.
    """
    if isinstance(value, str):
        return value
    if value is ABSENT or (value is None and not upstream):
        return ""
    return json.dumps(json_value(value), ensure_ascii=False)


#: Per report, the columns that name a row: (table heading, CSV heading, the cell of a row).
_NAMES: dict[Grouping, tuple[tuple[str, str, Callable[[Ranked], Any]], ...]] = {
    Grouping.STATUS: (("Status", "status", lambda row: row[0]),),
    Grouping.SOURCE: (
        ("Source", "label", lambda row: row[0]),
        ("Type", "type", lambda row: row[1][0]),
        ("Alias", "alias", lambda row: row[1][1]),
    ),
    Grouping.DEPARTMENT: (
        ("Department", "label", lambda row: row[0]),
        # Upstream's rows are names: no id (None), shown as none.
        ("Department id", "department_id", lambda row: ABSENT if row[1] is None else row[1]),
    ),
    Grouping.TAGS: (("Tag", "tag", lambda row: row[0]),),
    Grouping.AGENT: (
        ("Agent", "label", lambda row: row[0]),
        ("Agent id", "agent_id", lambda row: row[1]),
    ),
}
#: What the rows are, for the table's title and its summary line.
_NOUNS = {
    Grouping.STATUS: ("status", "Statuses"),
    Grouping.SOURCE: ("source", "Sources"),
    Grouping.DEPARTMENT: ("department", "Departments"),
    Grouping.TAGS: ("tag", "Tags"),
    Grouping.AGENT: ("agent", "Agents"),
}
_EMPTY = {
    Grouping.STATUS: "(no conversation in this window)",
    Grouping.SOURCE: "(no conversation of a known source in this window)",
    Grouping.DEPARTMENT: "(no conversation of a department in this window)",
    Grouping.TAGS: "(no tagged conversation in this window)",
    Grouping.AGENT: "(no agent served a conversation in this window)",
}


def _table(report: Report) -> str:
    window, grouping, rows = report.window, report.grouping, report.ranked
    upstream = report.total_mode is TotalMode.ROCKETCHAT

    def shown(value: Any) -> str:
        return '""' if value == "" else _text(value, upstream)

    columns = _NAMES[grouping]
    cells = [[_cell(shown(cell(row))) for _, _, cell in columns] for row in rows]
    widths = [
        max([len(heading), *(line[at][1] for line in cells)])
        for at, (heading, _, _) in enumerate(columns)
    ]
    digits = max([len("Conversations"), *(len(str(value)) for _, _, value in rows)])
    peak = max([value for _, _, value in rows], default=0)
    noun, plural = _NOUNS[grouping]
    headings = "  ".join(
        f"{heading:<{width}}" for (heading, _, _), width in zip(columns, widths, strict=True)
    )
    lines = [
        f"Conversations by {noun}, {window.start.isoformat()} to {window.end.isoformat()} "
        "(end excluded)",
        "",
        f"{headings}  {'Conversations':>{digits}}",
    ]
    for line, (_, _, value) in zip(cells, rows, strict=True):
        bar = "#" * max(1, round(_BAR_WIDTH * value / peak)) if peak else ""
        names = "  ".join(_padded(cell, width) for cell, width in zip(line, widths, strict=True))
        lines.append(f"{names}  {value:>{digits}}  {bar}".rstrip())
    if not rows:
        lines.append(_EMPTY[grouping])
    compat = report.total_mode is TotalMode.ROCKETCHAT
    total_note = "  (Rocket.Chat's reading)" if compat else ""
    lines += [
        "",
        f"{plural}: {len(rows)}   In rows: {report.assigned}   "
        f"Unspecified: {report.unspecified}   Total: {report.total}{total_note}",
    ]
    return "\n".join(lines)


# A cell starting with one of these is run as a formula by spreadsheets (OWASP's CSV
# injection advice and ASVS 1.2.10); a leading apostrophe makes it text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def _inert(cell: str) -> str:
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell


def _csv_header(grouping: Grouping) -> list[str]:
    names = [heading for _, heading, _ in _NAMES[grouping]]
    # Key first, so that two rows of one label (two agents of one name) stay apart.
    return [name for name in names if name != "label"] + [name for name in names if name == "label"]


def _csv(report: Report) -> str:
    buffer = io.StringIO()
    # Every text cell quoted: with "\n" line ends, minimal quoting would leave a bare "\r"
    # in a name unquoted, which spreadsheets read as the start of a new row.
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    header = _csv_header(report.grouping)
    cells = {heading: cell for _, heading, cell in _NAMES[report.grouping]}
    writer.writerow([*header, "value"])
    upstream = report.total_mode is TotalMode.ROCKETCHAT
    writer.writerows(
        [*(_inert(_text(cells[name](row), upstream)) for name in header), row[2]]
        for row in report.ranked
    )
    return buffer.getvalue().rstrip("\n")


def _authority(args: argparse.Namespace, directory: Directory) -> Authority:
    if args.user is None:
        return OperatorAuthority()
    return RocketChatAuthority(directory=directory, monitor_rule=MonitorRule(args.monitor_scope))


def _params(args: argparse.Namespace) -> dict[str, str]:
    """The request the options make, as the endpoint's query parameters."""
    params = {"start": args.start, "end": args.end}
    if args.sort is not None:
        params["sort"] = args.sort
    return params


def _report(args: argparse.Namespace, progress: _Progress | None) -> Report:
    """The report the options ask for, checked as the endpoint checks a request.

    Upstream's order: the caller (its directory read first), the permission, the sort, the
    dates; the rooms are read only then.
    """
    grouping: Grouping = args.grouping
    with _open_workspace(args, progress) as workspace:
        query: Query = check_request(
            _authority(args, workspace.directory),
            grouping,
            _params(args),
            args.user,
            server_tz=args.tz,
        )
        reports = Conversations(
            store=workspace.open_rooms(),
            grouping=grouping,
            directory=workspace.directory,
            total_mode=TotalMode.ROCKETCHAT if args.compat else TotalMode.CONVSTATS,
        )
        return reports.report(query.window, sort=query.sort, visibility=query.visibility)


def _wants_json(argv: Sequence[str]) -> bool:
    return any(
        (arg == "--format" and following == "json") or arg == "--format=json"
        for arg, following in itertools.pairwise([*argv, ""])
    )


def _output(report: Report, form: str) -> str:
    if form == "json":
        return json.dumps(report_body(report), ensure_ascii=False)
    return _csv(report) if form == "csv" else _table(report)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _warning_printer(err: TextIO) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        # A library's warning (pymongo's, say) as one line, without file and source line.
        print(f"convstats: warning: {_one_line(str(message))}", file=err)

    return show


def _run(
    argv: list[str],
    out: TextIO,
    err: TextIO,
    clock: Callable[[], float],
    environ: Mapping[str, str],
) -> int:
    parser, commands, environments = _parsers()
    args: argparse.Namespace | None = None
    try:
        try:
            with contextlib.redirect_stdout(out):  # --help and --version write to out
                args, unknown = parser.parse_known_args(argv)
        except SystemExit as done:  # --help and --version end the command here
            return EXIT_OK if done.code is None else int(done.code)
        if unknown:  # named by the command they were given to, with its usage
            raise _UsageError(
                f"unrecognized arguments: {' '.join(unknown)}", commands[args.command]
            )
        try:
            from_environment = environments[args.command].resolve(
                args, environ, exclusive=[("data", "mongo")]
            )
        except InvalidVariable as error:
            raise _UsageError(str(error), commands[args.command]) from None
        if args.command == "export":
            return _export(args, commands["export"], err, clock)
        _check_options(args, commands[args.command], from_environment)
        if args.command == "serve":
            return serve.run(args, open_store=lambda parsed: _open_store(parsed, None), err=err)
        progress = _Progress(err, clock) if args.data is not None and err.isatty() else None
        text = _output(_report(args, progress), args.format)
    except _UsageError as error:
        failed = error.parser or parser
        failed.print_usage(err)
        print(f"{failed.prog}: error: {error}", file=err)
        if _wants_json(argv):
            print(json.dumps(error_response(InvalidParams(str(error))).body), file=out)
        return EXIT_BAD_REQUEST
    except ConvstatsError as error:
        response = error_response(error)
        if args is not None and args.format == "json":
            print(json.dumps(response.body, ensure_ascii=False), file=out)
        if isinstance(error, RequestError):
            print(f"convstats: {response.body['error']} (HTTP {response.status})", file=err)
        else:
            print(f"convstats: {_one_line(str(error))}", file=err)
        return _exit_status(response.status)
    except BrokenPipeError:
        raise  # the reader of the output went away: main() ends quietly
    except Exception as error:  # a one-line message, never a traceback, whatever failed
        message = f"unexpected {type(error).__name__}: {_one_line(str(error))}"
        if args is not None and args.format == "json":
            body = error_response(ConvstatsError(message)).body  # upstream's 500 body
            print(json.dumps(body, ensure_ascii=False), file=out)
        print(f"convstats: {message}", file=err)
        return EXIT_FAILURE
    print(text, file=out)
    return EXIT_OK


def run(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command with ``argv`` and return its exit status.

    ``out`` and ``err`` default to the standard streams; ``clock`` times the progress lines
    shown on ``err`` while files load, when ``err`` is a terminal. ``environ`` (default:
    ``os.environ``) gives the ``CONVSTATS_*`` variables of the options left out of ``argv``.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(err)
            arguments = sys.argv[1:] if argv is None else list(argv)
            return _run(arguments, out, err, clock, os.environ if environ is None else environ)
    except KeyboardInterrupt:
        _interrupted(err)
        return EXIT_INTERRUPTED


def _interrupted(err: TextIO) -> None:
    fresh_line = "\n" if err.isatty() else ""  # on a terminal, after the echoed "^C"
    print(f"{fresh_line}convstats: interrupted", file=err)


def main() -> None:
    """Entry point of the ``convstats`` console script."""
    for stream in (sys.stdout, sys.stderr):
        # A name holding a lone surrogate (invalid UTF-8 in the data) is written escaped,
        # which in JSON output is still the same string, instead of failing mid-report.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        status = run()
        sys.stdout.flush()  # so that a closed pipe shows here, not at the interpreter's exit
    except BrokenPipeError:
        # The reader stopped early (`convstats … | head -1`). Python flushes stdout again on
        # exit, so it is pointed at devnull first, as the Python documentation's SIGPIPE
        # recipe does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = EXIT_FAILURE
    except KeyboardInterrupt:
        _interrupted(sys.stderr)
        status = EXIT_INTERRUPTED
    sys.exit(status)
