"""`pose-lab train`: one stage of the paper per call, seeded and resumable.

  detector   the part detector alone: loss(unary, targets)
  spatial    the spatial model on a frozen detector: loss(marginal, targets);
             its priors start from the training set's displacement histograms
  joint      both together: loss(marginal) + unary_weight * loss(unary)
  regressor  DeepPose-style baseline: L1 or L2 on normalised coordinates

The heatmap loss is the detector's `loss`: "mse" to Gaussian targets (the paper)
or "softmax", the cross-entropy between a Gaussian normalised to sum 1 and the
softmax of the map over its pixels (see `lab.train.losses`).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from lab.config import DataConfig, DetectorConfig, RegressorConfig, SpatialConfig, TrainConfig, to_dict
from lab.data.cache import CachedSplit
from lab.data.codec import HeatmapCodec
from lab.data.transforms import augment
from lab.errors import LabError
from lab.eval.pck import pck
from lab.models import io
from lab.models import trunk as lite
from lab.models.detector import BELIEF_OF_LOSS
from lab.models.pose import PoseNet
from lab.models.predict import decode, heatmaps, to_input
from lab.models.regressor import Regressor, denormalise
from lab.models.spatial import displacement_histograms
from lab.train import losses
from lab.train.checkpoint import load_optimizer, save_run
from lab.train.distributed import Dist


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


# ------------------------------------------------------------------ models per stage
def new_model(cfg: TrainConfig, det: DetectorConfig, sp: SpatialConfig, reg: RegressorConfig,
              init: Path | None, train: CachedSplit, data: DataConfig):
    """The model for a stage; later stages start from the previous stage's weights, first
    stages from ImageNet where the config has a pretrained trunk."""
    if cfg.stage == "regressor":
        return new_regressor(reg, init)
    if cfg.stage == "detector":
        return new_detector(det, init)
    if init is None:
        raise LabError(f"stage {cfg.stage!r} needs --init: the weights of the previous stage.")
    prev, meta = io.load(init)
    det = io.from_dict(DetectorConfig, meta["detector"])
    sp = SpatialConfig(**{**to_dict(sp), "belief": BELIEF_OF_LOSS[det.loss]})
    if prev.spatial is not None and prev.spatial.cfg.graph == sp.graph:
        sp = prev.spatial.cfg          # its weights go on: so does the config they started from
    model = PoseNet(det, sp)
    model.detector.load_state_dict(prev.detector.state_dict())
    if prev.spatial is not None and prev.spatial.edges == model.spatial.edges:
        model.spatial.load_state_dict(prev.spatial.state_dict())
    else:                   # spatial, or joint from a detector-only checkpoint: never the delta init
        model.spatial.load_histograms(prior_histograms(train, data.codec, model.spatial))
    return model, {"kind": "pose", "detector": meta["detector"], "spatial": to_dict(sp),
                   "lineage": io.stages(meta)}


def new_detector(det: DetectorConfig, init: Path | None):
    """The part detector from ImageNet, or, with `init` (a pose checkpoint), from that detector's
    weights and config: a warm restart, a fresh schedule that goes on from a finished one."""
    if init is None:
        model = PoseNet(det)
        model.detector.load_imagenet()
        return model, {"kind": "pose", "detector": to_dict(det), "spatial": None}
    prev, meta = load_detector(init, "the detector")
    before = io.from_dict(DetectorConfig, meta["detector"])
    if (before.trunk, det.trunk) == ("lite0", "lite1"):
        return deepened_detector(det, prev, before, meta)
    model = PoseNet(before)
    model.detector.load_state_dict(prev.detector.state_dict())
    return model, {"kind": "pose", "detector": meta["detector"], "spatial": None, "lineage": io.stages(meta)}


def deepened_detector(det: DetectorConfig, prev, before: DetectorConfig, meta: dict):
    """`--config` names a deeper trunk than `--init`'s detector (lite0 -> lite1): the init's
    detector with its trunk grown by `lab.models.trunk.deepen`, every other layer copied, so
    training starts from the same predictions with more blocks to learn with."""
    grown = DetectorConfig(**{**to_dict(before), "trunk": det.trunk})
    model = PoseNet(grown)
    model.detector.load_imagenet()                              # the new blocks' starting weights
    trained = prev.detector.state_dict()
    state = {k: v for k, v in trained.items() if not k.startswith("features.trunk.")}
    old_trunk = {k.removeprefix("features.trunk."): v for k, v in trained.items() if k.startswith("features.trunk.")}
    new_trunk = lite.deepen(old_trunk, model.detector.features.trunk)
    state.update({f"features.trunk.{k}": v for k, v in new_trunk.items()})
    model.detector.load_state_dict(state)
    return model, {"kind": "pose", "detector": to_dict(grown), "spatial": None, "lineage": io.stages(meta),
                   "grown_from": before.trunk}


def load_detector(init: Path, for_what: str):
    """A pose checkpoint that a later stage starts from: (model, meta); LabError for anything else."""
    prev, meta = io.load(init)
    if meta.get("kind") != "pose":
        raise LabError(f"--init for {for_what} must be a part detector's weights, not {meta.get('kind')!r}")
    return prev, meta


def new_regressor(reg: RegressorConfig, init: Path | None):
    """The regressor on ImageNet features, or, with `init` (a pose checkpoint), on exactly that
    detector's features (trunk and banks): then heatmaps vs coordinates is the only difference."""
    if init is None:
        model = Regressor(reg)
        model.load_imagenet()
        return model, {"kind": "regressor", "regressor": to_dict(reg)}
    prev, meta = load_detector(init, "the regressor")
    reg = RegressorConfig(**{**reg.__dict__, "features": io.from_dict(DetectorConfig, meta["detector"])})
    model = Regressor(reg)
    model.features.load_state_dict(prev.detector.features.state_dict())
    return model, {"kind": "regressor", "regressor": to_dict(reg), "lineage": io.stages(meta)}


def prior_histograms(train: CachedSplit, codec: HeatmapCodec, spatial):
    """The training set's displacement histograms for every edge of `spatial` (E, k, k)."""
    xy = codec.to_heatmap(torch.from_numpy(train.coords)).numpy()
    return displacement_histograms(xy, train.labelled, spatial.edges, spatial.cfg.heatmap_size,
                                   spatial.cfg.hist_blur)


def param_groups(model, cfg: TrainConfig) -> list[dict]:
    """Trainable parameters with their learning-rate multipliers ("scale").

    spatial: only the priors and biases; joint: detector x detector_lr, spatial x prior_lr;
    regressor: its features (trunk and banks) x detector_lr, the head x 1; the pretrained
    trunk additionally x trunk_lr.
    """
    if cfg.stage == "spatial":
        model.detector.requires_grad_(False)
        return [{"params": list(model.spatial.parameters()), "scale": cfg.prior_lr}]
    features = model.features if cfg.stage == "regressor" else model.detector.features
    det_scale = cfg.detector_lr if cfg.stage in ("joint", "regressor") else 1.0
    trunk = set(id(p) for p in features.trunk.parameters()) if features.trunk is not None else set()
    groups = {"trunk": [], "rest": [], "spatial": [], "head": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = "spatial" if name.startswith("spatial.") else "trunk" if id(p) in trunk else \
            "head" if name.startswith("head.") else "rest"
        groups[key].append(p)
    scale = {"trunk": det_scale * cfg.trunk_lr, "rest": det_scale, "spatial": cfg.prior_lr, "head": 1.0}
    return [{"params": ps, "scale": scale[k]} for k, ps in groups.items() if ps]


def trainable(model, stage: str):
    """Every parameter the stage trains (for the benchmark)."""
    return [p for g in param_groups(model, TrainConfig(stage=stage)) for p in g["params"]]


# ------------------------------------------------------------------ validation
@torch.no_grad()
def validate(model, cfg: TrainConfig, val: CachedSplit, codec: HeatmapCodec, device: str,
             batch: int = 64) -> tuple[dict, float]:
    """({method: PCK@0.2}, the stage's loss) on the validation crops: eval mode, no
    augmentation, the training loss's own terms and weights (`losses.outputs_loss`), and one
    forward pass per batch for both. Next to the training loss the validation loss shows
    overfitting: the training loss keeps falling while this one stops or rises."""
    images, coords, lab = val.tensors()                     # (N, 3, S, S) uint8, (N, K, 2), (N, K)
    model.eval()
    preds, total = {}, 0.0
    for i in range(0, len(images), batch):
        x = to_input(images[i:i + batch].to(device))
        xy, m = coords[i:i + batch].to(device), lab[i:i + batch].to(device)
        if cfg.stage == "regressor":
            out = model(x)                                  # (B, K, 2) normalised
            loss = losses.regression_loss(out, xy, m, codec.crop_size, model.cfg.loss)
            got = {"regressor": denormalise(out.float(), images.shape[-1])}
        else:
            out = heatmaps(model, x)
            loss = losses.outputs_loss(model, cfg.stage, out, xy, m, codec, cfg.unary_weight,
                                       cfg.marginal_loss, cfg.prior_decay)
            got = decode(model, out, codec)
        total += float(loss) * len(x)
        for name, p in got.items():
            preds.setdefault(name, []).append(p.cpu())
    scores = {name: pck(torch.cat(p).numpy(), coords.numpy(), lab.numpy())["mean"]
              for name, p in preds.items() if not name.endswith("_conf")}
    return scores, total / max(len(images), 1)


def autocast(cfg: TrainConfig, device: str):
    if cfg.precision == "bf16":
        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def learning_rate(cfg: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(total - cfg.warmup, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


class StageLoss(nn.Module):
    """The stage's training loss as one module, so DistributedDataParallel sees every use of
    the parameters inside one forward: (x, xy, lab) -> scalar loss."""

    def __init__(self, model, cfg: TrainConfig, codec: HeatmapCodec):
        super().__init__()
        self.model, self.cfg, self.codec = model, cfg, codec

    def forward(self, x, xy, lab):
        c = self.cfg
        return losses.step_loss(self.model, c.stage, x, xy, lab, self.codec, c.unary_weight, c.marginal_loss,
                                c.prior_decay)


# ------------------------------------------------------------------ the loop
def train(cfg: TrainConfig, data: DataConfig, train_split: CachedSplit, val_split: CachedSplit,
          run_dir: Path, det: DetectorConfig | None = None, sp: SpatialConfig | None = None,
          reg: RegressorConfig | None = None, init: Path | None = None,
          callback: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, dist: Dist | None = None) -> Run:
    """Train one stage; resumes from `run_dir` when it holds a checkpoint of this stage.

    Under torchrun (`dist`, see `lab.train.distributed`) every rank trains on its own shard of
    each epoch's batches, gradients are averaged, and only rank 0 validates and writes."""
    dist = dist or Dist()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = dist.device(pick_device(cfg.device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    codec = data.codec
    train_split = train_split.subset(cfg.train_limit)
    model, meta = new_model(cfg, det or DetectorConfig(), sp or SpatialConfig(heatmap_size=codec.heatmap_size),
                            reg or RegressorConfig(), init, train_split, data)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = Run(run_dir)
    start = resume(run, model, opt, cfg.stage, device)
    loss_fn = dist.wrap(StageLoss(model, cfg, codec))
    images, coords, lab = train_split.context_tensors()
    speed = cfg.model_only_ips or (model_only_speed(model, cfg, codec, images, device, cfg.speed_probe)
                                   if cfg.speed_probe and start < cfg.epochs else 0.0)
    steps = max(len(images) // (cfg.batch_size * dist.world), 1)
    for epoch in range(start, cfg.epochs):
        seconds, loss = run_epoch(loss_fn, opt, cfg, codec, (images, coords, lab), epoch, steps, device,
                                  dist, callback, should_stop)
        if seconds is None:
            run.stopped = True
            return run
        row = {"epoch": epoch + 1, "loss": loss, "seconds": seconds,
               "images_per_s": steps * cfg.batch_size * dist.world / seconds,
               "model_only_images_per_s": speed, "load_average": os.getloadavg()[0]}
        row["vs_model_only"] = row["images_per_s"] / speed if speed else None
        if dist.rank == 0:
            row["val_pck"], row["val_loss"] = validate(model, cfg, val_split, codec, device)
            run.history.append(row)
            meta.update({"stage": cfg.stage, "epoch": epoch + 1, "history": run.history,
                         "train": to_dict(cfg), "data": to_dict(data), "provenance": provenance(device, dist),
                         "train_images": len(images)})
            save_run(run_dir, model, opt, meta)
            if callback:
                callback({"event": "epoch", **row, "model": model})
        dist.barrier()
    return run


def run_epoch(loss_fn, opt, cfg: TrainConfig, codec: HeatmapCodec, tensors, epoch: int, steps: int,
              device: str, dist: Dist, callback, should_stop) -> tuple[float | None, float]:
    """One epoch of this rank's shard; returns (seconds, mean loss), or (None, 0) when stopped.

    Every rank draws the same permutation; step s's global batch is its next
    `batch_size * world` images and rank r takes the r-th `batch_size` of them, so the
    ranks together see exactly what one process with the combined batch would."""
    images, coords, lab = tensors
    loss_fn.train()
    if cfg.stage == "spatial":
        loss_fn_model(loss_fn).detector.eval()
    g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)   # same epoch, same batches
    torch.manual_seed(cfg.seed * 100003 + epoch + 7919)             # and same dropout masks (resume)
    order = torch.randperm(len(images), generator=g)
    if dist.rank:                                                   # each rank its own augmentation
        g.manual_seed(cfg.seed * 100003 + epoch + 1_000_003 * dist.rank)
    bs, t0, total = cfg.batch_size, time.perf_counter(), 0.0
    for s in range(steps):
        if should_stop and should_stop():
            return None, 0.0
        lr = learning_rate(cfg, epoch * steps + s, cfg.epochs * steps)
        for group in opt.param_groups:
            group["lr"] = lr * group["scale"]
        start = (s * dist.world + dist.rank) * bs
        idx = order[start:start + bs]
        x, xy, m = augment(images[idx].to(device).float().div(255), coords[idx].to(device), lab[idx].to(device),
                           cfg.augment, g, size=codec.crop_size)              # on the GPU when there is one
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(cfg, device):
            loss = loss_fn(x, xy.to(device), m.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item()
        if callback and dist.rank == 0:
            callback({"event": "step", "epoch": epoch, "step": s + 1, "steps": steps,
                      "epochs": cfg.epochs, "loss": loss.item()})
    return time.perf_counter() - t0, total / steps


def loss_fn_model(loss_fn):
    """The model inside a StageLoss, wrapped in DistributedDataParallel or not."""
    return getattr(loss_fn, "module", loss_fn).model


def model_only_speed(model, cfg: TrainConfig, codec: HeatmapCodec, images: torch.Tensor, device: str,
                     steps: int = 4) -> float:
    """Images/s of the stage's forward + backward + AdamW step alone (no data, no augmentation),
    on a copy of the model, one batch of real crops: what the loop's img/s is compared with."""
    import copy
    m = copy.deepcopy(model)
    opt = torch.optim.AdamW(param_groups(m, cfg), lr=0.0)
    fn = StageLoss(m, cfg, codec).train()
    S, n = codec.crop_size, min(cfg.batch_size, len(images))
    pad = (images.shape[-1] - S) // 2
    x = images[:n, :, pad:pad + S, pad:pad + S].float().div(255).to(device)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xy = torch.full((n, joints_of(model), 2), S / 2, device=device)
    lab = torch.ones(n, joints_of(model), dtype=torch.bool, device=device)
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        with autocast(cfg, device):
            loss = fn(x, xy, lab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * n / (time.perf_counter() - t0)


def joints_of(model) -> int:
    return model.cfg.joints if hasattr(model, "cfg") else model.detector.cfg.joints


def provenance(device: str, dist: Dist | None = None) -> dict:
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
    world = dist.world if dist else 1
    if world > 1:
        hw = f"{world} processes ({dist.backend}), each on {hw}"
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
