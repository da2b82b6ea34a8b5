"""PoseLab's helpers for looking inside (used by the app's explore pages), on both shipped
detectors. They must show exactly what `predict` computes; nothing here depends on how
accurate the shipped weights are."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.data.transforms import image_box
from lab.infer import POSE_WEIGHTS, SCRATCH_WEIGHTS, PoseLab
from lab.joints import K


@pytest.fixture(scope="module", params=[POSE_WEIGHTS, SCRATCH_WEIGHTS], ids=["imagenet", "scratch"])
def models(request):
    """Both shipped detectors: the one on ImageNet features and the paper's from-scratch one."""
    if not request.param.is_file():
        pytest.skip(f"no {request.param.name} here")
    return PoseLab(request.param, None)


@pytest.fixture(scope="module")
def val(mini):
    return mini["val"]


@pytest.fixture(scope="module")
def crops(models, val) -> np.ndarray:
    """Three validation crops at the model's crop size: the bundled set's 128-px crops framed
    whole, as `predict` resamples them for a model of larger crops. (3, S, S, 3)"""
    return np.stack([models.predict(im, image_box(im.shape[1], im.shape[0])).crop for im in val.images[:3]])


@pytest.fixture(scope="module")
def pred(models, crops):
    return models.predict(crops[0], image_box(crops.shape[2], crops.shape[1]))


def test_whole_crop_box_is_the_identity(pred, crops):
    np.testing.assert_allclose(pred.affine, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    np.testing.assert_array_equal(pred.crop, crops[0])
    xy = np.array([[3.0, 4.0], [100.5, 7.25]])
    np.testing.assert_allclose(pred.to_photo(pred.to_crop(xy)), xy, atol=1e-9)


def test_to_crop_and_to_photo_follow_the_affine(models):
    rgb = np.zeros((90, 200, 3), np.uint8)
    p = models.predict(rgb, (120.0, 40.0, 64.0))
    # the box centre maps to the crop centre, a box corner to the crop corner
    np.testing.assert_allclose(p.to_crop([120.0, 40.0]), [(models.size - 1) / 2] * 2, atol=1e-9)
    np.testing.assert_allclose(p.to_photo([-0.5, -0.5]), [120 - 32, 40 - 32], atol=1e-9)
    np.testing.assert_allclose(p.to_photo(p.crop_joints("unary")), p.joints["unary"], atol=1e-6)


def test_inspect_and_crop_heatmaps_match_predict(models, pred, crops):
    ins = models.inspect(pred.crop)
    # predict's unary comes from ONNX Runtime (lab.models.engine), inspect's from PyTorch: the
    # same function to float round-off
    torch.testing.assert_close(ins["unary"], pred.unary, rtol=1e-4, atol=2e-4)
    assert len(ins["inputs"]) == len(ins["banks"]) == models.pose.detector.cfg.banks
    assert ins["inputs"][0].shape == (3, models.size, models.size)
    n = models.codec.heatmap_size
    maps = models.crop_heatmaps(crops, batch=2)
    assert maps["unary"].shape == (3, K, n, n)
    assert models.codec.crop_size == models.size
    torch.testing.assert_close(maps["unary"][0], pred.unary, rtol=1e-4, atol=2e-4)
    if pred.log_marginal is not None:
        torch.testing.assert_close(maps["log_marginal"][0], pred.log_marginal, rtol=1e-4, atol=2e-4)


def test_belief_is_what_the_spatial_model_convolves(models, pred):
    """What the app draws as the unary heatmap is what a message convolves."""
    b = models.belief(pred.unary)
    assert (b >= 0).all()
    if models.spatial is not None:
        torch.testing.assert_close(b, models.spatial.belief(pred.unary[None])[0])
    if models.unary_is_log:         # a softmax-trained unary: each map a distribution over pixels
        torch.testing.assert_close(b.flatten(1).sum(1), torch.ones(K), rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(b, pred.unary.clamp_min(0))


def test_codec_maps_heatmap_peaks_to_the_predicted_joints(models, pred):
    xy, _ = models.codec.decode(pred.unary[None], log_space=models.unary_is_log)
    np.testing.assert_allclose(models.codec.to_photo(xy[0], pred.affine), pred.joints["unary"], atol=1e-4)
    np.testing.assert_allclose(models.codec.to_crop(xy[0]).numpy(), pred.crop_joints("unary"), atol=1e-4)
