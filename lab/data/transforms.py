"""Geometry: person-centred crops and batched augmentation.

Convention everywhere: pixel centres sit at integer coordinates, so an image
of width W spans x in [-0.5, W - 0.5]. An affine `A` is a (2, 3) matrix that
maps source pixels to destination pixels: dst = A[:, :2] @ src + A[:, 2].
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lab.config import AugmentConfig
from lab.data.degrade import degrade
from lab.joints import FLIP_PERM


# ---------------------------------------------------------------- affine algebra
def apply_affine(A, xy):
    """Map points (..., 2) through an affine (2, 3) (numpy) or (B, 2, 3) (torch, batched)."""
    if isinstance(xy, torch.Tensor):
        return xy @ A[..., :2].transpose(-1, -2) + A[..., None, :, 2]
    return xy @ A[:, :2].T + A[:, 2]


def invert_affine(A: np.ndarray) -> np.ndarray:
    M = np.linalg.inv(np.vstack([A, [0, 0, 1]]))
    return M[:2]


def compose(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A after B."""
    return (np.vstack([A, [0, 0, 1]]) @ np.vstack([B, [0, 0, 1]]))[:2]


# ---------------------------------------------------------------- person crop
def person_box(coords: np.ndarray, labelled: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Square box (cx, cy, side) around the labelled joints with a margin."""
    pts = coords[labelled]
    if len(pts) == 0:
        raise ValueError("no labelled joints to frame")
    lo, hi = pts.min(0), pts.max(0)
    cx, cy = (lo + hi) / 2
    side = max(float((hi - lo).max()) * (1 + margin), 16.0)
    return float(cx), float(cy), side


def image_box(width: int, height: int) -> tuple[float, float, float]:
    """The whole image, padded to a square (used when nothing frames the person)."""
    return (width - 1) / 2, (height - 1) / 2, float(max(width, height))


def box_affine(box: tuple[float, float, float], size: int) -> np.ndarray:
    """Affine original -> crop for a square box (cx, cy, side) resampled to size x size.

    crop = s * (orig - c) + (size - 1) / 2, with s = size / side.
    """
    cx, cy, side = box
    s = size / side
    return np.array([[s, 0, (size - 1) / 2 - s * cx],
                     [0, s, (size - 1) / 2 - s * cy]], dtype=np.float64)


def warp(images: torch.Tensor, A: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear warp of a batch (B, C, H, W) by affines (B, 2, 3) src->dst; zeros outside."""
    B, _, H, W = images.shape
    h, w = out_hw
    Ainv = torch.linalg.inv(torch.cat([A, A.new_tensor([0, 0, 1]).expand(B, 1, 3)], 1))[:, :2]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=A.dtype, device=A.device),
                            torch.arange(w, dtype=A.dtype, device=A.device), indexing="ij")
    dst = torch.stack([xs, ys], -1).reshape(1, -1, 2)                     # (1, h*w, 2)
    src = apply_affine(Ainv, dst.expand(B, -1, -1))                        # (B, h*w, 2)
    norm = torch.stack([(2 * src[..., 0] + 1) / W - 1, (2 * src[..., 1] + 1) / H - 1], -1)
    grid = norm.reshape(B, h, w, 2).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def zoom(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Images or maps (B, C, H, W) enlarged `factor` times about their centre, same size
    (zeros where a zoom-out uncovers the border). The centre pixel (H - 1) / 2 stays put, for a
    crop and for its stride-s heatmaps alike, so zoom(zoom(x, f), 1 / f) re-aligns a map
    computed on a zoomed crop with the crop."""
    if factor == 1:
        return images
    B = images.shape[0]
    theta = images.new_tensor([[1 / factor, 0, 0], [0, 1 / factor, 0]]).expand(B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def crop_image(rgb: np.ndarray, A: np.ndarray, size: int) -> np.ndarray:
    """Resample the crop defined by affine A (original -> crop). Returns uint8 (size, size, 3).

    When the crop shrinks the image by more than 2x, the source is first
    box-reduced by an integer factor (anti-aliasing); A is composed to match.
    """
    scale = math.sqrt(abs(np.linalg.det(A[:, :2])))
    f = int(1 / scale) if scale < 0.5 else 1
    if f > 1:
        img = Image.fromarray(rgb).reduce(f)
        # reduced pixel j covers original [f j - .5, f j + f - .5]: orig = f * red + (f - 1) / 2
        red_to_orig = np.array([[f, 0, (f - 1) / 2], [0, f, (f - 1) / 2]], dtype=np.float64)
        A = compose(A, red_to_orig)
        rgb = np.asarray(img)
    t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].double()
    out = warp(t, torch.from_numpy(A)[None], (size, size))
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


# ---------------------------------------------------------------- augmentation
def hflip(images: torch.Tensor, coords: torch.Tensor, labelled: torch.Tensor):
    """Mirror a batch: images (B, C, H, W), coords (B, K, 2) in pixels, labelled (B, K).

    The person's left becomes the image's right, so joints swap left <-> right.
    """
    W = images.shape[-1]
    coords = coords.clone()
    coords[..., 0] = (W - 1) - coords[..., 0]
    perm = list(FLIP_PERM)
    return images.flip(-1), coords[:, perm], labelled[:, perm]


def random_affines(B: int, size: int, cfg: AugmentConfig, g: torch.Generator,
                   in_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample affines (B, 2, 3) from an `in_size` image (default `size`) to a `size` crop,
    about their centres, and a flip flag (B,). With probability `cfg.cut` the shift is up to a
    third of the crop, so the person is cut by the crop's edge."""
    u = lambda: torch.rand(B, generator=g) * 2 - 1          # uniform [-1, 1]
    s = 1 + cfg.scale * u()
    th = torch.deg2rad(cfg.rotation * u())
    t = cfg.translate * size * torch.stack([u(), u()], -1)   # (B, 2)
    cut = torch.rand(B, generator=g) < cfg.cut
    t = torch.where(cut[:, None], t * (1 / 3) / max(cfg.translate, 1e-6), t)
    flip = torch.rand(B, generator=g) < cfg.flip
    c, c_in = (size - 1) / 2, ((in_size or size) - 1) / 2
    cos, sin = torch.cos(th) * s, torch.sin(th) * s
    fx = torch.where(flip, -1.0, 1.0)
    # dst = R S F (src - c_in) + c + t
    M = torch.stack([torch.stack([cos * fx, -sin], -1), torch.stack([sin * fx, cos], -1)], 1)  # (B, 2, 2)
    offset = c + t - (M @ torch.full((B, 2, 1), c_in)).squeeze(-1)
    return torch.cat([M, offset[..., None]], -1), flip


def augment(images: torch.Tensor, coords: torch.Tensor, labelled: torch.Tensor,
            cfg: AugmentConfig, g: torch.Generator, size: int | None = None):
    """Random scale, rotation, translation, flip (with L/R swap), colour jitter and what
    everyday photos do to a crop (`lab.data.degrade`).

    images (B, 3, S_in, S_in) float in [0, 1]: the crops, or the cache's stored images with
    their surroundings; coords (B, K, 2) in their pixels; labelled (B, K). Returns crops
    (B, 3, size, size) (default S_in) about the same centre. Joints pushed out of the crop
    become unlabelled. Runs on any device.
    """
    B, _, S_in, _ = images.shape
    S = size or S_in
    A, flip = random_affines(B, S, cfg, g, in_size=S_in)
    A = A.to(images.device)
    out = warp(images, A, (S, S))
    xy = apply_affine(A.to(coords.dtype), coords)
    perm = torch.tensor(FLIP_PERM, device=coords.device)
    idx = torch.where(flip.to(coords.device)[:, None], perm, torch.arange(len(FLIP_PERM), device=coords.device))
    xy = torch.gather(xy, 1, idx[..., None].expand(-1, -1, 2))
    lab = torch.gather(labelled, 1, idx)
    inside = ((xy > -0.5) & (xy < S - 0.5)).all(-1)
    return degrade(color_jitter(out, cfg.color, g), cfg, g), xy, lab & inside


def color_jitter(images: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors in [1 - s, 1 + s]."""
    if strength <= 0:
        return images
    B = images.shape[0]
    f = (1 + strength * (torch.rand(3, B, 1, 1, 1, generator=g) * 2 - 1)).to(images.device, images.dtype)
    x = images * f[0]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * f[1] + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * f[2] + gray
    return x.clamp(0, 1)
