"""Issue 9 through AppTest on the real navigation app (the shipped ImageNet model): switch off
a bank, hide part of the crop, plant a joint, switch off a message, and open the same view
from its URL in a fresh session. Every plotted map is read back from its Plotly JSON and
compared with `lab.touch` on the same crop."""
from __future__ import annotations

import numpy as np
import pytest
from app_util import MAIN, TIMEOUT, figure, figures, framed_box, go, heatmaps, rerun, start
from streamlit.testing.v1 import AppTest

from lab import analysis, touch
from lab.app import data, interact, photos
from lab.data.images import load_image
from lab.data.transforms import image_box
from lab.infer import FULL_WEIGHTS, POSE_WEIGHTS, PoseLab
from lab.joints import NAMES, R_WRIST, SHORT
from lab.models import graph

SAMPLE = photos.SAMPLES_DIR / photos.SAMPLES[0].file


@pytest.fixture(scope="module")
def models() -> PoseLab:
    if not POSE_WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    return PoseLab(POSE_WEIGHTS, None)          # the regressor plays no part here


@pytest.fixture(scope="module")
def pred(models):
    rgb = load_image(SAMPLE)                    # framed as the app frames it: the most prominent person
    return models.predict(rgb, framed_box(rgb))


@pytest.fixture(scope="module")
def app():
    return start()


def close(got, want):
    np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-4, atol=1e-6)


def opened(at: AppTest, key: str) -> AppTest:
    """The section whose expander has this key opened, as a learner's click opens it."""
    at.session_state[key] = True
    return rerun(at)


def metas(at: AppTest) -> set:
    return {f["layout"].get("meta") for f in figures(at)}


@pytest.mark.parametrize("view,label,key,charts", [
    ("detector", "6 · Switch off a bank", interact.BANKS_OPEN, {"unary_banks_off"}),
    ("detector", "7 · Hide part of the crop", interact.OCC_OPEN, {"occlusion_crop", "occ_panels"}),
    ("messages", "3 · Plant a joint", interact.PLANT_OPEN, {"plant_v", "plant_panels"}),
    ("messages", "4 · Switch off a message", interact.DROP_OPEN, {"edge_panels"})])
def test_a_closed_section_draws_no_chart_and_opening_it_draws_it(app, view, label, key, charts):
    at = go(app, view)
    at.session_state[key] = False
    rerun(at)
    (box,) = [e for e in at.expander if e.label == label]        # its heading is there, closed, empty
    assert not box.proto.expanded and not box.children
    assert not charts & metas(at)
    assert charts <= metas(opened(at, key))


def test_switching_a_bank_off_redraws_the_unary(app, models, pred):
    at = opened(go(app, "detector"), interact.BANKS_OPEN)
    at.checkbox(key=interact.bank_key(0)).uncheck()
    rerun(at)
    want = models.belief(touch.maps(models, pred.crop, off=(0,))["unary"]).numpy()
    maps = heatmaps(figure(at, "unary_banks_off"))
    assert len(maps) == 14
    for k in range(14):
        close(maps[k], want[k])
    rows = touch.displacement(models, touch.maps(models, pred.crop), touch.maps(models, pred.crop, off=(0,)))
    table = at.table[1].value
    close(table["confidence, bank 1 off"].to_numpy(), [r["unary_conf_after"] for r in rows])
    assert at.query_params["off"] == "1"
    rows = touch.bank_rows(data.evaluation(POSE_WEIGHTS)["result"])
    if rows is None:                                          # no table: said plainly
        assert any("ablat" in i.value or "evaluation" in i.value for i in at.info)
    else:                                                     # the eval JSON's table, as written
        shown = [d.value for d in at.table if "left out" in d.value.columns][0]
        assert list(shown["left out"]) == [r["label"] for r in rows]
        close(shown["marginal PCK@0.2 (%)"].to_numpy(), [round(100 * r["marginal"], 1) for r in rows])
        # 'lost' is in points, and equals the difference of the shown PCKs
        lost = shown["marginal: lost (points)"].to_numpy()
        pck = shown["marginal PCK@0.2 (%)"].to_numpy()
        np.testing.assert_allclose(lost, np.round(pck[0] - pck, 1), atol=1e-9)
    # a bank off is drawn on the colour scale of all banks on: its emptied maps look empty
    scale = figure(at, "unary_banks_off")["layout"]["coloraxis"]
    assert scale["cmax"] == pytest.approx(float(models.belief(touch.maps(models, pred.crop)["unary"]).max()), rel=1e-5)
    at.checkbox(key=interact.bank_key(0)).check()
    rerun(at)
    assert "off" not in at.query_params


def test_occlusion_recomputes_unary_and_marginal_and_lists_what_moved(app, models, pred):
    at = opened(go(app, "detector"), interact.OCC_OPEN)
    box = (60, 0, 100, 40)
    for k, v in zip(interact.OCC, box):
        at.number_input(key=k).set_value(v)
    at.toggle(key=interact.OCC_ON).set_value(True)
    rerun(at)
    base, now = touch.maps(models, pred.crop), touch.maps(models, touch.occlude(pred.crop, box))
    close(heatmaps(figure(at, "occ_unary_before"))[0], models.belief(base["unary"])[R_WRIST])
    close(heatmaps(figure(at, "occ_unary_after"))[0], models.belief(now["unary"])[R_WRIST])
    close(heatmaps(figure(at, "occ_marginal_after"))[0], touch.marginal_map(now["log_marginal"][R_WRIST]))
    img = figure(at, "occlusion_crop")["data"][0]
    assert img["type"] == "image"
    rows = touch.displacement(models, base, now)
    table = at.table[-1].value
    close(table["unary moved (crop px)"].to_numpy(), [r["unary_moved"] for r in rows])
    assert list(table["moved"]) == [r["moved"] for r in rows]
    assert at.query_params["occ"] == ",".join(map(str, box))


def test_planting_a_joint_moves_the_message(app, models):
    at = opened(go(app, "messages"), interact.PLANT_OPEN)
    a = at.selectbox(key="msg_joint").value
    v = at.selectbox(key=interact.PLANT_V).value
    kx, ky = interact.plant_keys(v)
    at.number_input(key=kx).set_value(10)
    at.number_input(key=ky).set_value(12)
    at.toggle(key=interact.PLANT_ON).set_value(True)
    rerun(at)
    crop = figure(at, "plant_v")["data"][0]          # the crop the page shows: an example crop
    pred = _page_pred(at, models)
    out = touch.plant(models, pred.unary, a, v, tuple(models.codec.to_crop(np.array([10.0, 12.0]))))
    assert crop["type"] == "image"
    close(heatmaps(figure(at, "plant_v"))[0], out["unary_v"])
    close(heatmaps(figure(at, "plant_message"))[0], out["message"])
    close(heatmaps(figure(at, "plant_marginal"))[0], touch.marginal_map(out["log_marginal"]))
    assert at.query_params["plant"] == f"{SHORT[v]},10,12"
    at.toggle(key=interact.PLANT_ON).set_value(False)         # back to the detector's real unary
    rerun(at)
    close(heatmaps(figure(at, "plant_message"))[0], out["real_message"])
    assert "plant" not in at.query_params
    assert not any("Planted at" in c.value for c in at.caption)    # nothing planted: the text says so
    assert any("nothing is planted" in c.value for c in at.caption)


def test_switching_a_message_off(app, models):
    at = opened(go(app, "messages"), interact.DROP_OPEN)
    a = at.selectbox(key="msg_joint").value
    v = next(v for v in graph.neighbours(models.spatial.edges, a) if v != a)
    at.multiselect(key=interact.drop_key(a)).set_value([v])
    rerun(at)
    pred = _page_pred(at, models)
    close(heatmaps(figure(at, "edge_full"))[0], touch.marginal_map(pred.log_marginal[a]))
    close(heatmaps(figure(at, "edge_without"))[0],
          touch.marginal_map(touch.without_edges(models, pred.unary, [(a, v)])[a]))
    assert at.query_params["drop"] == SHORT[v]
    at.multiselect(key=interact.drop_key(a)).set_value([])
    rerun(at)


def test_tree_against_full_graph_table(app):
    """The Message passing page's tree vs full graph table is the two shipped eval JSONs'."""
    at = opened(go(app, "messages"), interact.DROP_OPEN)
    rows = touch.graph_rows({g: data.evaluation(w)["result"] for g, w in
                             (("tree", POSE_WEIGHTS), ("full", FULL_WEIGHTS))})
    shown = next(d.value for d in at.table if "graph" in d.value.columns)
    assert list(shown["graph"]) == ["tree", "full"] and list(shown["directed edges"]) == [40, 196]
    np.testing.assert_allclose(shown["gain (points)"], [round(100 * r["gain"], 1) for r in rows])
    pck = shown[["unary PCK@0.2 (%)", "marginal PCK@0.2 (%)"]].to_numpy()
    np.testing.assert_allclose(shown["gain (points)"], np.round(pck[:, 1] - pck[:, 0], 1), atol=1e-9)
    # the limb table: words, no empty unary column
    limbs = next(d.value for d in at.table if "left out" in d.value.columns)
    assert "unary PCK@0.2 (%)" not in limbs.columns
    assert not any("_" in t for t in limbs["left out"])
    np.testing.assert_allclose(shown["marginal PCK@0.2 (%)"], [round(100 * r["marginal"], 1) for r in rows])


def _page_pred(at, models):
    """The prediction on the crop the Message passing page shows: the example crop of its
    link (`ex`, `lab.analysis.veto_examples` on the example split), else the first sample."""
    if at.query_params.get("ex", "own") == "own":
        rgb = load_image(SAMPLE)
        return models.predict(rgb, framed_box(rgb))
    name, split = data.example_split()
    n = min(len(split), data.SCAN)
    found = analysis.veto_examples(models, split.images[:n], split.coords[:n], split.labelled[:n])
    crop = split.images[found[int(at.query_params["ex"])]["index"]]
    return models.predict(crop, image_box(crop.shape[1], crop.shape[0]))


def fresh(page: str, **params) -> AppTest:
    """A new session opened on a link: the URL's parameters, then the page."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(f"views/{page}.py")
    return rerun(at)


def test_a_link_reproduces_the_detector_view(models, pred):
    at = fresh("detector", off="1", occ="60,0,100,40", joint="r_elb", model="imagenet", photo="lsp_im1007")
    assert at.checkbox(key=interact.bank_key(0)).value is False
    assert at.toggle(key=interact.OCC_ON).value is True
    assert at.selectbox(key=interact.OCC_JOINT).value == NAMES.index("right elbow")
    now = touch.maps(models, touch.occlude(pred.crop, (60, 0, 100, 40)), off=(0,))
    close(heatmaps(figure(at, "occ_unary_after"))[0], models.belief(now["unary"])[NAMES.index("right elbow")])
    assert at.query_params["off"] == "1" and at.query_params["occ"] == "60,0,100,40"
    # a link opens the sections its values concern, and only those
    at = fresh("detector", off="1", model="imagenet", photo="lsp_im1007")
    assert at.session_state[interact.BANKS_OPEN] and not at.session_state[interact.OCC_OPEN]
    assert "unary_banks_off" in metas(at) and "occ_panels" not in metas(at)
    assert at.query_params["off"] == "1" and "occ" not in at.query_params and "joint" not in at.query_params


def test_a_link_reproduces_the_message_view(models):
    first = fresh("messages", model="imagenet")
    a, ex = first.selectbox(key="msg_joint").value, first.query_params["ex"]
    v = next(v for v in graph.neighbours(models.spatial.edges, a) if v != a)
    at = fresh("messages", ex=ex, joint=SHORT[a], step="2", plant=f"{SHORT[v]},5,7", drop=SHORT[v],
               model="imagenet")
    assert at.selectbox(key="msg_joint").value == a
    assert at.session_state[f"msg_step_{a}"] == 2
    assert at.toggle(key=interact.PLANT_ON).value is True
    assert at.session_state[interact.PLANT_OPEN] and at.session_state[interact.DROP_OPEN]
    pred = _page_pred(at, models)
    out = touch.plant(models, pred.unary, a, v, tuple(models.codec.to_crop(np.array([5.0, 7.0]))))
    close(heatmaps(figure(at, "plant_message"))[0], out["message"])
    close(heatmaps(figure(at, "edge_without"))[0],
          touch.marginal_map(touch.without_edges(models, pred.unary, [(a, v)])[a]))


def test_a_link_picks_the_person_of_a_group_photo():
    """`person=2` on a sample photo of three people: the page analyses person 2 and the URL it
    writes back keeps them; person 1, the default, is left out of the URL."""
    at = fresh("detector", photo="group_lsp", person="2", model="imagenet")
    assert list(at.session_state[photos.PICKS].values()) == [1]
    assert at.query_params["person"] == "2" and at.query_params["photo"] == "group_lsp"
    at = fresh("detector", photo="group_lsp", model="imagenet")
    assert "person" not in at.query_params


def test_the_full_graph_model_runs_every_page():
    """The sidebar's third shipped model: every explore page runs on it, the Priors page
    counts its 196 edges and the Message passing page steps through 14 messages per joint."""
    if not FULL_WEIGHTS.is_file():
        pytest.skip("no pose_full.safetensors here")
    from lab.app import common
    at = start()
    at.sidebar.selectbox(key=common.CHOICE).set_value(common.FULL)
    rerun(at)
    for view in ("try_it", "detector", "priors", "messages", "compare"):
        go(at, view)
        if view == "priors":
            assert any("196 directed edges" in m.value for m in at.markdown)
        if view == "messages":
            assert any("has 14 neighbours in this model's full graph" in m.value for m in at.markdown)
            assert at.query_params["model"] == "full"
