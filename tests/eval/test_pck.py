"""lab.eval.pck: PCK@alpha with the torso (left shoulder - right hip) as the scale."""
from __future__ import annotations

import numpy as np
import pytest

from lab.eval.pck import ALPHAS, normalised_errors, pck, pck_curve
from lab.joints import GROUPS, L_SHOULDER, R_HIP, TORSO

K = 14


def two_images():
    """Image 0: torso 50 px (threshold 10). Image 1: torso 20 px (threshold 4)."""
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 200, (2, K, 2)).astype(float)
    gt[0, L_SHOULDER], gt[0, R_HIP] = (0, 0), (30, 40)           # |(30, 40)| = 50
    gt[1, L_SHOULDER], gt[1, R_HIP] = (100, 100), (100, 120)     # 20
    pred = gt.copy()
    pred[0, 0] += (9.9, 0)            # hit   (9.9 <= 10)
    pred[0, 1] += (0, 10.1)           # miss
    pred[0, 5] += (6, 8)              # exactly 10: hit (at most)
    pred[1, 0] += (0, -3.9)           # hit   (3.9 <= 4)
    pred[1, 6] += (4.1, 0)            # miss
    pred[1, 13] += (3, 4)             # 5 > 4: miss
    pred[0, 13] += (-6, -7)           # 9.2 <= 10: hit
    return pred, gt, np.ones((2, K), bool)


EXPECTED = np.ones(K)
EXPECTED[[1, 6, 13]] = 0.5


def test_ground_truth_scores_one(lspet, lsp):
    for recs in (lsp[1000:1100], lspet[:300]):
        gt = np.stack([r.coords for r in recs])
        lab = np.stack([r.labelled for r in recs])
        r = pck(gt, gt, lab)
        assert r["mean"] == 1.0
        assert (r["per_joint"] == 1.0).all()
        assert all(v == 1.0 for v in r["groups"].values())


def test_hand_computed_value():
    pred, gt, lab = two_images()
    r = pck(pred, gt, lab)
    np.testing.assert_array_equal(r["per_joint"], EXPECTED)
    assert r["mean"] == pytest.approx(12.5 / 14)
    np.testing.assert_array_equal(r["counted"], np.full(K, 2))
    assert r["groups"] == pytest.approx({"head": 0.75, "shoulder": 1.0, "elbow": 1.0, "wrist": 0.75,
                                         "hip": 1.0, "knee": 0.75, "ankle": 1.0})
    err = normalised_errors(pred, gt, lab)
    assert err[0, 0] == pytest.approx(9.9 / 50) and err[1, 6] == pytest.approx(4.1 / 20)
    assert err[0, 5] == 0.2


def test_alpha_changes_the_threshold():
    pred, gt, lab = two_images()
    # At alpha 0.1 (5 px and 2 px) image 0 joints 0, 1, 5, 13 and image 1 joints 0, 6, 13 miss.
    r = pck(pred, gt, lab, alpha=0.1)
    want = np.ones(K)
    want[[0, 13]] = 0.0
    want[[1, 5, 6]] = 0.5
    np.testing.assert_array_equal(r["per_joint"], want)
    assert pck(pred, gt, lab, alpha=1.0)["mean"] == 1.0


def test_unlabelled_joints_do_not_count():
    pred, gt, lab = two_images()
    lab[0, 1] = False                                   # image 0's missed knee is not labelled
    base = pck(pred, gt, lab)
    assert base["counted"][1] == 1 and base["per_joint"][1] == 1.0
    pred2 = pred.copy()
    pred2[0, 1] = (1e6, -1e6)                           # any prediction for it changes nothing
    gt2 = gt.copy()
    gt2[0, 1] = (0, 0)                                  # nor does its junk ground truth
    r = pck(pred2, gt2, lab)
    np.testing.assert_array_equal(r["per_joint"], base["per_joint"])
    np.testing.assert_array_equal(r["counted"], base["counted"])
    assert np.isnan(normalised_errors(pred2, gt2, lab)[0, 1])


def test_joint_never_labelled_is_nan_and_left_out_of_means():
    pred, gt, lab = two_images()
    lab[:, 4] = False                                    # left knee nowhere labelled
    r = pck(pred, gt, lab)
    assert r["counted"][4] == 0 and np.isnan(r["per_joint"][4])
    assert r["mean"] == pytest.approx(np.mean(np.delete(EXPECTED, 4)))
    assert r["groups"]["knee"] == 0.5                    # right knee alone


@pytest.mark.parametrize("drop", [L_SHOULDER, R_HIP])
def test_images_without_a_labelled_torso_are_excluded(drop):
    pred, gt, lab = two_images()
    base = pck(pred, gt, lab)
    rng = np.random.default_rng(1)
    gt3 = np.concatenate([gt, rng.uniform(0, 200, (1, K, 2))])
    pred3 = np.concatenate([pred, rng.uniform(0, 200, (1, K, 2))])  # all wrong
    lab3 = np.concatenate([lab, np.ones((1, K), bool)])
    lab3[2, drop] = False
    r = pck(pred3, gt3, lab3)
    np.testing.assert_array_equal(r["per_joint"], base["per_joint"])
    np.testing.assert_array_equal(r["counted"], base["counted"])
    assert np.isnan(normalised_errors(pred3, gt3, lab3)[2]).all()


def test_zero_torso_is_excluded():
    pred, gt, lab = two_images()
    gt3 = np.concatenate([gt, gt[:1]])
    gt3[2, R_HIP] = gt3[2, L_SHOULDER]
    pred3 = np.concatenate([pred, gt3[2:] + 50])
    r = pck(pred3, gt3, np.ones((3, K), bool))
    np.testing.assert_array_equal(r["counted"], np.full(K, 2))
    np.testing.assert_array_equal(r["per_joint"], EXPECTED)


def test_groups_average_left_and_right():
    rng = np.random.default_rng(2)
    gt = rng.uniform(0, 200, (40, K, 2))
    pred = gt + rng.normal(0, 12, gt.shape)
    r = pck(pred, gt, np.ones((40, K), bool))
    assert set(r["groups"]) == {"head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"}
    for name, (a, b) in GROUPS.items():
        assert r["groups"][name] == pytest.approx((r["per_joint"][a] + r["per_joint"][b]) / 2)
    assert GROUPS["hip"] == (2, 3) and GROUPS["ankle"] == (0, 5) and GROUPS["wrist"] == (6, 11)
    assert TORSO == (L_SHOULDER, R_HIP) == (9, 2)


def test_shift_by_a_fraction_of_each_real_torso(lsp):
    recs = lsp[1000:1200]
    gt = np.stack([r.coords for r in recs]).astype(float)
    lab = np.ones((len(recs), K), bool)
    torso = np.linalg.norm(gt[:, 9] - gt[:, 2], axis=-1)
    direction = np.array([0.6, -0.8])
    inside = gt + (0.199 * torso)[:, None, None] * direction
    outside = gt + (0.201 * torso)[:, None, None] * direction
    assert pck(inside, gt, lab)["mean"] == 1.0
    assert pck(outside, gt, lab)["mean"] == 0.0
    assert pck(outside, gt, lab, alpha=0.21)["mean"] == 1.0


def test_curve_is_monotone_reaches_0_5_and_holds_pck_at_0_2():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 200, (50, K, 2))
    gt[:, R_HIP] = gt[:, L_SHOULDER] + rng.uniform(30, 60, (50, 2))
    pred = gt + rng.normal(0, 6, gt.shape)
    lab = rng.random((50, K)) < 0.9
    lab[:, [2, 9]] = True
    c = pck_curve(pred, gt, lab)
    assert c["alpha"][0] == 0.0 and c["alpha"][-1] == 0.5 and len(c["alpha"]) == len(ALPHAS) == 51
    assert np.all(np.diff(c["alpha"]) > 0)
    mean = np.array(c["mean"])
    assert np.all(np.diff(mean) >= 0)
    assert mean[0] < 0.01                                     # nothing is exactly right
    assert mean[-1] > 0.5
    at02 = c["alpha"].index(0.2)
    assert mean[at02] == pck(pred, gt, lab, 0.2)["mean"]
    assert mean[-1] == pck(pred, gt, lab, 0.5)["mean"]
    pj = np.array(c["per_joint"])
    assert pj.shape == (51, K) and np.all(np.diff(pj, axis=0) >= 0)
    np.testing.assert_array_equal(pj[at02], pck(pred, gt, lab)["per_joint"])


def test_curve_on_ground_truth_is_one_everywhere():
    pred, gt, lab = two_images()
    c = pck_curve(gt, gt, lab, alphas=[0.0, 0.1, 0.2])
    assert c["mean"] == [1.0, 1.0, 1.0]
