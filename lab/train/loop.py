"""`pose-lab train`: one stage of the paper per call, seeded and resumable.

  detector   the part detector alone: MSE(unary, Gaussian targets)
  spatial    the spatial model on a frozen detector: MSE(marginal, targets);
             its priors start from the training set's displacement histograms
  joint      both together: MSE(marginal) + unary_weight * MSE(unary)
  regressor  DeepPose-style baseline: L2 on normalised coordinates
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lab.config import (DataConfig, DetectorConfig, RegressorConfig, SpatialConfig, TrainConfig,
                        to_dict)
from lab.data.cache import CachedSplit
from lab.data.targets import crop_to_heatmap, gaussian_targets
from lab.data.transforms import augment
from lab.errors import LabError
from lab.eval.pck import pck
from lab.eval.predict import predict_pose, predict_regressor
from lab.models import io
from lab.models.detector import STRIDE
from lab.models.pose import PoseNet
from lab.models.regressor import Regressor, normalise
from lab.models.spatial import displacement_histograms
from lab.train.checkpoint import load_optimizer, save_run


@dataclass
class Run:
    """What a caller (CLI or the app) needs: where the run lives and its history."""
    path: Path
    history: list = field(default_factory=list)
    stopped: bool = False


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def new_model(cfg: TrainConfig, det: DetectorConfig, sp: SpatialConfig, reg: RegressorConfig,
              init: Path | None, train: CachedSplit, data: DataConfig):
    """The model for a stage; later stages start from the previous stage's weights."""
    if cfg.stage == "regressor":
        return Regressor(reg), {"kind": "regressor", "regressor": to_dict(reg)}
    if cfg.stage == "detector":
        return PoseNet(det), {"kind": "pose", "detector": to_dict(det), "spatial": None}
    if init is None:
        raise LabError(f"stage {cfg.stage!r} needs --init: the weights of the previous stage.")
    prev, meta = io.load(init)
    model = PoseNet(io.from_dict(DetectorConfig, meta["detector"]), sp)
    model.detector.load_state_dict(prev.detector.state_dict())
    if prev.spatial is not None and prev.spatial.edges == model.spatial.edges:
        model.spatial.load_state_dict(prev.spatial.state_dict())
    else:                   # spatial, or joint from a detector-only checkpoint: never the delta init
        xy = crop_to_heatmap(torch.from_numpy(train.coords), STRIDE).numpy()
        model.spatial.load_histograms(displacement_histograms(
            xy, train.labelled, model.spatial.edges, sp.heatmap_size, sp.hist_blur))
    return model, {"kind": "pose", "detector": meta["detector"], "spatial": to_dict(sp),
                   "lineage": meta.get("lineage", []) + [stage_summary(meta)]}


def stage_summary(meta: dict) -> dict:
    """What a finished stage contributes to the model card of the stages after it."""
    hist = meta.get("history", [])
    return {"stage": meta.get("stage"), "epochs": meta.get("epoch"), "train": meta.get("train"),
            "train_images": meta.get("train_images"), "provenance": meta.get("provenance"),
            "wall_seconds": sum(h.get("seconds", 0) for h in hist),
            "final_val_pck": hist[-1]["val_pck"] if hist else None}


def trainable(model, stage: str):
    if stage == "spatial":
        model.detector.requires_grad_(False)
        return list(model.spatial.parameters())
    return [p for p in model.parameters() if p.requires_grad]


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over pixels of labelled joints: (B, K, H, W) -> scalar."""
    per_joint = ((pred - target) ** 2).mean((-1, -2))                          # (B, K)
    return (per_joint * weight).sum() / weight.sum().clamp_min(1)


def step_loss(model, stage: str, x, xy, lab, data: DataConfig, unary_weight: float):
    if stage == "regressor":
        err = ((model(x) - normalise(xy, data.crop_size)) ** 2).sum(-1)        # (B, K)
        return (err * lab).sum() / lab.sum().clamp_min(1)
    hm = data.heatmap_size
    target = gaussian_targets(crop_to_heatmap(xy, STRIDE), lab, hm, data.sigma)
    w = lab.float()
    if stage == "spatial":
        with torch.no_grad():
            unary = model.detector(x)
        return heatmap_loss(model.spatial(unary), target, w)
    out = model(x)
    loss = heatmap_loss(out["unary"], target, w)
    if stage == "joint":
        loss = heatmap_loss(out["marginal"], target, w) + unary_weight * loss
    return loss


def validate(model, stage: str, val: CachedSplit, device: str) -> dict:
    images, coords, lab = val.tensors()
    if stage == "regressor":
        pred = {"regressor": predict_regressor(model, images, device=device)}
    else:
        pred = predict_pose(model, images, device=device)
    res = {name: pck(p.numpy(), coords.numpy(), lab.numpy())["mean"]
           for name, p in pred.items() if not name.endswith("_conf")}
    return res


def train(cfg: TrainConfig, data: DataConfig, train_split: CachedSplit, val_split: CachedSplit,
          run_dir: Path, det: DetectorConfig | None = None, sp: SpatialConfig | None = None,
          reg: RegressorConfig | None = None, init: Path | None = None,
          callback: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> Run:
    """Train one stage; resumes from `run_dir` when it holds a checkpoint of this stage."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_split = train_split.subset(cfg.train_limit)
    model, meta = new_model(cfg, det or DetectorConfig(), sp or SpatialConfig(heatmap_size=data.heatmap_size),
                            reg or RegressorConfig(), init, train_split, data)
    model.to(device)
    params = trainable(model, cfg.stage)
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = Run(run_dir)
    start = resume(run, model, opt, cfg.stage, device)
    images, coords, lab = train_split.tensors()
    n, bs = len(images), cfg.batch_size
    steps = max(n // bs, 1)
    for epoch in range(start, cfg.epochs):
        model.train()
        if cfg.stage == "spatial":
            model.detector.eval()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)   # same epoch, same batches
        torch.manual_seed(cfg.seed * 100003 + epoch + 7919)             # and same dropout masks (resume)
        order = torch.randperm(n, generator=g)
        t0, total = time.perf_counter(), 0.0
        for s in range(steps):
            if should_stop and should_stop():
                run.stopped = True
                return run
            for group in opt.param_groups:                                  # cosine schedule
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * (epoch * steps + s) / (cfg.epochs * steps)))
            idx = order[s * bs:(s + 1) * bs]
            x, xy, m = augment(images[idx].float().div(255), coords[idx], lab[idx], cfg.augment, g)
            loss = step_loss(model, cfg.stage, x.to(device), xy.to(device), m.to(device), data,
                             cfg.unary_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            if callback:
                callback({"event": "step", "epoch": epoch, "step": s + 1, "steps": steps,
                          "epochs": cfg.epochs, "loss": loss.item()})
        seconds = time.perf_counter() - t0
        val = validate(model, cfg.stage, val_split, device)
        row = {"epoch": epoch + 1, "loss": total / steps, "val_pck": val, "seconds": seconds,
               "images_per_s": steps * bs / seconds}
        run.history.append(row)
        meta.update({"stage": cfg.stage, "epoch": epoch + 1, "history": run.history,
                     "train": to_dict(cfg), "data": to_dict(data), "provenance": provenance(device),
                     "train_images": n})
        save_run(run_dir, model, opt, meta)
        if callback:
            callback({"event": "epoch", **row, "model": model})
    return run


def provenance(device: str) -> dict:
    """Where and with what a checkpoint was trained (for the model card)."""
    import platform
    import subprocess
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if device.startswith("cuda"):
        hw = torch.cuda.get_device_name(0)
    else:
        name = platform.machine()
        try:
            name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                        if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        hw = f"CPU ({name}), {torch.get_num_threads()} torch threads"
    return {"hardware": hw, "torch": torch.__version__, "commit": commit or "unknown"}


def resume(run: Run, model, opt, stage: str, device: str) -> int:
    """Load the run's last good epoch if it is of this stage; returns the epoch to start at."""
    path = run.path / "model.safetensors"
    if not path.is_file():
        return 0
    meta = io.read_meta(path)
    if meta.get("stage") != stage:
        raise LabError(f"{run.path} holds a {meta.get('stage')!r} run; use a new --out for {stage!r}.")
    prev, _ = io.load(path, device)
    model.load_state_dict(prev.state_dict())
    load_optimizer(run.path, opt)
    run.history = list(meta.get("history", []))
    return int(meta.get("epoch", 0))
