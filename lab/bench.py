"""`pose-lab bench`: latency and training throughput, measured on this machine.

Prints one table:

  latency      one 128-px crop through the detector, the spatial model (tree / full
               graph, FFT / direct convolution) and the regressor: median of N runs
               after warm-up, in ms
  training     images/s of a few real training steps (batch 32, augmentation on, Adam)
               for the detector, joint and regressor stages, the model FLOPs of one
               forward + backward per image (torch.utils.flop_counter) and the
               achieved FLOP/s; on CUDA also as a share of a measured bf16 matmul peak

Nothing here is hard-coded: every figure comes from a timer. Repetitions are few and
capped by a time budget per figure, so the whole bench stays short on a CPU.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from lab.config import AugmentConfig, DataConfig, DetectorConfig, RegressorConfig, SpatialConfig
from lab.data.transforms import augment
from lab.models.detector import PartDetector
from lab.models.pose import PoseNet
from lab.models.regressor import Regressor
from lab.models.spatial import SpatialModel
from lab.train.loop import pick_device, step_loss, trainable

CROP = 128
TRAIN_BATCH = 32


# ------------------------------------------------------------------ timing
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], object], device: str, warmup: int, reps: int, budget_s: float) -> dict:
    """Median (and min) wall time of `fn` in ms: `warmup` untimed calls, then up to `reps`
    timed calls (at least 3) or until `budget_s` seconds of timed calls have passed.
    On CUDA each call is timed with CUDA events."""
    cuda = device.startswith("cuda")
    for _ in range(warmup):
        fn()
    _sync(device)
    times, spent = [], 0.0
    while len(times) < reps and (len(times) < 3 or spent < budget_s):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
        else:
            t0 = time.perf_counter()
            fn()
            ms = 1e3 * (time.perf_counter() - t0)
        times.append(ms)
        spent += ms / 1e3
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": len(times)}


def bf16_peak_flops(device: str, n: int = 8192, reps: int = 20) -> float:
    """Measured bf16 matmul throughput (FLOP/s) of an n x n x n product: the practical peak."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    t = time_ms(lambda: a @ b, device, warmup=3, reps=reps, budget_s=2.0)
    return 2 * n ** 3 / (t["min_ms"] / 1e3)


# ------------------------------------------------------------------ pieces
def _crops(n: int) -> torch.Tensor:
    """n real 128-px training crops from the bundled mini set (random pixels if it is
    missing): images (n, 3, S, S) uint8, coords (n, 14, 2), labelled (n, 14)."""
    try:
        from lab.data.cache import MINI_PATH, PoseCache
        split = PoseCache(MINI_PATH)["train"].subset(n)
        images, coords, lab = split.tensors()
        if len(images) == n and images.shape[-1] == CROP:
            return images, coords, lab
    except Exception:                                           # noqa: BLE001 - bench falls back
        pass
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(n, 14, 2, generator=g) * (CROP - 1)
    return (torch.randint(0, 256, (n, 3, CROP, CROP), generator=g, dtype=torch.uint8),
            coords, torch.ones(n, 14, dtype=torch.bool))


def latency(model: torch.nn.Module, x: torch.Tensor, device: str, cuda: bool) -> dict:
    model.eval()

    @torch.no_grad()
    def fn():
        return model(x)
    return time_ms(fn, device, warmup=10 if cuda else 2, reps=50 if cuda else 10,
                   budget_s=2.0 if cuda else 3.0)


def training(stage: str, model: torch.nn.Module, batch, device: str, cuda: bool) -> dict:
    """Images/s of real training steps (augmentation on the CPU as in `lab.train.loop`,
    then loss, backward and an Adam step), and the FLOPs of one forward + backward."""
    data = DataConfig(crop_size=CROP)
    images, coords, lab = batch
    model.to(device).train()
    params = trainable(model, stage)
    opt = torch.optim.Adam(params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    aug = AugmentConfig()

    def step():
        x, xy, m = augment(images.float().div(255), coords, lab, aug, g)
        loss = step_loss(model, stage, x.to(device), xy.to(device), m.to(device), data, 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    steps = 10 if cuda else 3
    step()                                                      # warm-up
    _sync(device)
    t0, done = time.perf_counter(), 0
    while done < steps and (done < 2 or time.perf_counter() - t0 < (10 if cuda else 20)):
        step()
        done += 1
    _sync(device)
    seconds = time.perf_counter() - t0
    ips = done * len(images) / seconds

    # FLOPs of one forward + backward (the optimizer step and augmentation are not counted)
    x, xy, m = augment(images.float().div(255), coords, lab, aug, g)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = step_loss(model, stage, x.to(device), xy.to(device), m.to(device), data, 0.5)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    flops_per_image = counter.get_total_flops() / len(images)
    return {"images_per_s": ips, "steps": done, "flops_per_image": flops_per_image,
            "flops_per_s": flops_per_image * ips}


# ------------------------------------------------------------------ the bench
def run_bench(config: str = "full", device: str = "auto", threads: int = 0,
              out: Callable[[str], None] = print) -> dict:
    """Measure and print the table. Returns the figures as a dict."""
    t_start = time.perf_counter()
    device = pick_device(device)
    cuda = device.startswith("cuda")
    if threads:
        torch.set_num_threads(threads)
    det_cfg = DetectorConfig.full() if config == "full" else DetectorConfig.small()
    reg_cfg = RegressorConfig.full() if config == "full" else RegressorConfig.small()
    torch.manual_seed(0)
    res: dict = {"config": config, "device": device, "latency": {}, "training": {}}

    if cuda:
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
               f"{torch.get_num_threads()} torch threads"
    out(f"pose-lab bench  config={config}  device={device} ({name})  torch {torch.__version__}")
    if not cuda and hasattr(os, "getloadavg"):
        out(f"load average at start: {os.getloadavg()[0]:.2f} "
            "(other jobs on this machine slow every figure below)")
    out("")

    # -- latency, one crop
    x = torch.rand(1, 3, CROP, CROP, device=device)
    rows = []
    det = PartDetector(det_cfg).to(device)
    res["latency"]["detector"] = t = latency(det, x, device, cuda)
    rows.append(("detector", t, ""))
    with torch.no_grad():
        unary = det.eval()(x)                                   # (1, 14, 32, 32)
    size = unary.shape[-1]
    for graph_name in ("tree", "full"):
        per = {}
        for mode in ("fft", "direct"):
            sp = SpatialModel(SpatialConfig(graph=graph_name, heatmap_size=size, use_fft=mode)).to(device)
            per[mode] = latency(sp, unary, device, cuda)
        ratio = per["direct"]["median_ms"] / per["fft"]["median_ms"]
        res["latency"][f"spatial_{graph_name}"] = {**per, "direct_over_fft": ratio}
        edges = len(sp.edges)
        rows.append((f"spatial {graph_name} ({edges} edges), FFT", per["fft"], ""))
        rows.append((f"spatial {graph_name} ({edges} edges), direct", per["direct"],
                     f"direct/FFT = {ratio:.2f}x"))
    reg = Regressor(reg_cfg).to(device)
    res["latency"]["regressor"] = t = latency(reg, x, device, cuda)
    rows.append(("regressor", t, ""))

    out(f"Latency, one {CROP}-px crop, batch 1 (median of N runs after warm-up)")
    out(f"  {'model':<38} {'median ms':>10} {'min ms':>9} {'N':>4}  notes")
    for label, t, note in rows:
        out(f"  {label:<38} {t['median_ms']:>10.2f} {t['min_ms']:>9.2f} {t['runs']:>4}  {note}")
    out("")

    # -- training throughput, batch 32 with augmentation
    batch = _crops(TRAIN_BATCH)
    stages = [("detector", lambda: PoseNet(det_cfg)),
              ("joint", lambda: PoseNet(det_cfg, SpatialConfig(graph="tree", heatmap_size=size))),
              ("regressor", lambda: Regressor(reg_cfg))]
    peak = bf16_peak_flops(device) if cuda else None
    res["bf16_peak_flops"] = peak
    head = f"  {'stage':<12} {'img/s':>8} {'steps':>6} {'GFLOP/img':>10} {'GFLOP/s':>9}"
    out(f"Training throughput, batch {TRAIN_BATCH}, augmentation on, fp32 Adam "
        "(FLOPs: one forward + backward)")
    out(head + (f" {'of bf16 peak':>13}" if cuda else ""))
    for stage, make in stages:
        r = training(stage, make(), batch, device, cuda)
        res["training"][stage] = r
        line = (f"  {stage:<12} {r['images_per_s']:>8.1f} {r['steps']:>6d} "
                f"{r['flops_per_image'] / 1e9:>10.3f} {r['flops_per_s'] / 1e9:>9.1f}")
        if cuda:
            r["fraction_of_bf16_peak"] = r["flops_per_s"] / peak
            line += f" {100 * r['fraction_of_bf16_peak']:>12.2f}%"
        out(line)
    if cuda:
        out(f"  measured bf16 matmul peak (8192^3): {peak / 1e12:.1f} TFLOP/s")
    out("  (FlopCounterMode counts convolutions and matmuls; the spatial model's FFTs are "
        "not counted)")
    res["seconds"] = time.perf_counter() - t_start
    out(f"\nbench took {res['seconds']:.0f} s")
    return res
