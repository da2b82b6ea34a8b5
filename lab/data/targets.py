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


# ------------------------------------------------------------------ second peaks (false-positive candidates)
STRONG_SECOND_PEAK = 0.5   # a second peak at least half as high as the first is worth a look


def second_peak(heatmap, min_distance: int = 2, log_space: bool = False) -> dict:
    """The global peak of one map (H, W) and the highest *other* local maximum.

    A local maximum is a pixel no smaller than its 8 neighbours. The second peak
    is the highest one more than `min_distance` pixels (Chebyshev) from the
    global peak, so the shoulders of the first peak do not count. Values are
    compared after ReLU (all the spatial model sees of a unary) or, with
    `log_space`, as exp(l - max l) (a marginal scaled to a peak of 1).

    Returns {"first": (x, y), "first_value", "second": (x, y) or None,
    "second_value", "ratio"}, positions in heatmap pixels and ratio =
    second_value / first_value in [0, 1] (0 when there is no second peak or the
    map is <= 0 everywhere).
    """
    h = torch.as_tensor(heatmap).detach().to(torch.float64)
    if h.dim() != 2:
        raise ValueError(f"second_peak expects one (H, W) map, got shape {tuple(h.shape)}")
    h = torch.exp(h - h.max()) if log_space else torch.relu(h)
    H, W = h.shape
    idx = int(h.argmax())
    fy, fx = divmod(idx, W)
    first = float(h[fy, fx])
    out = {"first": (fx, fy), "first_value": first, "second": None, "second_value": 0.0, "ratio": 0.0}
    if first <= 0:
        return out
    pooled = torch.nn.functional.max_pool2d(h[None, None], 3, stride=1, padding=1)[0, 0]
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    far = torch.maximum((xs - fx).abs(), (ys - fy).abs()) > min_distance
    cand = torch.where((h >= pooled) & (h > 0) & far, h, torch.full_like(h, -1.0))
    j = int(cand.argmax())
    sy, sx = divmod(j, W)
    if cand[sy, sx] > 0:
        second = float(h[sy, sx])
        out.update(second=(sx, sy), second_value=second, ratio=second / first)
    return out


def peak_competition(unary, log_marginal, min_distance: int = 2) -> dict:
    """How the spatial model changed the contest between a unary's two best peaks.

    unary, log_marginal: one joint's maps (H, W). With p1, p2 the unary's first
    and second peaks (`second_peak`), returns the unary ratio u(p2) / u(p1) (after
    ReLU) and the marginal ratio m(p2) / m(p1), each map read as its maximum in the
    3x3 window around the peak (a peak may move by a pixel). A marginal ratio far
    below the unary ratio means the product suppressed the second peak; above 1
    means it preferred the second peak. `change` = unary_ratio - min(marginal_ratio, 1).
    Keys: first, second (heatmap px or None), unary_ratio, marginal_ratio, change.
    """
    sp = second_peak(unary, min_distance)
    out = {"first": sp["first"], "second": sp["second"], "unary_ratio": sp["ratio"],
           "marginal_ratio": float("nan"), "change": 0.0}
    if sp["second"] is None:
        return out
    lm = torch.as_tensor(log_marginal).detach().to(torch.float64)
    H, W = lm.shape

    def near(p):
        x, y = p
        return lm[max(y - 1, 0):min(y + 2, H), max(x - 1, 0):min(x + 2, W)].max()

    ratio = float(torch.exp(near(sp["second"]) - near(sp["first"])))
    out.update(marginal_ratio=ratio, change=sp["ratio"] - min(ratio, 1.0))
    return out
