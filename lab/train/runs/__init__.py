"""Training runs launched from the browser (the Retrain page): a service around
`lab.train.loop.train`, one background thread per run, at most K training at once. It
knows nothing of Streamlit; the app passes it its runs directory (`lab.app.common.RUNS_DIR`)
and its limits (`configure`, from `pose-lab app --max-trainings`).

  settings.py  RunSettings, the page's PRESETS, stage_plan, train_threads, open_cache
  store.py     run ids and labels, atomic files, disk use, which runs are alive
  queue.py     K at once and a first-come queue shared by every server using the folder
  run.py       BrowserRun (the thread: wait, train each stage, keep the best) and start_run
  control.py   read a run's status, list, cancel, delete
  timing.py    time left (eta) and time expected (expected_seconds)
  live.py      the live heatmap, the validation loss, val_pck of a checkpoint

A server must survive its learners' trainings:

  - at most `max_running` runs train at once (K, `pose-lab app --max-trainings`, default 1);
    later ones wait in a first-come queue, at most `max_queued` of them, and know their
    place in it (`queue_position`); 0 turns browser training off;
  - cancel works at any point: a queued run leaves the queue at once, a training one stops
    at its next batch, keeping its best checkpoint;
  - every file is written to a temporary name, flushed to disk and renamed, so a run killed
    at any moment (even mid-write) leaves its previous best checkpoint loadable
    (tests/train/runs/test_runs_kill.py kills a real training process to check it);
  - training threads run at a lower CPU priority than the learners' sessions (Linux), so
    the pages stay responsive while a run trains;
  - finished runs can be deleted; `disk_usage` says what the runs take and what is free.

Several servers, one runs directory (replicas behind a load balancer, README "A class
larger than one machine"): the queue is kept in the runs directory itself, so every
replica sees the same one. Each run's status.json says its state, when it was created,
and which process (host, pid) owns it; a run is taken as alive while that process lives
(same host) or its status was written in the last STALE_S seconds (another host; waiting
runs rewrite theirs every HEARTBEAT_S). Cancel works from any replica (a `cancel.request`
file the owner sees at its next batch); a run another process owns is never deleted while
it is alive.

The names below are the package's interface: `from lab.train import runs`, then
`runs.start_run(...)`.
"""
from lab.train.runs.control import cancel_run, delete_run, list_runs, read_status, status_of
from lab.train.runs.live import live_caption, live_heatmap, val_pck
from lab.train.runs.queue import HEARTBEAT_S, LIMITS, Limits, configure, queue_counts
from lab.train.runs.run import BrowserRun, start_run
from lab.train.runs.settings import (
    PRESETS,
    RunSettings,
    describe_cache,
    open_cache,
    stage_plan,
    train_threads,
)
from lab.train.runs.store import (
    ACTIVE,
    CANCEL,
    LIVE,
    MAX_LABEL,
    POSE,
    RUN_ID,
    STALE_S,
    STATUS,
    TERMINAL,
    check_id,
    clean_label,
    disk_usage,
    folder_bytes,
    get_run,
    run_folder,
)
from lab.train.runs.timing import eta, expected_seconds, fmt_seconds

__all__ = [
    "ACTIVE", "CANCEL", "HEARTBEAT_S", "LIMITS", "LIVE", "MAX_LABEL", "POSE", "PRESETS", "RUN_ID", "STALE_S",
    "STATUS", "TERMINAL", "BrowserRun", "Limits", "RunSettings", "cancel_run", "check_id", "clean_label",
    "configure", "delete_run", "describe_cache", "disk_usage", "eta", "expected_seconds", "fmt_seconds",
    "folder_bytes", "get_run", "list_runs", "live_caption", "live_heatmap", "open_cache", "queue_counts",
    "read_status", "run_folder", "stage_plan", "start_run", "status_of", "train_threads", "val_pck",
]
