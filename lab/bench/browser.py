"""What every browser driver of the lab shares, written once: where Chromium is, how it is
started, a free port, and waiting for a `pose-lab app` (or a balancer in front of several)
to answer its health check.

Used by the classroom benchmark (`lab/bench/classroom.py`), the browser tests
(`tests/app/browser_util.py`), the wheel test (`tests/packaging/test_wheel.py`) and the
replica test (`tests/deploy/test_replicas.py`). Nothing here imports Playwright or the app.
"""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable

from lab.errors import LabError

CHROMIUM = "/usr/bin/chromium"       # Debian's Chromium: the lab never downloads a browser
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# for several learners in one browser: no tab is slowed for being in the background
UNTHROTTLED = ["--disable-renderer-backgrounding", "--disable-background-timer-throttling",
               "--disable-backgrounding-occluded-windows"]
HEALTH = "/_stcore/health"


def chromium_missing() -> str | None:
    """Why Chromium cannot be used here (a sentence), or None when it can."""
    if not Path(CHROMIUM).is_file():
        return f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium; no browser is downloaded)"
    return None


def launch(playwright, extra_args: list[str] | tuple = ()):
    """Headless Debian Chromium from a sync or async Playwright (the caller awaits the async one)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def healthy(url: str) -> bool:
    """True when `url`'s Streamlit health check answers "ok"."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + HEALTH, timeout=5) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 180.0,
                 tail: Callable[[], str] = lambda: "", what: str = "the app") -> float:
    """Poll `url`'s health check until it answers "ok"; seconds waited. LabError (with the
    log's tail) when `proc` exits first or `timeout` passes."""
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LabError(f"{what} exited with {proc.returncode}:\n{tail()}")
        if healthy(url):
            return time.perf_counter() - t0
        time.sleep(0.2)
    raise LabError(f"{what} was not healthy after {timeout:.0f} s:\n{tail()}")
