"""PoseLab's helpers for looking inside (used by the app's explore pages). They must
show exactly what `predict` computes; nothing here depends on how accurate the
shipped weights are."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.data.cache import MINI_PATH, PoseCache
from lab.data.targets import STRONG_SECOND_PEAK, crop_to_heatmap, peak_competition
from lab.data.transforms import image_box
from lab.infer import PoseLab, peak_report
from lab.joints import K, L_ANKLE, L_WRIST, R_ANKLE, R_WRIST
from lab.models.detector import STRIDE
from lab.models.spatial import displacement_histograms


@pytest.fixture(scope="module")
def lab():
    return PoseLab()


@pytest.fixture(scope="module")
def val():
    return PoseCache(MINI_PATH)["val"]


@pytest.fixture(scope="module")
def pred(lab, val):
    crop = val.images[0]
    return lab.predict(crop, image_box(crop.shape[1], crop.shape[0]))


def test_whole_crop_box_is_the_identity(pred, val):
    np.testing.assert_allclose(pred.affine, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    np.testing.assert_array_equal(pred.crop, val.images[0])
    xy = np.array([[3.0, 4.0], [100.5, 7.25]])
    np.testing.assert_allclose(pred.to_photo(pred.to_crop(xy)), xy, atol=1e-9)


def test_to_crop_and_to_photo_follow_the_affine(lab):
    rgb = np.zeros((90, 200, 3), np.uint8)
    p = lab.predict(rgb, (120.0, 40.0, 64.0))
    # the box centre maps to the crop centre, a box corner to the crop corner
    np.testing.assert_allclose(p.to_crop([120.0, 40.0]), [(lab.size - 1) / 2] * 2, atol=1e-9)
    np.testing.assert_allclose(p.to_photo([-0.5, -0.5]), [120 - 32, 40 - 32], atol=1e-9)
    np.testing.assert_allclose(p.to_photo(p.crop_joints("unary")), p.joints["unary"], atol=1e-6)


def test_inspect_and_crop_heatmaps_match_predict(lab, pred, val):
    ins = lab.inspect(pred.crop)
    torch.testing.assert_close(ins["unary"], pred.unary, rtol=1e-5, atol=1e-6)
    assert len(ins["inputs"]) == len(ins["banks"]) == lab.pose.detector.cfg.banks
    assert ins["inputs"][0].shape == (3, lab.size, lab.size)
    maps = lab.crop_heatmaps(val.images[:3], batch=2)
    assert maps["unary"].shape == (3, K, lab.size // STRIDE, lab.size // STRIDE)
    torch.testing.assert_close(maps["unary"][0], pred.unary, rtol=1e-5, atol=1e-6)
    if pred.log_marginal is not None:
        torch.testing.assert_close(maps["log_marginal"][0], pred.log_marginal, rtol=1e-5, atol=1e-5)


def test_empirical_priors_are_the_training_histograms(lab):
    if lab.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    train = PoseCache(MINI_PATH)["train"]
    cfg = lab.spatial.cfg
    want = displacement_histograms(crop_to_heatmap(torch.from_numpy(train.coords), STRIDE).numpy(),
                                   train.labelled, lab.spatial.edges, cfg.heatmap_size, cfg.hist_blur)
    got = lab.empirical_priors(train.coords, train.labelled, lab.size)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # crops of another size are rescaled to the model's
    half = lab.empirical_priors(train.coords / 2, train.labelled, lab.size // 2)
    np.testing.assert_allclose(half, want, atol=1e-6)


def test_peak_report_matches_the_prediction(pred):
    rows = peak_report(pred)
    assert [r["joint"] for r in rows] == list(range(K))
    for r in rows:
        np.testing.assert_allclose(r["unary"], pred.crop_joints("unary")[r["joint"]])
        assert r["strong"] == (r["second_ratio"] >= STRONG_SECOND_PEAK)
        assert 0.0 <= r["second_ratio"] <= 1.0
        if "spatial" in pred.joints:
            assert r["moved"] == pytest.approx(np.linalg.norm(r["spatial"] - r["unary"]))


def test_find_suppressed_peaks_ranks_real_competitions(lab, val):
    if lab.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    imgs = val.images[:12]
    joints = (R_WRIST, L_WRIST, R_ANKLE, L_ANKLE)
    found = lab.find_suppressed_peaks(imgs, joints, top=4, coords=val.coords[:12],
                                      labelled=val.labelled[:12], min_unary_ratio=0.0)
    assert len(found) <= 4
    assert [f["change"] for f in found] == sorted((f["change"] for f in found), reverse=True)
    maps = lab.crop_heatmaps(imgs)
    for f in found:
        assert f["joint"] in joints and f["change"] > 0
        pc = peak_competition(maps["unary"][f["index"], f["joint"]], maps["log_marginal"][f["index"], f["joint"]])
        assert f["change"] == pytest.approx(pc["change"])
        assert f["unary_ratio"] == pytest.approx(pc["unary_ratio"])
        if "truth" in f:
            np.testing.assert_allclose(f["truth"], val.coords[f["index"], f["joint"]])
            assert f["first_error"] == pytest.approx(np.linalg.norm(f["first"] - f["truth"]))


def test_find_suppressed_peaks_distinct_keeps_one_joint_per_crop(lab, val):
    if lab.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    joints = (R_WRIST, L_WRIST, R_ANKLE, L_ANKLE)
    every = lab.find_suppressed_peaks(val.images[:12], joints, top=99, min_unary_ratio=0.0)
    one = lab.find_suppressed_peaks(val.images[:12], joints, top=99, min_unary_ratio=0.0, distinct=True)
    assert len({f["index"] for f in one}) == len(one) == len({f["index"] for f in every})
    best = {}
    for f in every:                                  # ranked: the first of each crop is its best
        best.setdefault(f["index"], f)
    assert [(f["index"], f["joint"]) for f in one] == [(f["index"], f["joint"]) for f in best.values()]
