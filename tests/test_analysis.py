"""lab.analysis: the judgements the app's pages state in words (second peaks, the peak
contest, the per-joint report, examples where the spatial model fixes a joint, what training
did to a prior, what a detector's unary means). Synthetic maps whose answers are known, plus
the shipped model for the report helpers, which must agree with `PoseLab.predict` whatever
its accuracy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lab import analysis
from lab.analysis import STRONG_SECOND_PEAK, peak_competition, second_peak
from lab.config import DetectorConfig, SpatialConfig
from lab.data.codec import gaussian_targets
from lab.data.transforms import image_box
from lab.infer import PoseLab
from lab.joints import FLIP_PAIRS, FLIP_PERM, L_HIP, L_SHOULDER, NAMES, R_ANKLE, R_HIP, R_KNEE, R_SHOULDER, K
from lab.models.spatial import SpatialModel, softplus_inv
from lab.names import CONFIDENCE_HELP


def two_bumps(p1, p2, h2, size=16, sigma=1.0):
    xy = torch.tensor([[p1, p2]], dtype=torch.float64)
    g = gaussian_targets(xy, torch.ones(1, 2, dtype=torch.bool), size, sigma)[0]
    return g[0] + h2 * g[1]


# ------------------------------------------------------------------ peaks (synthetic)
def test_second_peak_finds_both_bumps_and_their_ratio():
    h = two_bumps((3, 4), (11, 12), 0.6)
    sp = second_peak(h)
    assert sp["first"] == (3, 4) and sp["second"] == (11, 12)
    assert sp["ratio"] == pytest.approx(0.6, abs=1e-6)
    assert sp["ratio"] >= STRONG_SECOND_PEAK
    assert second_peak(h.numpy())["second"] == (11, 12)          # numpy in, same answer


def test_shoulders_of_the_first_peak_are_not_a_second_peak():
    h = two_bumps((8, 8), (8, 8), 0.0, sigma=2.0)        # one wide bump
    sp = second_peak(h, min_distance=2)
    assert sp["second"] is None and sp["ratio"] == 0.0
    assert second_peak(-torch.ones(5, 5))["ratio"] == 0.0    # a flat / negative map has no peaks


def test_min_distance_is_chebyshev_and_respected():
    h = torch.zeros(9, 9)
    h[4, 4], h[4, 6], h[1, 1] = 1.0, 0.9, 0.5
    assert second_peak(h, min_distance=1)["second"] == (6, 4)
    assert second_peak(h, min_distance=2)["second"] == (1, 1)   # (6, 4) is 2 away: too close


def test_log_space_reads_a_log_map():
    h = two_bumps((3, 4), (11, 12), 0.25)
    sp = second_peak(torch.log(h.clamp_min(1e-12)), log_space=True)
    assert sp["second"] == (11, 12) and sp["ratio"] == pytest.approx(0.25, rel=1e-6)
    assert sp["first_value"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        second_peak(torch.zeros(2, 4, 4))


def test_peak_competition_measures_suppression():
    unary = two_bumps((3, 4), (11, 12), 0.8)
    marginal = two_bumps((3, 4), (11, 12), 0.1) + 1e-6       # keeps the first bump, cuts the second
    pc = peak_competition(unary, torch.log(marginal))
    assert pc["unary_ratio"] == pytest.approx(0.8, abs=1e-6)
    assert pc["marginal_ratio"] == pytest.approx(0.1, abs=1e-3)
    assert pc["change"] == pytest.approx(0.7, abs=1e-3)
    swapped = peak_competition(unary, torch.log(two_bumps((11, 12), (3, 4), 0.5) + 1e-6))
    assert swapped["marginal_ratio"] == pytest.approx(2.0, rel=1e-3)      # prefers the second bump
    assert swapped["change"] == pytest.approx(0.8 - 1.0, abs=1e-3)
    one = peak_competition(two_bumps((5, 5), (5, 5), 0.0), torch.zeros(16, 16))
    assert one["second"] is None and math.isnan(one["marginal_ratio"]) and one["change"] == 0.0


def test_veto_verdict():
    assert analysis.veto_verdict(first_error=5, second_error=40, crop_size=128) == "helped"
    assert analysis.veto_verdict(first_error=40, second_error=5, crop_size=128) == "wrong"
    assert analysis.veto_verdict(first_error=30, second_error=60, crop_size=128) == "neither"


# ------------------------------------------------------------------ the detector, in words
@pytest.mark.parametrize("preset", ["scratch", "pretrained", "small", "everyday", "everyday-lite1"])
def test_describe_detector_follows_the_config(preset):
    cfg = DetectorConfig.preset(preset)
    words = analysis.describe_detector(cfg)
    assert str(cfg.banks) in words["banks"]
    if cfg.trunk in ("lite0", "lite1"):
        assert "share one ImageNet-pretrained trunk" in words["banks"] and "own small decoder" in words["banks"]
        assert f"EfficientNet-Lite{cfg.trunk[-1]}" in words["banks"]               # the variant it runs
        assert ("stride-32" in words["banks"]) == (cfg.trunk_stride == 32)          # the strides it merges
    else:
        assert "random weights" in words["banks"] and "pretrained" not in words["banks"]
    if cfg.loss == "softmax":       # logits: never "trained towards 1"
        assert "towards 1" not in " ".join(words.values())
        assert "softmax" in words["belief_tex"] and "sums to 1" in words["drawn"]
    else:
        assert "towards" in words["unary"] and "ReLU" in words["belief_tex"]
    help_of = analysis.confidence_help(cfg)
    assert help_of["unary"] == words["confidence"]
    assert {k: v for k, v in help_of.items() if k != "unary"} == \
        {k: v for k, v in CONFIDENCE_HELP.items() if k != "unary"}


# ------------------------------------------------------------------ priors
def test_describe_prior_reports_the_shift_honestly():
    m = SpatialModel(SpatialConfig(heatmap_size=8, use_fft="direct"))
    k = m.cfg.kernel_size
    c = k // 2
    hist = np.full((len(m.edges), k, k), 1e-4, np.float32)
    hist[:, c - 3, c] = 1.0                              # every histogram: A 3 px above v
    m.load_histograms(hist)
    a, v = R_KNEE, R_ANKLE
    d = analysis.describe_prior(m, a, v, stride=4)
    assert d["learned"] == d["histogram"] == (0, -3) and d["shift"] == 0 and d["same_side"]
    assert "kept the histogram's peak" in d["sentence"]
    assert d["sentence"].startswith("right knee is most likely 3 px above right ankle: Δ = (0, -3)")
    assert d["learned_crop"] == (0, -12)
    with torch.no_grad():                                # training flips the prior: A now 2 px below v
        learned = torch.full((k, k), 1e-4)
        learned[c + 2, c] = 1.0
        m.prior_logit[m.edge_index(a, v)] = softplus_inv(learned)
    d = analysis.describe_prior(m, a, v, stride=4)
    assert d["learned"] == (0, 2) and d["histogram"] == (0, -3) and d["shift"] == pytest.approx(5.0)
    assert not d["same_side"] and "lost its anatomy" in d["sentence"] and "2 px below" in d["sentence"]
    assert analysis.describe_prior(m, a, a, stride=4)["sentence"].startswith("The self edge")
    with torch.no_grad():                                # A 1 px above and 2 px to the left: words read in order
        learned = torch.full((k, k), 1e-4)
        learned[c - 1, c - 2] = 1.0
        m.prior_logit[m.edge_index(a, v)] = softplus_inv(learned)
    assert "most likely 1 px above and 2 px to the left of right ankle in the image" in \
        analysis.describe_prior(m, a, v, stride=4)["sentence"]


# ------------------------------------------------------------------ left and right (synthetic)
def _maps(second: float, size: int = 32) -> torch.Tensor:
    """K maps: joint k has a bump of 1 at its own place and `second` at its L/R partner's place."""
    pos = [(2 + (k % 7) * 4, 6 + (k // 7) * 16) for k in range(K)]
    maps = []
    for k in range(K):
        p = FLIP_PERM[k]
        maps.append(two_bumps(pos[k], pos[p], second if p != k else 0.0, size))
    return torch.stack(maps)


def test_left_right_scores_the_as_found_and_the_swapped_assignment():
    clear = analysis.left_right(_maps(0.1))
    best, second = clear["assignments"]
    assert best["name"] == "as found" and second["perm"] == FLIP_PERM
    assert best["score"] == pytest.approx(1.0, abs=1e-3)
    # 12 paired joints read their partner's map at 0.1, the 2 centre joints stay at 1
    assert second["score"] == pytest.approx((12 * 0.1 + 2) / K, abs=1e-3)
    assert clear["ratio"] == pytest.approx(second["score"] / best["score"]) and not clear["close"]
    assert [p["joints"] for p in clear["pairs"]] == list(FLIP_PAIRS)
    assert all(p["ratio"] == pytest.approx(0.1, abs=1e-3) for p in clear["pairs"])
    confused = analysis.left_right(_maps(0.9))
    assert confused["close"] and confused["ratio"] > clear["ratio"]
    assert confused["ratio"] >= analysis.LR_CLOSE


def test_facing_reads_which_side_is_on_the_image_left():
    j = np.zeros((K, 2))
    j[[R_SHOULDER, R_HIP], 0], j[[L_SHOULDER, L_HIP], 0] = 10, 30      # right side on the image's left
    j[[R_SHOULDER, L_SHOULDER], 1], j[[R_HIP, L_HIP], 1] = 10, 50
    assert analysis.facing(j) == "camera"
    assert analysis.facing(j[list(FLIP_PERM)]) == "away"               # the same body, labels swapped
    j[[L_SHOULDER, L_HIP], 0] = 12
    assert analysis.facing(j) == "side-on"


# ------------------------------------------------------------------ on the shipped model
@pytest.fixture(scope="module")
def models():
    return PoseLab(regressor_path=None)      # the analysis reads the detector and spatial model only


@pytest.fixture(scope="module")
def pred(models, mini):
    crop = mini["val"].images[0]
    return models.predict(crop, image_box(crop.shape[1], crop.shape[0]))


def test_peak_report_matches_the_prediction(models, pred):
    rows = analysis.peak_report(models, pred)
    belief = models.belief(pred.unary)
    assert [r["joint"] for r in rows] == list(range(K))
    for r in rows:
        k = r["joint"]
        np.testing.assert_allclose(r["unary"], pred.crop_joints("unary")[k])
        assert r["unary_value"] == pytest.approx(float(belief[k].max()))
        assert r["strong"] == (r["second_ratio"] >= STRONG_SECOND_PEAK)
        assert r["second_ratio"] == pytest.approx(second_peak(belief[k])["ratio"])
        if "marginal" in pred.joints:
            np.testing.assert_allclose(r["marginal"], pred.crop_joints("marginal")[k])
            assert r["moved"] == pytest.approx(np.linalg.norm(r["marginal"] - r["unary"]))
            assert r["overruled"] == (r["moved"] > analysis.MOVED * models.codec.stride)


def test_message_panels_replay_the_marginal(models, pred):
    if models.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    steps = analysis.message_panels(models, pred, R_KNEE)
    torch.testing.assert_close(steps[-1]["log_sum"], pred.log_marginal[R_KNEE], rtol=1e-4, atol=1e-4)
    for s in steps:
        torch.testing.assert_close(s["unary_v"], models.belief(pred.unary)[s["v"]])
        assert s["competition"] == peak_competition(models.belief(pred.unary)[R_KNEE], s["log_sum"])


def test_veto_examples_go_from_wrong_to_right(models, mini):
    if models.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    val = mini["val"]
    n = 24
    found = analysis.veto_examples(models, val.images[:n], val.coords[:n], val.labelled[:n], top=99)
    assert len({f["index"] for f in found}) == len(found)                       # one joint per crop
    assert [f["unary_error"] for f in found] == sorted((f["unary_error"] for f in found), reverse=True)
    maps = models.crop_heatmaps(val.images[:n])
    u_xy, _ = models.codec.decode_crop(maps["unary"], log_space=models.unary_is_log)
    m_xy, _ = models.codec.decode_crop(maps["log_marginal"], log_space=True)
    right = analysis.CORRECT * models.size
    for f in found:
        i, k = f["index"], f["joint"]
        assert val.labelled[i, k]
        np.testing.assert_allclose(f["truth"], val.coords[i, k])
        assert f["unary_error"] == pytest.approx(float(np.linalg.norm(u_xy[i, k].numpy() - val.coords[i, k])), rel=1e-4)
        assert f["marginal_error"] == pytest.approx(float(np.linalg.norm(m_xy[i, k].numpy() - val.coords[i, k])), rel=1e-4)
        assert f["unary_error"] > right >= f["marginal_error"]
    two = analysis.veto_examples(models, val.images[:n], val.coords[:n], val.labelled[:n], top=2)
    assert [(f["index"], f["joint"]) for f in two] == [(f["index"], f["joint"]) for f in found[:2]]
    only = analysis.veto_examples(models, val.images[:n], val.coords[:n], val.labelled[:n], joints=(R_ANKLE,))
    assert all(f["joint"] == R_ANKLE for f in only)


def test_neighbour_names_mark_the_self_edge(models):
    if models.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    names = analysis.neighbour_names(models.spatial, R_KNEE)
    assert names[0] == NAMES[R_KNEE] + " (itself)" and NAMES[R_ANKLE] in names


def test_left_right_report_follows_the_prediction(models, pred):
    rep = analysis.left_right_report(models, pred)
    assert rep["ratio"] == pytest.approx(analysis.left_right(models.belief(pred.unary))["ratio"])
    assert rep["facing"] == analysis.facing(pred.crop_joints("unary"))
    assert rep["suspect"] == (rep["close"] or rep["facing"] == "away")
    mirrored = models.predict(pred.crop[:, ::-1].copy(), pred.box)
    assert analysis.left_right_report(models, mirrored)["sentence"]


def test_the_landing_sample_is_not_flagged_as_swapped(models):
    """The Try it page opens on the tennis serve (LSP im1007), framed as the app frames it; its
    left and right are right, so the page must not warn that they may be swapped."""
    from lab import people
    from lab.app.photos import SAMPLES, SAMPLES_DIR
    from lab.data.images import load_image
    rgb = load_image(SAMPLES_DIR / SAMPLES[0].file)
    person = people.refine(rgb, people.most_prominent(people.find_people(rgb)))
    pred = models.predict(rgb, people.square_box(person))
    rep = analysis.left_right_report(models, pred)
    assert not rep["suspect"], rep["sentence"]
    assert rep["facing"] == "camera"
