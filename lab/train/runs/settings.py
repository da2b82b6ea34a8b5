"""What a browser run trains: its settings (the Retrain page's choices and presets), how
its epoch budget is shared by the stages, how many torch threads it gets, and the cache
it trains on.

Stages: the detector alone; then, with the spatial model on, the spatial model on the
frozen detector (its priors start from the training set's displacement histograms) and,
when the epoch budget allows, a short joint stage (`stage_plan`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from lab.config import to_dict
from lab.data.cache import MINI_PATH, PoseCache
from lab.data.codec import SIGMA
from lab.errors import LabError
from lab.train.runs.queue import LIMITS


@dataclass
class RunSettings:
    """What the Retrain page lets you choose. `cache` is "mini" or a `pose-lab prepare` file."""
    label: str = ""
    cache: str = "mini"
    epochs: int = 3             # total budget, shared by the stages (`stage_plan`): the default preset
    lr: float = 3e-3
    sigma: float = SIGMA        # Gaussian target sigma, heatmap pixels (lab.data.codec's default)
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


# The page's starting points. The default: 3 epochs (2 detector, 1 spatial) of the small
# detector, whose trunk keeps its first 9 ImageNet blocks frozen (`DetectorConfig.small`).
# Chosen on the mini set's validation crops (1 torch thread, busy machine, so the seconds are
# not comparable): 6 epochs with 6 frozen blocks 53.6 (the old default, 220 s through the page
# on a quiet machine); 3 epochs with 6 frozen blocks unary 50.9 / marginal 49.7; 9 frozen
# 51.6 / 51.5; 11 frozen 49.2 / 51.3; 2 epochs at lr 6e-3 46.9 / 48.4. The longer preset is
# five times the default's epochs (the page's ETA measures its time on the machine it runs on).
# Through the page in Chromium, quiet machine (load 0.56 at the click): 52.5 s click to done,
# mini-val 51.4, on 2 torch threads (`train_threads`); the bench (`pose-lab bench --retrain`,
# no browser) takes 44-50 s on 2 threads and 66 s on 1.
PRESETS = {
    "default (about 1 minute on 2 cores)": RunSettings(),     # 52.5 s through the page, quiet, 2026-12-07
    "longer (5x the default's epochs)": RunSettings(epochs=15),
}


def train_threads(settings: RunSettings, max_running: int | None = None, load: float | None = None) -> int:
    """Torch threads for a run: `settings.threads`, else the cores that no other work keeps
    busy at its start, shared evenly by the runs that may train at once: both cores of a
    2-core class server for a lone run, one when the machine is busy.

    A core counts as busy only when the load average fills it whole (`floor(load)`): a
    browser drawing the page (load about 0.5-0.9) leaves both cores to a lone run, which then
    trains at nice 10 below it. Measured here, default preset, quiet machine: 44 s on 2
    threads, 66 s on 1. (A low-priority run with more threads than free cores is far slower,
    not faster: its threads wait for each other. With the load average at 8 on 2 cores a tiny
    run took 17 s on 1 thread and had not finished its first batch after 100 s on 2.)"""
    if settings.threads:
        return int(settings.threads)
    cores = os.cpu_count() or 1
    k = LIMITS.max_running if max_running is None else max_running
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    free = max(1, cores - math.floor(max(0.0, load)))
    return max(1, min(cores // max(int(k), 1), free))


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
