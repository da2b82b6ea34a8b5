"""The training losses of every stage, from one batch's model outputs.

  detector   loss(unary, targets)
  spatial    loss(marginal, targets) + prior_decay * |priors|^2
  joint      loss(marginal) + unary_weight * loss(unary) + prior_decay * |priors|^2
  regressor  L1 or L2 on normalised coordinates

`step_loss` runs the forward pass and scores it (training); `outputs_loss` scores outputs
that are already computed, so validation gets its loss from the same forward pass that
gives its PCK (`lab.train.loop.validate`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lab.data.codec import HeatmapCodec
from lab.models.regressor import normalise


def heatmap_loss(pred: torch.Tensor, xy: torch.Tensor, lab: torch.Tensor, codec: HeatmapCodec,
                 kind: str) -> torch.Tensor:
    """Mean over labelled joints of the per-map loss; pred (B, K, H, W), xy (B, K, 2) crop px.

    mse:      sum_p (pred(p) - T(p))^2,              T = the Gaussian target (peak 1)
    softmax:  -sum_p T'(p) log softmax_p(pred)(p),    T' = T / sum_p T (sums to 1)

    Both are sums over one map's pixels, so they have similar sizes when the joint stage
    adds a marginal loss of one kind to a unary loss of the other.
    """
    w = lab.float()
    pred = pred.float()
    if kind == "softmax":
        target = codec.encode(xy, lab, normalise=True)
        per_joint = -(target.flatten(2) * F.log_softmax(pred.flatten(2), -1)).sum(-1)   # (B, K)
    else:
        per_joint = ((pred - codec.encode(xy, lab)) ** 2).sum((-1, -2))                  # (B, K)
    return (per_joint * w).sum() / w.sum().clamp_min(1)


def regression_loss(pred: torch.Tensor, xy: torch.Tensor, lab: torch.Tensor, size: int,
                    kind: str) -> torch.Tensor:
    """sum over coordinates of |y_hat - y| (l1) or (y_hat - y)^2 (l2), normalised y, labelled joints."""
    d = pred.float() - normalise(xy, size)
    err = (d.abs() if kind == "l1" else d ** 2).sum(-1)                                  # (B, K)
    return (err * lab).sum() / lab.sum().clamp_min(1)


def step_loss(model, stage: str, x, xy, lab, codec: HeatmapCodec, unary_weight: float,
              marginal_kind: str = "", prior_decay: float = 0.0):
    """The stage's training loss on one batch x (B, 3, S, S): forward, then `outputs_loss`.
    The spatial stage's detector is frozen, so its unary is computed without gradients."""
    if stage == "regressor":
        return regression_loss(model(x), xy, lab, codec.crop_size, model.cfg.loss)
    if stage == "spatial":
        with torch.no_grad():
            unary = model.detector(x)                                   # (B, K, H, W)
        out = model.from_unary(unary.float())
    else:
        out = model(x)
    return outputs_loss(model, stage, out, xy, lab, codec, unary_weight, marginal_kind, prior_decay)


def outputs_loss(model, stage: str, out: dict, xy, lab, codec: HeatmapCodec, unary_weight: float,
                 marginal_kind: str = "", prior_decay: float = 0.0):
    """The stage's loss from a pose model's outputs {"unary", "log_marginal", "marginal"}.
    The marginal is scored as logits (its log) by the softmax loss and as a heatmap (exp of
    its log) by MSE, as the paper did."""
    kind = model.detector.cfg.loss
    if stage == "detector":
        return heatmap_loss(out["unary"], xy, lab, codec, kind)
    marginal_kind = marginal_kind or kind
    pred = out["log_marginal"] if marginal_kind == "softmax" else out["marginal"]
    loss = heatmap_loss(pred, xy, lab, codec, marginal_kind)
    if prior_decay and model.spatial is not None:
        loss = loss + prior_decay * model.spatial.prior_penalty()
    if stage == "joint":
        loss = loss + unary_weight * heatmap_loss(out["unary"], xy, lab, codec, kind)
    return loss
