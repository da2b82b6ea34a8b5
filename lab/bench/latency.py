"""`pose-lab bench`: latency and training throughput, measured on this machine.

Prints one table:

  latency      one crop (128 px; 192 for "everyday" and "everyday-lite1") through each configuration's detector, detector + spatial
               model, the spatial model alone (tree / full graph, FFT / direct
               convolution) and the regressor: median of N runs after warm-up, in ms
  training     images/s of a few real training steps (batch 32, augmentation on, AdamW)
               for each configuration's stages, in fp32 and under bf16 autocast, their
               ratio, the model-only img/s (forward + backward + step, no data: what every
               epoch of `pose-lab train` logs its own img/s against) and the loop's share of
               it, and the model FLOPs of one forward + backward per image

Nothing here is hard-coded: every figure comes from a timer. Repetitions are few and
capped by a time budget per figure, so the whole bench stays short on a CPU.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from lab.config import (
    DETECTOR_PRESETS,
    AugmentConfig,
    DataConfig,
    DetectorConfig,
    RegressorConfig,
    SpatialConfig,
    TrainConfig,
)
from lab.data.codec import HeatmapCodec
from lab.data.transforms import augment
from lab.errors import LabError
from lab.models.detector import BELIEF_OF_LOSS
from lab.models.engine import compile_module
from lab.models.fuse import fold_batchnorm
from lab.models.pose import PoseNet
from lab.models.predict import heatmaps
from lab.models.regressor import Regressor
from lab.models.spatial import SpatialModel
from lab.progress import track
from lab.train.loop import autocast, model_only_speed, param_groups, pick_device
from lab.train.losses import step_loss

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


# ------------------------------------------------------------------ pieces
def _crops(n: int, size: int) -> torch.Tensor:
    """n real training crops from the bundled mini set, resized to `size` px (random pixels if
    it is missing): images (n, 3, S, S) uint8, coords (n, 14, 2), labelled (n, 14)."""
    try:
        from lab.data.cache import MINI_PATH, PoseCache
        split = PoseCache(MINI_PATH)["train"].subset(n)
        images, coords, lab = split.tensors()
        if len(images) == n:
            S = images.shape[-1]
            if S != size:
                images = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                                         align_corners=False).round().clamp(0, 255).to(torch.uint8)
                coords = (coords + 0.5) * size / S - 0.5
            return images, coords, lab
    except Exception:                                           # noqa: BLE001 - bench falls back
        pass
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(n, 14, 2, generator=g) * (size - 1)
    return (torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
            coords, torch.ones(n, 14, dtype=torch.bool))


def latency(model: torch.nn.Module, x: torch.Tensor, device: str, cuda: bool) -> dict:
    """The model as the app runs it: eval mode, BatchNorm folded into the convolutions."""
    fold_batchnorm(model)

    @torch.no_grad()
    def fn():
        return model(x)
    return time_ms(fn, device, warmup=10 if cuda else 2, reps=50 if cuda else 10,
                   budget_s=2.0 if cuda else 3.0)


def training(stage: str, make: Callable[[], torch.nn.Module], batch, device: str, cuda: bool,
             precision: str = "fp32", channels_last: bool = True) -> dict:
    """Images/s of real training steps (augmentation on the CPU as in `lab.train.loop`,
    then loss, backward and an AdamW step) at a precision, and the FLOPs of one forward +
    backward."""
    images, coords, lab = batch
    codec = HeatmapCodec(crop_size=images.shape[-1])
    model = make().to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    cfg = TrainConfig(stage=stage, precision=precision, channels_last=channels_last)
    opt = torch.optim.AdamW([p for g in param_groups(model, cfg) for p in g["params"]], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    aug = AugmentConfig()

    def step():
        x, xy, m = augment(images.float().div(255), coords, lab, aug, g)
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(cfg, device):
            loss = step_loss(model, stage, x, xy.to(device), m.to(device), codec, 0.5)
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
        loss = step_loss(model, stage, x.to(device), xy.to(device), m.to(device), codec, 0.5)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    flops_per_image = counter.get_total_flops() / len(images)
    model_only = model_only_speed(model, cfg, codec, images, device)
    return {"images_per_s": ips, "steps": done, "flops_per_image": flops_per_image,
            "flops_per_s": flops_per_image * ips, "model_only_images_per_s": model_only,
            "loop_over_model_only": ips / model_only}


# ------------------------------------------------------------------ the bench
SHIPPED = {"pretrained": "pose.safetensors + regressor.safetensors", "scratch": "scratch.safetensors",
           "small": "the Retrain page's model"}


def run_bench(device: str = "auto", threads: int = 0, out: Callable[[str], None] = print,
              configs: tuple[str, ...] = DETECTOR_PRESETS, training: bool = True) -> dict:
    """Measure and print the tables (`training`: the training-throughput one too). Returns the
    figures as a dict."""
    t_start = time.perf_counter()
    device = pick_device(device)
    cuda = device.startswith("cuda")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    res: dict = {"device": device, "latency": {}, "training": {}}
    if cuda:
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
               f"{torch.get_num_threads()} torch threads"
    out(f"pose-lab bench  device={device} ({name})  torch {torch.__version__}")
    if not cuda and hasattr(os, "getloadavg"):
        out(f"load average at start: {os.getloadavg()[0]:.2f} "
            "(other jobs on this machine slow every figure below)")
    out("")
    res["latency"] = latency_table(configs, device, cuda, out)
    if training:
        res["training"] = training_table(configs, device, cuda, out)
    res["seconds"] = time.perf_counter() - t_start
    out(f"\nbench took {res['seconds']:.0f} s")
    return res


def latency_table(configs, device: str, cuda: bool, out) -> dict:
    """One crop, batch 1: detector, spatial model (tree / full, FFT / direct), detector + spatial
    (the paper's model end to end) and the regressor, per configuration, each at its own crop
    size (`DataConfig.preset`)."""
    res, rows = {}, []
    for config in track(configs, "bench latency", unit="configs"):
        data, det_cfg = DataConfig.preset(config), DetectorConfig.preset(config)
        x = torch.rand(1, 3, data.crop_size, data.crop_size, device=device)
        pose = PoseNet(det_cfg, SpatialConfig(graph="tree", heatmap_size=data.heatmap_size,
                                              belief=BELIEF_OF_LOSS[det_cfg.loss])).to(device).eval()
        r = res[config] = {"crop": data.crop_size, "detector": latency(pose.detector, x, device, cuda),
                           "detector_spatial": latency(pose, x, device, cuda)}
        rows.append((f"{config} ({data.crop_size} px): detector", r["detector"], ""))
        rows.append((f"{config} ({data.crop_size} px): detector + spatial", r["detector_spatial"],
                     "eager PyTorch" + (", " + LATENCY_TARGETS[config] if cuda and config in LATENCY_TARGETS else "")))
        engine = None if cuda else compile_module(pose.detector, None, data.crop_size, log=out)
        if engine is not None:                       # what the app runs for a photo (lab.models.engine)
            r["detector_spatial_engine"] = time_ms(lambda: heatmaps(pose, x, detect=engine), device,
                                                   warmup=2, reps=20, budget_s=3.0)
            rows.append((f"{config} ({data.crop_size} px): detector (ONNX Runtime) + spatial",
                         r["detector_spatial_engine"], "as the app predicts" + (
                             ", " + LATENCY_TARGETS[config] if config in LATENCY_TARGETS else "")))
        if config in SHIPPED_KINDS:
            r["multiscale_flip"] = time_ms(lambda: heatmaps(pose, x, flip=True, scales=TEST_SCALES, detect=engine),
                                           device, warmup=1, reps=5, budget_s=3.0)
            rows.append((f"{config} ({data.crop_size} px): + flip, scales {TEST_SCALES}", r["multiscale_flip"],
                         "the app's optional test-time augmentation" + (" (ONNX Runtime)" if engine else "")))
            r["regressor"] = latency(Regressor(RegressorConfig(features=det_cfg)).to(device), x, device, cuda)
            rows.append((f"{config} ({data.crop_size} px): regressor", r["regressor"], ""))
    for size in sorted({DataConfig.preset(c).heatmap_size for c in configs}):
        with torch.no_grad():
            unary = torch.randn(1, 14, size, size, device=device)
        for graph_name in ("tree", "full"):
            per = {}
            for mode in ("fft", "direct"):
                sp = SpatialModel(SpatialConfig(graph=graph_name, heatmap_size=size, use_fft=mode)).to(device)
                per[mode] = latency(sp, unary, device, cuda)
            ratio = per["direct"]["median_ms"] / per["fft"]["median_ms"]
            res[f"spatial_{graph_name}_{size}"] = {**per, "direct_over_fft": ratio}
            rows.append((f"spatial {graph_name} ({len(sp.edges)} edges, {size}x{size}), FFT", per["fft"], ""))
            rows.append((f"spatial {graph_name} ({len(sp.edges)} edges, {size}x{size}), direct", per["direct"],
                         f"direct/FFT = {ratio:.2f}x"))
    out("Latency, one crop, batch 1 (median of N runs after warm-up)")
    out(f"  {'model':<52} {'median ms':>10} {'min ms':>9} {'N':>4}  notes")
    for label, t, note in rows:
        out(f"  {label:<52} {t['median_ms']:>10.2f} {t['min_ms']:>9.2f} {t['runs']:>4}  {note}")
    out("")
    return res


TEST_SCALES = (0.8, 1.0, 1.2)       # multi-scale testing, as `pose-lab eval --scales`
LATENCY_TARGETS = {"pretrained": "target <= 15 ms on 2 threads", "everyday": "target <= 25 ms on 2 threads",
                   "everyday-lite1": "target <= 25 ms on 2 threads"}
SHIPPED_KINDS = ("pretrained", "everyday", "everyday-lite1")   # with a regressor and test-time augmentation


def training_table(configs, device: str, cuda: bool, out) -> dict:
    """Training img/s in fp32 and under bf16 autocast for each configuration's stages, the
    bf16 / fp32 ratio (the figure that decides the precision a run uses), and the model-only
    img/s beside the loop's (what `pose-lab train` logs every epoch against)."""
    res = {}
    out(f"Training throughput, batch {TRAIN_BATCH}, augmentation on, AdamW, channels-last "
        "(FLOPs: one forward + backward; model-only: no data, no augmentation)")
    out(f"  {'configuration / stage':<30} {'fp32 img/s':>11} {'bf16 img/s':>11} {'bf16/fp32':>10} "
        f"{'model-only':>11} {'loop/model':>11} {'GFLOP/img':>10}")
    for config in track(configs, "bench training", unit="configs"):
        data, det_cfg = DataConfig.preset(config), DetectorConfig.preset(config)
        batch = _crops(TRAIN_BATCH, data.crop_size)
        sp_cfg = SpatialConfig(graph="tree", heatmap_size=data.heatmap_size, belief=BELIEF_OF_LOSS[det_cfg.loss])
        stages = [("detector", lambda: PoseNet(det_cfg)), ("joint", lambda: PoseNet(det_cfg, sp_cfg))]
        if config in SHIPPED_KINDS:
            stages.append(("regressor", lambda: Regressor(RegressorConfig(features=det_cfg))))
        for stage, make in stages:
            r = {p: training(stage, make, batch, device, cuda, precision=p) for p in ("fp32", "bf16")}
            r["bf16_over_fp32"] = r["bf16"]["images_per_s"] / r["fp32"]["images_per_s"]
            res[f"{config}/{stage}"] = r
            f = r["fp32"]
            out(f"  {config + ' / ' + stage:<30} {f['images_per_s']:>11.1f} "
                f"{r['bf16']['images_per_s']:>11.1f} {r['bf16_over_fp32']:>9.2f}x "
                f"{f['model_only_images_per_s']:>11.1f} {f['loop_over_model_only']:>10.2f}x "
                f"{f['flops_per_image'] / 1e9:>10.3f}")
    out("  (FlopCounterMode counts convolutions and matmuls; the spatial model's FFTs are not counted)")
    return res


def retrain_table(out: Callable[[str], None] = print, presets: tuple[str, ...] = ()) -> dict:
    """The Retrain page's presets run as the page runs them (lab.train.runs, the small detector
    on the bundled mini set): wall time and the validation PCK@0.2 of the kept (best) epoch."""
    import tempfile

    from lab.train import runs as jobs
    res = {}
    out("Retrain page presets (small detector, mini set; validation = the mini set's val crops)")
    out(f"  {'preset':<28} {'settings':<52} {'wall s':>7} {'val PCK unary':>14} {'val PCK marginal':>17}")
    with tempfile.TemporaryDirectory() as runs:
        for name in presets or tuple(jobs.PRESETS):
            settings = jobs.PRESETS[name]
            t0 = time.perf_counter()
            run = jobs.start_run(settings, Path(runs))
            run.join()
            wall = time.perf_counter() - t0
            st = run.snapshot()
            if st["state"] != "done":
                raise LabError(f"preset {name!r} ended {st['state']}: {st.get('error')}")
            best = jobs.val_pck(run.path / jobs.POSE)
            res[name] = {"seconds": wall, "val_pck": best, "settings": settings.default_label()}
            out(f"  {name:<28} {settings.default_label():<52} {wall:>7.0f} "
                f"{100 * best.get('unary', float('nan')):>14.1f} {100 * best.get('marginal', float('nan')):>17.1f}")
    return res
