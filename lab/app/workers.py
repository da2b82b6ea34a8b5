"""Many learners, one server process: where the CPU-heavy model calls run.

Streamlit runs every session's script in a thread of one process. Left alone, ten learners
uploading at once start ten forward passes, each with torch's default of one thread per
core: far more threads than cores, all slower. `install()` (called by lab/app/main.py,
once per process) sets this instead:

  - torch threads: `SETTINGS.torch_threads` (default 1), set once, here;
  - a bounded pool of `SETTINGS.workers` model workers (default: one per core): the
    heavy `PoseLab` methods run there, first come first served, so a forward pass never
    competes with more than `workers - 1` others, and the sessions' other work (widgets,
    figures, sending results) goes on meanwhile;
  - plotly's Python-side default template off: Streamlit draws charts with its own theme,
    so the default template was only validated and serialised into every figure for nothing.

  - the pure drawing helpers of `lab.app.plots` that cost the most (`MEMO`: plotly express
    figures, the 14-map grids, the annotated PNG) are memoised process-wide by their
    arguments (arrays by content): the same photo drawn again, on a rerun, a page switch or
    for another learner, costs a copy of a dict instead of a second construction.

A call made from inside a worker runs directly there.
Results are the same as without the pool and the memo; only where, when and how often
they are computed changes.

The models themselves are loaded once per process and file version
(`lab.app.common._load`, `st.cache_resource`); the predictions on a photo are cached
across sessions by its pixels (`lab.app.photos`), so learners who open the same photo
share the work.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import copy
import functools
import hashlib
import os
import threading
import time
import weakref

import numpy as np

from lab.app.settings import ENV, SETTINGS

# PoseLab methods that run a network (the rest are cheap helpers)
HEAVY = ("predict", "inspect", "crop_heatmaps")
# lab.app.plots helpers whose result depends on their arguments only
MEMO = ("photo_figure", "overlay_figure", "heatmap_grid", "kernel_figure", "annotated_png")
MEMO_ENTRIES = 128

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


def pooled(method):
    """A PoseLab method that runs in the pool."""
    if getattr(method, "__pose_lab_pooled__", False):
        return method

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return run(method, *args, **kwargs)
    wrapper.__pose_lab_pooled__ = True
    return wrapper


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


# ------------------------------------------------------------------ memo of drawing helpers
_DIGESTS: dict[int, tuple] = {}             # id(array) -> (weakref, digest): hash each array once


class _Unkeyable(Exception):
    pass


def _digest(a: np.ndarray) -> str:
    entry = _DIGESTS.get(id(a))
    if entry is not None and entry[0]() is a:
        return entry[1]
    d = hashlib.sha1(np.ascontiguousarray(a).view(np.uint8).reshape(-1)).hexdigest()
    try:
        ref = weakref.ref(a, lambda _r, k=id(a): _DIGESTS.pop(k, None))
        _DIGESTS[id(a)] = (ref, d)
    except TypeError:                       # a view that cannot be weakly referenced: just hash
        pass
    return d


def _key(x):
    """A hashable key for an argument, arrays by content; _Unkeyable for anything unknown."""
    if x is None or isinstance(x, (bool, int, float, str, bytes)):
        return x
    if isinstance(x, np.ndarray):
        return ("nd", x.shape, x.dtype.str, _digest(x))
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_key(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((str(k), _key(v)) for k, v in x.items())))
    if hasattr(x, "__dataclass_fields__"):
        return (type(x).__name__, repr(x))
    try:                                    # torch tensors and the like
        return _key(np.asarray(x.detach().cpu()))
    except Exception:
        raise _Unkeyable(type(x).__name__)


def memoised(fn):
    """fn(*args, **kwargs) once per distinct arguments, process-wide (LRU). A plotly figure
    is kept as a dict and handed out as a fresh Figure (callers add to it); anything else
    (PNG bytes) as is."""
    if getattr(fn, "__pose_lab_memo__", False):
        return fn
    store: collections.OrderedDict = collections.OrderedDict()
    lock = threading.Lock()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            key = (_key(args), _key(kwargs))
        except _Unkeyable:
            return fn(*args, **kwargs)
        with lock:
            hit = store.get(key)
            if hit is not None:
                store.move_to_end(key)
        if hit is None:
            value = fn(*args, **kwargs)
            hit = ("figure", value.to_dict()) if hasattr(value, "to_plotly_json") and hasattr(value, "layout") \
                else ("value", value)
            with lock:
                store[key] = hit
                while len(store) > MEMO_ENTRIES:
                    store.popitem(last=False)
            STATS["memo_misses"] = STATS.get("memo_misses", 0) + 1
        else:
            STATS["memo_hits"] = STATS.get("memo_hits", 0) + 1
        kind, v = hit
        if kind == "figure":
            import plotly.graph_objects as go
            return go.Figure(copy.deepcopy(v), _validate=False)
        return v
    wrapper.__pose_lab_memo__ = True
    return wrapper


def install() -> None:
    """Once per process: torch threads, the pool around PoseLab's heavy methods, no plotly
    template. Idempotent."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        _INSTALLED = True
    import plotly.io as pio
    import torch

    from lab.infer import PoseLab
    if os.environ.get(ENV["torch_threads"]) or os.environ.get(ENV["workers"]):
        # `pose-lab app` always sets these; a bare `streamlit run` (or a test) keeps torch's own
        torch.set_num_threads(SETTINGS.torch_threads)
    for name in HEAVY:
        if hasattr(PoseLab, name):
            setattr(PoseLab, name, pooled(getattr(PoseLab, name)))
    pio.templates.default = "none"
    from lab.app import plots
    for name in MEMO:
        if callable(getattr(plots, name, None)):
            setattr(plots, name, memoised(getattr(plots, name)))
