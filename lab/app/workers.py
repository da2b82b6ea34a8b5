"""Many learners, one server process: where the CPU-heavy model calls run.

Streamlit runs every session's script in a thread of one process. Left alone, ten learners
uploading at once start ten forward passes, each with torch's default of one thread per
core: far more threads than cores, all slower. Instead:

  - `install()` (called by lab/app/main.py, once per process) sets torch's threads to
    `SETTINGS.torch_threads` (default 1) and turns plotly's Python-side default template off
    (Streamlit draws charts with its own theme, so it was only serialised for nothing);
  - a bounded pool of `SETTINGS.workers` model workers (default: one per core): the app's
    models are a `PooledLab`, whose heavy `PoseLab` methods (`HEAVY`) run there, first come
    first served, so a forward pass never competes with more than `workers - 1` others, and
    the sessions' other work (widgets, figures, sending results) goes on meanwhile; other
    heavy calls go through `run`. A call made from inside a worker runs directly there.

Results are the same as without the pool; only where and when they are computed changes.
The costly drawing helpers are memoised separately (`lab.app.memo`).

The models themselves are loaded once per process and file version
(`lab.app.common._load`, `st.cache_resource`); the predictions on a photo are cached
across sessions by its pixels (`lab.app.photos`), so learners who open the same photo
share the work.
"""
from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import threading
import time

from lab.app.settings import ENV, SETTINGS

# PoseLab methods that run a network (the rest are cheap helpers)
HEAVY = ("predict", "inspect", "crop_heatmaps")

_LOCK = threading.Lock()
_POOL: cf.ThreadPoolExecutor | None = None
_LOCAL = threading.local()
_INSTALLED = False
STATS = {"calls": 0, "queued_s": 0.0, "max_queued_s": 0.0}


def pool() -> cf.ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = cf.ThreadPoolExecutor(max_workers=SETTINGS.workers, thread_name_prefix="pose-lab-model")
        return _POOL


def run(fn, *args, **kwargs):
    """fn(*args, **kwargs) in the model pool; the caller waits for the result (or its exception)."""
    if getattr(_LOCAL, "inside", False):
        return fn(*args, **kwargs)
    t0 = time.perf_counter()
    return pool().submit(_in_worker, t0, fn, args, kwargs).result()


def _in_worker(t0: float, fn, args, kwargs):
    waited = time.perf_counter() - t0
    with _LOCK:
        STATS["calls"] += 1
        STATS["queued_s"] += waited
        STATS["max_queued_s"] = max(STATS["max_queued_s"], waited)
    _LOCAL.inside = True
    try:
        return fn(*args, **kwargs)
    finally:
        _LOCAL.inside = False


def record_run(page: str, t0: float) -> None:
    """With POSE_LAB_TIMINGS=file (the classroom benchmark sets it), append how long this
    script run took on the server: one JSON line per run."""
    path = os.environ.get("POSE_LAB_TIMINGS")
    if not path:
        return
    import json
    line = json.dumps({"page": page, "start": time.time() - (time.perf_counter() - t0),
                       "seconds": round(time.perf_counter() - t0, 4), "thread": threading.get_ident()})
    with _LOCK, open(path, "a") as f:
        f.write(line + "\n")


def install() -> None:
    """Once per process: torch threads and no plotly template. Idempotent. (The pool is used
    through `PooledLab`, which `lab.app.common` wraps the loaded models in, and through `run`.)"""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        _INSTALLED = True
    import plotly.io as pio
    import torch
    if os.environ.get(ENV["torch_threads"]) or os.environ.get(ENV["workers"]):
        # `pose-lab app` always sets these; a bare `streamlit run` (or a test) keeps torch's own
        torch.set_num_threads(SETTINGS.torch_threads)
    pio.templates.default = "none"


class PooledLab:
    """A `PoseLab` whose network calls (`HEAVY`) run in the model pool, first come first served;
    everything else is the wrapped predictor's own. The app's models are this (`lab.app.common`)."""

    def __init__(self, lab):
        self.lab = lab

    def __getattr__(self, name):
        attr = getattr(self.lab, name)
        if name in HEAVY:
            return functools.partial(run, attr)
        return attr
