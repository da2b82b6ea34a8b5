"""Training runs launched from the browser (the Retrain page): app machinery around
`lab.train.loop.train`, one background thread per run, at most K training at once.

A `BrowserRun` owns a folder `<runs_dir>/<id>/` (the app uses `lab.app.common.RUNS_DIR`;
ids are `YYYYmmdd-HHMMSS-xxxxxx`, made here, and every function taking an id refuses any
other, so nothing can name a folder outside the runs directory):

  status.json        label, state, settings, progress, history, best epoch, error (atomic writes)
  pose.safetensors   the best good checkpoint so far (atomic copy): every page's model choice
                     lists it as soon as it exists, and a cancelled or failed run keeps it
  live.png           a heatmap of one validation image, redrawn after every epoch
  detector/ spatial/ joint/    each stage's run folder (`lab.train.loop.train`)
  error.log          the traceback, when a run failed for an unexpected reason

Stages: the detector alone; then, with the spatial model on, the spatial model on the
frozen detector (its priors start from the training set's displacement histograms) and,
when the epoch budget allows, a short joint stage (see `stage_plan`).

"Best" means: among checkpoints of the run's final kind (with the spatial model once a
spatial stage has produced one), the highest validation PCK@0.2 of the model's output
(the marginal when there is a spatial model, else the unary). Checkpoints are only ever
picked on the validation split, never on the test set.

A server must survive its learners' trainings:

  - at most `max_running` runs train at once (K, `pose-lab app --max-trainings`, default 1);
    later ones wait in a first-come queue, at most `max_queued` of them, and know their
    place in it (`queue_position`); 0 turns browser training off;
  - cancel works at any point: a queued run leaves the queue at once, a training one stops
    at its next batch, keeping its best checkpoint;
  - every file is written to a temporary name, flushed to disk and renamed, so a run killed
    at any moment (even mid-write) leaves its previous best checkpoint loadable
    (tests/app/test_jobs_kill.py kills a real training process to check it);
  - training threads run at a lower CPU priority than the learners' sessions (Linux), so
    the pages stay responsive while a run trains;
  - finished runs can be deleted; `disk_usage` says what the runs take and what is free.

Several servers, one runs directory (replicas behind a load balancer, README "A class
larger than one machine"): the queue is kept in the runs directory itself, so every
replica sees the same one. Each run's status.json says its state, when it was created,
and which process (host, pid) owns it; a run is taken as alive while that process lives
(same host) or its status was written in the last STALE_S seconds (another host; waiting
runs rewrite theirs every HEARTBEAT_S). A run starts training only when it is first in
line over the whole directory (by creation time) and fewer than K runs of the directory
train, a check made and claimed (status "running" written) under an exclusive lock on
the runs directory (fcntl.flock), so two replicas never both take the last place. K and
the queue length are each server's settings: give every replica the same
`--max-trainings`. Cancel works from any replica (a `cancel.request` file the owner sees
at its next batch); a run another process owns is never deleted while it is alive.

Concurrency inside one server: each run has its own folder, thread and model; the shared
mutable state is `_REGISTRY` (run id -> BrowserRun) and the queue, guarded by `_LOCK` / the queue's
condition. Threads: each run trains on its fair share of the free cores (`train_threads`: all
of a quiet machine's when the server trains one run at a time). Under torch's OpenMP backend the
thread count is a per-thread setting, so the run's own thread sets it and the pages' model calls
keep theirs (`pose-lab app --torch-threads`); the run's lower priority keeps the pages first. And
`lab.train.loop.train` reseeds torch's global generator each epoch, so two runs training
at the same time are not bit-reproducible (they are still correct and never touch each
other's files).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import secrets
import shutil
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lab.config import DetectorConfig, SpatialConfig, TrainConfig, to_dict
from lab.data.cache import MINI_PATH, PoseCache
from lab.data.codec import HeatmapCodec
from lab.errors import LabError
from lab.train.loop import step_loss, train

STATUS = "status.json"
POSE = "pose.safetensors"
LIVE = "live.png"
ACTIVE = ("queued", "running")
TERMINAL = ("done", "cancelled", "failed", "interrupted")
STALE_S = 300.0             # a running status not updated for this long, by no thread of ours
HEARTBEAT_S = 60.0          # a waiting run rewrites its status this often (other hosts see it alive)
QUEUE_LOCK = ".queue.lock"  # where the runs directory itself cannot be locked: the lock file
CANCEL = "cancel.request"   # in a run folder: another server asks the owner to cancel
MAX_STEP_POINTS = 2000      # batch losses kept for the live chart (thinned evenly beyond that)
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
MAX_LABEL = 60
TRAIN_NICE = 10             # how much lower a training thread's CPU priority is (Linux)

_REGISTRY: dict[str, "BrowserRun"] = {}
_LOCK = threading.Lock()


# ------------------------------------------------------------------ ids, labels, limits
def check_id(run_id: str) -> str:
    """A run id as this module makes them, or LabError: nothing else names a run folder."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise LabError(f"{str(run_id)[:80]!r} is not a run id.")
    return run_id


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """<runs_dir>/<run_id>, for a valid id only."""
    return Path(runs_dir) / check_id(run_id)


def clean_label(text: str) -> str:
    """A run label as shown everywhere: printable, one line, at most MAX_LABEL characters.
    Labels only ever go into status.json, never into a path."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text or ""))
    return " ".join(text.split())[:MAX_LABEL].strip()


@dataclass
class Limits:
    """How many runs train at once (K) and how many may wait."""
    max_running: int = 1
    max_queued: int = 8


def _default_limits() -> Limits:
    try:
        from lab.app.settings import SETTINGS
        return Limits(SETTINGS.max_trainings, SETTINGS.max_queued)
    except SystemExit:                              # a bad variable: the app reports it; keep the defaults
        return Limits()


LIMITS = _default_limits()


def configure(max_running: int | None = None, max_queued: int | None = None) -> Limits:
    """Change K and the queue length of this process (the app reads them from its settings)."""
    with _QUEUE.cond:
        if max_running is not None:
            LIMITS.max_running = max(0, int(max_running))
        if max_queued is not None:
            LIMITS.max_queued = max(0, int(max_queued))
        _QUEUE.cond.notify_all()
    return LIMITS


@contextlib.contextmanager
def _dir_lock(runs_dir: Path):
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
    for st in _statuses(Path(runs_dir)):
        rid = st.get("id")
        if not isinstance(rid, str) or get_run(rid) is not None:
            continue
        if st.get("state") in ACTIVE and _alive(st):
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
            with _dir_lock(run.runs_dir):
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
                    with _dir_lock(run.runs_dir):
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


_QUEUE = _Queue()


def queue_counts(runs_dir: Path | None = None) -> dict:
    """Runs training and waiting, and the limits: over `runs_dir`, shared by every server
    using it; without it, this server's own runs."""
    return _QUEUE.counts(runs_dir)


def _lower_priority() -> None:
    """This thread (and the torch worker threads it starts) at a lower CPU priority, so
    learners' pages stay quick while it trains. Linux only; elsewhere nothing happens."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + TRAIN_NICE))
    except (AttributeError, OSError):
        pass


# ------------------------------------------------------------------ settings
@dataclass
class RunSettings:
    """What the Retrain page lets you choose. `cache` is "mini" or a `pose-lab prepare` file."""
    label: str = ""
    cache: str = "mini"
    epochs: int = 6             # total budget, shared by the stages (`stage_plan`): the default preset
    lr: float = 3e-3
    sigma: float = 1.0          # Gaussian target sigma, heatmap pixels
    spatial: bool = True
    train_size: int = 0         # first N training crops (0 = all)
    val_size: int = 0           # first N validation crops (0 = all)
    batch_size: int = 16
    graph: str = "tree"
    seed: int = 0
    threads: int = 0            # 0: this run's fair share of the cores (`train_threads`)
    device: str = "cpu"

    def default_label(self) -> str:
        model = "detector + spatial" if self.spatial else "detector"
        n = f"{self.train_size} imgs" if self.train_size else "all imgs"
        return f"{model}, {self.epochs} ep, lr {self.lr:g}, σ {self.sigma:g}, {n}"

    def check(self) -> "RunSettings":
        """These settings, or LabError saying which one is out of range (nothing starts)."""
        rules = [("epochs", 1, 100), ("lr", 1e-6, 1.0), ("sigma", 0.25, 8.0), ("train_size", 0, 10 ** 6),
                 ("val_size", 0, 10 ** 6), ("batch_size", 1, 256), ("threads", 0, 256)]
        for name, lo, hi in rules:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise LabError(f"{name} = {v!r} is outside {lo:g}..{hi:g}.")
        if self.graph not in ("tree", "full"):
            raise LabError(f"graph {self.graph!r} is not 'tree' or 'full'.")
        return self


# The page's starting points, measured by `pose-lab bench --retrain` on 2 cores: the default
# (at most a minute on a quiet 2-core machine, a model worth looking at: 8 epochs took 64 s for
# mini-val PCK 54.4, 3 epochs 20 s; 6 epochs keeps both goals) and a longer run of about five minutes.
# Through the page in Chromium on a busy 2-core machine (load average 4.9, a training campaign
# running, so 1 torch thread at low priority) the 6-epoch default took 364 s, mini-val PCK 53.6.
PRESETS = {
    "default (about 4 minutes on 2 cores)": RunSettings(),   # 220 s through the page, quiet, 2026-12-07
    "about 5 minutes": RunSettings(epochs=28),
}


def train_threads(settings: RunSettings, max_running: int | None = None, load: float | None = None) -> int:
    """Torch threads for a run: `settings.threads`, else the free cores at its start, shared
    evenly by the runs that may train at once: both cores of a quiet 2-core class server for a
    lone run, one when the machine is busy. (A low-priority run with more threads than free
    cores is far slower, not faster: its threads wait for each other. Measured here with the
    load average at 8 on 2 cores: a tiny run took 17 s on 1 thread and had not finished its
    first batch after 100 s on 2.)"""
    if settings.threads:
        return int(settings.threads)
    cores = os.cpu_count() or 1
    k = LIMITS.max_running if max_running is None else max_running
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    free = max(1, int(cores - load + 0.5))
    return max(1, min(cores // max(int(k), 1), free))


def eta(status: dict) -> dict | None:
    """Time left of a training run, measured from its own batches on this machine:
    {"seconds", "rate" (images/s so far), "threads", "text" (what was measured)}; None before
    its first batches."""
    prog, t0 = status.get("progress") or {}, status.get("train_started")
    frac = float(prog.get("fraction") or 0.0)
    if status.get("state") != "running" or not t0 or frac < 0.02:
        return None
    spent = max(time.time() - float(t0), 1e-6)
    left = spent * (1 - frac) / frac
    rate = status.get("images_per_s")
    return {"seconds": left, "rate": rate, "threads": status.get("threads"),
            "text": f"about {fmt_seconds(left)} ({frac:.0%} done in {fmt_seconds(spent)} on this machine"
                    + (f"; {rate:.0f} images/s in the last epoch" if rate else "")
                    + f", {status.get('threads') or '?'} torch thread{'' if status.get('threads') == 1 else 's'})"}


def expected_seconds(settings: RunSettings, runs_dir: Path) -> dict | None:
    """How long a run with these settings should take here, from the most recent finished run
    on this server: its wall time per image trained (validation included) times this run's
    images. {"seconds", "from" (its label), "images", "wall"}; None when no run has finished."""
    done = [st for st in _statuses(Path(runs_dir)) if st.get("state") == "done" and st.get("train_started")
            and st.get("finished") and st.get("train_images")]
    if not done:
        return None
    last = max(done, key=lambda st: st["finished"])
    per_image = (last["finished"] - last["train_started"]) / last["train_images"]
    try:
        n = min(settings.train_size or describe_cache(settings.cache)["counts"]["train"],
                describe_cache(settings.cache)["counts"]["train"])
    except LabError:
        return None
    return {"seconds": per_image * n * max(sum(e for _, e in stage_plan(settings.epochs, settings.spatial)), 1),
            "from": last.get("label"), "images": last["train_images"], "wall": last["finished"] - last["train_started"]}


def fmt_seconds(s: float) -> str:
    s = max(0.0, float(s))
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def stage_plan(epochs: int, spatial: bool) -> list[tuple[str, int]]:
    """How the epoch budget is shared: [(stage, epochs), ...].

    Detector only: all epochs. With the spatial model: about a fifth each for the
    spatial stage (at least one) and, from 5 epochs on, the joint stage; the rest for
    the detector (at least one).
    """
    epochs = max(1, int(epochs))
    if not spatial:
        return [("detector", epochs)]
    if epochs == 1:
        return [("detector", 1), ("spatial", 1)]
    sp = max(1, round(epochs * 0.2))
    joint = round(epochs * 0.2) if epochs >= 5 else 0
    plan = [("detector", epochs - sp - joint), ("spatial", sp)]
    if joint:
        plan.append(("joint", joint))
    return plan


def open_cache(cache: str | os.PathLike) -> PoseCache:
    """The bundled mini set ("mini") or a cache file; LabError with a clear message otherwise."""
    text = str(cache).strip()
    if not text:
        raise LabError("no cache file given: enter the path of a file made by `pose-lab prepare`.")
    path = MINI_PATH if text == "mini" else Path(text).expanduser()
    if path.is_dir():
        raise LabError(f"{path} is a folder; expected a cache file made by `pose-lab prepare` "
                       f"(for example cache/lsp128.safetensors).")
    c = PoseCache(path)
    for split in ("train", "val"):
        if split not in c.splits or len(c[split]) == 0:
            raise LabError(f"{path} has no {split!r} split with images (it has {sorted(c.splits)}); "
                           f"training needs both train and val.")
    return c


def describe_cache(cache: str | os.PathLike) -> dict:
    """Split sizes and crop settings of a cache, for the page: raises LabError if unusable."""
    c = open_cache(cache)
    return {"path": str(c.path), "counts": {k: len(v) for k, v in c.splits.items()},
            "source": c.meta.get("source", ""), "data": to_dict(c.data)}


# ------------------------------------------------------------------ files
def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
    tmp.replace(path)


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(type(x).__name__)


def _copy_atomic(src: Path, dst: Path) -> None:
    """dst becomes a copy of src, or stays what it was: written to a temporary name,
    flushed to disk, then renamed over dst (a kill or power cut at any moment leaves the
    old or the new file, never half of one)."""
    tmp = dst.with_name(f"{dst.name}.{threading.get_ident()}.tmp")
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            shutil.copyfileobj(fi, fo, 1 << 20)
            fo.flush()
            os.fsync(fo.fileno())
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def disk_usage(runs_dir: Path) -> dict:
    """{"runs": bytes of every run folder, "per_run": {id: bytes}, "free": bytes free on that disk}."""
    runs_dir = Path(runs_dir)
    per = {d.name: folder_bytes(d) for d in runs_dir.iterdir() if d.is_dir() and RUN_ID.match(d.name)} \
        if runs_dir.is_dir() else {}
    probe = runs_dir if runs_dir.is_dir() else next((p for p in runs_dir.parents if p.is_dir()), Path("/"))
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = None
    return {"runs": sum(per.values()), "per_run": per, "free": free}


def read_status(run_dir: Path) -> dict | None:
    """A run folder's status.json (None if absent or unreadable), with a stale "running"
    turned into "interrupted" (the server that ran it stopped)."""
    path = Path(run_dir) / STATUS
    try:
        st = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(st, dict):
        return None
    st.setdefault("id", Path(run_dir).name)
    if st.get("state") in ACTIVE and not _alive(st):
        waiting = st["state"] == "queued"
        st["state"] = "interrupted"
        st.setdefault("error", None)
        st["error"] = st["error"] or ("the server stopped while this run was waiting its turn; it never trained."
                                      if waiting else "the server stopped while this run was training; "
                                      "its last good checkpoint is kept.")
    elif st.get("state") == "queued":               # another replica's run: its place in the shared line
        st["queue_position"] = _QUEUE.position(st["id"], Path(run_dir).parent)
    return st


def _alive(st: dict) -> bool:
    """Whether the process owning an active run still runs it: a thread of ours; else, on this
    host, its process exists and wrote within STALE_S; on another host (a replica sharing the
    folder), it wrote within STALE_S."""
    with _LOCK:
        run = _REGISTRY.get(st.get("id", ""))
    if run is not None and run.thread is not None:
        return run.thread.is_alive()
    fresh = time.time() - float(st.get("updated", 0)) < STALE_S
    if st.get("host", HOST) != HOST:
        return fresh
    return fresh and _pid_alive(st.get("pid"))


HOST = socket.gethostname()


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                         # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def status_of(runs_dir: Path, run_id: str) -> dict | None:
    """A run's status: live from this server when it runs here, else its status.json."""
    path = run_folder(runs_dir, run_id)
    run = get_run(run_id)
    if run is not None and run.runs_dir.resolve() == Path(runs_dir).resolve():
        return run.snapshot()
    return read_status(path)


def list_runs(runs_dir: Path) -> list[dict]:
    """Every run folder's status, newest first (folders without a readable status are skipped)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    out = []
    for d in runs_dir.iterdir():
        if d.is_dir() and RUN_ID.match(d.name):
            st = status_of(runs_dir, d.name)
            if st is not None:
                st["path"] = str(d)
                st["has_model"] = (d / POSE).is_file()
                out.append(st)
    return sorted(out, key=lambda s: s.get("created", 0), reverse=True)


# ------------------------------------------------------------------ live heatmap
_HOT = np.array([[0, 0, 0], [80, 18, 123], [183, 55, 121], [251, 136, 97], [252, 253, 191]], float)


def colorize(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> (..., 3) uint8 through a magma-like ramp."""
    v = np.clip(np.nan_to_num(v), 0, 1) * (len(_HOT) - 1)
    i = np.minimum(v.astype(int), len(_HOT) - 2)
    f = (v - i)[..., None]
    return (_HOT[i] * (1 - f) + _HOT[i + 1] * f).astype(np.uint8)


@torch.no_grad()
def live_heatmap(model, image: np.ndarray) -> dict:
    """One crop (S, S, 3) uint8 through a pose model: every joint's map (the marginal when
    the model has a spatial model, else the unary), their maximum over joints divided by
    the picture's brightest value `top` (one scale for all joints; a target peaks at 1,
    so `top` says how confident the model is), upsampled and blended over the crop."""
    from lab.models.detector import BELIEF_OF_LOSS, belief
    from lab.models.predict import heatmaps, to_input
    was_training = model.training
    model.eval()
    try:
        x = to_input(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None])
        out = heatmaps(model, x.to(next(model.parameters()).device))
        key = "marginal" if "marginal" in out else "unary"
        maps = out["marginal"][0] if key == "marginal" else \
            belief(out["unary"][0], BELIEF_OF_LOSS[model.detector.cfg.loss])
        maps = maps.float().clamp_min(0).cpu()
    finally:
        model.train(was_training)
    top = float(maps.max())
    peak = (maps.max(0).values / max(top, 1e-12)).numpy()   # one scale for the whole picture
    S = image.shape[0]
    from PIL import Image
    up = np.asarray(Image.fromarray(peak.astype(np.float32)).resize((S, S), Image.BILINEAR))
    heat = colorize(up).astype(float)
    a = (0.15 + 0.7 * up)[..., None]
    blend = (image.astype(float) * (1 - a) + heat * a).astype(np.uint8)
    return {"kind": key, "maps": maps.numpy(), "top": top, "overlay": blend}


def live_caption(live: dict) -> str:
    """What the validation image next to the curves shows, and how to read its brightness."""
    if live["kind"] == "marginal":
        return (f"One validation image after epoch {live['epoch']}: the marginal (detector + spatial model) of "
                f"every joint, scaled so that its brightest pixel is white (value {live['top']:.3g}). A marginal "
                "is a product of messages: its height is not on the unary's scale, so read its shape, not "
                "its value.")
    return (f"One validation image after epoch {live['epoch']}: the detector's unary of every joint, scaled so "
            f"that its brightest pixel is white (value {live['top']:.2f}; the unary is trained towards 1 at a "
            "joint, so this says how sure the detector is).")


@torch.no_grad()
def validation_loss(model, cfg: TrainConfig, codec, split, batch: int = 50) -> float:
    """The stage's training loss (`lab.train.loop.step_loss`, same terms and weights) on the
    validation crops: no augmentation, the model in eval mode. Next to the training loss it
    shows overfitting: the training loss keeps falling while this one stops or rises."""
    images, coords, lab = split.tensors()          # (N, 3, S, S) uint8, (N, K, 2), (N, K)
    was = model.training
    model.eval()
    try:
        total, n = 0.0, 0
        for i in range(0, len(images), batch):
            x = images[i:i + batch].float().div(255)
            loss = step_loss(model, cfg.stage, x, coords[i:i + batch], lab[i:i + batch], codec,
                             cfg.unary_weight, cfg.marginal_loss, cfg.prior_decay)
            total, n = total + float(loss) * len(x), n + len(x)
    finally:
        model.train(was)
    return total / max(n, 1)


def _save_png(path: Path, rgb: np.ndarray, scale: int = 2) -> None:
    from PIL import Image
    img = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    tmp.replace(path)


# ------------------------------------------------------------------ the run
class BrowserRun:
    """One training run in a background thread. Never raises from the thread: every
    failure ends in status.json as state "failed" with a message."""

    def __init__(self, settings: RunSettings, runs_dir: Path):
        settings = dataclasses.replace(settings.check(), label=clean_label(settings.label))
        self.settings = settings
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.id, self.path = self._make_folder()
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._nan = False
        self.plan = stage_plan(settings.epochs, settings.spatial)
        self.total_epochs = sum(n for _, n in self.plan)
        self.best_score: tuple | None = None
        self._stage_best: dict[str, float] = {}
        self._stage = None
        self._done_epochs = 0
        self._val_image = None
        self._last_write = 0.0
        label = settings.label or settings.default_label()
        self.status = {
            "id": self.id, "label": label, "state": "queued", "error": None, "cancel_requested": False,
            "settings": dataclasses.asdict(settings), "plan": self.plan,
            "created": time.time(), "updated": time.time(), "pid": os.getpid(), "host": HOST,
            "progress": {"fraction": 0.0, "stage": None, "epoch": 0, "epochs": self.total_epochs,
                         "step": 0, "steps": 0},
            "history": [], "steps": [], "best": None, "live": None, "images_per_s": None}
        self._write()

    def _make_folder(self) -> tuple[str, Path]:
        while True:
            rid = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            path = self.runs_dir / rid
            try:
                path.mkdir()
                return rid, path
            except FileExistsError:
                continue

    # -------------------------------------------------------------- control
    def start(self) -> "BrowserRun":
        """Join the queue (LabError when it is full or training is off) and start the thread,
        which waits for its turn."""
        _QUEUE.admit(self)
        with _LOCK:
            _REGISTRY[self.id] = self
        self.thread = threading.Thread(target=self._main, name=f"pose-lab-run-{self.id}", daemon=True)
        self.thread.start()
        return self

    def cancel(self) -> None:
        """Leave the queue at once, or stop at the next training step; the best checkpoint is kept."""
        self._stop.set()
        self._update(cancel_requested=True)
        _QUEUE.wake()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def state(self) -> str:
        with self._lock:
            return self.status["state"]

    def snapshot(self) -> dict:
        with self._lock:
            st = json.loads(json.dumps(self.status, default=_jsonable))
        st["queue_position"] = _QUEUE.position(self.id, self.runs_dir) if st["state"] == "queued" else None
        return st

    def _update(self, write: bool = True, **kw) -> None:
        with self._lock:
            self.status.update(kw)
            self.status["updated"] = time.time()
        if write:
            self._write()

    def _write(self) -> None:
        with self._lock:
            _write_json(self.path / STATUS, self.status)
            self._last_write = time.monotonic()

    # -------------------------------------------------------------- the thread
    def _main(self) -> None:
        _lower_priority()
        if not _QUEUE.wait_turn(self, self._stop):
            self._update(state="cancelled", cancel_requested=True)
            return
        try:
            threads = train_threads(self.settings)
            self._threads = threads
            self._update(state="running", train_started=time.time(), threads=threads)
            self._train()
        except LabError as e:
            self._update(state="failed", error=str(e))
        except Exception as e:                      # a bug: keep the traceback, show a sentence
            (self.path / "error.log").write_text(traceback.format_exc())
            self._update(state="failed", error=f"training stopped by an unexpected error "
                                               f"({type(e).__name__}: {e}); details in {self.path / 'error.log'}.")
        finally:
            _QUEUE.done(self.id)

    def _train(self) -> None:
        s = self.settings
        cache = open_cache(s.cache)
        data = dataclasses.replace(cache.data, sigma=float(s.sigma))
        tr, va = cache["train"], cache["val"]
        va = va.subset(s.val_size) if s.val_size else va
        self._val_image = va.images[0]
        det = DetectorConfig.small()
        sp = SpatialConfig(graph=s.graph, heatmap_size=data.heatmap_size)
        init = None
        self._done_epochs = 0
        for stage, epochs in self.plan:
            self._stage = stage
            cfg = TrainConfig(stage=stage, epochs=epochs, batch_size=s.batch_size, lr=s.lr, warmup=20,
                              train_limit=s.train_size, seed=s.seed, device=s.device,
                              threads=getattr(self, "_threads", 0) or train_threads(s))
            self._progress(stage=stage)
            self._cfg, self._val, self._codec = cfg, va, HeatmapCodec.from_config(data)
            run = train(cfg, data, tr, va, self.path / stage, det=det, sp=sp, init=init,
                        callback=self._on_event, should_stop=self._should_stop)
            if self._nan:
                raise LabError(f"the loss became NaN or infinite in the {stage} stage: the learning "
                               f"rate ({s.lr:g}) is probably too high. The last good checkpoint is kept.")
            if run.stopped:
                self._update(state="cancelled")
                return
            best = self.path / stage / "best.safetensors"
            if not best.is_file():
                raise LabError(f"the {stage} stage produced no usable checkpoint.")
            init = best
        self._progress(fraction=1.0)
        n = min(s.train_size or len(tr), len(tr))
        self._update(state="done", finished=time.time(), train_images=n * sum(e for _, e in self.plan))

    def _should_stop(self) -> bool:
        if self.cancel_requested_elsewhere():
            self._stop.set()
            self._update(write=False, cancel_requested=True)
        return self._stop.is_set() or self._nan

    def cancel_requested_elsewhere(self) -> bool:
        """Another server sharing the runs directory asked this run to stop (`cancel_run`)."""
        return (self.path / CANCEL).exists()

    def _progress(self, **kw) -> None:
        with self._lock:
            self.status["progress"].update(kw)

    def _on_event(self, e: dict) -> None:
        if e["event"] == "step":
            frac = (self._done_epochs + e["epoch"] + e["step"] / e["steps"]) / self.total_epochs
            if not math.isfinite(e["loss"]):
                self._nan = True
            stride = max(1, e["steps"] * self.total_epochs // MAX_STEP_POINTS)
            if e["step"] % stride == 0 or e["step"] == e["steps"]:
                with self._lock:
                    self.status["steps"].append([round(self._done_epochs + e["epoch"] + e["step"] / e["steps"], 4),
                                                 e["loss"] if math.isfinite(e["loss"]) else None,
                                                 self._stage])
            self._progress(fraction=min(frac, 1.0), epoch=self._done_epochs + e["epoch"] + 1,
                           step=e["step"], steps=e["steps"])
            self._update(write=time.monotonic() - self._last_write > 0.5)   # status.json at most 2x/s
            return
        # end of an epoch: the stage's model.safetensors now holds exactly this epoch
        model = e.pop("model")
        stage_epoch = e["epoch"]
        if stage_epoch == dict(self.plan)[self._stage]:
            self._done_epochs += stage_epoch
        val = {k: float(v) for k, v in e["val_pck"].items()}
        row = {"stage": self._stage, "epoch": self._global_epoch(stage_epoch), "stage_epoch": stage_epoch,
               "loss": float(e["loss"]), "val_pck": val, "seconds": float(e["seconds"]),
               "images_per_s": float(e["images_per_s"])}
        try:
            row["val_loss"] = validation_loss(model, self._cfg, self._codec, self._val)
        except Exception:                           # a curve must never stop training
            row["val_loss"] = None
        good = math.isfinite(row["loss"]) and all(math.isfinite(v) for v in val.values())
        if not good:
            self._nan = True
        else:
            self._keep_if_best(row)
            try:
                live = live_heatmap(model, self._val_image)
                _save_png(self.path / LIVE, live["overlay"])
                self._update(write=False, live={"epoch": row["epoch"], "stage": self._stage,
                                                "kind": live["kind"], "top": live["top"], "file": LIVE})
            except Exception:                       # a picture must never stop training
                pass
        with self._lock:
            self.status["history"].append(row)
        self._update(images_per_s=row["images_per_s"])

    def _global_epoch(self, stage_epoch: int) -> int:
        before = 0
        for st, n in self.plan:
            if st == self._stage:
                return before + stage_epoch
            before += n
        return stage_epoch

    def _keep_if_best(self, row: dict) -> None:
        src = self.path / self._stage / "model.safetensors"
        with_spatial = self._stage != "detector"
        headline = row["val_pck"].get("marginal" if with_spatial else "unary", 0.0)
        stage_best = self.path / self._stage / "best.safetensors"
        prev_stage = self._stage_best.get(self._stage)
        if prev_stage is None or headline >= prev_stage:
            _copy_atomic(src, stage_best)
            self._stage_best[self._stage] = headline
        score = (with_spatial, headline)
        if self.best_score is None or score >= self.best_score:
            _copy_atomic(src, self.path / POSE)
            self.best_score = score
            self._update(write=False, best={"epoch": row["epoch"], "stage": self._stage,
                                            "val_pck": row["val_pck"], "headline": headline,
                                            "method": "marginal" if with_spatial else "unary"})


# ------------------------------------------------------------------ registry
def start_run(settings: RunSettings, runs_dir: Path) -> BrowserRun:
    """Create a run folder with a unique id and a label no other run there has, and start it."""
    settings.check()
    with _LOCK:                                     # label check + folder creation, one tab at a time
        label = clean_label(settings.label) or settings.default_label()
        taken = {s.get("label") for s in _statuses(Path(runs_dir))}
        base, n = label[:MAX_LABEL - 5], 2
        while label in taken:
            label, n = f"{base} ({n})", n + 1
        run = BrowserRun(dataclasses.replace(settings, label=label), runs_dir)
    try:
        return run.start()
    except LabError:
        shutil.rmtree(run.path, ignore_errors=True)     # refused: leave nothing behind
        raise


def _statuses(runs_dir: Path) -> list[dict]:
    out = []
    if runs_dir.is_dir():
        for d in runs_dir.iterdir():
            if not RUN_ID.match(d.name):
                continue
            try:
                out.append(json.loads((d / STATUS).read_text()))
            except (OSError, ValueError):
                pass
    return out


def get_run(run_id: str) -> BrowserRun | None:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        return None
    with _LOCK:
        return _REGISTRY.get(run_id)


def cancel_run(run_id: str, runs_dir: Path | None = None) -> bool:
    """Ask a run to stop: this server's at once; with `runs_dir`, also an alive run another
    server sharing that folder owns (it stops at its next batch, or leaves the queue within a
    second). False if no such run waits or trains."""
    run = get_run(run_id)
    if run is not None:
        if run.state not in ACTIVE:
            return False
        run.cancel()
        return True
    if runs_dir is None:
        return False
    st = read_status(run_folder(runs_dir, run_id))
    if st is None or st.get("state") not in ACTIVE:
        return False
    part = run_folder(runs_dir, run_id) / (CANCEL + ".part")
    part.write_text(str(time.time()))
    part.replace(run_folder(runs_dir, run_id) / CANCEL)
    return True


def delete_run(runs_dir: Path, run_id: str) -> None:
    """Remove a finished run's folder (refused while it waits or trains, and for anything
    that is not a run folder of runs_dir)."""
    runs_dir = Path(runs_dir).resolve()
    path = run_folder(runs_dir, run_id)
    if path.is_symlink() or path.resolve().parent != runs_dir or not (path / STATUS).is_file():
        raise LabError(f"{run_id!r} is not a run in {runs_dir}.")
    run = get_run(run_id)
    if run is not None and run.thread is not None and run.thread.is_alive():
        raise LabError("this run is still waiting or training: cancel it first.")
    if run is None and (read_status(path) or {}).get("state") in ACTIVE:   # another replica's, alive
        raise LabError("this run is still waiting or training on another server: cancel it first.")
    shutil.rmtree(path)
    with _LOCK:
        _REGISTRY.pop(run_id, None)


# ------------------------------------------------------------------ comparison
def val_pck(model_path: Path, cache: str | os.PathLike = "mini", split: str = "val", limit: int = 0) -> dict:
    """PCK@0.2 on a cache split (crop pixels) of a pose checkpoint: {"unary": ..., "marginal": ...}.
    The Retrain page uses it to put a run and the shipped model side by side on the same images."""
    from lab.data.codec import HeatmapCodec
    from lab.eval.pck import pck
    from lab.models import io
    from lab.models.predict import predict_pose
    model, meta = io.load(Path(model_path))
    if meta.get("kind") != "pose":
        raise LabError(f"{model_path} is a {meta.get('kind')!r} checkpoint, not a pose model.")
    c = open_cache(cache)[split]
    c = c.subset(limit) if limit else c
    images, coords, lab = c.tensors()
    pred = predict_pose(model, images, HeatmapCodec.from_config(meta.get("data", {})))
    return {k: pck(p.numpy(), coords.numpy(), lab.numpy())["mean"]
            for k, p in pred.items() if not k.endswith("_conf")}
