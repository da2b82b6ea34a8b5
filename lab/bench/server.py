"""The server under the classroom benchmark: `pose-lab app --headless` started as a
subprocess (`Server`) or one already running (`RunningServer`, only its CPU), the CPU-s a
process and its children used (/proc), and the machine it runs on."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.bench.browser import free_port, wait_healthy
from lab.bench.capacity import percentile
from lab.errors import LabError


# ------------------------------------------------------------------ the server
class Server:
    """`pose-lab app --headless` as a subprocess (the same Python), stopped with SIGTERM."""

    def __init__(self, folder: Path, extra: list[str] | None = None, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        self.log = folder / "server.log"
        cmd = [sys.executable, "-m", "lab.cli", "app", "--headless", "--port", str(self.port),
               "--address", "127.0.0.1", "--runs", str(folder / "runs"), *(extra or [])]
        self._log = open(self.log, "wb")
        self.t0 = time.perf_counter()
        self.timings = folder / "server_runs.jsonl"        # every script run's duration (lab.app.workers)
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=folder,
                                     env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                                          "POSE_LAB_TIMINGS": str(self.timings)})

    def runs_between(self, t0: float, t1: float) -> dict:
        """p50 / p95 / max seconds of the server's script runs per page that started in [t0, t1]."""
        per: dict[str, list[float]] = {}
        try:
            lines = self.timings.read_text().splitlines()
        except OSError:
            return {}
        for line in lines:
            r = json.loads(line)
            if t0 <= r["start"] <= t1:
                per.setdefault(r["page"] or "try-it", []).append(r["seconds"])
        return {p: {"runs": len(xs), "p50": round(percentile(xs, 50), 3), "p95": round(percentile(xs, 95), 3),
                    "max": round(max(xs), 3)} for p, xs in sorted(per.items())}

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds from the start until the health check answers."""
        wait_healthy(self.url, self.proc, timeout, self.tail)
        return time.perf_counter() - self.t0

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def memory_mib(self) -> dict:
        """Resident and peak resident memory of the server process."""
        out = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out["rss" if line.startswith("VmRSS") else "peak_rss"] = round(int(line.split()[1]) / 1024)
        except OSError:
            pass
        return out

    def cpu_s(self) -> float | None:
        """CPU-s of the server process and its children so far (`tree_cpu_s`)."""
        return tree_cpu_s(self.proc.pid)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class RunningServer:
    """A server this benchmark did not start (`--url` with `--server-pid`): only its CPU."""

    def __init__(self, pid: int):
        if tree_cpu_s(pid) is None:
            raise LabError(f"--server-pid {pid}: no such process on this machine (the server's CPU is read "
                           f"from /proc/{pid}/stat; run the benchmark where the server runs).")
        self.pid = pid

    def cpu_s(self) -> float | None:
        return tree_cpu_s(self.pid)

    def memory_mib(self) -> dict:
        return {}

    def runs_between(self, t0: float, t1: float) -> dict:
        return {}


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (field 3 onwards), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree_cpu_s(pid: int) -> float | None:
    """CPU-s (user + system) a process has used, with its children: the live ones (found by
    their parent pid in /proc) and the exited ones it waited for (cutime, cstime). None when
    there is no such process. Linux only."""
    f = _stat(pid)
    if f is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    own = lambda f: sum(int(v) for v in f[11:15])              # utime stime cutime cstime
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            g = _stat(int(d.name))
            if g is not None:
                parents.setdefault(int(g[1]), []).append(int(d.name))
    total, todo, seen = own(f), list(parents.get(pid, [])), {pid}
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        g = _stat(c)
        if g is not None:
            total += own(g)
            todo += parents.get(c, [])
    return total / ticks


def machine_cpu_s() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    try:
        f = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")       # minus idle and iowait
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict:
    import platform
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average_at_start": load, "python": platform.python_version()}
