"""The compact cache: every split's person-centred crops in one safetensors file.

Per split the file holds JPEG bytes (concatenated, with offsets), crop-space
coordinates, the labelled/visible masks and the exact affine original -> crop,
so predictions map back to original pixels. Building is deterministic: the
same data and settings give the same bytes. No pickle anywhere.
"""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from lab.config import DataConfig, to_dict
from lab.data.datasets import PoseRecord
from lab.data.images import decode_jpeg, encode_jpeg
from lab.data.splits import split_records
from lab.data.transforms import box_affine, crop_image, person_box
from lab.errors import LabError
from lab.progress import track

MINI_PATH = Path(__file__).resolve().parent.parent / "assets" / "mini.safetensors"
FORMAT = "pose-lab-cache/1"


@dataclass
class Sample:
    """One person-centred crop and its annotation in crop pixels."""
    id: str
    image: np.ndarray        # (S, S, 3) uint8
    coords: np.ndarray       # (14, 2) float32, crop pixels
    labelled: np.ndarray     # (14,) bool
    visible: np.ndarray      # (14,) int8: 1 / 0 / -1 unknown
    affine: np.ndarray       # (2, 3) float64, original -> crop


def make_sample(rec: PoseRecord, cfg: DataConfig) -> Sample:
    """Raw record -> person-centred image (the one code path the cache also uses).

    The image is `cfg.stored_size` px: the crop (margin `cfg.margin` around the labelled
    joints, `cfg.crop_size` px) with `cfg.context_pad` px of the photo kept on every side, at
    the crop's scale. Its centre `crop_size` px are exactly the crop (`CachedSplit.images`)."""
    cx, cy, side = person_box(rec.coords, rec.labelled, cfg.margin)
    A = box_affine((cx, cy, side * cfg.stored_size / cfg.crop_size), cfg.stored_size)
    xy = (rec.coords @ A[:, :2].T + A[:, 2]).astype(np.float32)
    xy[~rec.labelled] = 0.0
    return Sample(rec.id, crop_image(rec.image(), A, cfg.stored_size), xy,
                  rec.labelled.copy(), rec.visible.copy(), A)


class CachedSplit:
    """Arrays of one split; images are decoded once, on first use.

    `images`, `coords`, `affine` and `tensors()` are the crop, as every model sees it at test
    time; `context_tensors()` are the stored images with their surroundings, for training's
    augmentation (the same arrays when the cache keeps no context)."""

    def __init__(self, arrays: dict, ids: list[str], pad: int = 0):
        self.ids = ids
        self.pad = pad                          # context px on each side of the stored images
        self.stored_coords = arrays["coords"]   # (N, 14, 2) float32, stored-image px
        self.labelled = arrays["labelled"].astype(bool)
        self.visible = arrays["visible"]        # (N, 14) int8
        self.stored_affine = arrays["affine"]   # (N, 2, 3) float64, original -> stored image
        self.coords = self.stored_coords - np.float32(pad)                  # crop px
        self.affine = self.stored_affine.copy()
        self.affine[:, :, 2] -= pad                                         # original -> crop
        self._jpeg, self._off = arrays["jpeg"], arrays["offsets"]
        self._stored = None

    def __len__(self) -> int:
        return len(self.ids)

    def jpeg(self, i: int) -> bytes:
        return self._jpeg[self._off[i]:self._off[i + 1]].tobytes()

    @property
    def stored_images(self) -> np.ndarray:
        """(N, S + 2 pad, S + 2 pad, 3) uint8: the crops with their context."""
        if self._stored is None:
            self._stored = np.stack([decode_jpeg(self.jpeg(i)) for i in range(len(self))])
        return self._stored

    @property
    def images(self) -> np.ndarray:
        """(N, S, S, 3) uint8: the crops."""
        p = self.pad
        return self.stored_images[:, p:-p, p:-p] if p else self.stored_images

    def sample(self, i: int) -> Sample:
        return Sample(self.ids[i], self.images[i], self.coords[i], self.labelled[i],
                      self.visible[i], self.affine[i])

    def subset(self, n: int) -> "CachedSplit":
        """The first n samples (training-set size knob)."""
        n = min(n, len(self)) if n > 0 else len(self)
        sub = object.__new__(CachedSplit)
        sub.ids, sub.pad, sub.labelled = self.ids[:n], self.pad, self.labelled[:n]
        sub.stored_coords, sub.coords = self.stored_coords[:n], self.coords[:n]
        sub.stored_affine, sub.affine = self.stored_affine[:n], self.affine[:n]
        sub.visible = self.visible[:n]
        sub._jpeg, sub._off, sub._stored = self._jpeg, self._off[:n + 1], (
            None if self._stored is None else self._stored[:n])
        return sub

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (N, 3, S, S) uint8, coords (N, 14, 2) float32, labelled (N, 14) bool: the crops."""
        return (torch.from_numpy(np.ascontiguousarray(self.images)).permute(0, 3, 1, 2).contiguous(),
                torch.from_numpy(self.coords), torch.from_numpy(self.labelled))

    def context_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (N, 3, S + 2 pad, S + 2 pad) uint8, coords (N, 14, 2) in their pixels, labelled."""
        return (torch.from_numpy(self.stored_images).permute(0, 3, 1, 2).contiguous(),
                torch.from_numpy(self.stored_coords), torch.from_numpy(self.labelled))


class PoseCache:
    """A cache file: `PoseCache(path)["train"]` is a `CachedSplit`."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise LabError(f"cache not found at {path}: build it with `pose-lab prepare --out {path}`.")
        try:
            arrays = load_file(str(path))
            from safetensors import safe_open
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
            self.meta = json.loads(meta["pose_lab"])
        except Exception as e:
            raise LabError(f"{path} is not a readable pose-lab cache ({type(e).__name__}: {e}).")
        if self.meta.get("format") != FORMAT:
            raise LabError(f"{path} has format {self.meta.get('format')!r}, expected {FORMAT!r}.")
        self.path = path
        self.data = DataConfig(**self.meta["data"])
        self.splits = {}
        for name, ids in self.meta["ids"].items():
            self.splits[name] = CachedSplit({k.split("/", 1)[1]: v for k, v in arrays.items()
                                             if k.startswith(name + "/")}, ids, self.data.context_pad)

    def __getitem__(self, split: str) -> CachedSplit:
        if split not in self.splits:
            raise LabError(f"{self.path} has no split {split!r} (it has {sorted(self.splits)}).")
        return self.splits[split]


@functools.lru_cache(maxsize=1)
def load_mini() -> PoseCache | None:
    """The bundled mini set, read once per process (None when the file is missing or damaged)."""
    try:
        return PoseCache(MINI_PATH)
    except LabError:
        return None


def build(records_by_split: dict[str, list[PoseRecord]], cfg: DataConfig, out: Path,
          quality: int = 85, source: str = "", log=print) -> dict:
    """Crop, JPEG-encode and write every split to one safetensors file. Returns stats."""
    t0 = time.perf_counter()
    tensors, ids = {}, {}
    for split, recs in records_by_split.items():
        blobs, cols = [], {"coords": [], "labelled": [], "visible": [], "affine": []}
        for i, rec in enumerate(track(recs, f"prepare {split}", unit="images")):
            s = make_sample(rec, cfg)
            blobs.append(np.frombuffer(encode_jpeg(s.image, quality), np.uint8))
            for k in cols:
                cols[k].append(getattr(s, k))
            if log and (i + 1) % 2000 == 0:
                log(f"  {split}: {i + 1}/{len(recs)}")
        off = np.zeros(len(blobs) + 1, np.int64)
        off[1:] = np.cumsum([len(b) for b in blobs])
        tensors[f"{split}/jpeg"] = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
        tensors[f"{split}/offsets"] = off
        tensors[f"{split}/coords"] = np.stack(cols["coords"]).astype(np.float32)
        tensors[f"{split}/labelled"] = np.stack(cols["labelled"]).astype(np.uint8)
        tensors[f"{split}/visible"] = np.stack(cols["visible"]).astype(np.int8)
        tensors[f"{split}/affine"] = np.stack(cols["affine"]).astype(np.float64)
        ids[split] = [r.id for r in recs]
        if log:
            log(f"  {split}: {len(recs)} images, {off[-1] / 2**20:.1f} MiB of JPEG")
    meta = {"format": FORMAT, "data": to_dict(cfg), "quality": quality, "ids": ids, "source": source}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"pose_lab": json.dumps(meta, sort_keys=True)})
    tmp.replace(out)
    return {"path": str(out), "bytes": out.stat().st_size, "seconds": time.perf_counter() - t0,
            "counts": {k: len(v) for k, v in ids.items()}}


def prepare(root: Path, out: Path, cfg: DataConfig, quality: int = 85, log=print) -> dict:
    """Standard protocol: train (minus val), val, test."""
    recs = {s: split_records(root, s, cfg.val_fraction, cfg.seed) for s in ("train", "val", "test")}
    return build(recs, cfg, out, quality, source="lsp+lspet standard protocol", log=log)


def prepare_mini(root: Path, out: Path, cfg: DataConfig, n_val: int = 100, quality: int = 85,
                 log=print) -> dict:
    """The bundled mini set.

    train, val  LSP im0001-im1000 (training images only), seeded 900 / 100: what the
                Retrain page trains and validates on
    heldout     the standard protocol's validation split (550 LSP + LSPET training images
                that the shipped models never trained on): where the app finds examples
    """
    from lab.data.datasets import read_lsp
    train = list(read_lsp(Path(root))[:1000])
    rng = np.random.default_rng(cfg.seed)
    held = set(rng.permutation(len(train))[:n_val].tolist())
    recs = {"train": [r for i, r in enumerate(train) if i not in held],
            "val": [r for i, r in enumerate(train) if i in held],
            "heldout": split_records(Path(root), "val", cfg.val_fraction, cfg.seed)}
    return build(recs, cfg, out, quality, log=log,
                 source="train/val: lsp im0001-im1000 (training images); heldout: the protocol's val split")
