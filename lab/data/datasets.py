"""Readers for the standard LSP and LSPET folder layouts (`images/` + `joints.mat`).

The two annotation files differ (see ../shared/datasets/README.md):

| file  | shape            | flag                                   |
| LSP   | (3, 14, 2000)    | 1 = occluded, 0 = visible; all joints labelled |
| LSPET | (14, 3, 10000)   | 1 = annotated, 0 = not; unannotated hold junk |

Both become one canonical `PoseRecord` per image.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lab.data.images import load_image
from lab.errors import LabError

NUM_JOINTS = 14
LSP_COUNT, LSPET_COUNT = 2000, 10000


@dataclass
class PoseRecord:
    """One annotated image, in original pixels (pixel centres at integers)."""
    id: str                  # "lsp/im0001" or "lspet/im00001"
    path: Path
    coords: np.ndarray       # (14, 2) float32, x then y
    labelled: np.ndarray     # (14,) bool: the coordinate is real
    visible: np.ndarray      # (14,) int8: 1 visible, 0 occluded, -1 unknown

    def image(self) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        return load_image(self.path, name=f"dataset image {self.path}")


def _load_joints(path: Path) -> np.ndarray:
    import scipy.io
    if not path.is_file():
        raise LabError(f"annotation file not found: expected {path}")
    try:
        m = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises many types for damaged files
        raise LabError(f"{path} is damaged or not a MATLAB file ({type(e).__name__}: {e}).")
    if "joints" not in m:
        raise LabError(f"{path} has no 'joints' array (keys: {sorted(k for k in m if not k.startswith('__'))}).")
    return np.asarray(m["joints"], dtype=np.float64)


def _check_folder(root: Path, name: str, first_image: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        raise LabError(
            f"{name.upper()} dataset not found: expected a folder {folder} holding images/{first_image} ... "
            f"and joints.mat. Point --data (or $POSE_LAB_DATA) at the folder that contains lsp/ and lspet/.")
    if not (folder / "images").is_dir() or not any((folder / "images").iterdir()):
        raise LabError(f"{folder}/images is missing or empty: expected images/{first_image} ...")
    return folder


@lru_cache(maxsize=4)
def read_lsp(root: Path) -> tuple[PoseRecord, ...]:
    """LSP: joints (3, 14, 2000) = x, y, flag with 1 = occluded."""
    folder = _check_folder(Path(root), "lsp", "im0001.jpg")
    j = _load_joints(folder / "joints.mat")
    if j.shape != (3, NUM_JOINTS, LSP_COUNT):
        raise LabError(f"{folder}/joints.mat has shape {j.shape}; LSP's is (3, 14, 2000).")
    recs = []
    for i in range(LSP_COUNT):
        xy = j[:2, :, i].T.astype(np.float32)               # (14, 2)
        occluded = j[2, :, i] > 0.5
        recs.append(PoseRecord(
            id=f"lsp/im{i + 1:04d}", path=folder / "images" / f"im{i + 1:04d}.jpg",
            coords=xy - 1.0,                                # MATLAB 1-based -> pixel centres at 0
            labelled=np.ones(NUM_JOINTS, bool),
            visible=np.where(occluded, 0, 1).astype(np.int8)))
    return tuple(recs)


@lru_cache(maxsize=4)
def read_lspet(root: Path) -> tuple[PoseRecord, ...]:
    """LSPET: joints (14, 3, 10000) = x, y, flag with 1 = annotated."""
    folder = _check_folder(Path(root), "lspet", "im00001.jpg")
    j = _load_joints(folder / "joints.mat")
    if j.shape != (NUM_JOINTS, 3, LSPET_COUNT):
        raise LabError(f"{folder}/joints.mat has shape {j.shape}; LSPET's is (14, 3, 10000).")
    recs = []
    for i in range(LSPET_COUNT):
        xy = j[:, :2, i].astype(np.float32)
        # Annotated, and not one of the few annotated-but-negative junk points.
        labelled = (j[:, 2, i] > 0.5) & (xy >= 0).all(axis=1)
        xy = np.where(labelled[:, None], xy - 1.0, 0.0).astype(np.float32)  # junk -> 0, masked
        recs.append(PoseRecord(
            id=f"lspet/im{i + 1:05d}", path=folder / "images" / f"im{i + 1:05d}.jpg",
            coords=xy, labelled=labelled, visible=np.full(NUM_JOINTS, -1, np.int8)))
    return tuple(recs)
