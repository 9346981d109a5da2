"""Load test of the HTTP service: a real uvicorn process on 127.0.0.1, a bounded client run.

Run ``python -m benchmarks.load --help``. Each scenario starts the service in a process of
its own (``python -m benchmarks.load serve …``), sends ``--requests`` GETs of the report at
``--concurrency`` at once with httpx's AsyncClient, stops, and prints throughput, latency
percentiles and errors; then it times the same answers in process (``handle()``, and
``handle()`` with the token sign-in) for the HTTP overhead. The
fault scenario makes the store fail, then hang, then come back, and reports what the
clients saw. Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from benchmarks.data import END, generate
from convstats import ConversationsByAgent, ConversationsByAgentEndpoint, RocketChatAuthority
from convstats.authz import hash_login_token
from convstats.cache import TTLCache
from convstats.errors import StorageUnavailable
from convstats.ports import Workspace
from convstats_adapters.memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample"
REPORT = "/api/v1/livechat/analytics/dashboards/conversations-by-agent"
TOKEN = "bench-manager-token"
MANAGER = "bench-manager"
STARTUP_SECONDS = 120.0
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


# -- the service's side ------------------------------------------------------------------


class SwitchableStore:
    """A workspace that fails (``down``) or hangs (``hang``) while switched, else delegates."""

    def __init__(self, inner: Workspace) -> None:
        self.inner = inner
        self.state = "up"
        self._released = threading.Event()
        self._released.set()

    def switch(self, state: str) -> None:
        self.state = state
        if state == "hang":
            self._released.clear()
        else:
            self._released.set()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._released.wait(60)  # a hung call ends by itself after a minute at most
            if self.state == "down":
                raise StorageUnavailable("the benchmark switched the store off")
            return method(*args, **kwargs)

        return call


def with_manager(collections: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The collections plus a livechat manager who signs in with ``TOKEN``."""
    manager = {
        "_id": MANAGER,
        "name": "Bench Manager",
        "roles": ["livechat-manager"],
        "services": {"resume": {"loginTokens": [{"hashedToken": hash_login_token(TOKEN)}]}},
    }
    return {**collections, "users": [*collections.get("users", []), manager]}


def build_store(workspace: str, rooms: int) -> MemoryStore:
    if workspace == "sample":
        from convstats_adapters.files import load_collections

        return MemoryStore(with_manager(load_collections(SAMPLE)))
    return MemoryStore(with_manager(generate(rooms, agents=200)))


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from convstats_adapters.server import create_app

    store: Any = build_store(args.workspace, args.rooms)
    if args.faults:
        store = SwitchableStore(store)
        for signum, state in ((signal.SIGUSR1, "down"), (signal.SIGUSR2, "up")):
            signal.signal(signum, lambda _n, _f, state=state: store.switch(state))
        signal.signal(signal.SIGHUP, lambda _n, _f: store.switch("hang"))
    app = create_app(store, cache_ttl=args.cache_ttl, timeout=args.timeout)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="info", lifespan="off")
    uvicorn.Server(config).run()
    return 0


# -- the client's side -------------------------------------------------------------------


@attrs.define
class Run:
    """What the clients saw in one bounded run."""

    seconds: float
    latencies: list[float]
    statuses: Counter[int | str]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Service:
    """A ``serve`` process of this module, stopped with SIGTERM."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.load", "serve", *options],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,  # the access log: one line a request, as served
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        for line in self.process.stderr:  # uvicorn logs to stderr until it runs
            if found := RUNNING.search(line):
                self.base_url = f"http://127.0.0.1:{found.group(1)}"
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError("the service did not start")
        # Keep draining the log, so that the service never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for _line in self.process.stderr:
            pass

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def load(
    base_url: str,
    params: Mapping[str, str],
    requests: int,
    concurrency: int,
    client: str = "raw",
) -> Run:
    """Send ``requests`` report GETs, ``concurrency`` at a time; stop when all are answered."""
    if client == "raw":
        return await load_raw(base_url, params, requests, concurrency)
    return await load_httpx(base_url, params, requests, concurrency)


async def load_raw(
    base_url: str, params: Mapping[str, str], requests: int, concurrency: int
) -> Run:
    """:func:`load` with one keep-alive HTTP/1.1 connection a worker, on asyncio streams.

    httpx's AsyncClient spends more time a request than the service at this concurrency, so
    its figures measure the client; this client reads little more than the status line and
    the Content-Length.
    """
    from urllib.parse import urlencode, urlsplit

    target = urlsplit(base_url)
    query = urlencode(params)
    request = (
        f"GET {REPORT}?{query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"X-User-Id: {MANAGER}\r\nX-Auth-Token: {TOKEN}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    left = requests

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        try:
            while left > 0:
                left -= 1
                started = time.perf_counter()
                try:
                    writer.write(request)
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                    lines = head.decode("latin-1").split("\r\n")
                    length = next(
                        int(line.partition(":")[2])
                        for line in lines
                        if line.lower().startswith("content-length:")
                    )
                    await reader.readexactly(length)
                    statuses[int(lines[0].split()[1])] += 1
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                    statuses[type(error).__name__] += 1
                    return
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(seconds=time.perf_counter() - started, latencies=latencies, statuses=statuses)


async def load_httpx(
    base_url: str, params: Mapping[str, str], requests: int, concurrency: int
) -> Run:
    """:func:`load` with httpx's AsyncClient."""
    import httpx

    headers = {"X-User-Id": MANAGER, "X-Auth-Token": TOKEN}
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    left = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                started = time.perf_counter()
                try:
                    response = await client.get(REPORT, params=params, headers=headers)
                    statuses[response.status_code] += 1
                except httpx.HTTPError as error:
                    statuses[type(error).__name__] += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Run(seconds=seconds, latencies=latencies, statuses=statuses)


def in_process(call: Callable[[], Any], requests: int) -> Run:
    """``requests`` sequential calls of ``call``, timed one by one."""
    latencies = []
    statuses: Counter[int | str] = Counter()
    started = time.perf_counter()
    for _ in range(requests):
        begun = time.perf_counter()
        statuses[call().status] += 1
        latencies.append(time.perf_counter() - begun)
    return Run(seconds=time.perf_counter() - started, latencies=latencies, statuses=statuses)


def window_params(workspace: str) -> dict[str, str]:
    if workspace == "sample":
        return {"start": "2024-03-01", "end": "2024-04-01"}
    start = END - timedelta(days=30)
    return {"start": start.isoformat(), "end": END.isoformat()}


def errors(run: Run) -> int:
    return sum(count for status, count in run.statuses.items() if status != 200)


def row(name: str, run: Run, ratio: str = "") -> str:
    return (
        f"| {name} | {len(run.latencies):,} | {run.throughput:,.0f} | {run.percentile(0.5):.2f} "
        f"| {run.percentile(0.99):.2f} | {errors(run)} | {ratio} |"
    )


def scenario(args: argparse.Namespace, workspace: str, cache_ttl: float | None) -> list[str]:
    from convstats.model import Grouping

    label = f"{'sample' if workspace == 'sample' else f'{args.rooms:,} rooms'}" + (
        f", cache {cache_ttl:g} s" if cache_ttl else ", no cache"
    )
    options = ["--workspace", workspace, "--rooms", str(args.rooms)]
    if cache_ttl:
        options += ["--cache-ttl", str(cache_ttl)]
    params = window_params(workspace)
    print(f"{label}: starting the service", file=sys.stderr)
    service = Service(*options)
    try:
        warm_up = min(500, args.requests)
        asyncio.run(load(service.base_url, params, warm_up, args.concurrency, args.client))
        http = asyncio.run(
            load(service.base_url, params, args.requests, args.concurrency, args.client)
        )
    finally:
        service.stop()
    print(f"{label}: timing in process", file=sys.stderr)
    store = build_store(workspace, args.rooms)
    cache = TTLCache(ttl=cache_ttl) if cache_ttl else None
    reports = ConversationsByAgent(store=store, cache=cache)
    endpoint = ConversationsByAgentEndpoint(
        reports=reports, authority=RocketChatAuthority(directory=store)
    )
    signed = ConversationsByAgentEndpoint(
        reports=reports, authority=RocketChatAuthority(directory=store, require_token=True)
    )
    assert reports.grouping is Grouping.AGENT
    handle = in_process(lambda: endpoint.handle(params, MANAGER), args.requests)
    answer = in_process(lambda: signed.handle(params, MANAGER, TOKEN), args.requests)
    return [
        row(f"{label}: HTTP, {args.concurrency} concurrent, {args.client} client", http),
        row(
            f"{label}: handle() in process",
            handle,
            f"{handle.throughput / http.throughput:.1f}x",
        ),
        row(
            f"{label}: answer() in process (with sign-in)",
            answer,
            f"{answer.throughput / http.throughput:.1f}x",
        ),
    ]


async def fault_phases(service: Service, params: Mapping[str, str], per_phase: int) -> list[str]:
    lines = []
    for state, signum in (
        ("up", None),
        ("down", signal.SIGUSR1),
        ("up again", signal.SIGUSR2),
        ("hung", signal.SIGHUP),
        ("up again", signal.SIGUSR2),
    ):
        if signum is not None:
            service.signal(signum)
            await asyncio.sleep(0.2)  # the signal is handled between two bytecodes there
        count = per_phase if state != "hung" else 32
        run = await load(service.base_url, params, count, 8)
        seen = ", ".join(f"{status}: {n}" for status, n in sorted(run.statuses.items(), key=str))
        lines.append(
            f"| store {state} | {len(run.latencies)} | {seen} | {run.percentile(0.5):.1f} "
            f"| {max(run.latencies) * 1000:.1f} |"
        )
    return lines


def faults(args: argparse.Namespace) -> list[str]:
    print("faults: starting the service", file=sys.stderr)
    service = Service("--workspace", "sample", "--faults", "--timeout", "0.5")
    try:
        return asyncio.run(fault_phases(service, window_params("sample"), 500))
    finally:
        service.signal(signal.SIGUSR2)
        service.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description="Load the HTTP service on 127.0.0.1 and compare it with handle() in process.",
    )
    commands = parser.add_subparsers(dest="command")
    server = commands.add_parser("serve", help="(internal) run the service of one scenario")
    server.add_argument("--workspace", choices=["sample", "synthetic"], default="sample")
    server.add_argument("--rooms", type=int, default=1_000_000)
    server.add_argument("--cache-ttl", type=float)
    server.add_argument("--timeout", type=float, default=30.0)
    server.add_argument("--faults", action="store_true")
    parser.add_argument("--requests", type=int, default=20_000, help="per run (default 20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="(default 64)")
    parser.add_argument("--rooms", type=int, default=1_000_000, help="synthetic rooms (1M)")
    parser.add_argument("--skip-synthetic", action="store_true", help="the sample only")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw: keep-alive connections on asyncio streams (default); httpx: its AsyncClient",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        return serve(args)
    print(
        f"# HTTP load: {args.requests:,} requests a run, {args.concurrency} concurrent, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print("| run | requests | requests/s | p50 ms | p99 ms | errors | in-process speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    workspaces = ["sample"] if args.skip_synthetic else ["sample", "synthetic"]
    for workspace in workspaces:
        for cache_ttl in (None, 60.0):
            for line in scenario(args, workspace, cache_ttl):
                print(line, flush=True)
    print(
        "\n| faults (sample, timeout 0.5 s, 8 concurrent) | requests | statuses | p50 ms | max ms |"
    )
    print("|---|---:|---|---:|---:|")
    for line in faults(args):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
