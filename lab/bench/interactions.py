"""`pose-lab bench --interactions`: what each interaction of the explore pages costs the
server, for one crop, measured on this machine.

For one crop of the bundled mini set, each interaction is
timed as the app runs it after a change, with the unchanged stages cached:

  bank off      the detector and spatial model with bank 1 switched off, the confidence
                table (lab.touch.maps, displacement) and the 14-map grid figure
  occlude       the crop greyed in a box, the detector and spatial model, the table of
                joints that moved, and the four before/after figures
  plant         v's unary replaced by a peak, the message into A and A's marginal
                (lab.touch.plant) and the three figures
  message off   A's marginal without one message (lab.touch.without_edges), two figures

"compute" is the library call alone; "with figures" adds building the Plotly figures the
page sends (not the browser's drawing). Median wall time of repeated runs after a warm-up,
and the median CPU time the process spent (all threads): on a machine busy with other jobs
the wall time grows, the CPU time does not.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lab import touch
from lab.infer import frame
from lab.joints import NAMES, R_ELBOW, R_WRIST

TARGET_MS = 300.0
BOX = (56, 8, 100, 48)          # crop px: a box the occlusion is timed with


def interactions(lab, crop: np.ndarray) -> dict[str, tuple[Callable, Callable]]:
    """Name -> (compute, compute + figures) for one crop (S, S, 3) uint8."""
    from lab.app import grid, plots
    codec = lab.codec
    base = touch.maps(lab, crop)

    def bank():
        now = touch.maps(lab, crop, off=(0,))
        return now, touch.displacement(lab, base, now)

    def bank_fig():
        now, _ = bank()
        grid.heatmap_grid(lab.belief(now["unary"]).numpy(), list(NAMES), cols=7, meta="bench")

    def occlude():
        hidden = touch.occlude(crop, BOX)
        now = touch.maps(lab, hidden)
        return hidden, now, touch.displacement(lab, base, now)

    def occlude_fig():
        hidden, now, _ = occlude()
        for img, m in ((crop, base), (hidden, now)):
            plots.overlay_figure(img, lab.belief(m["unary"])[R_WRIST].numpy(), codec)
            plots.overlay_figure(img, touch.marginal_map(m["log_marginal"][R_WRIST]).numpy(), codec)

    xy = tuple(float(t) for t in codec.to_crop(np.array([10.0, 12.0])))

    def plant():
        return touch.plant(lab, base["unary"], R_WRIST, R_ELBOW, xy)

    def plant_fig():
        out = plant()
        plots.add_click_grid(plots.overlay_figure(crop, out["unary_v"].numpy(), codec), codec)
        plots.overlay_figure(crop, out["message"].numpy(), codec)
        plots.overlay_figure(crop, touch.marginal_map(out["log_marginal"]).numpy(), codec)

    def edge():
        return touch.without_edges(lab, base["unary"], [(R_WRIST, R_ELBOW)])

    def edge_fig():
        lm = edge()
        plots.overlay_figure(crop, touch.marginal_map(base["log_marginal"][R_WRIST]).numpy(), codec)
        plots.overlay_figure(crop, touch.marginal_map(lm[R_WRIST]).numpy(), codec)

    return {"bank off": (bank, bank_fig), "occlude": (occlude, occlude_fig),
            "plant": (plant, plant_fig), "message off": (edge, edge_fig)}


def sample_crop(lab) -> np.ndarray:
    """One person-centred crop: the first validation crop of the bundled mini set (the first
    sample photo, framed as the app frames it, without it)."""
    from lab.data.cache import load_mini
    mini = load_mini()
    if mini is not None and "val" in mini.splits:
        return mini["val"].images[0]
    from lab.data.images import load_image
    from lab.resources import ASSETS
    rgb = load_image(ASSETS / "samples" / "lsp_im1007.jpg")
    return lab.crop(rgb, frame(rgb)[0])[0]


def run_interactions(weights: list[Path], threads: int = 2, reps: int = 5,
                     out: Callable[[str], None] = lambda s: print(s, flush=True)) -> dict:
    """Print and return {model file: {interaction: {"compute_ms", "figures_ms"}}}."""
    from lab.infer import PoseLab
    torch.set_num_threads(threads)
    out(f"interactions, one crop, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores "
        f"(median ms; target <= {TARGET_MS:.0f} ms with figures)")
    out(f"{'model':<22}{'interaction':<14}{'compute':>10}{'with figures':>14}{'CPU ms':>10}  ok")
    res = {}
    for w in weights:
        if not Path(w).is_file():
            out(f"{Path(w).name:<22}missing")
            continue
        lab = PoseLab(Path(w), None)
        crop = sample_crop(lab)
        res[str(w)] = {}
        for name, (fn, fig) in interactions(lab, crop).items():
            c, f = timed(fn, reps), timed(fig, reps)
            res[str(w)][name] = {"compute_ms": c["wall_ms"], "figures_ms": f["wall_ms"],
                                 "compute_cpu_ms": c["cpu_ms"], "figures_cpu_ms": f["cpu_ms"]}
            out(f"{Path(w).name:<22}{name:<14}{c['wall_ms']:10.1f}{f['wall_ms']:14.1f}{f['cpu_ms']:10.1f}  "
                f"{'yes' if f['wall_ms'] <= TARGET_MS else 'NO'}")
    return res


def timed(fn: Callable, reps: int) -> dict:
    """Median wall time and median CPU time of this process (all its threads) over `reps`
    calls after one warm-up, in ms. On a machine shared with other jobs the wall time grows;
    the CPU time says what the interaction itself costs."""
    fn()
    wall, cpu = [], []
    for _ in range(max(reps, 1)):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * (time.process_time() - c0))
    return {"wall_ms": float(np.median(wall)), "cpu_ms": float(np.median(cpu))}
