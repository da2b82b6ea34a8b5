"""Weights on disk: safetensors plus a JSON header with configs and the model card.

No pickle: `load_file` reads raw tensors, configs come back through dataclasses.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lab.config import DataConfig, DetectorConfig, RegressorConfig, SpatialConfig, from_dict
from lab.errors import LabError
from lab.models.pose import PoseNet
from lab.models.regressor import Regressor


def save(path: Path, model: torch.nn.Module, meta: dict) -> None:
    """Atomic write: a crash mid-save never leaves a half file under `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"pose_lab": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)


def read_meta(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LabError(f"no weights at {path}.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["pose_lab"])
    except Exception as e:
        raise LabError(f"{path} is damaged or not a pose-lab checkpoint ({type(e).__name__}).")
    if not isinstance(meta, dict):
        raise LabError(f"{path} is damaged or not a pose-lab checkpoint (header is not a mapping).")
    return meta


def build(meta: dict) -> torch.nn.Module:
    if meta.get("kind") == "pose":
        sp = meta.get("spatial")
        return PoseNet(from_dict(DetectorConfig, meta["detector"]),
                       from_dict(SpatialConfig, sp) if sp else None)
    if meta.get("kind") == "regressor":
        return Regressor(from_dict(RegressorConfig, meta["regressor"]))
    raise LabError(f"unknown model kind {meta.get('kind')!r} in checkpoint.")


def load(path: Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, meta). A damaged or mismatched file raises LabError."""
    meta = read_meta(path)
    try:
        model = build(meta)
    except LabError:
        raise
    except Exception as e:          # a header whose configs are missing or malformed
        raise LabError(f"{path} has a damaged configuration header ({type(e).__name__}: {e}).")
    try:
        state = load_file(str(path), device=device)
        model.load_state_dict(state)
    except Exception as e:
        raise LabError(f"{path} does not match its configuration or is damaged ({type(e).__name__}).")
    if any(not torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise LabError(f"{path} holds non-finite weights; it is damaged.")
    return model.to(device).eval(), meta


def data_config(meta: dict) -> DataConfig:
    return from_dict(DataConfig, meta.get("data", {}))


def stage_summary(meta: dict) -> dict:
    """What a finished training stage contributes to the model card of the stages after it."""
    hist = meta.get("history", [])
    return {"stage": meta.get("stage"), "epochs": meta.get("epoch"), "train": meta.get("train"),
            "train_images": meta.get("train_images"), "provenance": meta.get("provenance"),
            "wall_seconds": sum(h.get("seconds", 0) for h in hist),
            "final_val_pck": hist[-1]["val_pck"] if hist else None,
            "val_history": [h.get("val_pck") for h in hist],
            "speed_history": [{k: h.get(k) for k in ("images_per_s", "vs_model_only", "load_average")}
                              for h in hist]}


def stages(meta: dict) -> list[dict]:
    """Every training stage behind a checkpoint, oldest first (lineage + its own)."""
    return list(meta.get("lineage", [])) + [stage_summary(meta)]
