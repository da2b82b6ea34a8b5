"""At most K runs train at once over a runs directory; the others wait in one first-come
queue, at most `max_queued` of them.

The queue is kept in the runs directory itself, so every server sharing it (replicas
behind a load balancer) sees the same one: a run starts training only when it is first in
line over the whole directory (by creation time) and fewer than K runs of the directory
train, a check made and claimed (status "running" written) under an exclusive lock on the
runs directory (fcntl.flock), so two replicas never both take the last place. K and the
queue length are each server's settings (`configure`; the app sets them from
`pose-lab app --max-trainings`): give every replica the same ones.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.train.runs.store import ACTIVE, alive, get_run, statuses

if TYPE_CHECKING:
    from lab.train.runs.run import BrowserRun

HEARTBEAT_S = 60.0          # a waiting run rewrites its status this often (other hosts see it alive)
QUEUE_LOCK = ".queue.lock"  # where the runs directory itself cannot be locked: the lock file


@dataclass
class Limits:
    """How many runs train at once (K) and how many may wait."""
    max_running: int = 1
    max_queued: int = 8


LIMITS = Limits()


def configure(max_running: int | None = None, max_queued: int | None = None) -> Limits:
    """Change K and the queue length of this process (the app sets them from its settings)."""
    with QUEUE.cond:
        if max_running is not None:
            LIMITS.max_running = max(0, int(max_running))
        if max_queued is not None:
            LIMITS.max_queued = max(0, int(max_queued))
        QUEUE.cond.notify_all()
    return LIMITS


@contextlib.contextmanager
def dir_lock(runs_dir: Path):
    """Exclusive lock on the runs directory itself, across every process sharing it
    (fcntl.flock on the folder; where a folder cannot be locked, on <runs_dir>/.queue.lock;
    where there is no fcntl, only this process's threads are serialised)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:                              # not POSIX: one server per runs directory
        yield
        return
    fd = os.open(runs_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:                              # a file system that locks only files
            os.close(fd)
            fd = os.open(runs_dir / QUEUE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                                 # closing releases the lock


def _others(runs_dir: Path) -> list[dict]:
    """Active, alive runs of `runs_dir` that other processes own (or this one, from a
    BrowserRun no longer in the registry): status dicts."""
    out = []
    for st in statuses(Path(runs_dir)):
        rid = st.get("id")
        if not isinstance(rid, str) or get_run(rid) is not None:
            continue
        if st.get("state") in ACTIVE and alive(st):
            out.append(st)
    return out


class _Queue:
    """First come, first served over the whole runs directory: a run trains when it is first
    in line (by creation time) among every waiting run of its directory, this server's and
    the other replicas', and fewer than LIMITS.max_running of the directory's runs train."""

    def __init__(self):
        self.cond = threading.Condition()
        self.waiting: list[str] = []
        self.running: set[str] = set()

    def _line(self, runs_dir: Path) -> tuple[int, list[str]]:
        """(runs training, ids waiting in order) over runs_dir: this server's and the others'.
        Called with self.cond held."""
        runs_dir = Path(runs_dir).resolve()
        others = _others(runs_dir)
        mine = [r for r in (get_run(i) for i in [*self.waiting, *self.running]) if r is not None
                and r.runs_dir.resolve() == runs_dir]
        running = sum(1 for r in mine if r.id in self.running) + sum(1 for o in others if o["state"] == "running")
        queued = [(r.status["created"], r.id) for r in mine if r.id in self.waiting]
        queued += [(float(o.get("created", 0)), o["id"]) for o in others if o["state"] == "queued"]
        return running, [i for _, i in sorted(queued)]

    def admit(self, run: "BrowserRun") -> None:
        with self.cond:
            if LIMITS.max_running <= 0:
                raise LabError("training from the browser is turned off on this server "
                               "(pose-lab app --max-trainings 0).")
            with dir_lock(run.runs_dir):
                running, queued = self._line(run.runs_dir)
                queued = [i for i in queued if i != run.id]
                if running >= LIMITS.max_running and len(queued) >= LIMITS.max_queued:
                    raise LabError(f"{running} run(s) are training and {len(queued)} are waiting, "
                                   f"the most this server allows; try again when one has finished.")
                self.waiting.append(run.id)

    def wait_turn(self, run: "BrowserRun", stop: threading.Event) -> bool:
        """Block until this run may train (True; its status already says "running") or it was
        cancelled while waiting (False)."""
        beat = time.monotonic()
        with self.cond:
            while True:
                if stop.is_set() or run.cancel_requested_elsewhere():
                    if run.id in self.waiting:
                        self.waiting.remove(run.id)
                    self.cond.notify_all()
                    return False
                if len(self.running) < LIMITS.max_running:
                    with dir_lock(run.runs_dir):
                        running, queued = self._line(run.runs_dir)
                        if queued and queued[0] == run.id and running < LIMITS.max_running:
                            run._update(state="running")         # claimed while the folder is locked
                            self.waiting.remove(run.id)
                            self.running.add(run.id)
                            self.cond.notify_all()
                            return True
                if time.monotonic() - beat > HEARTBEAT_S:        # still alive, for other hosts
                    run._update()
                    beat = time.monotonic()
                self.cond.wait(0.5)

    def done(self, run_id: str) -> None:
        with self.cond:
            self.running.discard(run_id)
            if run_id in self.waiting:
                self.waiting.remove(run_id)
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def position(self, run_id: str, runs_dir: Path) -> int | None:
        """1 for the next to train in runs_dir, None when not waiting."""
        with self.cond:
            queued = self._line(runs_dir)[1]
            return queued.index(run_id) + 1 if run_id in queued else None

    def counts(self, runs_dir: Path | None = None) -> dict:
        """Runs training and waiting: over runs_dir (every server sharing it), else this server's."""
        with self.cond:
            if runs_dir is None:
                running, waiting = len(self.running), len(self.waiting)
            else:
                running, queued = self._line(runs_dir)
                waiting = len(queued)
            return {"running": running, "waiting": waiting,
                    "max_running": LIMITS.max_running, "max_queued": LIMITS.max_queued}


QUEUE = _Queue()


def queue_counts(runs_dir: Path | None = None) -> dict:
    """Runs training and waiting, and the limits: over `runs_dir`, shared by every server
    using it; without it, this server's own runs."""
    return QUEUE.counts(runs_dir)
