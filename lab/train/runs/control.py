"""What the pages do with the runs of a folder: read a run's status (live from this server,
else its status.json), list them, cancel one (this server's, or another replica's through a
request file) and delete a finished one."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from lab.errors import LabError
from lab.train.runs.queue import QUEUE
from lab.train.runs.store import (
    ACTIVE,
    CANCEL,
    LOCK,
    POSE,
    REGISTRY,
    RUN_ID,
    STATUS,
    alive,
    get_run,
    run_folder,
)


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
    if st.get("state") in ACTIVE and not alive(st):
        waiting = st["state"] == "queued"
        st["state"] = "interrupted"
        st.setdefault("error", None)
        st["error"] = st["error"] or ("the server stopped while this run was waiting its turn; it never trained."
                                      if waiting else "the server stopped while this run was training; "
                                      "its last good checkpoint is kept.")
    elif st.get("state") == "queued":               # another replica's run: its place in the shared line
        st["queue_position"] = QUEUE.position(st["id"], Path(run_dir).parent)
    return st


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
    with LOCK:
        REGISTRY.pop(run_id, None)
