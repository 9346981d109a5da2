"""The HTTP service under a real uvicorn on 127.0.0.1: the command, its log, faults, signals."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.http_support import MARCH, SAMPLE, TOKENS, FlakyStore, checked, headers, report

# After http_support, which skips this module when the server extra is missing.
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")

import httpx  # noqa: E402

from convstats_adapters.memory import MemoryStore  # noqa: E402
from convstats_adapters.openapi import HEALTH_PATH, READY_PATH  # noqa: E402
from convstats_adapters.server import create_app  # noqa: E402

pytestmark = pytest.mark.server

STARTUP_SECONDS = 30.0
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class Served:
    """A ``convstats serve`` process and the lines it has written so far."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convstats", "serve", "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.wait_for(RUNNING).group(1))
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = STARTUP_SECONDS) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if found := pattern.search(line):
                return found
        raise AssertionError(f"no line matched {pattern.pattern!r} in:\n{''.join(self.seen)}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        status = self.process.wait(timeout=STARTUP_SECONDS)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return status

    @property
    def output(self) -> str:
        return "".join(self.seen)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STARTUP_SECONDS)
        self._reader.join(timeout=STARTUP_SECONDS)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def served() -> Iterator[Served]:
    process = Served("--data", SAMPLE)
    try:
        yield process
    finally:
        process.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_logs_without_tokens_and_stops_cleanly(served, signum):
    """convstats serve answers on loopback, logs one line a request without tokens, exits 0."""
    with checked(httpx.Client(base_url=served.base_url, timeout=10)) as http:
        assert report(http, MARCH, **headers("u-manager")).status_code == 200
        assert report(http, MARCH, **headers("u-manager", "not-the-token")).status_code == 401
        assert http.get(READY_PATH).status_code == 200
    served.wait_for(re.compile(r'"GET /readyz HTTP/1\.1" 200'))
    assert served.stop(signum) == 0
    log = served.output
    requests = re.findall(
        r'"GET /api/v1/livechat/analytics/dashboards/conversations-by-agent\?', log
    )
    assert len(requests) == 2
    assert "Traceback" not in log
    for secret in (*TOKENS.values(), "not-the-token"):
        assert secret not in log


def test_a_port_in_use_is_one_line_and_status_1(served):
    """A second service on a taken port fails with uvicorn's error line and status 1."""
    result = subprocess.run(
        [sys.executable, "-m", "convstats", "serve", "--data", SAMPLE, "--port", str(served.port)],
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


class InThread:
    """A uvicorn server on 127.0.0.1 in a thread of this process, for a store the test drives."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn stopped while starting"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STARTUP_SECONDS)
        assert not self.thread.is_alive()


def test_a_store_lost_mid_run_gives_503s_then_200s_without_a_restart():
    """Under a real server, a store that fails or hangs gives 503s in time, then 200s when back."""
    store = FlakyStore(MemoryStore.from_path(SAMPLE))
    server = InThread(create_app(store, timeout=0.5, ready_timeout=0.5, threads=4))
    try:
        with checked(httpx.Client(base_url=server.base_url, timeout=10)) as http:

            def statuses(n: int) -> list[int]:
                return [report(http, MARCH, **headers("u-manager")).status_code for _ in range(n)]

            assert statuses(5) == [200] * 5
            store.down = True  # fails at once
            assert statuses(5) == [503] * 5
            assert http.get(READY_PATH).status_code == 503
            store.down = False
            assert statuses(5) == [200] * 5
            store.hang()  # stops answering
            try:
                assert statuses(6) == [503] * 6  # each within the 0.5 s timeout
                assert http.get(READY_PATH).status_code == 503
                assert http.get(HEALTH_PATH).status_code == 200
            finally:
                store.release()
            assert statuses(5) == [200] * 5
            assert http.get(READY_PATH).status_code == 200
    finally:
        server.stop()
