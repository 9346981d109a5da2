"""The HTTP service under a real uvicorn on 127.0.0.1: the command, its log, faults, signals."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
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


#: ``python -c`` of ``python -m convstats``, under a lower limit of open files.
LIMITED = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, ({0}, {0})); "
    "runpy.run_module('convstats', run_name='__main__')"
)


class Served:
    """A ``convstats serve`` process and the lines it has written so far.

    ``env`` adds variables to its environment; ``files_limit`` lowers its open-file limit.
    """

    def __init__(
        self, *options: str, env: dict[str, str] | None = None, files_limit: int | None = None
    ) -> None:
        python = ["-m", "convstats"] if files_limit is None else ["-c", LIMITED.format(files_limit)]
        self.process = subprocess.Popen(
            [sys.executable, *python, "serve", "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
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


# -- the log ----------------------------------------------------------------------------------

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) \S+ ")


def test_every_line_of_the_log_has_its_time_and_level(served):
    """convstats's lines, uvicorn's and the access lines all start with a UTC time and a level."""
    with checked(httpx.Client(base_url=served.base_url, timeout=10)) as http:
        assert report(http, MARCH, **headers("u-manager")).status_code == 200
    served.wait_for(re.compile(r'"GET /api/v1/\S+ HTTP/1\.1" 200'))
    assert served.stop(signal.SIGTERM) == 0
    lines = served.output.splitlines()
    assert any(" INFO uvicorn.access 127.0.0.1:" in line for line in lines)
    assert any(" INFO uvicorn.error Uvicorn running on" in line for line in lines)
    assert [line for line in lines if not STAMPED.match(line)] == []


def test_json_logs_from_the_environment_without_tokens():
    """CONVSTATS_DATA and CONVSTATS_LOG_FORMAT=json alone: the service answers, logs JSON lines."""
    served = Served(env={"CONVSTATS_DATA": SAMPLE, "CONVSTATS_LOG_FORMAT": "json"})
    try:
        with checked(httpx.Client(base_url=served.base_url, timeout=10)) as http:
            assert report(http, MARCH, **headers("u-manager")).status_code == 200
            assert report(http, MARCH, **headers("u-manager", "wrong")).status_code == 401
        served.wait_for(re.compile(r'"status": 401'))
        assert served.stop(signal.SIGTERM) == 0
    finally:
        served.close()
    entries = [json.loads(line) for line in served.output.splitlines()]
    assert {entry["level"] for entry in entries} == {"info"}
    access = [entry for entry in entries if entry["logger"] == "uvicorn.access"]
    assert [entry["status"] for entry in access] == [200, 401]
    assert access[0]["path"].startswith("/api/v1/livechat/analytics/dashboards/")
    assert "sample-manager-token" not in served.output
    assert "wrong" not in served.output


# -- slow, silent and too many clients -------------------------------------------------------

#: How long a test waits for the server to close a connection: far beyond --header-timeout.
CLOSE_WAIT = 15.0


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server closes ``connection`` (reading what it sends) within CLOSE_WAIT."""
    connection.settimeout(CLOSE_WAIT)
    try:
        while connection.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


@pytest.fixture
def bounded() -> Iterator[Served]:
    process = Served("--data", SAMPLE, "--header-timeout", "1", "--limit-connections", "4")
    try:
        yield process
    finally:
        process.close()


def test_idle_and_half_sent_requests_are_dropped(bounded):
    """A silent connection, half a request head, and half a second one are closed in time."""
    address = ("127.0.0.1", bounded.port)
    with (
        socket.create_connection(address) as idle,
        socket.create_connection(address) as half,
        socket.create_connection(address) as second,
    ):
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        second.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        second.settimeout(CLOSE_WAIT)
        assert second.recv(4096).startswith(b"HTTP/1.1 200 ")
        second.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127")  # then nothing
        assert closed_by_server(idle)
        assert closed_by_server(half)
        assert closed_by_server(second)
    with httpx.Client(base_url=bounded.base_url, timeout=10) as http:
        assert http.get(HEALTH_PATH).status_code == 200


def test_connections_past_the_limit_get_a_503_at_once(bounded):
    """Past --limit-connections a connection is answered 503 and closed; slots come back."""
    address = ("127.0.0.1", bounded.port)
    holders = [socket.create_connection(address) for _ in range(4)]
    try:
        with socket.create_connection(address) as extra:
            extra.settimeout(CLOSE_WAIT)
            assert extra.recv(4096).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert closed_by_server(extra)
        assert all(closed_by_server(holder) for holder in holders)  # --header-timeout
    finally:
        for holder in holders:
            holder.close()
    with httpx.Client(base_url=bounded.base_url, timeout=10) as http:
        assert http.get(HEALTH_PATH).status_code == 200
    bounded.wait_for(re.compile(r"WARNING convstats\.connections refused a connection"))


def test_out_of_file_descriptors_the_log_stays_small_and_requests_are_answered():
    """With more idle sockets than files, errors are logged once, and requests answered later."""
    served = Served("--data", SAMPLE, "--header-timeout", "1", files_limit=64)
    sockets: list[socket.socket] = []
    try:
        address = ("127.0.0.1", served.port)
        sockets = [socket.create_connection(address) for _ in range(150)]
        with checked(httpx.Client(base_url=served.base_url, timeout=60)) as http:
            assert report(http, MARCH, **headers("u-manager")).status_code == 200
        served.wait_for(re.compile(r'"GET /api/v1/\S+ HTTP/1\.1" 200'))
        assert served.stop(signal.SIGTERM) == 0
    finally:
        for connection in sockets:
            connection.close()
        served.close()
    log = served.output
    assert 1 <= log.count("out of system resource") <= 3
    assert "Traceback" not in log
    assert "is more than this process may open files for (ulimit -n 64" in log


# -- reloading the data on SIGHUP --------------------------------------------------------------


def test_sighup_reloads_the_data_and_a_bad_export_keeps_the_old(tmp_path):
    """SIGHUP serves the folder's new data; after a bad change the last good data still answers."""
    data = tmp_path / "export"
    shutil.copytree(SAMPLE, data)
    rooms = data / "rocketchat_room.json"
    served = Served("--data", str(data))
    try:
        with checked(httpx.Client(base_url=served.base_url, timeout=10)) as http:

            def total() -> int:
                answer = report(http, MARCH, **headers("u-manager"))
                assert answer.status_code == 200
                return int(answer.json()["total"])

            before = total()
            rooms.write_text("".join(rooms.read_text().splitlines(keepends=True)[:10]))
            served.process.send_signal(signal.SIGHUP)
            served.wait_for(re.compile(r"INFO convstats\.serve reloaded "))
            smaller = total()
            assert smaller < before
            rooms.write_text(rooms.read_text() + '{"_id": "broken", \n')
            served.process.send_signal(signal.SIGHUP)
            failed = served.wait_for(
                re.compile(r"ERROR convstats\.serve reload failed, still serving the data .*")
            )
            assert "rocketchat_room.json" in failed.group(0)
            assert total() == smaller
        assert served.stop(signal.SIGTERM) == 0
    finally:
        served.close()
    assert "Traceback" not in served.output
