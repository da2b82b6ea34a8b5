"""The paper's full model: part detector, then (optionally) the spatial model."""
from __future__ import annotations

import torch
import torch.nn as nn

from lab.config import DetectorConfig, SpatialConfig
from lab.models.detector import PartDetector
from lab.models.spatial import SpatialModel


class PoseNet(nn.Module):
    """Crop (B, 3, S, S) -> {"unary": (B, K, H, W), "log_marginal", "marginal"}."""

    def __init__(self, detector: DetectorConfig, spatial: SpatialConfig | None = None):
        super().__init__()
        self.detector = PartDetector(detector)
        self.spatial = SpatialModel(spatial) if spatial is not None else None

    @property
    def unary_is_log(self) -> bool:
        """A softmax-trained unary holds logits (log-values); an MSE-trained one, heatmap values."""
        return self.detector.cfg.loss == "softmax"

    def from_unary(self, unary: torch.Tensor) -> dict:
        """{"unary"} plus, with a spatial model, its "log_marginal" and "marginal" (B, K, H, W)."""
        out = {"unary": unary}
        if self.spatial is not None:
            out["log_marginal"] = self.spatial.log_marginal(unary)
            out["marginal"] = torch.exp(out["log_marginal"])
        return out

    def forward(self, x: torch.Tensor) -> dict:
        return self.from_unary(self.detector(x))
