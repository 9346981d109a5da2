"""``convstats serve``: the report as an HTTP service, under uvicorn.

The command line registers the subcommand with :func:`add_command` and runs it with
:func:`run`; the service itself (:mod:`convstats_adapters.server`) and uvicorn are imported
only then, so the rest of the command works without the ``server`` extra.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TextIO

from convstats.errors import ConvstatsError, MissingDependency
from convstats.model import MonitorRule, TotalMode
from convstats.ports import Workspace

__all__ = ["add_command", "run"]

_EPILOG = """\
examples:
  convstats serve --data examples/sample
  curl -H 'X-User-Id: u-manager' -H 'X-Auth-Token: sample-manager-token' \\
      'http://127.0.0.1:3000/api/v1/livechat/analytics/dashboards/conversations-by-agent?start=2024-03-01&end=2024-04-01'
  convstats serve --mongo mongodb://localhost:27017/rocketchat --tz Europe/Berlin --cache-ttl 60

routes: the report at /api/v1/livechat/analytics/dashboards/conversations-by-agent, its
OpenAPI document at /api/v1/livechat/analytics/dashboards/openapi.json, /healthz (the
process) and /readyz (the store). One log line per request; tokens are never logged.
SIGINT or SIGTERM stops the service after the requests in flight.
"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (0 to 65535; 0 picks a free one)")
    return port


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
        help="serve the report over HTTP, as Rocket.Chat's endpoint, with its token sign-in",
        description=(
            "Answer GET /api/v1/livechat/analytics/dashboards/conversations-by-agent over\n"
            "HTTP with upstream's statuses and bodies. Callers sign in as in Rocket.Chat,\n"
            "with the headers X-User-Id and X-Auth-Token (a login or personal access token)."
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
    """Serve until SIGINT or SIGTERM; return the exit status (0, or 1 when it cannot start)."""
    err = err or sys.stderr
    try:
        import uvicorn

        from convstats_adapters import server
    except ImportError as error:  # MissingDependency names the extra; uvicorn has its own
        missing = error if isinstance(error, MissingDependency) else None
        print(f"convstats: {missing or MissingDependency('uvicorn', 'server')}", file=err)
        return 1
    if not _is_loopback(args.host):
        print(f"convstats: listening on {args.host}, beyond this machine", file=err)
    try:
        with open_store(args) as store, _stopping_on_sigterm():
            app = server.create_app(
                store,
                server_tz=args.tz,
                total_mode=TotalMode.ROCKETCHAT if args.compat else TotalMode.CONVSTATS,
                monitor_rule=MonitorRule(args.monitor_scope),
                cache_ttl=args.cache_ttl,
                timeout=args.timeout,
            )
            config = uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_level="info",
                access_log=True,  # one line a request: address, request line, status
                server_header=False,
                lifespan="off",
            )
            uvicorn.Server(config).run()
    except (KeyboardInterrupt, _Stopped):
        return 0
    except SystemExit as stopped:  # uvicorn could not start (it has logged why): a taken port
        return 0 if stopped.code in (None, 0) else 1
    except ConvstatsError as error:
        print(f"convstats: {error}", file=err)
        return 1
    return 0
