"""The ONNX Runtime engine computes what the PyTorch modules compute, on the shipped weights
and a real crop; its export is cached by the weights' bytes; a failure falls back with a
sentence, never an exception."""
import numpy as np
import pytest
import torch
from PIL import Image

from lab.infer import POSE_WEIGHTS, REGRESSOR_WEIGHTS, PoseLab
from lab.models import engine
from lab.resources import SAMPLES

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def models():
    return PoseLab(POSE_WEIGHTS, REGRESSOR_WEIGHTS, engine=False)


@pytest.fixture(scope="module")
def crop(models):
    rgb = np.asarray(Image.open(SAMPLES / "lsp_im1007.jpg").convert("RGB"))
    h, w = rgb.shape[:2]
    return models.tensor(models.crop(rgb, (w / 2, h / 2, max(w, h)))[0])            # (1, 3, S, S)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.parametrize("part", ["detector", "regressor"])
def test_engine_equals_the_pytorch_module(models, crop, cache, part):
    module, weights = (models.pose.detector, POSE_WEIGHTS) if part == "detector" else (models.regressor, REGRESSOR_WEIGHTS)
    run = engine.compile_module(module, weights, models.size, threads=1, cache=cache)
    assert run is not None
    with torch.no_grad():
        want = module(crop)                       # (1, K, H, W) unary or (1, K, 2) normalised joints
    got = run(crop)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    two = run(torch.cat([crop, crop.flip(-1)]))                                      # a batch of two
    torch.testing.assert_close(two[:1], got)
    torch.testing.assert_close(two[1:], run(crop.flip(-1)))


def test_static_pools_keep_the_function(models, crop):
    fixed = engine.static_pools(models.regressor, models.size)
    assert not any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in fixed.modules())
    assert any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in models.regressor.modules())   # a copy
    with torch.no_grad():
        torch.testing.assert_close(fixed(crop), models.regressor(crop))


@pytest.mark.parametrize("h,w,m", [(12, 12, 8), (16, 16, 8), (7, 9, 3)])
def test_bin_pool_is_the_adaptive_pool_for_its_size(h, w, m):
    """Uneven bins (a 192-px crop's 12 x 12 map pooled to 8 x 8 overlap) included."""
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(engine.BinPool(h, w, (m, m))(x), torch.nn.AdaptiveAvgPool2d(m)(x))


def test_the_export_is_cached_by_the_weights_bytes(models, cache):
    engine.compile_module(models.pose.detector, POSE_WEIGHTS, models.size, cache=cache)
    files = sorted(cache.glob("partdetector-*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 1e6
    files[0].write_bytes(b"damaged")                                                 # a damaged file: exported again
    assert engine.compile_module(models.pose.detector, POSE_WEIGHTS, models.size, cache=cache) is not None
    assert files[0].stat().st_size > 1e6


def test_a_failed_export_falls_back_with_a_sentence(models, tmp_path):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cannot trace this")
    said = []
    assert engine.compile_module(Broken(), POSE_WEIGHTS, models.size, cache=tmp_path, log=said.append) is None
    assert len(said) == 1 and "runs in PyTorch" in said[0] and "cannot trace this" in said[0]


def test_predict_with_the_engine_gives_the_same_skeletons(models):
    fast = PoseLab(POSE_WEIGHTS, REGRESSOR_WEIGHTS)
    assert all(e is not None for e in fast.engines)
    rgb = np.asarray(Image.open(SAMPLES / "lsp_im1007.jpg").convert("RGB"))
    for kw in ({}, {"flip": True, "scales": (0.8, 1.0, 1.2)}):
        a, b = fast.predict(rgb, **kw), models.predict(rgb, **kw)
        assert a.joints.keys() == b.joints.keys() == {"unary", "marginal", "regressor"}
        for k in a.joints:
            np.testing.assert_allclose(a.joints[k], b.joints[k], atol=1e-3)
