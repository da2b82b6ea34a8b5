"""Resumable runs: a run folder holds

  model.safetensors   weights + meta (configs, history, epoch): the last good epoch
  optim.safetensors   Adam state, flattened to tensors (no pickle)

Both are written atomically at the end of every epoch, so stopping a run at
any moment keeps the last good checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lab.models import io


def save_run(run: Path, model, optimizer, meta: dict) -> None:
    io.save(run / "model.safetensors", model, meta)
    flat, layout = {}, {}
    for i, (pid, st) in enumerate(optimizer.state_dict()["state"].items()):
        for name, t in st.items():
            flat[f"{pid}.{name}"] = torch.as_tensor(t).detach().cpu().contiguous()
        layout[str(pid)] = sorted(st)
    tmp = run / "optim.safetensors.tmp"
    save_file(flat, str(tmp), metadata={"layout": json.dumps(layout),
                                        "param_groups": json.dumps(optimizer.state_dict()["param_groups"])})
    tmp.replace(run / "optim.safetensors")


def load_optimizer(run: Path, optimizer) -> bool:
    path = run / "optim.safetensors"
    if not path.is_file():
        return False
    flat = load_file(str(path))
    sd = optimizer.state_dict()
    state = {}
    for key, t in flat.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = t
    sd["state"] = state
    optimizer.load_state_dict(sd)
    return True
