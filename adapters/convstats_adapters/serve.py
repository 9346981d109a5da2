"""``convstats serve``: the report as an HTTP service, under uvicorn.

The command line registers the subcommand with :func:`add_command` and runs it with
:func:`run`; the service itself (:mod:`convstats_adapters.server`) and uvicorn are imported
only then, so the rest of the command works without the ``server`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from convstats.errors import ConvstatsError, MissingDependency
from convstats.model import MonitorRule, TotalMode
from convstats.ports import Workspace
from convstats_adapters.logs import LOG_FORMATS, LOG_LEVELS, configured
from convstats_adapters.openapi import METRICS_PATH

if TYPE_CHECKING:
    from convstats_adapters.mirror import MongoMirror

__all__ = ["Reloader", "add_command", "run"]

_logger = logging.getLogger("convstats.serve")

_EPILOG = """\
examples:
  convstats serve --data examples/sample
  curl -H 'X-User-Id: u-manager' -H 'X-Auth-Token: sample-manager-token' \\
      'http://127.0.0.1:3000/api/v1/livechat/analytics/dashboards/conversations-by-agent?start=2024-03-01&end=2024-04-01'
  convstats serve --mongo mongodb://localhost:27017/rocketchat --tz Europe/Berlin --cache-ttl 60
  convstats serve --mongo 'mongodb://db:27017/rocketchat?replicaSet=rs0' --live --max-staleness 5
  CONVSTATS_MONGODB_URI='mongodb://reports:secret@db:27017/rocketchat' convstats serve

routes: the five reports at /api/v1/livechat/analytics/dashboards/conversations-by-status,
-source, -department, -tags and -agent, their OpenAPI document at
/api/v1/livechat/analytics/dashboards/openapi.json, the Reports page at /, /healthz (the
process), /readyz (the store) and, with the 'metrics' extra, /metrics (Prometheus).

One log line per request, each line with its time and level; tokens are never logged.
SIGHUP reloads --data (the data loaded before answers until the new data is ready, and
stays when the new data cannot be read); with --live it rebuilds the mirror from a fresh
snapshot. --live holds the workspace in memory and follows the database (change streams on a
replica set, polling on a standalone server): each answer carries X-Convstats-Source (mirror,
mongodb, or none) and X-Convstats-Data-Age. SIGINT or SIGTERM stops the service after the
requests in flight. A connection that has not sent its request head in --header-timeout
seconds is closed, and one past --limit-connections is answered 503 at once: when the
service is exposed beyond this machine, put a reverse proxy in front of it (README.md).

Every option above may come from the environment instead, from the variable its help names
(an option given wins): CONVSTATS_MONGODB_URI keeps a MongoDB password off the command line,
where ps shows it.
"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (0 to 65535; 0 picks a free one)")
    return port


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"invalid number {text!r} (a whole number, 1 or more)")
    return count


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r} (above 0)")
    return seconds


def add_command(
    commands: Any, *, parents: Sequence[argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    """Add ``serve`` to ``commands`` (an ``add_subparsers`` result).

    ``parents`` bring the options every command shares: the workspace and how to read it.
    """
    serve = commands.add_parser(
        "serve",
        parents=list(parents),
        help="serve the five reports over HTTP, as Rocket.Chat's endpoints, with its sign-in",
        description=(
            "Answer GET /api/v1/livechat/analytics/dashboards/conversations-by-status,\n"
            "-source, -department, -tags and -agent over HTTP with upstream's statuses and\n"
            "bodies. Callers sign in as in Rocket.Chat, with the headers X-User-Id and\n"
            "X-Auth-Token (a login or personal access token)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only)",
    )
    serve.add_argument(
        "--port", type=_port, default=3000, help="the TCP port (default: 3000; 0: any free one)"
    )
    serve.add_argument(
        "--cache-ttl",
        type=_seconds,
        metavar="SECONDS",
        help="remember each report this long, per visibility, as upstream does for 60 s "
        "(default: no cache)",
    )
    # The command line's error paths read the output format of the report command.
    serve.set_defaults(format=None)
    serve.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="answer 503 when the store has not answered a request in this time (default: 30)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="close a connection whose request head has not arrived in this time, counted "
        "from the connection or the previous answer (default: 10)",
    )
    serve.add_argument(
        "--limit-connections",
        type=_count,
        default=512,
        metavar="N",
        help="answer 503 and close any connection past N open ones (default: 512; keep it "
        "below the open-file limit, ulimit -n)",
    )
    serve.add_argument(
        "--live",
        action="store_true",
        help="with --mongo: answer from a mirror of the database in memory that follows its "
        "changes, sub-millisecond (default: every report asks MongoDB)",
    )
    serve.add_argument(
        "--max-staleness",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="with --live: answer from the mirror while its data is at most this old (default: 5)",
    )
    serve.add_argument(
        "--stale",
        choices=["mongo", "503"],
        default="mongo",
        help="with --live: what answers while the mirror is older than --max-staleness (or "
        "still loading): mongo, MongoDB itself, or 503 (default: mongo)",
    )
    serve.set_defaults(serve_parser=serve)
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="the least severe lines logged; info logs one line a request (default: info)",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text: time, level, logger and message; json: one JSON object a line (default: text)",
    )
    return serve  # type: ignore[no-any-return]


class _Stopped(Exception):
    """SIGTERM arrived and the service has shut down."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


@contextlib.contextmanager
def _stopping_on_sigterm() -> Iterator[None]:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again so that its
    # default action ends the process at once; this handler turns it into an exception, so
    # that the store is closed and the command exits with 0 as after SIGINT.
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@attrs.define
class Reloader:
    """Runs ``reload`` in a thread of its own when asked, never two at once.

    A request that arrives during a reload runs it once more afterwards, so that the last
    change asked for is always read. :meth:`request` returns at once, and may be called
    from a signal handler.
    """

    reload: Callable[[], None]
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _wanted: bool = attrs.field(init=False, default=False)
    _thread: threading.Thread | None = attrs.field(init=False, default=None)

    def request(self) -> None:
        """Have ``reload`` run soon, in the reload thread."""
        with self._lock:
            self._wanted = True
            if self._thread is not None:
                return  # the running reload sees it
            self._thread = threading.Thread(target=self._run, name="convstats-reload")
            self._thread.daemon = True  # a reload under way does not hold the exit
            self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no reload runs (``timeout`` seconds at most); ``True`` when none does."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._wanted:
                    self._thread = None
                    return
                self._wanted = False
            try:
                self.reload()
            except Exception:  # never the end of the thread: the next request runs again
                _logger.exception("the reload failed unexpectedly")


def _reload_data(
    args: argparse.Namespace,
    open_store: Callable[[argparse.Namespace], contextlib.AbstractContextManager[Workspace]],
    swap: Callable[[Workspace], object],
) -> Callable[[], None]:
    def reload() -> None:
        started = time.monotonic()
        _logger.info("SIGHUP: reloading %s", args.data)
        try:
            # A folder's store holds nothing to close: leaving the context keeps it open.
            with open_store(args) as store:
                pass
        except Exception as error:
            unexpected = not isinstance(error, ConvstatsError)
            kind = f"unexpected {type(error).__name__}: " if unexpected else ""
            message = " ".join(f"{kind}{error}".split())
            _logger.error("reload failed, still serving the data loaded before: %s", message)
            return
        swap(store)
        _logger.info("reloaded %s in %.1f s", args.data, time.monotonic() - started)

    return reload


def _nothing_to_reload() -> None:
    _logger.info("SIGHUP: nothing to reload, the MongoDB store reads the database live")


def _live_problem(args: argparse.Namespace) -> str | None:
    """Why the --live options cannot apply as given, or None."""
    if args.live and args.mongo is None:
        return "argument --live: only applies with --mongo (a mirror follows a database)"
    return None


@contextlib.contextmanager
def _live(args: argparse.Namespace, store: Workspace) -> Iterator[MongoMirror]:
    """The mirror of ``store`` (the MongoDB store of --mongo), following until the block ends."""
    from convstats_adapters.mirror import MongoMirror
    from convstats_adapters.mongo import MongoStore

    if not isinstance(store, MongoStore):  # --live is refused without --mongo before this
        raise ConvstatsError("--live needs the MongoDB store of --mongo")
    mirror = MongoMirror(store)
    _logger.info("--live: reading the snapshot of the database; MongoDB answers until it is ready")
    mirror.start()
    try:
        yield mirror
    finally:
        if mirror.stop():
            _logger.info("the mirror stopped following the database")


@contextlib.contextmanager
def _reloading_on_sighup(reloader: Reloader) -> Iterator[None]:
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    if hangup is None:
        yield
        return
    previous = signal.signal(hangup, lambda signum, frame: reloader.request())
    try:
        yield
    finally:
        signal.signal(hangup, previous)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(
    args: argparse.Namespace,
    *,
    open_store: Callable[[argparse.Namespace], contextlib.AbstractContextManager[Workspace]],
    err: TextIO | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status.

    0 once stopped, 1 when the service cannot start, 2 for options that cannot apply
    together (with a usage line). Logs go to ``err`` (default: standard error) as
    ``--log-level`` and ``--log-format`` say; SIGHUP reloads ``--data`` through
    ``open_store``, or with ``--live`` rebuilds the mirror, which stops with the service.
    """
    err = err or sys.stderr
    problem = _live_problem(args)
    if problem is not None:
        parser: argparse.ArgumentParser = args.serve_parser
        parser.print_usage(err)
        print(f"{parser.prog}: error: {problem}", file=err)
        return 2
    try:
        import uvicorn

        from convstats_adapters import connections, server
    except ImportError as error:  # MissingDependency names the extra; uvicorn has its own
        missing = error if isinstance(error, MissingDependency) else None
        print(f"convstats: {missing or MissingDependency('uvicorn', 'server')}", file=err)
        return 1
    with configured(args.log_level, args.log_format, err):
        if not _is_loopback(args.host):
            _logger.warning("listening on %s, beyond this machine", args.host)
        files = connections.descriptor_limit()
        if files is not None and args.limit_connections + connections.RESERVED_DESCRIPTORS > files:
            _logger.warning(
                "--limit-connections %d is more than this process may open files for (ulimit -n "
                "%d, less %d for the rest): past that, new connections wait; lower "
                "--limit-connections or raise the limit",
                args.limit_connections,
                files,
                connections.RESERVED_DESCRIPTORS,
            )
        try:
            with contextlib.ExitStack() as stack:
                store = stack.enter_context(open_store(args))
                stack.enter_context(_stopping_on_sigterm())
                answering, freshness, mirror = store, None, None
                if args.live:
                    answering = mirror = stack.enter_context(_live(args, store))
                    freshness = server.Freshness(
                        max_staleness=args.max_staleness,
                        fallback=store if args.stale == "mongo" else None,
                    )
                app = server.create_app(
                    answering,
                    server_tz=args.tz,
                    total_mode=TotalMode.ROCKETCHAT if args.compat else TotalMode.CONVSTATS,
                    monitor_rule=MonitorRule(args.monitor_scope),
                    cache_ttl=args.cache_ttl,
                    timeout=args.timeout,
                    freshness=freshness,
                )
                if not any(getattr(route, "path", None) == METRICS_PATH for route in app.routes):
                    _logger.info("no /metrics: it needs the 'metrics' extra (prometheus-client)")
                if args.data is not None:
                    reload = _reload_data(
                        args, open_store, lambda fresh: server.swap_store(app, fresh)
                    )
                elif mirror is not None:
                    reload = functools.partial(mirror.request_rebuild, "SIGHUP asked for it")
                else:
                    reload = _nothing_to_reload
                config = uvicorn.Config(
                    app,
                    host=args.host,
                    port=args.port,
                    http=connections.bounded_protocol(
                        header_timeout=args.header_timeout, max_connections=args.limit_connections
                    ),
                    log_config=None,  # configured above, for uvicorn's loggers too
                    access_log=True,  # one line a request: address, request line, status
                    server_header=False,
                    lifespan="off",
                )
                with _reloading_on_sighup(Reloader(reload)):
                    uvicorn.Server(config).run()
        except (KeyboardInterrupt, _Stopped):
            return 0
        except SystemExit as stopped:  # uvicorn could not start (it has logged why): a taken port
            return 0 if stopped.code in (None, 0) else 1
        except ConvstatsError as error:
            _logger.error("%s", " ".join(str(error).split()))
            return 1
        return 0
