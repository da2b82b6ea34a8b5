"""The DeepPose-style regressor: output shape, the normalised coordinates, and that it
runs the detector's own banks (same features, another head)."""
import pytest
import torch

from lab.config import DetectorConfig, RegressorConfig
from lab.models.detector import Banks, PartDetector
from lab.models.regressor import Regressor, denormalise, normalise


@pytest.mark.parametrize("cfg", [RegressorConfig.small(), RegressorConfig.pretrained(),
                                 RegressorConfig(features=DetectorConfig.scratch())],
                         ids=["small", "pretrained", "scratch"])
def test_output_shape_and_start_at_the_centre(cfg):
    torch.manual_seed(0)
    m = Regressor(cfg).eval()
    with torch.no_grad():
        y = m(torch.rand(3, 3, 128, 128))
    assert y.shape == (3, 14, 2)
    assert torch.equal(y, torch.zeros_like(y))        # last layer zero-initialised: the crop's centre


def test_same_features_as_the_detector():
    cfg = RegressorConfig.small()
    reg, det = Regressor(cfg).eval(), PartDetector(cfg.features).eval()
    assert isinstance(reg.features, Banks)
    reg.features.load_state_dict(det.features.state_dict())
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(reg.features(x)["combined"], det.inspect(x)["combined"])


def test_train_mode_and_backward():
    m = Regressor(RegressorConfig.small()).train()
    y = m(torch.rand(2, 3, 128, 128))
    (y - 0.1).square().sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_normalise_denormalise_are_inverse():
    xy = torch.rand(4, 14, 2, dtype=torch.float64) * 140 - 6
    for size in (128, 96):
        torch.testing.assert_close(denormalise(normalise(xy, size), size), xy)
        torch.testing.assert_close(normalise(denormalise(xy / 200, size), size), xy / 200)
    # the crop spans [-0.5, 0.5]; its centre is 0
    assert normalise(torch.tensor([0.0, 128.0, 64.0]), 128).tolist() == [-0.5, 0.5, 0.0]
