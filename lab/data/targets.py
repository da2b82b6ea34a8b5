"""Gaussian target heatmaps and their decoding, with sub-pixel refinement.

Heatmap pixel j at stride s covers crop pixels s*j .. s*j + s - 1, so its
centre is at crop x = s*j + (s - 1)/2.
"""
from __future__ import annotations

import torch


def crop_to_heatmap(xy: torch.Tensor, stride: int) -> torch.Tensor:
    return (xy - (stride - 1) / 2) / stride


def heatmap_to_crop(xy: torch.Tensor, stride: int) -> torch.Tensor:
    return xy * stride + (stride - 1) / 2


def gaussian_targets(xy: torch.Tensor, labelled: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """T_k(p) = exp(-|p - x_k|^2 / 2 sigma^2) for labelled joints, 0 otherwise.

    xy (B, K, 2) in heatmap pixels; labelled (B, K) -> targets (B, K, size, size).
    """
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
    Pass `log_space=True` when the maps already hold log-values.
    """
    B, K, H, W = heatmaps.shape
    flat = heatmaps.reshape(B, K, -1)
    val, idx = flat.max(-1)
    y, x = (idx // W), (idx % W)
    logs = heatmaps if log_space else torch.log(heatmaps.clamp_min(1e-10))
    b = torch.arange(B, device=heatmaps.device)[:, None]
    k = torch.arange(K, device=heatmaps.device)[None, :]
    # Fit window centred on the peak, moved inwards at the border (pixels 0,1,2 / W-3..W-1).
    cx, cy = x.clamp(1, W - 2), y.clamp(1, H - 2)
    at = lambda yy, xx: logs[b, k, yy, xx]

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
