"""A real browser for tests: headless Chromium driven by Selenium, and a live server for it.

Chromium and chromedriver are the system's (Debian's ``chromium`` and ``chromium-driver``),
found at the paths below or named by CONVSTATS_CHROMIUM and CONVSTATS_CHROMEDRIVER; Selenium
is told where they are and never downloads a driver. When one of the three is missing, the
tests marked ``browser`` are skipped with :func:`missing`'s reason and the session summary
says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CONVSTATS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONVSTATS_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = (
    "apt-get install chromium chromium-driver && "
    ".venv/bin/python -m pip install -e '.[server]' --group browser"
)
#: Selenium drives the browser; uvicorn and Starlette (the server extra) run the app.
_MODULES = ("selenium", "uvicorn", "starlette")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
)


def missing() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    absent = [name for name in _MODULES if importlib.util.find_spec(name) is None]
    absent += [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if not absent:
        return None
    return f"{', '.join(absent)} not found ({INSTALL_HINT})"


@contextlib.contextmanager
def chromium(downloads: Path, *, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, saving downloads into ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    with tempfile.TemporaryDirectory(prefix="convstats-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a free port of 127.0.0.1; yield its base URL."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:  # a start-up handshake, not a timing assumption
            if not thread.is_alive():
                raise RuntimeError("the test server stopped while starting")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        listener.close()
