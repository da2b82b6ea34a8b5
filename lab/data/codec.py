"""Heatmap geometry, in one place: crop size, stride, heatmap size, target sigma,
and the conversions between heatmap, crop and photo pixels (as mmpose's codecs).

The defaults below (CROP_SIZE, STRIDE, SIGMA) are declared here only: `DataConfig`
(lab.config) takes its crop fields' defaults from them and builds its codec with
`DataConfig.codec`; the spatial model's heatmap size starts from `HeatmapCodec().heatmap_size`.
Torch is imported where it is used, so lab.config (and `pose-lab --help`) stays light.

Heatmap pixel j at stride s covers crop pixels s*j .. s*j + s - 1, so its
centre is at crop x = s*j + (s - 1)/2. Crop pixels map to photo pixels through
the crop's affine A (photo -> crop), see `lab.data.transforms`.

Targets (`encode`):
    T_k(p) = exp(-|p - x_k|^2 / 2 sigma^2)          (the paper's MSE targets)
and, for the softmax loss, the same Gaussian divided by its sum over pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

CROP_SIZE = 128     # input side in pixels (square)
STRIDE = 4          # heatmap stride: 128 px -> 32x32 heatmaps
SIGMA = 1.0         # Gaussian target sigma, in heatmap pixels


@dataclass(frozen=True)
class HeatmapCodec:
    crop_size: int = CROP_SIZE
    stride: int = STRIDE
    sigma: float = SIGMA

    @property
    def heatmap_size(self) -> int:
        return self.crop_size // self.stride

    @classmethod
    def from_config(cls, data) -> "HeatmapCodec":
        """From a `DataConfig` (or the dict a checkpoint stores); what it lacks takes the defaults."""
        get = data.get if isinstance(data, dict) else lambda k, d: getattr(data, k, d)
        return cls(int(get("crop_size", CROP_SIZE)), int(get("stride", STRIDE)), float(get("sigma", SIGMA)))

    # ------------------------------------------------------------ coordinates
    def to_heatmap(self, xy_crop):
        """Crop pixels (..., 2) -> heatmap pixels."""
        return (xy_crop - (self.stride - 1) / 2) / self.stride

    def to_crop(self, xy_hm):
        """Heatmap pixels (..., 2) -> crop pixels."""
        return xy_hm * self.stride + (self.stride - 1) / 2

    def to_photo(self, xy_hm, affine: np.ndarray) -> np.ndarray:
        """Heatmap pixels (K, 2) -> photo pixels, through the crop's affine (2, 3) photo -> crop."""
        import torch

        from lab.data.transforms import apply_affine, invert_affine
        return apply_affine(invert_affine(np.asarray(affine, np.float64)),
                            np.asarray(self.to_crop(torch.as_tensor(xy_hm)).cpu(), np.float64))

    def from_photo(self, xy_photo, affine: np.ndarray) -> np.ndarray:
        """Photo pixels (K, 2) -> heatmap pixels."""
        from lab.data.transforms import apply_affine
        return np.asarray(self.to_heatmap(apply_affine(np.asarray(affine, np.float64),
                                                       np.asarray(xy_photo, np.float64))))

    # ------------------------------------------------------------ encode
    def encode(self, xy_crop: torch.Tensor, labelled: torch.Tensor, normalise: bool = False) -> torch.Tensor:
        """Targets (B, K, H, W) for joints (B, K, 2) in crop pixels: Gaussians of sigma heatmap
        px, 0 for unlabelled joints; with `normalise`, each map sums to 1 (softmax loss)."""
        t = gaussian_targets(self.to_heatmap(xy_crop), labelled, self.heatmap_size, self.sigma)
        if normalise:
            t = t / t.sum((-1, -2), keepdim=True).clamp_min(1e-12)
        return t

    # ------------------------------------------------------------ decode
    def decode(self, heatmaps: torch.Tensor, log_space: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps (B, K, H, W) -> peaks in heatmap pixels (B, K, 2) and peak values (B, K)."""
        return decode(heatmaps, log_space)

    def decode_crop(self, heatmaps: torch.Tensor, log_space: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps (B, K, H, W) -> peaks in crop pixels (B, K, 2) and peak values (B, K)."""
        xy, val = decode(heatmaps, log_space)
        return self.to_crop(xy), val

    def check(self, heatmaps: torch.Tensor) -> None:
        """Raise if a model's heatmaps (B, K, H, W) do not have this codec's size."""
        if tuple(heatmaps.shape[-2:]) != (self.heatmap_size, self.heatmap_size):
            raise ValueError(f"heatmaps are {tuple(heatmaps.shape[-2:])}, the codec expects "
                             f"{self.heatmap_size}x{self.heatmap_size} (crop {self.crop_size} / stride {self.stride})")


def gaussian_targets(xy: torch.Tensor, labelled: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """T_k(p) = exp(-|p - x_k|^2 / 2 sigma^2) for labelled joints, 0 otherwise.

    xy (B, K, 2) in heatmap pixels; labelled (B, K) -> targets (B, K, size, size).
    """
    import torch
    r = torch.arange(size, dtype=xy.dtype, device=xy.device)
    gx = torch.exp(-(r - xy[..., 0:1]) ** 2 / (2 * sigma ** 2))      # (B, K, W)
    gy = torch.exp(-(r - xy[..., 1:2]) ** 2 / (2 * sigma ** 2))      # (B, K, H)
    t = gy[..., :, None] * gx[..., None, :]                           # (B, K, H, W)
    return t * labelled[..., None, None].to(t.dtype)


def decode(heatmaps: torch.Tensor, log_space: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps (B, K, H, W) -> peak coordinates (B, K, 2) in heatmap pixels, and peak values (B, K).

    Sub-pixel refinement fits a parabola through the log-values at the peak and
    its two neighbours on each axis: offset = (l[-1] - l[+1]) / (2 (l[-1] - 2 l[0] + l[+1])).
    For a sampled Gaussian the log is exactly quadratic, so this recovers the centre.
    Pass `log_space=True` when the maps already hold log-values (a log-marginal, or
    the logits of a softmax-trained unary).
    """
    import torch
    B, K, H, W = heatmaps.shape
    flat = heatmaps.reshape(B, K, -1)
    val, idx = flat.max(-1)
    y, x = (idx // W), (idx % W)
    logs = heatmaps if log_space else torch.log(heatmaps.clamp_min(1e-10))
    b = torch.arange(B, device=heatmaps.device)[:, None]
    k = torch.arange(K, device=heatmaps.device)[None, :]
    # Fit window centred on the peak, moved inwards at the border (pixels 0,1,2 / W-3..W-1).
    cx, cy = x.clamp(1, W - 2), y.clamp(1, H - 2)

    def at(yy, xx):
        return logs[b, k, yy, xx]

    def vertex(lm, l0, lq):
        den = lm - 2 * l0 + lq
        off = torch.where(den < -1e-12, 0.5 * (lm - lq) / den.clamp(max=-1e-12), torch.zeros_like(den))
        return off.clamp(-1.5, 1.5)

    fx = cx.to(heatmaps.dtype) + vertex(at(y, cx - 1), at(y, cx), at(y, cx + 1))
    fy = cy.to(heatmaps.dtype) + vertex(at(cy - 1, x), at(cy, x), at(cy + 1, x))
    # Stay within the peak pixel: the refinement only splits it.
    xf, yf = x.to(heatmaps.dtype), y.to(heatmaps.dtype)
    xy = torch.stack([torch.minimum(torch.maximum(fx, xf - 0.5), xf + 0.5),
                      torch.minimum(torch.maximum(fy, yf - 0.5), yf + 0.5)], -1)
    return xy, val
