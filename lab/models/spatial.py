"""The spatial model (paper section 3.2): one round of message passing in log space.

    marginal_A = exp( sum_{v in N(A)} log( SoftPlus(W_{A|v}) * ReLU(unary_v) + SoftPlus(b_{v->A}) ) )

`*` is a 2-D convolution whose kernel (2H - 1 wide) covers every displacement
between two heatmap pixels; N(A) holds A's neighbours in the graph, the self
edge A|A included. SoftPlus(W_{A|v}) is the *prior* p(A | v): entry
[dy + H - 1, dx + H - 1] weighs "A sits (dx, dy) from v". Each term of the sum
is the log of a *message* from v to A.

With a detector trained by softmax cross-entropy (`SpatialConfig.belief = "softmax"`)
the unary is a map of logits, and a message convolves the distribution it
stands for, softmax_pixels(unary_v), instead of ReLU(unary_v). The marginal is
then trained the same way: its log, sum_v log message_{v->A}, is read as logits.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lab.config import SpatialConfig
from lab.models import graph
from lab.models.detector import belief


def softplus_inv(y):
    y = torch.as_tensor(y, dtype=torch.float32)
    return y + torch.log(-torch.expm1(-y))


# ------------------------------------------------------------------ convolution
def convolve_direct(u: torch.Tensor, kernels: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
    """True 2-D convolution, same size: u (B, E, H, W), kernels (E, k, k) -> (B, E, H, W).
    With `source` (E,), u holds one map per joint (B, K, H, W) and edge e convolves u[:, source[e]]."""
    if source is not None:
        u = u[:, source]
    k = kernels.shape[-1]
    w = kernels.flip(-1, -2)[:, None]                        # conv2d correlates: flip for convolution
    return F.conv2d(u, w, padding=(k - 1) // 2, groups=kernels.shape[0])


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes FFTs like)."""
    best = 1 << (n - 1).bit_length()
    for a in range(0, best.bit_length()):
        for b in range(0, 8):
            for c in range(0, 6):
                m = (2 ** a) * (3 ** b) * (5 ** c)
                if n <= m < best:
                    best = m
    return best


def fft_len(n: int, k: int) -> int:
    """The smallest fast FFT length whose circular convolution of a length-n signal with a
    length-k kernel is exact on the 'same' window [c, c + n), c = (k - 1) // 2.

    The circular result at i sums the linear one at i + t*len for every integer t; the linear
    one lives on [0, n + k - 1). Inside the window no alias lands there when
    len >= n + k - 1 - c (t = 1) and len >= c + n (t = -1): about n + k/2, not n + k - 1,
    so a 48-pixel map with 95-pixel kernels needs 96 points, not 144."""
    c = (k - 1) // 2
    return _fast_len(max(n + k - 1 - c, n + c))


def convolve_fft(u: torch.Tensor, kernels: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
    """Same result as `convolve_direct`, computed as a product of 2-D FFTs.

    Zero-padding both to `fft_len` makes the circular convolution equal the linear one on
    the 'same' window, which starts at the kernel's centre, (k - 1) / 2. With `source`, each
    joint's map is transformed once and shared by every edge that leaves it.
    """
    H, W = u.shape[-2:]
    k = kernels.shape[-1]
    return convolve_spectrum(u, kernel_spectrum(kernels, H, W), k, source)


def kernel_spectrum(kernels: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """rfft2 of kernels (E, k, k), zero-padded for H x W maps: (E, nh, nw/2+1) complex."""
    k = kernels.shape[-1]
    return torch.fft.rfft2(kernels, s=(fft_len(H, k), fft_len(W, k)))


def convolve_spectrum(u: torch.Tensor, Kf: torch.Tensor, k: int, source: torch.Tensor | None = None) -> torch.Tensor:
    """`convolve_fft` with the kernels' spectrum Kf (`kernel_spectrum`) given."""
    H, W = u.shape[-2:]
    nh, nw = fft_len(H, k), fft_len(W, k)
    U = torch.fft.rfft2(u, s=(nh, nw))                        # (B, K or E, nh, nw/2+1)
    if source is not None:
        U = U[:, source]                                      # (B, E, nh, nw/2+1)
    full = torch.fft.irfft2(U * Kf, s=(nh, nw))               # (B, E, nh, nw)
    c = (k - 1) // 2
    return full[..., c:c + H, c:c + W]


def displacement_histograms(xy: np.ndarray, labelled: np.ndarray, edge_list, size: int,
                            blur: float = 1.0) -> np.ndarray:
    """Empirical p(A | v) per edge: histogram of x_A - x_v in heatmap pixels.

    xy (N, K, 2) heatmap pixels; labelled (N, K) -> (E, 2*size - 1, 2*size - 1), each
    scaled to a peak of 1. The histograms between two joints are Gaussian-blurred by `blur`
    pixels (annotation noise, and the few thousand examples a 63 x 63 histogram gets); a
    self edge's displacement is always exactly 0, so its histogram stays a single bin.
    """
    k = 2 * size - 1
    c = size - 1
    out = np.zeros((len(edge_list), k, k), np.float64)
    for e, (a, v) in enumerate(edge_list):
        ok = labelled[:, a] & labelled[:, v]
        d = np.rint(xy[ok, a] - xy[ok, v]).astype(int) + c   # (n, 2) as (x, y) bin
        d = d[((d >= 0) & (d < k)).all(1)]
        np.add.at(out[e], (d[:, 1], d[:, 0]), 1.0)
    pairs = [e for e, (a, v) in enumerate(edge_list) if a != v]
    if blur > 0 and pairs:
        r = np.arange(-3 * math.ceil(blur), 3 * math.ceil(blur) + 1)
        g = np.exp(-r ** 2 / (2 * blur ** 2))
        g /= g.sum()
        r = len(g) // 2     # "full" then the centre: mode="same" returns len(g) values when g is longer
        sub = np.apply_along_axis(lambda m: np.convolve(m, g, mode="full")[r:r + k], 1, out[pairs])
        out[pairs] = np.apply_along_axis(lambda m: np.convolve(m, g, mode="full")[r:r + k], 2, sub)
    peak = out.reshape(len(edge_list), -1).max(1)
    return (out / np.maximum(peak, 1e-12)[:, None, None]).astype(np.float32)


# ------------------------------------------------------------------ the model
class SpatialModel(nn.Module):
    """Unary heatmaps (B, K, H, W) -> marginals (B, K, H, W)."""

    def __init__(self, cfg: SpatialConfig):
        super().__init__()
        self.cfg = cfg
        self.edges = graph.edges(cfg.graph, cfg.joints)
        E, k = len(self.edges), cfg.kernel_size
        self.register_buffer("target", torch.tensor([a for a, _ in self.edges]))   # (E,) A
        self.register_buffer("source", torch.tensor([v for _, v in self.edges]))   # (E,) v
        # W_{A|v}: a delta at zero displacement until histograms are loaded.
        init = torch.full((E, k, k), 1e-4)
        init[:, k // 2, k // 2] = 1.0
        self.prior_logit = nn.Parameter(softplus_inv(init))                        # (E, k, k)
        bias = torch.tensor([cfg.self_bias if a == v else cfg.bias_init for a, v in self.edges])
        self.bias_logit = nn.Parameter(softplus_inv(bias))                         # (E,)
        # The displacement histograms the priors started from (peak 1), kept for comparison.
        self.register_buffer("histogram", init.clone())                           # (E, k, k)
        self._spectrum = None                       # (key, spectrum) of `prior_spectrum`, not saved

    # -- the pieces of the equation
    def prior(self) -> torch.Tensor:
        """SoftPlus(W_{A|v}) for every edge: (E, k, k), indexed by displacement A - v."""
        return F.softplus(self.prior_logit)

    def bias(self) -> torch.Tensor:
        """SoftPlus(b_{v->A}): (E,)."""
        return F.softplus(self.bias_logit)

    def edge_index(self, a: int, v: int) -> int:
        return self.edges.index((a, v))

    def use_fft(self) -> bool:
        mode = self.cfg.use_fft
        return mode == "fft" or (mode == "auto" and self.cfg.kernel_size >= 15)

    def belief(self, unary: torch.Tensor) -> torch.Tensor:
        """What a message convolves: ReLU(unary) (paper) or softmax over each map's pixels."""
        return belief(unary, self.cfg.belief)

    def messages(self, unary: torch.Tensor, edge_ids=None) -> torch.Tensor:
        """message_{v->A} = SoftPlus(W_{A|v}) * belief(unary_v) + SoftPlus(b_{v->A}).

        unary (B, K, H, W) -> (B, E, H, W), or only the edges in `edge_ids`. The
        convolution is clamped at zero before the bias: FFT round-off can dip below it.
        """
        ids = torch.arange(len(self.edges), device=unary.device) if edge_ids is None else \
            torch.as_tensor(edge_ids, device=unary.device)
        b = self.belief(unary)                                                     # (B, K, H, W)
        if self.use_fft():
            Kf = self.prior_spectrum(*unary.shape[-2:])[ids]
            m = convolve_spectrum(b, Kf, self.cfg.kernel_size, self.source[ids])     # (B, E', H, W)
        else:
            m = convolve_direct(b, self.prior()[ids], self.source[ids])
        return m.clamp_min(0) + self.bias()[ids][None, :, None, None]

    def prior_spectrum(self, H: int, W: int) -> torch.Tensor:
        """`kernel_spectrum` of every edge's SoftPlus(W_{A|v}) for H x W maps. When no gradient
        flows to the priors (inference, validation) it is computed once per version of the
        weights and reused: SoftPlus and the kernels' FFTs are about two thirds of the spatial
        model's time for one crop."""
        if torch.is_grad_enabled() and self.prior_logit.requires_grad:
            return kernel_spectrum(self.prior(), H, W)
        w = self.prior_logit
        key = (H, W, w._version, w.data_ptr(), w.device, w.dtype)
        cached = self._spectrum
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, kernel_spectrum(self.prior(), H, W))
            self._spectrum = cached                                  # one tuple: safe across threads
        return cached[1]

    def log_marginal(self, unary: torch.Tensor) -> torch.Tensor:
        """sum_v log message_{v->A}: (B, K, H, W)."""
        logm = torch.log(self.messages(unary))                                     # (B, E, H, W)
        out = logm.new_zeros(unary.shape)
        return out.index_add(1, self.target, logm)

    def edge_mask(self, drop=()) -> torch.Tensor:
        """(E,) bool: True for every edge except the directed edges (A, v) in `drop`."""
        gone = {tuple(int(t) for t in e) for e in drop}
        return torch.tensor([e not in gone for e in self.edges], device=self.target.device)

    def log_marginal_masked(self, unary: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """sum over kept edges of log message_{v->A}: (B, K, H, W); mask (E,) bool, False drops
        that message (the edge on/off of the app). A joint with every edge dropped gets 0."""
        ids = torch.nonzero(torch.as_tensor(mask, device=unary.device)).flatten()  # (E',)
        out = unary.new_zeros(unary.shape, dtype=torch.float32 if unary.dtype not in
                              (torch.float32, torch.float64) else unary.dtype)
        if len(ids) == 0:
            return out
        logm = torch.log(self.messages(unary, ids))                                 # (B, E', H, W)
        return out.to(logm.dtype).index_add(1, self.target[ids], logm)

    def forward(self, unary: torch.Tensor) -> torch.Tensor:
        """marginal_A = exp(sum_v log message_{v->A}): (B, K, H, W)."""
        return torch.exp(self.log_marginal(unary))

    @torch.no_grad()
    def step_through(self, unary: torch.Tensor, a: int) -> list[dict]:
        """One inference for joint A, one neighbour at a time (for the app).

        unary (1, K, H, W). Each step holds (H, W) maps: the neighbour's unary,
        its message, the running log-sum and the marginal so far.
        """
        vs = graph.neighbours(self.edges, a)
        ids = [self.edge_index(a, v) for v in vs]
        msgs = self.messages(unary, ids)[0]                                       # (n, H, W)
        steps, running = [], torch.zeros_like(unary[0, a])
        for i, v in enumerate(vs):
            running = running + torch.log(msgs[i])
            steps.append({"v": v, "edge": ids[i], "unary_v": unary[0, v], "message": msgs[i],
                          "log_sum": running.clone(), "marginal": torch.exp(running)})
        return steps

    def prior_penalty(self) -> torch.Tensor:
        """sum over edges and displacements of (W_{A|v} - W_hist)^2 / E: how far the priors'
        logits moved from the histograms they started from (a Gaussian prior on W centred on
        the histogram: displacements the data says nothing about stay where they were)."""
        return (self.prior_logit - softplus_inv(self.histogram)).pow(2).sum() / len(self.edges)

    @torch.no_grad()
    def load_histograms(self, hist: np.ndarray) -> None:
        """Initialise W from empirical displacement histograms (E, k, k) with peak 1."""
        h = torch.as_tensor(hist, dtype=torch.float32).clamp_min(1e-4)
        self.prior_logit.copy_(softplus_inv(h))
        self.histogram.copy_(h)

    # -- for looking inside (the app)
    def offsets(self) -> np.ndarray:
        """Displacement (heatmap px) of each kernel row/column: -(H-1) .. H-1."""
        c = self.cfg.kernel_size // 2
        return np.arange(-c, c + 1)

    @torch.no_grad()
    def kernel(self, a: int, v: int, peak_one: bool = False) -> np.ndarray:
        """p(A | v) = SoftPlus(W_{A|v}) as a (k, k) float array, [dy + H - 1, dx + H - 1] = "A at
        v + (dx, dy)". Raises ValueError if (A, v) is not an edge of the graph. With
        `peak_one`, scaled to a maximum of 1 (the scale of the histograms it started from)."""
        k = self.prior()[self.edge_index(a, v)].detach().cpu().double().numpy()
        return k / k.max() if peak_one else k

    @torch.no_grad()
    def prior_at(self, a: int, v: int, xy, size: int | None = None) -> np.ndarray:
        """Where the prior expects A when v sits at heatmap pixel xy = (x, y): (size, size).

        out[y, x] = p(A | v)[y - y_v + H - 1, x - x_v + H - 1], the kernel centred on
        v and cut to the heatmap grid; xy is rounded to the nearest pixel. This is
        the message v sends A when v's unary is a single 1 at xy (minus the bias).
        """
        size = size or self.cfg.heatmap_size
        c = self.cfg.kernel_size // 2
        k = self.kernel(a, v)
        px, py = (int(round(float(t))) for t in xy)
        out = np.zeros((size, size))
        ys, xs = np.arange(size)[:, None] - py + c, np.arange(size)[None, :] - px + c
        ok = (ys >= 0) & (ys < k.shape[0]) & (xs >= 0) & (xs < k.shape[1])
        out[ok] = k[np.broadcast_to(ys, ok.shape)[ok], np.broadcast_to(xs, ok.shape)[ok]]
        return out


def mode(kernel: np.ndarray) -> tuple[int, int]:
    """(dx, dy) of a kernel's largest entry, in heatmap px from zero displacement."""
    k = np.asarray(kernel)
    y, x = np.unravel_index(int(np.argmax(k)), k.shape)
    c = k.shape[-1] // 2
    return int(x - c), int(y - c)


@torch.no_grad()
def prior_drift(model: SpatialModel) -> list[dict]:
    """For every limb edge (A != v): where its histogram and its learned prior put A relative
    to v (their modes), and how far training moved that mode, in heatmap px.
    Each row: {"a", "v", "histogram_mode", "learned_mode", "shift", "same_side"}; same_side
    is False when the learned mode lies on the other side of v along the histogram's
    dominant axis (the "flip" that would turn a knee-above-ankle prior upside down)."""
    rows = []
    for e, (a, v) in enumerate(model.edges):
        if a == v:
            continue
        hm = mode(model.histogram[e].cpu().numpy())
        lm = mode(model.prior()[e].cpu().numpy())
        axis = int(abs(hm[1]) >= abs(hm[0]))                 # 1: mostly vertical limb
        same = np.sign(lm[axis]) == np.sign(hm[axis]) or hm[axis] == 0
        rows.append({"a": a, "v": v, "histogram_mode": hm, "learned_mode": lm,
                     "shift": float(np.hypot(lm[0] - hm[0], lm[1] - hm[1])), "same_side": bool(same)})
    return rows


def compare_with_histogram(learned: np.ndarray, hist: np.ndarray) -> dict:
    """A learned kernel beside the histogram it started from, both scaled to a peak of 1.

    Returns {"learned", "histogram", "difference" (learned - histogram)}: (k, k) each.
    Training may change a kernel's overall scale (the bias and the other messages
    absorb it), so only shapes are compared.
    """
    lk = np.asarray(learned, np.float64)
    hk = np.asarray(hist, np.float64)
    lk = lk / max(lk.max(), 1e-12)
    hk = hk / max(hk.max(), 1e-12)
    return {"learned": lk, "histogram": hk, "difference": lk - hk}
