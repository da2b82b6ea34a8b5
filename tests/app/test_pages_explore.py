"""The explore pages (Try it, Part detector, Spatial priors, Message passing, Lessons)
through Streamlit's AppTest on the real navigation app.

Each page must render without an exception and show the model's own numbers: the
figures are read back from their Plotly JSON (layout.meta names each one) and compared
with the library (PoseLab.predict, SpatialModel.prior / prior_at / step_through).
Nothing here depends on how accurate the shipped weights are.
"""
from __future__ import annotations

import base64
import io
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from lab.app import common, photos, plots
from lab.data.cache import MINI_PATH, PoseCache
from lab.data.images import load_image
from lab.data.targets import peak_competition
from lab.infer import METHODS, PoseLab
from lab.joints import L_ELBOW, NAMES, NECK, R_ANKLE, R_KNEE, R_WRIST
from lab.models import graph

MAIN = str(Path(__file__).resolve().parents[2] / "lab" / "app" / "main.py")
SAMPLE = photos.SAMPLES_DIR / photos.SAMPLES[0].file        # the photo every page starts with
TIMEOUT = 300       # per script run: generous, the machine may be busy training (runs take ~1 s when idle)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)            # background training shares two cores with the test
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def lab() -> PoseLab:
    return PoseLab()


@pytest.fixture(scope="module")
def pred(lab):
    """What the pages compute for the default photo: automatic box, then predict."""
    rgb = load_image(SAMPLE)
    return lab.predict(rgb, tuple(float(v) for v in lab.auto_box(rgb)))


@pytest.fixture(scope="module")
def app() -> AppTest:
    """One app session shared by the page tests (the caches make later runs fast)."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    no_placeholder_colours(at)
    return at


def go(at: AppTest, view: str) -> AppTest:
    at.switch_page(f"views/{view}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    no_placeholder_colours(at)
    return at


def no_placeholder_colours(at: AppTest) -> None:
    """Streamlit's chart theme rewrites #000001..#000040 anywhere in a figure (its colour
    placeholders): a colour scale starting at #000004 (Inferno) would turn pink."""
    for c in at.get("plotly_chart"):
        fig = json.loads(c.proto.spec)
        fig["layout"].pop("template", None)                  # Streamlit's own, placeholders on purpose
        assert not re.search(r"#0000[0-4][0-9]", json.dumps(fig)), fig["layout"].get("meta")


# ------------------------------------------------------------------ reading figures back
def arr(v) -> np.ndarray:
    """A Plotly JSON array: a list, or {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if v.get("shape"):
            a = a.reshape([int(s) for s in str(v["shape"]).split(",")])
        return a
    return np.asarray(v, dtype=np.float64)


def figure(at: AppTest, meta: str) -> dict:
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    found = [f for f in figs if f["layout"].get("meta") == meta]
    assert len(found) == 1, f"expected one figure {meta!r}, found {[f['layout'].get('meta') for f in figs]}"
    return found[0]


def heatmaps(fig: dict) -> list[np.ndarray]:
    return [arr(t["z"]) for t in fig["data"] if t["type"] == "heatmap"]


def lesson_links(at: AppTest) -> list[str]:
    return [p.proto.query_string for p in at.get("page_link") if "lesson=" in p.proto.query_string]


# ------------------------------------------------------------------ Try it
def test_try_it_shows_the_three_predictions(app, pred):
    at = app
    assert at.title[0].value == "Try it"
    assert lesson_links(at) == ["lesson=01_heatmaps.md"]
    for m in METHODS:
        if m not in pred.joints:
            continue
        fig = figure(at, f"skeleton_{m}")
        joints = [t for t in fig["data"] if t.get("mode") == "markers" and t.get("customdata") is not None]
        assert len(joints) == 1
        xy = np.stack([arr(joints[0]["x"]), arr(joints[0]["y"])], -1)
        np.testing.assert_allclose(xy, pred.joints[m], atol=1e-3)
        assert [c[0] for c in joints[0]["customdata"]] == list(NAMES)
    # the crop box drawn on the photo is the automatic one, and the sliders start there
    fig = figure(at, "photo_box")
    (rect,) = fig["layout"]["shapes"]
    cx, cy, side = pred.box
    assert rect["x0"] == pytest.approx(cx - side / 2) and rect["y1"] == pytest.approx(cy + side / 2)
    sliders = {s.label: s.value for s in at.slider}
    assert sliders["Crop side (photo px)"] == pytest.approx(round(side))
    assert len(at.get("download_button")) == 2
    assert "one person, roughly centred, seen whole" in " ".join(i.value for i in at.info)


def test_crop_sliders_change_the_box_and_reset_restores_it(app, pred, lab):
    at = app
    at.slider(key=f"crop_side_{photos.digest_of(load_image(SAMPLE))}").set_value(float(round(pred.box[2]) + 20))
    at.run()
    assert not at.exception
    (rect,) = figure(at, "photo_box")["layout"]["shapes"]
    assert rect["x1"] - rect["x0"] == pytest.approx(round(pred.box[2]) + 20)
    want = lab.predict(load_image(SAMPLE), (float(round(pred.box[0])), float(round(pred.box[1])),
                                             float(round(pred.box[2]) + 20)))
    joints = [t for t in figure(at, "skeleton_unary")["data"] if t.get("customdata") is not None][0]
    np.testing.assert_allclose(np.stack([arr(joints["x"]), arr(joints["y"])], -1), want.joints["unary"], atol=1e-3)
    next(b for b in at.button if b.label.startswith("Reset")).click()
    at.run()
    (rect,) = figure(at, "photo_box")["layout"]["shapes"]
    assert rect["x1"] - rect["x0"] == pytest.approx(pred.box[2])


def _png(mode: str, size=(64, 64), colour=128) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _png_claiming(w: int, h: int) -> bytes:
    """A valid small PNG whose header says w x h (a decompression bomb's calling card)."""
    b = bytearray(_png("L", (16, 16)))
    b[16:20], b[20:24] = w.to_bytes(4, "big"), h.to_bytes(4, "big")
    b[29:33] = zlib.crc32(bytes(b[12:29])).to_bytes(4, "big")
    return bytes(b)


BAD = {
    "not an image": (b"this is not an image at all", "not an image PIL can read"),
    "truncated": (SAMPLE.read_bytes()[:2000], "damaged or truncated"),
    "1x1": (_png("RGB", (1, 1)), "1x1 pixels"),
    "20000x20000": (_png_claiming(20000, 20000), "too large to decode safely"),   # PIL's bomb check
    "9000x9000": (_png_claiming(9000, 9000), "the limit is 40 MP"),               # ours, below PIL's
    "over the size limit": (b"\x89PNG\r\n\x1a\n" + bytes(photos.MAX_UPLOAD_MB * 2 ** 20), "please upload a smaller"),
}


def photo_choice(at: AppTest) -> str:
    sel = next(s for s in at.main.selectbox if s.label == "Photo")
    return sel.options[sel.index]


def test_bad_uploads_give_a_clear_error_and_keep_the_photo():
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    before = photo_choice(at)
    for name, (data, message) in BAD.items():
        at.file_uploader(key=photos.UPLOAD_KEY).set_value((f"{name}.png", data, "image/png"))
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and message in errors[0], (name, errors)
        assert "previous photo" in errors[0]
        assert photo_choice(at) == before
        assert figure(at, "skeleton_unary")                  # the page still works
    # grayscale and RGBA are fine: converted, with a note saying so
    for mode, what in (("L", "grayscale"), ("RGBA", "RGBA")):
        at.file_uploader(key=photos.UPLOAD_KEY).set_value((f"{mode}.png", _png(mode, (80, 120)), "image/png"))
        at.run()
        assert not at.exception and not at.error
        assert photo_choice(at) == f"Your photo: {mode}.png"
        assert any(what in i.value and "converted to RGB" in i.value for i in at.info)
        fig = figure(at, "photo_box")
        assert arr(fig["layout"]["xaxis"]["range"])[1] >= 79     # the new 80 x 120 photo is shown
    # EXIF orientation is applied: stored 80 x 120, "rotate 90°" tag -> shown 120 x 80
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (80, 120), (200, 30, 30)).save(buf, format="JPEG", exif=exif.tobytes())
    at.file_uploader(key=photos.UPLOAD_KEY).set_value(("phone.jpg", buf.getvalue(), "image/jpeg"))
    at.run()
    assert not at.exception and not at.error and photo_choice(at) == "Your photo: phone.jpg"
    assert "(120×80 px)" in " ".join(c.value for c in at.caption)


def test_result_json_and_png_hold_the_prediction(pred):
    rgb = load_image(SAMPLE)
    ph = photos.Photo("s.jpg", rgb, photos.digest_of(rgb), "sample")
    out = photos.result_json(ph, pred, pred.box, common.SHIPPED)
    text = json.dumps(out, allow_nan=False)                     # valid JSON: no NaN
    assert json.loads(text)["photo"]["width"] == rgb.shape[1]
    for m in pred.joints:
        got = np.array([[j["x"], j["y"]] for j in out["methods"][m]["joints"]])
        np.testing.assert_allclose(got, pred.joints[m], atol=0.01)
        assert [j["name"] for j in out["methods"][m]["joints"]] == list(NAMES)
    if "regressor" in out["methods"]:
        assert all(j["confidence"] is None for j in out["methods"]["regressor"]["joints"])
    png = plots.annotated_png(rgb, [("a", pred.joints["unary"]), ("b", pred.joints["unary"])], pred.box)
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG" and im.width > 2 * rgb.shape[1]


# ------------------------------------------------------------------ Part detector
def test_detector_page_shows_the_models_unaries(app, pred, lab):
    at = go(app, "detector")
    assert at.title[0].value == "Part detector"
    assert lesson_links(at) == ["lesson=02_part_detector.md"]
    grid = figure(at, "unary_grid")
    maps = heatmaps(grid)
    assert len(maps) == 14
    for k in range(14):
        np.testing.assert_allclose(maps[k], pred.unary[k].numpy(), rtol=1e-4, atol=1e-6)
    titles = [a["text"] for a in grid["layout"]["annotations"]]
    assert titles[:14] == list(NAMES)
    banks = lab.pose.detector.cfg.banks
    for i in range(banks):
        assert figure(at, f"bank_input_{i}")["data"][0]["type"] == "image"
    assert len(heatmaps(figure(at, "features"))) == 8           # the 8 strongest channels by default
    over = heatmaps(figure(at, "unary_overlay"))
    np.testing.assert_allclose(over[0], pred.unary[R_WRIST].numpy(), rtol=1e-4, atol=1e-6)
    # another joint, another map
    next(s for s in at.selectbox if s.label == "Joint").set_value(R_ANKLE)
    at.run()
    np.testing.assert_allclose(heatmaps(figure(at, "unary_overlay"))[0], pred.unary[R_ANKLE].numpy(),
                               rtol=1e-4, atol=1e-6)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 14
    # per-map colour scales show the same values
    at.segmented_control(key="unary_scale").set_value("Per map")
    at.run()
    maps = heatmaps(figure(at, "unary_grid"))
    np.testing.assert_allclose(maps[3], pred.unary[3].numpy(), rtol=1e-4, atol=1e-6)
    assert [t["zmax"] for t in figure(at, "unary_grid")["data"] if t["type"] == "heatmap"][3] == \
        pytest.approx(float(pred.unary[3].max()), rel=1e-5)


# ------------------------------------------------------------------ Spatial priors
def test_priors_page_shows_the_learned_kernel(app, pred, lab):
    sp = lab.spatial
    if sp is None:
        pytest.skip("the shipped model has no spatial model")
    at = go(app, "priors")
    assert lesson_links(at) == ["lesson=03_spatial_priors.md"]
    for a, v in ((R_KNEE, R_ANKLE), (L_ELBOW, graph.neighbours(sp.edges, L_ELBOW)[1])):
        if a != R_KNEE:
            at.selectbox(key="prior_a").set_value(a)
            at.run()
        assert not at.exception
        assert at.selectbox(key=f"prior_v_{a}").value == v
        (k,) = heatmaps(figure(at, "prior_kernel"))
        np.testing.assert_allclose(k, sp.prior()[sp.edge_index(a, v)].detach().numpy(), rtol=1e-5)
        # the histogram it started from: the mini set's, scaled to a peak of 1
        train = PoseCache(MINI_PATH)["train"]
        want = lab.empirical_priors(train.coords, train.labelled, 128)[sp.edge_index(a, v)]
        (h,) = heatmaps(figure(at, "prior_hist"))
        np.testing.assert_allclose(h, want / want.max(), rtol=1e-4, atol=1e-6)
        # placed on the crop at the sliders' position
        digest = photos.digest_of(load_image(SAMPLE))
        sx, sy = at.slider(key=f"prior_vx_{digest}_{v}"), at.slider(key=f"prior_vy_{digest}_{v}")
        (placed,) = heatmaps(figure(at, "prior_placed"))
        np.testing.assert_allclose(placed, sp.prior_at(a, v, (sx.value, sy.value)), rtol=1e-5, atol=1e-9)
    # the slider fallback moves v
    sx.set_value(3)
    sy.set_value(28)
    at.run()
    (placed,) = heatmaps(figure(at, "prior_placed"))
    np.testing.assert_allclose(placed, sp.prior_at(L_ELBOW, v, (3, 28)), rtol=1e-5, atol=1e-9)
    grid = [t for t in figure(at, "prior_placed")["data"] if t.get("name") == "grid"]
    assert len(grid) == 1 and len(arr(grid[0]["x"])) == sp.cfg.heatmap_size ** 2   # clickable cells


# ------------------------------------------------------------------ Message passing
def test_message_steps_follow_step_through(app, pred, lab):
    sp = lab.spatial
    if sp is None:
        pytest.skip("the shipped model has no spatial model")
    at = go(app, "messages")
    assert lesson_links(at) == ["lesson=04_message_passing.md"]

    def check(a, i):
        steps = sp.step_through(pred.unary[None], a)
        (ls,) = heatmaps(figure(at, "msg_log_sum"))
        np.testing.assert_allclose(ls, steps[i]["log_sum"].numpy(), rtol=1e-4, atol=1e-5)
        (msg,) = heatmaps(figure(at, "msg_message"))
        np.testing.assert_allclose(msg, steps[i]["message"].numpy(), rtol=1e-4, atol=1e-6)
        tex = at.latex[1].value
        assert tex.count(r"\colorbox") == 1
        current = tex.split(r"\colorbox")[1]
        assert NAMES[steps[i]["v"]] in current.split("$}")[0]
        assert f"Step {i + 1} of {len(steps)}" in " ".join(m.value for m in at.markdown)

    assert at.selectbox(key="msg_joint").value == R_WRIST
    check(R_WRIST, 0)
    at.button(key="msg_next").click()
    at.run()
    check(R_WRIST, 1)
    at.button(key="msg_prev").click()
    at.run()
    check(R_WRIST, 0)
    at.selectbox(key="msg_joint").set_value(NECK)
    at.run()
    check(NECK, 0)
    n = len(graph.neighbours(sp.edges, NECK))
    at.slider(key=f"msg_step_{NECK}").set_value(n)
    at.run()
    check(NECK, n - 1)
    assert at.button(key="msg_next").disabled
    at.button(key="msg_prev").click()
    at.run()
    check(NECK, n - 2)
    assert at.slider(key=f"msg_step_{NECK}").value == n - 1


def test_message_examples_are_found_and_open(app, lab):
    if lab.spatial is None:
        pytest.skip("the shipped model has no spatial model")
    at = go(app, "messages")
    val = PoseCache(MINI_PATH)["val"]
    buttons = [b for b in at.button if b.key and b.key.startswith("msg_ex_")]
    assert len(buttons) <= 4
    if not buttons:
        assert "No example found" in at.info[-1].value
        return
    # the first button names a wrist/ankle in a validation crop whose unary has a second peak
    # that the product really suppressed (checked here on that crop alone)
    joint_name, crop_id = buttons[0].label.split(" in ")
    k, i = NAMES.index(joint_name), val.ids.index(crop_id)
    assert k in (R_WRIST, 11, R_ANKLE, 5)
    crop = val.images[i]
    p = lab.predict(crop, photos.example_photo("x", crop).box)
    pc = peak_competition(p.unary[k], p.log_marginal[k])
    assert pc["unary_ratio"] >= 0.3 and pc["change"] > 0
    buttons[0].click()
    at.run()
    assert not at.exception
    assert at.selectbox(key="msg_joint").value == k
    assert photo_choice(at) == f"Example crop: {crop_id} (mini validation crop)"
    steps = lab.spatial.step_through(p.unary[None], k)
    (ls,) = heatmaps(figure(at, "msg_log_sum"))
    np.testing.assert_allclose(ls, steps[-1]["log_sum"].numpy(), rtol=1e-4, atol=1e-5)   # opens at the end
    assert any("Example found by the scan" in i.value for i in at.info)


# ------------------------------------------------------------------ Lessons
def test_lessons_link_to_their_pages_and_back(app):
    at = go(app, "lessons")
    radio = at.radio(key="lesson_pick")
    page_of = {v: k for k, v in common.LESSON_OF.items()}          # lesson file -> url path
    assert list(radio.options)[:len(page_of)] and len(radio.options) == 6
    for name, path in page_of.items():
        at.query_params["lesson"] = name                           # as common.lesson_link sends it
        at.run()
        assert not at.exception
        assert at.radio(key="lesson_pick").value == name
        links = [p.proto for p in at.get("page_link")]
        opens = [p for p in links if p.label.startswith("Open the")]
        assert len(opens) == 1, name
        assert opens[0].page == ("" if path == "try-it" else path)
        assert not any("](/" in m.value for m in at.markdown)      # rewritten, not left as text links
    # and the Try it page's lesson link carries the lesson the Lessons page opens
    assert common.LESSON_OF["try-it"] == "01_heatmaps.md"


# ------------------------------------------------------------------ other kinds of model
def test_pages_work_with_a_full_graph_and_a_detector_only_model(tmp_path, monkeypatch):
    """A retrained model may use the fully connected graph, or have no spatial model at all."""
    from lab.config import DetectorConfig, SpatialConfig, from_dict, to_dict
    from lab.infer import POSE_WEIGHTS
    from lab.models import io
    from lab.models.pose import PoseNet

    base, meta = io.load(POSE_WEIGHTS)
    det = from_dict(DetectorConfig, meta["detector"])
    for name, spatial in (("full", SpatialConfig(graph="full")), ("det", None)):
        model = PoseNet(det, spatial)
        model.detector.load_state_dict(base.detector.state_dict())
        (tmp_path / name).mkdir()
        io.save(tmp_path / name / "pose.safetensors", model,
                dict(meta, spatial=to_dict(spatial) if spatial else None))
        (tmp_path / name / "status.json").write_text(json.dumps({"label": name}))
    monkeypatch.setattr(common, "RUNS_DIR", tmp_path)
    # the example scan (100 crops) is tested above; here it would only cost time
    monkeypatch.setattr(PoseLab, "find_suppressed_peaks", lambda self, *a, **k: [])
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    for label in ("Retrained: full", "Retrained: det"):
        at.sidebar.selectbox(key="model_choice").set_value(label)
        for view in ("try_it", "detector", "priors", "messages"):
            go(at, view)
            if label.endswith("det") and view in ("priors", "messages"):
                assert "no spatial model" in at.warning[0].value
        if label.endswith("full"):          # 14 neighbours: every joint, in the equation's rows
            assert at.latex[1].value.count(r"\log m_") == 14
        else:
            go(at, "try_it")
            assert "Detector + spatial model" in at.warning[0].value
            assert figure(at, "skeleton_unary") and figure(at, "skeleton_regressor")
