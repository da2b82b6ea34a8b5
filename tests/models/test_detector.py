"""The multi-resolution part detector: shapes, the banks' inputs and features, and
that the loss reaches every bank."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lab.config import DetectorConfig
from lab.models.detector import STRIDE, PartDetector


def configs():
    for name, base in (("small", DetectorConfig.small()), ("full", DetectorConfig.full())):
        for banks in (2, 3):
            yield pytest.param(dataclasses.replace(base, banks=banks), id=f"{name}-{banks}banks")


@pytest.mark.parametrize("cfg", list(configs()))
def test_unary_shape(cfg):
    torch.manual_seed(0)
    det = PartDetector(cfg).eval()
    with torch.no_grad():
        u = det(torch.rand(2, 3, 128, 128))
    assert u.shape == (2, 14, 128 // STRIDE, 128 // STRIDE) == (2, 14, 32, 32)
    assert torch.isfinite(u).all()


def test_other_crop_sizes_keep_stride_4():
    det = PartDetector(DetectorConfig.small()).eval()
    with torch.no_grad():
        assert det(torch.rand(1, 3, 64, 64)).shape == (1, 14, 16, 16)
        assert det(torch.rand(1, 3, 192, 192)).shape == (1, 14, 48, 48)


@pytest.mark.parametrize("combine", ["concat", "sum"])
@pytest.mark.parametrize("banks", [2, 3])
def test_inspect_exposes_every_stage(combine, banks):
    cfg = dataclasses.replace(DetectorConfig.small(), banks=banks, combine=combine)
    det = PartDetector(cfg).eval()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        out = det.inspect(x)
        unary = det(x)
    assert set(out) == {"inputs", "banks", "combined", "unary"}
    # bank inputs: full, half, quarter resolution, each an average of the crop
    assert [tuple(i.shape) for i in out["inputs"]] == [(2, 3, 128 // 2 ** i, 128 // 2 ** i)
                                                        for i in range(banks)]
    assert torch.equal(out["inputs"][0], x)
    if banks > 1:
        torch.testing.assert_close(out["inputs"][1], F.avg_pool2d(x, 2))
        torch.testing.assert_close(out["inputs"][1][0, :, 0, 0], x[0, :, :2, :2].mean((-1, -2)))
    if banks > 2:
        torch.testing.assert_close(out["inputs"][2][0, :, 3, 5], x[0, :, 12:16, 20:24].mean((-1, -2)))
    # each bank ends at 1/4 of its own input
    assert [tuple(f.shape) for f in out["banks"]] == [(2, cfg.width, 32 // 2 ** i, 32 // 2 ** i)
                                                       for i in range(banks)]
    width = cfg.width * banks if combine == "concat" else cfg.width
    assert out["combined"].shape == (2, width, 32, 32)
    if combine == "concat":
        torch.testing.assert_close(out["combined"][:, :cfg.width], out["banks"][0])
    torch.testing.assert_close(out["unary"], unary)


@pytest.mark.parametrize("combine", ["concat", "sum"])
@pytest.mark.parametrize("banks", [2, 3])
def test_gradients_reach_every_bank(combine, banks):
    torch.manual_seed(0)
    cfg = dataclasses.replace(DetectorConfig.small(), banks=banks, combine=combine)
    det = PartDetector(cfg).train()
    target = torch.rand(2, 14, 32, 32)
    loss = ((det(torch.rand(2, 3, 128, 128)) - target) ** 2).mean()
    loss.backward()
    assert len(det.banks) == banks
    for i, bank in enumerate(det.banks):
        for name, p in bank.named_parameters():
            assert p.grad is not None, f"bank {i} {name}: no gradient"
            assert p.grad.abs().sum() > 0, f"bank {i} {name}: zero gradient"
    for name, p in det.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name

