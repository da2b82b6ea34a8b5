"""A runs directory on disk: run ids and labels, the files of a run folder written
atomically, disk use, and which runs are alive (this process's registry of runs, or the
owning process's pid and heartbeat).

Ids are `YYYYmmdd-HHMMSS-xxxxxx`, made by `lab.train.runs.run`; every function taking an
id refuses any other, so nothing can name a folder outside the runs directory.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lab.errors import LabError

if TYPE_CHECKING:
    from lab.train.runs.run import BrowserRun

STATUS = "status.json"
POSE = "pose.safetensors"
LIVE = "live.png"
ACTIVE = ("queued", "running")
TERMINAL = ("done", "cancelled", "failed", "interrupted")
STALE_S = 300.0             # a running status not updated for this long, by no thread of ours
CANCEL = "cancel.request"   # in a run folder: another server asks the owner to cancel
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
MAX_LABEL = 60
HOST = socket.gethostname()

# This process's runs (run id -> BrowserRun): the shared mutable state of one server,
# guarded by LOCK (the queue has its own condition, lab.train.runs.queue).
REGISTRY: dict[str, "BrowserRun"] = {}
LOCK = threading.Lock()


# ------------------------------------------------------------------ ids, labels
def check_id(run_id: str) -> str:
    """A run id as this package makes them, or LabError: nothing else names a run folder."""
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


def get_run(run_id: str) -> "BrowserRun | None":
    """This process's run with that id, if any (None for anything that is not a run id)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        return None
    with LOCK:
        return REGISTRY.get(run_id)


# ------------------------------------------------------------------ files
def write_json(path: Path, obj: dict) -> None:
    """path holds obj as JSON, written to a temporary name and renamed (never half a file)."""
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=jsonable))
    tmp.replace(path)


def jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(type(x).__name__)


def copy_atomic(src: Path, dst: Path) -> None:
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


def statuses(runs_dir: Path) -> list[dict]:
    """The status.json of every run folder of runs_dir, as written (unreadable ones skipped)."""
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


# ------------------------------------------------------------------ alive or not
def alive(st: dict) -> bool:
    """Whether the process owning an active run still runs it: a thread of ours; else, on this
    host, its process exists and wrote within STALE_S; on another host (a replica sharing the
    folder), it wrote within STALE_S."""
    with LOCK:
        run = REGISTRY.get(st.get("id", ""))
    if run is not None and run.thread is not None:
        return run.thread.is_alive()
    fresh = time.time() - float(st.get("updated", 0)) < STALE_S
    if st.get("host", HOST) != HOST:
        return fresh
    return fresh and _pid_alive(st.get("pid"))


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
