"""lab.eval.results: the numbers behind the Heatmaps vs regression page, on synthetic
evaluation results whose answers are known, plus the schema checks on the JSON files."""
import json

import numpy as np
import pytest

from lab.errors import LabError
from lab.eval import mean_pose as mp
from lab.eval import results as evals
from lab.eval.pck import pck_curve
from lab.joints import GROUPS, L_SHOULDER, R_HIP, SHORT

RNG = np.random.default_rng(0)


def person(n=1, scale=50.0):
    """Plausible-ish standing poses (N, 14, 2): a template, jittered, shifted and scaled."""
    tpl = np.array([[-.3, 2.4], [-.3, 1.5], [-.3, .6], [.3, .6], [.3, 1.5], [.3, 2.4],
                    [-.9, .5], [-.7, -.1], [-.5, -.6], [.5, -.6], [.7, -.1], [.9, .5],
                    [0, -.7], [0, -1.3]])
    p = tpl[None] + RNG.normal(0, 0.25, (n, 14, 2))
    return p * scale + RNG.uniform(100, 200, (n, 1, 2))


def result(ids, gt, lab, methods: dict) -> dict:
    """A minimal `pose-lab eval --json` result."""
    out = {"images": len(ids), "methods": {}, "ground_truth": {i: g.tolist() for i, g in zip(ids, gt)},
           "labelled": {i: l.astype(int).tolist() for i, l in zip(ids, lab)}}
    for name, pred in methods.items():
        out["methods"][name] = {"pck@0.2": {"mean": 0.5, "per_joint": {s: 0.5 for s in SHORT},
                                            "groups": {g: 0.5 for g in GROUPS}},
                                "curve": pck_curve(pred, gt, lab),
                                "predictions": {i: p.tolist() for i, p in zip(ids, pred)}}
    return out


def size(gt):
    """The ground truth's body size (N, 1, 1): the unit of every distance in lab.eval.results."""
    return evals.body_frame(gt, np.ones(gt.shape[:2], bool))[1][:, None, None]


def test_disagreement_is_in_ground_truth_body_sizes():
    gt = person(3)
    lab = np.ones((3, 14), bool)
    shift = np.array([0.1, 0.3, 0.2])[:, None, None] * size(gt) * np.array([1.0, 0.0])
    d = evals.disagreement(gt, gt + shift, gt, lab)
    np.testing.assert_allclose(d, [0.1, 0.3, 0.2])
    np.testing.assert_allclose(evals.mean_error(gt + shift, gt, lab), [0.1, 0.3, 0.2])
    lab[1, :] = False                                  # nothing counts -> NaN
    lab[2, R_HIP] = False                              # no torso, no frame -> NaN
    d = evals.disagreement(gt, gt + shift, gt, lab)
    assert d[0] == pytest.approx(0.1) and np.isnan(d[1]) and np.isnan(d[2])
    # unlike PCK's torso diameter, the unit barely moves when the torso is foreshortened
    flat = gt[:1].copy()
    flat[0, [2, 3, 8, 9], 1] = flat[0, [2, 3, 8, 9], 1].mean()
    assert size(flat)[0, 0, 0] > 0.5 * size(gt[:1])[0, 0, 0]


def test_rank_disagreement_orders_images_and_reports_errors():
    ids = [f"lsp/im{1001 + i}" for i in range(5)]
    gt = person(5)
    lab = np.ones((5, 14), bool)
    off = np.array([0.0, 0.4, 0.1, 0.3, 0.2])[:, None, None] * size(gt) * np.array([0.0, 1.0])
    pose = result(ids, gt, lab, {"marginal": gt, "unary": gt + off / 2})
    reg = result(ids, gt, lab, {"regressor": gt + off})
    top = evals.rank_disagreement(pose, reg, top=3)
    assert [t["id"] for t in top] == [ids[1], ids[3], ids[4]]
    assert top[0]["disagreement"] == pytest.approx(0.4)
    assert top[0]["error"] == pytest.approx({"marginal": 0.0, "regressor": 0.4, "unary": 0.2})


def test_body_frame_removes_position_and_size():
    p = person(1)
    lab = np.ones((1, 14), bool)
    a = evals.to_frame(p, *evals.body_frame(p, lab)[:2])
    q = 3 * p + 17
    b = evals.to_frame(q, *evals.body_frame(q, lab)[:2])
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(a[0, list(evals.TORSO_JOINTS)].mean(0), 0, atol=1e-9)
    assert np.sqrt((a[0] ** 2).sum(-1).mean()) == pytest.approx(1.0)       # unit: the body's size
    assert evals.body_frame(p, lab)[2].all()
    lab[0, L_SHOULDER] = False
    assert not evals.body_frame(p, lab)[2][0]


def test_mean_pose_and_distance_to_it():
    poses = person(200)
    lab = np.ones((200, 14), bool)
    mean = mp.mean_pose(poses, lab)
    assert mean.shape == (14, 2)
    one = evals.to_frame(poses[:1], *evals.body_frame(poses[:1], lab[:1])[:2])[0]
    assert mp.mean_pose(poses[:1], lab[:1]) == pytest.approx(one)
    d = mp.distance_to_mean(poses, lab, mean)
    assert d.shape == (200,) and (d > 0).all()
    # measured in a reference pose's frame, a pose shrunk towards that frame's origin stays shrunk
    centre, scale, _ = evals.body_frame(poses, lab)
    small = (poses - centre[:, None]) * 0.5 + centre[:, None]
    assert (mp.distance_to_mean(small, lab, np.zeros((14, 2)), reference=poses)
            == pytest.approx(0.5 * mp.distance_to_mean(poses, lab, np.zeros((14, 2)))))
    with pytest.raises(LabError):
        mp.mean_pose(poses, np.zeros_like(lab))


def test_mean_pose_study_sees_a_regressor_that_hedges_towards_the_mean():
    n = 60
    ids = [f"lsp/im{1001 + i}" for i in range(n)]
    gt = person(n)
    lab = np.ones((n, 14), bool)
    lab[0, 6] = False                                   # an unlabelled wrist does not count
    mean = mp.mean_pose(person(300), np.ones((300, 14), bool))
    # a "regressor" halfway between each true pose and the mean pose, in the truth's frame
    centre, scale, _ = evals.body_frame(gt, lab)
    hedged = (evals.to_frame(gt, centre, scale) + mean[None]) / 2
    reg = hedged * scale[:, None, None] + centre[:, None]
    pose = result(ids, gt, lab, {"unary": gt, "marginal": gt})
    study = mp.mean_pose_study([pose, result(ids, gt, lab, {"regressor": reg})], mean,
                                ("unary", "marginal", "regressor"))
    assert set(study["average"]) == {"ground truth", "unary", "marginal", "regressor"}
    assert study["average"]["marginal"] == pytest.approx(study["average"]["ground truth"])
    assert study["median"]["regressor"] == pytest.approx(0.5 * study["median"]["ground truth"], rel=0.05)
    assert study["average"]["regressor"] == pytest.approx(0.5 * study["average"]["ground truth"])
    d = mp.distance_to_mean(gt, lab, mean, per_joint=True)
    assert np.isnan(d[0, 6]) and not np.isnan(d[1, 6])
    g = mp.by_group(study["per_joint"]["regressor"])
    assert set(g) == set(GROUPS)
    top = mp.furthest_from_mean(study, top=3)
    d = study["per_image"]["ground truth"]
    assert d[top[0]] == np.nanmax(d) and len(top) == 3


def test_pck_table_has_groups_joints_and_the_spatial_models_gain():
    ids = ["a", "b"]
    gt = person(2)
    lab = np.ones((2, 14), bool)
    pose = result(ids, gt, lab, {"unary": gt, "marginal": gt})
    pose["methods"]["marginal"]["pck@0.2"]["groups"]["wrist"] = 0.8
    rows = evals.pck_table(evals.methods_of(pose, result(ids, gt, lab, {"regressor": gt})))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("mean") == 1 and kinds.count("group") == 7 and kinds.count("joint") == 14
    wrist = next(r for r in rows if r["name"] == "wrist")
    assert wrist["marginal - unary"] == pytest.approx(0.3)
    assert set(wrist) >= {"unary", "marginal", "regressor"}


def test_load_eval_checks_the_file(tmp_path):
    with pytest.raises(LabError, match="pose-lab eval"):
        evals.load_eval(tmp_path / "pose.eval.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LabError, match="not readable JSON"):
        evals.load_eval(bad)
    bad.write_text(json.dumps({"methods": {"unary": {"curve": {}}}}))
    with pytest.raises(LabError, match="does not look like"):
        evals.load_eval(bad)
    good = tmp_path / "good.json"
    gt = person(2)
    good.write_text(json.dumps(result(["a", "b"], gt, np.ones((2, 14), bool), {"unary": gt})))
    assert evals.load_eval(good)["methods"]["unary"]["curve"]["alpha"][-1] == pytest.approx(0.5)


def test_find_image_from_the_dataset_or_nowhere(fixture_root, tmp_path):
    img = evals.find_image("lsp/im1001", fixture_root)
    assert img["source"] == "dataset" and img["affine"] is None and img["rgb"].ndim == 3
    assert evals.find_image("lsp/im1999", fixture_root) is None          # not in the fixture
    assert evals.find_image("lsp/im1001", tmp_path, tmp_path / "none.safetensors") is None
    pts = np.array([[1.0, 2.0]])
    np.testing.assert_allclose(evals.to_shown(pts, None), pts)
    np.testing.assert_allclose(evals.to_shown(pts, np.array([[2.0, 0, 1], [0, 2.0, -1]])), [[3.0, 3.0]])


def test_matches_weights_compares_the_sha256(tmp_path):
    import hashlib
    w = tmp_path / "pose.safetensors"
    w.write_bytes(b"weights v1")
    res = {"sha256": hashlib.sha256(b"weights v1").hexdigest()}
    assert evals.matches_weights(res, w) is True
    w.write_bytes(b"weights v2")
    assert evals.matches_weights(res, w) is False
    assert evals.matches_weights({}, w) is None and evals.matches_weights(res, tmp_path / "none") is None


def test_check_eval_shows_only_results_of_the_weights_here(tmp_path):
    w = tmp_path / "pose.safetensors"
    w.write_bytes(b"weights")
    path = evals.eval_path(w)
    assert path == tmp_path / "pose.eval.json"
    out = evals.check_eval(path, w)
    assert out["result"] is None and "missing" in out["message"] and "pose-lab eval" in out["message"]
    ids = ["lsp/im1001"]
    gt = person(1)
    res = result(ids, gt, np.ones((1, 14), bool), {"unary": gt})
    from lab.eval.evaluate import sha256
    path.write_text(json.dumps({**res, "sha256": sha256(w)}))
    out = evals.check_eval(path, w)
    assert out["message"] is None and out["result"]["methods"].keys() == {"unary"}
    path.write_text(json.dumps({**res, "sha256": "0" * 64}))          # another model's numbers
    out = evals.check_eval(path, w)
    assert out["result"] is None and "different `pose.safetensors`" in out["message"]
    path.write_text(json.dumps(res))                                   # does not say: shown, with a note
    out = evals.check_eval(path, w)
    assert out["result"] is not None and "no sha256" in out["message"]
    w.unlink()
    out = evals.check_eval(path, w)
    assert out["result"] is None and "not here" in out["message"]
    assert evals.pck_of(res, "unary") == 0.5 and evals.pck_of(res, "regressor") is None


def test_pose_spreads_and_collapse():
    a = {"pose_spread": {"ground_truth": 0.2, "marginal": 0.18, "mean_pose": 0.0}}
    b = {"pose_spread": {"ground_truth": 0.25, "regressor": 0.05, "mean_pose": 0.0}}
    spreads = mp.pose_spreads(a, b, {})
    assert spreads == {"ground_truth": 0.2, "marginal": 0.18, "mean_pose": 0.0, "regressor": 0.05}
    assert mp.collapsed(spreads) == ["regressor"]           # the mean-pose baseline is meant to be 0
    assert mp.collapsed({"regressor": 0.0}) == [] and mp.pose_spreads({}) == {}


def test_mean_pose_finding_names_who_sits_closer_than_the_truth():
    study = {"median": {"ground truth": 0.5, "unary": 0.52, "marginal": 0.45, "regressor": 0.3}}
    text = mp.mean_pose_finding(study)
    assert "Detector + spatial model (marginal) and Regressor (DeepPose-style) sit closer" in text
    assert "more gently than the regressor" in text
    study = {"median": {"ground truth": 0.5, "unary": 0.55, "regressor": 0.6}}
    assert mp.mean_pose_finding(study) == "Here no method sits closer to the mean than the truth."
