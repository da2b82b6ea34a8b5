"""The standard LSP protocol and a fixed, seeded validation split.

train: all 10,000 LSPET + LSP im0001-im1000 (11,000), minus the validation part
val:   a seeded fraction of those 11,000 (training data only)
test:  LSP im1001-im2000 (1,000). Never trained, tuned or checkpoint-picked on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.data.datasets import PoseRecord, read_lsp, read_lspet

SPLITS = ("train", "val", "test")


def protocol_train(root: Path) -> list[PoseRecord]:
    """The 11,000 training images of the standard protocol, in a fixed order."""
    return list(read_lspet(Path(root))) + list(read_lsp(Path(root))[:1000])


def val_indices(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices (into the protocol training list) held out for validation."""
    rng = np.random.default_rng(seed)
    k = int(round(n * fraction))
    return np.sort(rng.permutation(n)[:k])


def split_records(root: Path, split: str, val_fraction: float = 0.05,
                  seed: int = 0) -> list[PoseRecord]:
    root = Path(root)
    if split == "test":
        return list(read_lsp(root)[1000:])
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    train = protocol_train(root)
    held = val_indices(len(train), val_fraction, seed)
    if split == "val":
        return [train[i] for i in held]
    mask = np.ones(len(train), bool)
    mask[held] = False
    return [r for r, keep in zip(train, mask) if keep]
