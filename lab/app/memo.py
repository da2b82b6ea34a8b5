"""A process-wide memo for the app's pure drawing helpers (`lab.app.plots` decorates the
costly ones with `@memoised`): the same photo drawn again, on a rerun, a page switch or for
another learner, costs a copy of a dict instead of a second construction. Arrays are keyed
by their content; a plotly figure is kept as a dict and handed out as a fresh Figure.
"""
from __future__ import annotations

import collections
import copy
import functools
import hashlib
import threading
import weakref

import numpy as np

MEMO_ENTRIES = 128                          # figures kept per helper (LRU)
STATS = {"hits": 0, "misses": 0}

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
            STATS["misses"] += 1
        else:
            STATS["hits"] += 1
        kind, v = hit
        if kind == "figure":
            import plotly.graph_objects as go
            return go.Figure(copy.deepcopy(v), _validate=False)
        return v
    wrapper.__pose_lab_memo__ = True
    return wrapper
