"""The ``convstats`` command line: the composition root that opens a store and runs the report.

It checks every argument before it reads any data, then answers as the endpoint would:
``--format json`` prints exactly the endpoint's body, errors included
(:mod:`convstats.http`), and the exit status follows the answer.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import timezone, tzinfo
from typing import NoReturn, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from convstats.authz import VIEW_LIVECHAT_REPORTS, OperatorAuthority, RocketChatAuthority
from convstats.dates import window_from_strings
from convstats.errors import ConvstatsError, InvalidParams, RequestError
from convstats.http import error_response, report_body
from convstats.model import MonitorRule, Report, TimeWindow, TotalMode
from convstats.ports import Authority, Workspace
from convstats.report import ConversationsByAgent
from convstats.sorting import Sort, parse_sort
from convstats_adapters import serve

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_REQUEST = 2
EXIT_REFUSED = 3

_BAR_WIDTH = 30

_EPILOG = """\
examples:
  convstats conversations-by-agent --data examples/sample \\
      --start 2024-03-01 --end 2024-04-01
  convstats conversations-by-agent --data export/ --start 2024-03-01T00:00:00Z \\
      --end 2024-03-08T00:00:00Z --sort '{"total": -1}' --format json
  convstats conversations-by-agent --mongo mongodb://localhost:27017/rocketchat \\
      --start 2024-03-01 --end 2024-04-01 --user <monitor user id> --format csv

exit status: 0 success; 2 a bad request (400); 3 not authenticated or not permitted
(401/403); 1 anything else (unreadable data, storage failure), with one line on stderr.
"""


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convstats`` command."""
    parser = _Parser(
        prog="convstats",
        description=(
            "Omnichannel conversations per agent, as Rocket.Chat's "
            "conversations-by-agent dashboard report computes them."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "conversations-by-agent",
        help="count the conversations each agent served in a time window",
        description=(
            "Count the livechat conversations created in [START, END), per agent that "
            "serves them, with the conversations nobody serves as 'unspecified'. "
            "Validation, labels and order follow GET /api/v1/livechat/analytics/dashboards/"
            "conversations-by-agent."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        metavar="PATH",
        help="a JSON file mapping collection names to documents, or a directory of "
        "mongoexport files named <collection>.json (JSON Lines or --jsonArray)",
    )
    source.add_argument(
        "--mongo",
        metavar="URI",
        help="a MongoDB URI (mongodb:// or mongodb+srv://) of a Rocket.Chat database; "
        "needs the 'mongo' extra",
    )
    report.add_argument(
        "--database",
        metavar="NAME",
        help="with --mongo: the database name, when the URI names none",
    )
    report.add_argument(
        "--start", metavar="S", required=True, help="window start, ISO 8601, inclusive"
    )
    report.add_argument("--end", metavar="E", required=True, help="window end, ISO 8601, exclusive")
    report.add_argument(
        "--sort",
        metavar="JSON",
        help="order of the rows, e.g. '{\"total\": -1}'; keys name|label, total|value, _id; "
        'values 1 or -1 (default {"name": 1})',
    )
    report.add_argument(
        "--user",
        metavar="USER_ID",
        help="answer as this user: unknown users get 401, users without "
        "view-livechat-reports 403, monitors see only their units (default: the operator, "
        "who sees everything)",
    )
    report.add_argument(
        "--compat",
        choices=["rocketchat"],
        help="rocketchat: total = sum of the rows, as upstream (default: rows + unspecified)",
    )
    report.add_argument(
        "--monitor-scope",
        choices=[rule.value for rule in MonitorRule],
        default=MonitorRule.CURRENT.value,
        help="which rooms a monitor sees: current (with rooms that have no department) or "
        "legacy (units' departments only) (default: current)",
    )
    report.add_argument(
        "--tz",
        type=_zone,
        default=timezone.utc,
        metavar="ZONE",
        help="IANA time zone of dates without an offset and of the one-year rule's day "
        "boundaries (default: UTC)",
    )
    report.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="table: for people; json: exactly the endpoint's response body; "
        "csv: label,value rows (default: table)",
    )
    serve.add_command(commands, zone=_zone)
    return parser


@contextlib.contextmanager
def _open_store(args: argparse.Namespace) -> Iterator[Workspace]:
    if args.data is not None:
        from convstats_adapters.memory import MemoryStore

        yield MemoryStore.from_path(args.data)
        return
    from convstats_adapters.mongo import MongoStore  # MissingDependency without the extra

    try:
        store = MongoStore(args.mongo, database=args.database)
    except ValueError as error:  # a malformed URI or no database to read
        raise _UsageError(f"--mongo/--database: {error}") from None
    with store:
        yield store


def _exit_status(status: int) -> int:
    if status in (401, 403):
        return EXIT_REFUSED
    if 400 <= status < 500:
        return EXIT_BAD_REQUEST
    return EXIT_FAILURE


def _table(report: Report) -> str:
    window = report.window
    rows = report.rows
    labels = [row.label if row.label != "" else '""' for row in rows]
    label_width = max([len("Agent"), *(len(label) for label in labels)])
    id_width = max([len("Agent id"), *(len(row.agent_id) for row in rows)])
    digits = max([len("Conversations"), *(len(str(row.value)) for row in rows)])
    peak = max([row.value for row in rows], default=0)
    lines = [
        f"Conversations by agent, {window.start.isoformat()} to {window.end.isoformat()} "
        "(end excluded)",
        "",
        f"{'Agent':<{label_width}}  {'Agent id':<{id_width}}  {'Conversations':>{digits}}",
    ]
    for label, row in zip(labels, rows, strict=True):
        bar = "#" * max(1, round(_BAR_WIDTH * row.value / peak))
        lines.append(
            f"{label:<{label_width}}  {row.agent_id:<{id_width}}  {row.value:>{digits}}  {bar}"
        )
    if not rows:
        lines.append("(no agent served a conversation in this window)")
    compat = report.total_mode is TotalMode.ROCKETCHAT
    total_note = "  (Rocket.Chat total: assigned only)" if compat else ""
    lines += [
        "",
        f"Agents: {len(rows)}   Assigned: {report.assigned}   Unspecified: {report.unspecified}"
        f"   Total: {report.total}{total_note}",
    ]
    return "\n".join(lines)


def _csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "value"])
    writer.writerows([row.label, row.value] for row in report.rows)
    return buffer.getvalue().rstrip("\n")


def _authority(args: argparse.Namespace, store: Workspace) -> Authority:
    if args.user is None:
        return OperatorAuthority()
    return RocketChatAuthority(directory=store, monitor_rule=MonitorRule(args.monitor_scope))


def _request(args: argparse.Namespace) -> tuple[Sort, TimeWindow]:
    """The sort and window the arguments ask for, checked before any data is read."""
    return parse_sort(args.sort), window_from_strings(args.start, args.end, args.tz)


def _report(args: argparse.Namespace, sort: Sort, window: TimeWindow) -> Report:
    with _open_store(args) as store:
        authority = _authority(args, store)
        caller = authority.authenticate(args.user)
        authority.authorize(caller, VIEW_LIVECHAT_REPORTS)
        reports = ConversationsByAgent(
            store=store,
            total_mode=TotalMode.ROCKETCHAT if args.compat else TotalMode.CONVSTATS,
        )
        return reports.report(window, sort=sort, visibility=authority.visibility(caller))


def _wants_json(argv: Sequence[str]) -> bool:
    return any(
        (arg == "--format" and following == "json") or arg == "--format=json"
        for arg, following in zip(argv, [*argv[1:], ""], strict=True)
    )


def run(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command with ``argv`` and return its exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "serve":
            return serve.run(args, open_store=_open_store, err=err)
        sort, window = _request(args)
        report = _report(args, sort, window)
    except _UsageError as error:
        failed = error.parser or parser
        failed.print_usage(err)
        print(f"{failed.prog}: error: {error}", file=err)
        if _wants_json(argv):
            print(json.dumps(error_response(InvalidParams(str(error))).body), file=out)
        return EXIT_BAD_REQUEST
    except ConvstatsError as error:
        response = error_response(error)
        if args.format == "json":
            print(json.dumps(response.body, ensure_ascii=False), file=out)
        if isinstance(error, RequestError):
            print(f"convstats: {response.body['error']} (HTTP {response.status})", file=err)
        else:
            print(f"convstats: {error}", file=err)
        return _exit_status(response.status)
    except Exception as error:  # a one-line message, never a traceback, whatever failed
        print(f"convstats: unexpected {type(error).__name__}: {error}", file=err)
        return EXIT_FAILURE
    if args.format == "json":
        print(json.dumps(report_body(report), ensure_ascii=False), file=out)
    else:
        print(_csv(report) if args.format == "csv" else _table(report), file=out)
    return EXIT_OK


def main() -> None:
    """Entry point of the ``convstats`` console script."""
    for stream in (sys.stdout, sys.stderr):
        # A name holding a lone surrogate (invalid UTF-8 in the data) is written escaped,
        # which in JSON output is still the same string, instead of failing mid-report.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    sys.exit(run())
