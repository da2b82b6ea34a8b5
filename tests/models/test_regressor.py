"""The DeepPose-style regressor: output shape and the normalised coordinates."""
import pytest
import torch

from lab.config import RegressorConfig
from lab.models.regressor import Regressor, denormalise, normalise


@pytest.mark.parametrize("cfg", [RegressorConfig.small(), RegressorConfig.full(), RegressorConfig()],
                         ids=["small", "full", "default"])
def test_output_shape(cfg):
    torch.manual_seed(0)
    m = Regressor(cfg).eval()
    with torch.no_grad():
        y = m(torch.rand(3, 3, 128, 128))
    assert y.shape == (3, 14, 2)
    assert torch.isfinite(y).all()


def test_train_mode_and_backward():
    m = Regressor(RegressorConfig.small()).train()
    y = m(torch.rand(2, 3, 128, 128))
    y.square().sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_normalise_denormalise_are_inverse():
    xy = torch.rand(4, 14, 2, dtype=torch.float64) * 140 - 6
    for size in (128, 96):
        torch.testing.assert_close(denormalise(normalise(xy, size), size), xy)
        torch.testing.assert_close(normalise(denormalise(xy / 200, size), size), xy / 200)
    # the crop spans [-0.5, 0.5]; its centre is 0
    assert normalise(torch.tensor([0.0, 128.0, 64.0]), 128).tolist() == [-0.5, 0.5, 0.0]
