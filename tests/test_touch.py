"""Touching the model (`lab.touch`) on both shipped detectors and a real crop of the mini
set: occlusion, a planted joint, banks and edges switched off, the ablation tables. Each
result is checked against the library's own forward pass; nothing depends on accuracy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lab import touch
from lab.data.transforms import image_box
from lab.infer import POSE_WEIGHTS, SCRATCH_WEIGHTS, PoseLab
from lab.joints import R_ELBOW, R_WRIST, K
from lab.models.spatial import convolve_direct


@pytest.fixture(scope="module", params=[POSE_WEIGHTS, SCRATCH_WEIGHTS], ids=["imagenet", "scratch"])
def models(request):
    if not request.param.is_file():
        pytest.skip(f"no {request.param.name} here")
    return PoseLab(request.param, None)


@pytest.fixture(scope="module")
def crop(models, mini):
    """A validation crop at the model's crop size: the bundled set's 128-px crop framed whole,
    as `predict` resamples it for a model of larger crops."""
    im = mini["val"].images[0]
    return models.predict(im, image_box(im.shape[1], im.shape[0])).crop


@pytest.fixture(scope="module")
def base(models, crop):
    return touch.maps(models, crop)


def test_maps_are_predicts_maps(models, crop, base):
    pred = models.predict(crop, image_box(crop.shape[1], crop.shape[0]))
    # predict's layers run in ONNX Runtime, touch's in PyTorch: equal to float round-off
    torch.testing.assert_close(base["unary"], pred.unary, rtol=1e-4, atol=2e-4)
    torch.testing.assert_close(base["log_marginal"], pred.log_marginal, rtol=1e-4, atol=2e-4)
    p = touch.peaks(models, base)
    np.testing.assert_allclose(p["unary"], pred.crop_joints("unary"), atol=1e-3)
    np.testing.assert_allclose(p["marginal_conf"], pred.confidence["marginal"], rtol=1e-4)


def test_switching_a_bank_off_is_the_detectors_switch(models, crop, base):
    off = touch.maps(models, crop, off=(0,))
    want = models.inspect(crop, (0,))["unary"]
    torch.testing.assert_close(off["unary"], want)
    assert not torch.allclose(off["unary"], base["unary"])
    torch.testing.assert_close(off["log_marginal"], models.spatial.log_marginal(want[None])[0])


def test_occlude_greys_exactly_the_box(crop):
    out = touch.occlude(crop, (10, 20, 40, 30))
    assert out.shape == crop.shape and out is not crop
    assert (out[20:30, 10:40] == touch.GREY).all()
    mask = np.ones(crop.shape[:2], bool)
    mask[20:30, 10:40] = False
    np.testing.assert_array_equal(out[mask], crop[mask])
    np.testing.assert_array_equal(touch.occlude(crop, (500, 500, 600, 600)), crop)     # outside: nothing
    np.testing.assert_array_equal(touch.occlude(crop, (40, 30, 10, 20)), out)            # corners in any order


def test_box_from_selection_covers_the_selected_pixels():
    assert touch.box_from_selection([10.2, 39.6], [30.4, 20.0], 128) == (10, 20, 41, 31)
    assert touch.box_from_selection([-5, 300], [0, 2], 128) == (0, 0, 128, 3)
    assert touch.box_from_selection([], [], 128) is None


def test_displacement_table_after_an_occlusion(models, crop, base):
    same = touch.displacement(models, base, base)
    assert len(same) == K and not any(r["moved"] for r in same)
    assert all(r["unary_moved"] == 0 and r["marginal_moved"] == 0 for r in same)
    after = touch.maps(models, touch.occlude(crop, (0, 0, models.size, models.size // 2)))   # the upper half gone
    rows = touch.displacement(models, base, after)
    pb, pa = touch.peaks(models, base), touch.peaks(models, after)
    for r in rows:
        k = r["joint"]
        for m in ("unary", "marginal"):
            np.testing.assert_allclose(r[f"{m}_moved"], np.linalg.norm(pa[m][k] - pb[m][k]))
        assert r["moved"] == (max(r["unary_moved"], r["marginal_moved"]) > touch.MOVED_PX * models.codec.stride)
    assert any(r["moved"] for r in rows)


def test_planted_unary_is_a_single_peak_where_clicked(models, base):
    xy = (50.0, 70.0)
    u = touch.planted_unary(models, base["unary"], R_ELBOW, xy)
    others = [k for k in range(K) if k != R_ELBOW]
    torch.testing.assert_close(u[others], base["unary"][others])
    peak, _ = models.codec.decode_crop(u[None, [R_ELBOW]], log_space=models.unary_is_log)
    np.testing.assert_allclose(peak[0, 0].numpy(), xy, atol=0.5)
    # its belief (what a message convolves) is the codec's training target at xy
    want = models.codec.encode(torch.tensor([[xy]]), torch.ones(1, 1, dtype=torch.bool),
                               normalise=models.unary_is_log)[0, 0]
    torch.testing.assert_close(models.belief(u)[R_ELBOW], want, rtol=1e-4, atol=1e-6)


def test_plant_message_is_the_prior_convolved_with_the_planted_peak(models, base):
    a, v, xy = R_WRIST, R_ELBOW, (64.0, 40.0)
    out = touch.plant(models, base["unary"], a, v, xy)
    sp = models.spatial
    e = sp.edge_index(a, v)
    b = models.belief(touch.planted_unary(models, base["unary"], v, xy))[v]
    want = convolve_direct(b[None, None].double(), sp.prior()[[e]].detach().double())[0, 0].clamp_min(0) + sp.bias()[e]
    torch.testing.assert_close(out["message"].double(), want, rtol=1e-4, atol=1e-6)
    planted = touch.planted_unary(models, base["unary"], v, xy)
    torch.testing.assert_close(out["log_marginal"], sp.log_marginal(planted[None])[0, a], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["real_log_marginal"], base["log_marginal"][a], rtol=1e-4, atol=1e-4)
    # the message slides with the click: moving v moves the message's peak by the same amount
    out2 = touch.plant(models, base["unary"], a, v, (xy[0] + 16, xy[1]))
    p1 = np.unravel_index(int(out["message"].argmax()), out["message"].shape)
    p2 = np.unravel_index(int(out2["message"].argmax()), out2["message"].shape)
    assert p2[1] - p1[1] == 16 // models.codec.stride and p2[0] == p1[0]
    with pytest.raises(ValueError):
        touch.plant(models, base["unary"], R_WRIST, 0, xy)       # an ankle is no neighbour of the wrist


def test_without_edges_drops_only_those_messages(models, base):
    sp = models.spatial
    full = touch.without_edges(models, base["unary"], [])
    torch.testing.assert_close(full, base["log_marginal"], rtol=1e-5, atol=1e-5)
    gone = touch.without_edges(models, base["unary"], [(R_WRIST, R_ELBOW)])
    msg = sp.messages(base["unary"][None].float(), [sp.edge_index(R_WRIST, R_ELBOW)])[0, 0]
    torch.testing.assert_close(gone[R_WRIST], full[R_WRIST] - torch.log(msg), rtol=1e-4, atol=1e-4)
    others = [k for k in range(K) if k != R_WRIST]
    torch.testing.assert_close(gone[others], full[others])


def test_ablation_rows_from_an_eval_json():
    res = {"methods": {"unary": {"pck@0.2": {"mean": 0.6}}, "marginal": {"pck@0.2": {"mean": 0.7}}},
           "ablations": {"banks": {"bank 1 off": {"unary": {"mean": 0.2}, "marginal": {"mean": 0.3}}}}}
    rows = touch.bank_rows(res)
    assert rows[0]["setting"] == "everything on" and rows[0]["marginal"] == 0.7
    assert rows[1]["setting"] == "bank 1 off" and rows[1]["unary_drop"] == pytest.approx(0.4)
    assert touch.edge_rows(res) is None and touch.bank_rows(None) is None and touch.bank_rows({}) is None


def test_graph_rows_compare_the_two_shipped_graphs():
    """Tree against full graph from the two shipped eval JSONs: edge counts from the graphs,
    gains as each JSON's marginal minus its unary, each rounded as shown first; one JSON alone
    gives no comparison."""
    import json

    from lab.eval.results import eval_path
    from lab.infer import FULL_WEIGHTS
    res = {g: json.loads(eval_path(w).read_text()) for g, w in (("tree", POSE_WEIGHTS), ("full", FULL_WEIGHTS))}
    rows = touch.graph_rows(res)
    assert [(r["graph"], r["edges"]) for r in rows] == [("tree", 40), ("full", 196)]
    for r in rows:
        m = res[r["graph"]]["methods"]
        shown = lambda v: round(100 * v, 1)                                    # noqa: E731  (as the page rounds)
        assert 100 * r["gain"] == pytest.approx(shown(m["marginal"]["pck@0.2"]["mean"])
                                                - shown(m["unary"]["pck@0.2"]["mean"]))
        per_group = {g: shown(m["marginal"]["pck@0.2"]["groups"][g]) - shown(m["unary"]["pck@0.2"]["groups"][g])
                     for g in m["unary"]["pck@0.2"]["groups"]}
        assert 100 * r["worst_group"][1] == pytest.approx(min(per_group.values()))
    assert touch.graph_rows({"tree": res["tree"], "full": None}) is None
