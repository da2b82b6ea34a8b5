"""The explore pages (Try it, Part detector, Spatial priors, Message passing, Lessons)
through Streamlit's AppTest on the real navigation app, with both shipped models.

Each page must render without an exception and show the model's own numbers: the figures
are read back from their Plotly JSON (layout.meta names each one) and compared with the
library (PoseLab.predict / belief, SpatialModel.prior / histogram / prior_at,
lab.analysis.message_panels / veto_examples / describe_prior). Nothing here depends on how
accurate the shipped weights are.
"""
from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
from app_util import arr, figure, framed_box, go, heatmaps, joints_of, lesson_links, rerun, specs, start, texts, xy_of
from PIL import Image

from lab import analysis
from lab.app import common, data, download, grid, photos, plots
from lab.data.images import load_image
from lab.errors import LabError
from lab.infer import POSE_WEIGHTS, SCRATCH_WEIGHTS, PoseLab
from lab.joints import L_ELBOW, NAMES, NECK, R_ANKLE, R_KNEE, R_WRIST
from lab.models import graph
from lab.names import METHOD_LABELS, METHODS, PRIOR_HTML

SAMPLE = photos.SAMPLES_DIR / photos.SAMPLES[0].file        # the photo every page starts with
SHIPPED = {common.SHIPPED: POSE_WEIGHTS, common.SCRATCH: SCRATCH_WEIGHTS}


@pytest.fixture(scope="module", params=list(SHIPPED), ids=["imagenet", "scratch"])
def choice(request) -> str:
    """Each shipped model in turn, as the sidebar names it."""
    if not SHIPPED[request.param].is_file():
        pytest.skip(f"no {SHIPPED[request.param].name} here")
    return request.param


@pytest.fixture(scope="module")
def models(choice) -> PoseLab:
    """What the app loads for that choice (PoseLab skips a missing regressor)."""
    try:
        return PoseLab(SHIPPED[choice])
    except LabError:                    # as the app: a regressor that does not load is left out
        return PoseLab(SHIPPED[choice], None)


@pytest.fixture(scope="module")
def pred(models):
    """What the pages compute for the default photo: the most prominent person found
    (lab.people), framed as in training, then predict."""
    rgb = load_image(SAMPLE)
    return models.predict(rgb, framed_box(rgb))


@pytest.fixture(scope="module")
def app(choice):
    """One app session per shipped model, shared by the page tests (the caches make later runs fast)."""
    at = start()
    if choice != common.SHIPPED:
        at.sidebar.selectbox(key=common.CHOICE).set_value(choice)
        rerun(at)
    return at


def photo_choice(at) -> str:
    sel = next(s for s in at.main.selectbox if s.label == "Photo")
    return sel.options[sel.index]


# ------------------------------------------------------------------ Try it
def test_try_it_shows_every_prediction(app, pred, models):
    at = go(app, "try_it")
    assert at.title[0].value == "Try it"
    assert lesson_links(at) == ["lesson=01_heatmaps.md"]
    assert "unary" in pred.joints and ("marginal" in pred.joints) == (models.spatial is not None)
    for m in METHODS:
        if m not in pred.joints:
            assert not [s for s in specs(at) if f"skeleton_{m}" in s]
            continue
        (joints,) = joints_of(figure(at, f"skeleton_{m}"))
        np.testing.assert_allclose(xy_of(joints), pred.joints[m], atol=1e-3)
        assert [c[0] for c in joints["customdata"]] == list(NAMES)
    if models.regressor is None:                    # said plainly, never a traceback
        assert any("Regressor" in w.value and ("regressor weights" in w.value or "could not be loaded" in w.value)
                   for w in at.warning)
    # the crop box drawn on the photo is the detected person's, and the sliders start there
    (rect,) = [r for r in figure(at, "photo_box")["layout"]["shapes"] if r.get("name") == "crop"]
    cx, cy, side = pred.box
    assert rect["x0"] == pytest.approx(cx - side / 2) and rect["y1"] == pytest.approx(cy + side / 2)
    assert {s.label: s.value for s in at.slider}["Crop side (photo px)"] == pytest.approx(round(side))
    assert len(at.get("download_button")) == 2
    assert "one person, roughly centred, seen whole" in texts(at.info)
    # the confidence help fits this detector's loss
    help_unary = analysis.confidence_help(models.pose.detector.cfg)["unary"]
    assert help_unary in texts(at.caption)
    if models.unary_is_log:
        assert "towards 1" not in texts(at.caption)


def test_crop_sliders_change_the_box_and_reset_restores_it(app, pred, models):
    at = go(app, "try_it")
    next(s for s in at.slider if s.label == "Crop side (photo px)").set_value(float(round(pred.box[2]) + 20))
    rerun(at)
    (rect,) = [r for r in figure(at, "photo_box")["layout"]["shapes"] if r.get("name") == "crop"]
    assert rect["x1"] - rect["x0"] == pytest.approx(round(pred.box[2]) + 20)
    want = models.predict(load_image(SAMPLE), (float(round(pred.box[0])), float(round(pred.box[1])),
                                               float(round(pred.box[2]) + 20)))
    (joints,) = joints_of(figure(at, "skeleton_unary"))
    np.testing.assert_allclose(xy_of(joints), want.joints["unary"], atol=1e-3)
    next(b for b in at.button if b.label.startswith("Reset")).click()
    rerun(at)
    (rect,) = [r for r in figure(at, "photo_box")["layout"]["shapes"] if r.get("name") == "crop"]
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
    "9000x9000": (_png_claiming(9000, 9000), f"the limit is {photos.MAX_PIXELS / 1e6:g} MP"),   # ours, below PIL's
    "over the size limit": (b"\x89PNG\r\n\x1a\n" + bytes(photos.MAX_UPLOAD_MB * 2 ** 20), "please upload a smaller"),
}


def test_flip_and_zoom_switch_runs_what_eval_measured(app, choice, models):
    """Off by default; on, the skeletons are PoseLab.predict with eval's flip and zooms, and
    the caption quotes the eval JSON's figures for it."""
    from lab.app.views.try_it import TTA
    tta = data.zoom_and_flip(SHIPPED[choice])
    at = go(app, "try_it")
    switch = [t for t in at.toggle if t.key == TTA]
    if tta is None:                                 # no multi-scale run in its eval JSON: no switch
        assert not switch
        return
    assert switch[0].value is False
    switch[0].set_value(True)
    rerun(at)
    (rect,) = [r for r in figure(at, "photo_box")["layout"]["shapes"] if r.get("name") == "crop"]
    box = ((rect["x0"] + rect["x1"]) / 2, (rect["y0"] + rect["y1"]) / 2, rect["x1"] - rect["x0"])
    want = models.predict(load_image(SAMPLE), box, flip=True, scales=tta["scales"])
    plain = models.predict(load_image(SAMPLE), box)
    (joints,) = joints_of(figure(at, "skeleton_marginal"))
    np.testing.assert_allclose(xy_of(joints), want.joints["marginal"], atol=1e-2)
    assert np.abs(want.joints["marginal"] - plain.joints["marginal"]).max() > 1e-2    # it does change them
    assert f"marginal scores {100 * tta['augmented']:.1f} PCK@0.2" in texts(at.caption)
    next(t for t in at.toggle if t.key == TTA).set_value(False)
    rerun(at)
    (joints,) = joints_of(figure(at, "skeleton_marginal"))
    np.testing.assert_allclose(xy_of(joints), plain.joints["marginal"], atol=1e-2)


def test_bad_uploads_give_a_clear_error_and_keep_the_photo():
    at = start()
    before = photo_choice(at)
    for name, (blob, message) in BAD.items():
        at.file_uploader(key=photos.UPLOAD_KEY).set_value((f"{name}.png", blob, "image/png"))
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


def test_result_json_and_png_hold_the_prediction(pred, models):
    rgb = load_image(SAMPLE)
    ph = photos.Photo("s.jpg", rgb, photos.digest_of(rgb), "sample")
    out = photos.result_json(ph, pred, pred.box, common.SHIPPED, models)
    text = json.dumps(out, allow_nan=False)                     # valid JSON: no NaN
    assert json.loads(text)["photo"]["width"] == rgb.shape[1]
    assert out["model"]["detector_spatial"]["trunk"] == models.pose.detector.cfg.trunk
    for m in pred.joints:
        got = np.array([[j["x"], j["y"]] for j in out["methods"][m]["joints"]])
        np.testing.assert_allclose(got, pred.joints[m], atol=0.01)
        assert [j["name"] for j in out["methods"][m]["joints"]] == list(NAMES)
        assert out["methods"][m]["label"] == METHOD_LABELS[m]
    assert out["methods"]["unary"]["confidence"] == analysis.describe_detector(models.pose.detector.cfg)["confidence"]
    if "regressor" in out["methods"]:
        assert all(j["confidence"] is None for j in out["methods"]["regressor"]["joints"])
    png = download.annotated_png(rgb, [("a", pred.joints["unary"]), ("b", pred.joints["unary"])], pred.box)
    im = Image.open(io.BytesIO(png))
    assert im.format == "PNG" and im.width > 2 * rgb.shape[1]


def test_per_map_colour_scale_has_a_colour_bar_and_true_values_on_hover():
    """'Per map' scaling: each map drawn on its own range, one colour bar saying so (0 = the
    map's min, 1 = its max), the true values kept for the hover."""
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8)).astype(np.float32) * np.array([1.0, 0.1, 0.01], np.float32)[:, None, None]
    fig = grid.heatmap_grid(maps, ["a", "b", "c"], cols=3, shared=False)
    axis = fig.layout.coloraxis
    assert axis.cmin == 0 and axis.cmax == 1 and "own range" in axis.colorbar.title.text
    assert fig.layout.coloraxis.showscale is not False
    for i, t in enumerate(fig.to_plotly_json()["data"]):
        z, custom = arr(t["z"]).reshape(8, 8), arr(t["customdata"]).reshape(8, 8)
        assert z.min() == pytest.approx(0) and z.max() == pytest.approx(1)
        np.testing.assert_allclose(custom, maps[i], rtol=1e-6)
    (t,) = grid.heatmap_grid(maps, ["a", "b", "c"], cols=3, shared=False, mosaic=True).to_plotly_json()["data"]
    at_, gw, gh, _ = grid.grid_layout(3, 8, 8, 3)
    own = arr(t["customdata"]).reshape(gh, gw, 3)
    for i, (x0, y0) in enumerate(at_):              # with `mosaic`: a tile each, on its own range,
        np.testing.assert_allclose(own[y0:y0 + 8, x0:x0 + 8, 2], maps[i], rtol=1e-6)     # true values on hover
        z = heatmaps({"data": [t]})[i]
        assert z.min() == pytest.approx(0) and z.max() == pytest.approx(1)
    assert "%{customdata[2]" in t["hovertemplate"]


def test_a_heatmap_over_a_crop_covers_it_and_takes_its_hover():
    """overlay_figure: the heatmap's cells cover the whole crop, so its hover (crop x, y and
    the value) is the one shown; the crop image's own hover is skipped (the browser then never
    decodes the crop to look its pixels up), and kept where no heatmap lies over it."""
    from lab.data.codec import HeatmapCodec
    codec = HeatmapCodec()
    crop = np.zeros((codec.crop_size, codec.crop_size, 3), np.uint8)
    m = np.random.default_rng(2).random((codec.heatmap_size,) * 2).astype(np.float32)
    image, heat = plots.overlay_figure(crop, m, codec, hover="unary").to_plotly_json()["data"]
    assert image["type"] == "image" and image["hoverinfo"] == "skip"
    assert heat["type"] == "heatmap" and "unary %{z" in heat["hovertemplate"]
    half = codec.stride / 2                                       # the cells reach the crop's edges
    x = arr(heat["x"])
    assert x[0] - half <= -0.5 and x[-1] + half >= codec.crop_size - 0.5
    (alone,) = plots.overlay_figure(crop, None, codec).to_plotly_json()["data"]
    assert alone.get("hoverinfo") != "skip" and "crop x" in alone["hovertemplate"]


def test_a_mosaic_grid_is_one_trace_holding_every_map_with_its_own_pixels_on_hover():
    """`mosaic`: the maps as tiles of one heatmap (cheaper to draw), each titled, the hover
    giving a map's own pixel; the maps read back tile by tile are the maps given."""
    rng = np.random.default_rng(1)
    maps = rng.random((5, 6, 7)).astype(np.float32)
    fig = grid.heatmap_grid(maps, list("abcde"), cols=3, mosaic=True, hover="act").to_plotly_json()
    (t,) = fig["data"]
    assert t["type"] == "heatmap" and t["meta"] == {"grid": [5, 6, 7, 3]} and "act" in t["hovertemplate"]
    got = heatmaps(fig)
    assert len(got) == 5
    for g, m in zip(got, maps):
        np.testing.assert_allclose(g, m)
    at_, gw, gh, _ = grid.grid_layout(5, 6, 7, 3)
    own = arr(t["customdata"]).reshape(gh, gw, 2)
    x0, y0 = at_[4]
    assert own[y0 + 2, x0 + 5].tolist() == [5, 2]                 # map e's pixel (5, 2)
    assert np.isnan(arr(t["z"]).reshape(gh, gw)[y0 - 1, x0])        # the gaps are empty
    assert [a["text"] for a in fig["layout"]["annotations"]] == list("abcde")


def test_annotated_png_titles_stay_inside_their_panels():
    """The three methods' long labels over a narrow photo: each title is wrapped to its own
    panel's width, so no two run into each other."""
    font = download._font(18)
    narrow = np.full((600, 160, 3), 90, np.uint8)
    for m in METHOD_LABELS:
        lines = download.wrap_title(METHOD_LABELS[m], font, 160 - 12)
        assert all(font.getlength(line) <= 160 - 12 for line in lines)
        assert " ".join(lines) == METHOD_LABELS[m]                  # nothing lost when the words fit
    panels = [(METHOD_LABELS[m], np.full((14, 2), 80.0)) for m in ("unary", "marginal", "regressor")]
    im = np.asarray(Image.open(io.BytesIO(download.annotated_png(narrow, panels))).convert("L"))
    band = im.shape[0] - 600
    assert band > 34                                                # room for the wrapped lines
    for i in range(1, 3):                                           # the 8-px gutters hold no title ink
        gutter = im[:band, i * 160 + (i - 1) * 8: i * (160 + 8)]
        assert gutter.min() == 255


# ------------------------------------------------------------------ Part detector
def test_detector_page_draws_the_unary_as_the_spatial_model_reads_it(app, pred, models):
    at = go(app, "detector")
    assert at.title[0].value == "Part detector"
    assert lesson_links(at) == ["lesson=02_part_detector.md"]
    belief = models.belief(pred.unary).numpy()
    fig = figure(at, "unary_grid")
    maps = heatmaps(fig)
    assert len(maps) == 14
    for k in range(14):
        np.testing.assert_allclose(maps[k], belief[k], rtol=1e-4, atol=1e-6)
    assert [a["text"] for a in fig["layout"]["annotations"]][:14] == list(NAMES)
    # the ✕ on each map is the decoded unary peak, in heatmap pixels (the codec's conversion): one
    # trace, customdata (map, x, y), drawn at the map's place in the grid
    (peaks,) = [t for t in fig["data"] if t.get("name") == "unary peak"]
    want = models.codec.to_heatmap(pred.crop_joints("unary"))
    own = arr(peaks["customdata"]).reshape(-1, 3)
    assert own[:, 0].tolist() == list(range(14))
    np.testing.assert_allclose(own[:, 1:], want, atol=1e-4)
    at_, *_ = grid.grid_layout(14, *belief.shape[1:], 7)
    np.testing.assert_allclose(xy_of(peaks) - np.asarray(at_, np.float64), want, atol=1e-4)
    (heat,) = [t for t in fig["data"] if t["type"] == "heatmap"]            # one trace of 14 tiles, each
    assert heat["meta"] == {"grid": [14, *belief.shape[1:], 7]}             # hovering its map's own pixel
    assert "%{customdata[0]}" in heat["hovertemplate"]
    cfg, words = models.pose.detector.cfg, analysis.describe_detector(models.pose.detector.cfg)
    assert words["banks"] in texts(at.markdown) and words["drawn"] in texts(at.caption)
    for i in range(cfg.banks):
        assert figure(at, f"bank_input_{i}")["data"][0]["type"] == "image"
    feats = figure(at, "features")                              # the 8 strongest channels by default,
    assert len(heatmaps(feats)) == 8 and len([t for t in feats["data"] if t["type"] == "heatmap"]) == 1  # one trace
    (over,) = heatmaps(figure(at, "unary_overlay"))
    np.testing.assert_allclose(over, belief[R_WRIST], rtol=1e-4, atol=1e-6)
    next(s for s in at.selectbox if s.label == "Joint").set_value(R_ANKLE)
    rerun(at)
    np.testing.assert_allclose(heatmaps(figure(at, "unary_overlay"))[0], belief[R_ANKLE], rtol=1e-4, atol=1e-6)
    assert len(at.table[0].value) == 14          # the doubt table (the banks and occlusion tables follow)
    at.segmented_control(key="unary_scale").set_value("Per map")
    rerun(at)
    (heat,) = [t for t in figure(at, "unary_grid")["data"] if t["type"] == "heatmap"]     # one trace of tiles
    b3 = np.asarray(belief[3], np.float64)                     # each map on its own range, true values on hover
    n, h, w, cols = heat["meta"]["grid"]
    (x0, y0), gw, gh = grid.grid_layout(n, h, w, cols)[0][3], *grid.grid_layout(n, h, w, cols)[1:3]
    own = arr(heat["customdata"]).reshape(gh, gw, 3)[y0:y0 + h, x0:x0 + w]
    np.testing.assert_allclose(own[..., 2], b3, rtol=1e-4, atol=1e-6)
    assert own[..., 0].max() == w - 1 and own[..., 1].max() == h - 1       # each tile's own pixel
    assert "customdata[2]" in heat["hovertemplate"]
    np.testing.assert_allclose(heatmaps(figure(at, "unary_grid"))[3], (b3 - b3.min()) / (b3.max() - b3.min()),
                               rtol=1e-4, atol=1e-5)
    assert "own range" in figure(at, "unary_grid")["layout"]["coloraxis"]["colorbar"]["title"]["text"]
    at.segmented_control(key="unary_scale").set_value("Shared")
    rerun(at)


# ------------------------------------------------------------------ Spatial priors
def test_priors_page_shows_the_learned_kernel_and_its_histogram(app, pred, models):
    sp = models.spatial
    at = go(app, "priors")
    assert lesson_links(at) == ["lesson=03_spatial_priors.md"]
    assert PRIOR_HTML in texts(at.markdown)
    digest = photos.digest_of(load_image(SAMPLE))
    for a, v in ((R_KNEE, R_ANKLE), (L_ELBOW, graph.neighbours(sp.edges, L_ELBOW)[1])):
        if a != R_KNEE:
            at.selectbox(key="prior_a").set_value(a)
            rerun(at)
        assert at.selectbox(key=f"prior_v_{a}").value == v
        e = sp.edge_index(a, v)
        (k,) = heatmaps(figure(at, "prior_kernel"))
        np.testing.assert_allclose(k, sp.prior()[e].detach().numpy(), rtol=1e-5)
        hist = sp.histogram[e].numpy()                          # stored in the model, scaled to a peak of 1
        (h,) = heatmaps(figure(at, "prior_hist"))
        np.testing.assert_allclose(h, hist / hist.max(), rtol=1e-4, atol=1e-6)
        assert analysis.describe_prior(sp, a, v, models.codec.stride)["sentence"] in texts(at.info)
        sx, sy = at.slider(key=f"prior_vx_{digest}_{v}"), at.slider(key=f"prior_vy_{digest}_{v}")
        n = models.codec.heatmap_size
        vx, vy = np.clip(np.round(models.codec.to_heatmap(pred.crop_joints("marginal")[v])), 0, n - 1).astype(int)
        assert (sx.value, sy.value) == (vx, vy)                 # v starts where the model found it
        (placed,) = heatmaps(figure(at, "prior_placed"))
        np.testing.assert_allclose(placed, sp.prior_at(a, v, (sx.value, sy.value)), rtol=1e-5, atol=1e-9)
    sx.set_value(3)                                             # the slider fallback moves v
    sy.set_value(28)
    rerun(at)
    (placed,) = heatmaps(figure(at, "prior_placed"))
    np.testing.assert_allclose(placed, sp.prior_at(L_ELBOW, v, (3, 28)), rtol=1e-5, atol=1e-9)
    grid = [t for t in figure(at, "prior_placed")["data"] if t.get("name") == "grid"]
    assert len(grid) == 1 and len(arr(grid[0]["x"])) == models.codec.heatmap_size ** 2   # clickable cells
    np.testing.assert_allclose(xy_of(grid[0])[:2], [[1.5, 1.5], [5.5, 1.5]])    # cell centres, by the codec


# ------------------------------------------------------------------ Message passing
@pytest.fixture(scope="module")
def examples(models):
    """What the page scans: lab.analysis.veto_examples on the mini set's example split."""
    name, split = data.example_split()
    n = min(len(split), data.SCAN)
    return analysis.veto_examples(models, split.images[:n], split.coords[:n], split.labelled[:n]), split


def log_sum_shown(at) -> np.ndarray:
    (ls,) = heatmaps(figure(at, "msg_log_sum"))
    return ls


def step_text(at) -> str:
    return next((m.value for m in at.markdown if m.value.startswith("**Step ")), "")


def test_messages_open_on_a_joint_the_spatial_model_fixes(app, models, examples):
    found, split = examples
    at = go(app, "messages")
    assert lesson_links(at) == ["lesson=04_message_passing.md"]
    if not found:                                       # a model with nothing to fix: the learner's photo
        assert "No example found" in texts(at.info)
        return
    ex = found[0]
    assert at.segmented_control(key="msg_source").value == "An example the app found"
    assert at.selectbox(key="msg_joint").value == ex["joint"]
    assert split.ids[ex["index"]] in texts(at.info)
    crop = split.images[ex["index"]]
    p = models.predict(crop, photos.example_photo("x", crop).box)
    steps = analysis.message_panels(models, p, ex["joint"])
    np.testing.assert_allclose(log_sum_shown(at), steps[0]["log_sum"].numpy(), rtol=1e-4, atol=1e-5)
    assert "Step 1 of" in step_text(at)
    star = [t for t in figure(at, "msg_unary_a")["data"] if t.get("name") == "annotated joint"]
    np.testing.assert_allclose(xy_of(star[0])[0], ex["truth"], atol=1e-4)
    assert f"{ex['marginal_error']:.0f} px" in texts(at.markdown)
    # to the last step: the marginal that moved the joint
    at.slider(key=f"msg_step_{ex['joint']}").set_value(len(steps))
    rerun(at)
    np.testing.assert_allclose(log_sum_shown(at), p.log_marginal[ex["joint"]].numpy(), rtol=1e-4, atol=1e-4)
    # every example found is offered; another one opens on its own joint
    buttons = [b for b in at.button if b.key and b.key.startswith("msg_ex_")]
    assert len(buttons) == len(found)
    if len(found) > 1:
        buttons[1].click()
        rerun(at)
        assert at.selectbox(key="msg_joint").value == found[1]["joint"]
        assert split.ids[found[1]["index"]] in texts(at.info)
        assert "Step 1 of" in step_text(at)


def test_messages_follow_the_model_choice(app, choice, examples):
    """Switching the model re-opens the page on the new model's best example."""
    others = [c for c in SHIPPED if c != choice and SHIPPED[c].is_file()]
    if not others or not examples[0]:
        pytest.skip("needs a second shipped model and examples")
    split = examples[1]
    other = PoseLab(SHIPPED[others[0]], None)
    n = min(len(split), data.SCAN)
    theirs = analysis.veto_examples(other, split.images[:n], split.coords[:n], split.labelled[:n])
    at = go(app, "messages")
    at.sidebar.selectbox(key=common.CHOICE).set_value(others[0])
    rerun(at)
    if theirs:
        assert at.selectbox(key="msg_joint").value == theirs[0]["joint"]
        assert split.ids[theirs[0]["index"]] in texts(at.info)
    else:
        assert "No example found" in texts(at.info)
    at.sidebar.selectbox(key=common.CHOICE).set_value(choice)          # back, for the tests after this one
    rerun(at)
    assert at.selectbox(key="msg_joint").value == examples[0][0]["joint"]
    assert split.ids[examples[0][0]["index"]] in texts(at.info)


def test_message_steps_on_the_learners_photo(app, pred, models):
    at = go(app, "messages")
    at.segmented_control(key="msg_source").set_value("The current photo")
    rerun(at)
    assert photo_choice(at) == photos.SAMPLES[0].label

    def check(a, i):
        steps = analysis.message_panels(models, pred, a)
        np.testing.assert_allclose(log_sum_shown(at), steps[i]["log_sum"].numpy(), rtol=1e-4, atol=1e-5)
        (msg,) = heatmaps(figure(at, "msg_message"))
        np.testing.assert_allclose(msg, steps[i]["message"].numpy(), rtol=1e-4, atol=1e-6)
        (uv,) = heatmaps(figure(at, "msg_unary_v"))
        np.testing.assert_allclose(uv, models.belief(pred.unary)[steps[i]["v"]].numpy(), rtol=1e-4, atol=1e-6)
        tex = at.latex[1].value
        assert tex.count(r"\colorbox") == 1
        assert NAMES[steps[i]["v"]] in tex.split(r"\colorbox")[1].split("$}")[0]
        assert f"Step {i + 1} of {len(steps)}" in step_text(at)

    at.selectbox(key="msg_joint").set_value(R_WRIST)
    at.session_state[f"msg_step_{R_WRIST}"] = 1
    rerun(at)
    belief = analysis.describe_detector(models.pose.detector.cfg)["belief_tex"]
    assert "W_{A|v}" in at.latex[0].value and belief in at.latex[0].value
    check(R_WRIST, 0)
    at.button(key="msg_next").click()
    rerun(at)
    check(R_WRIST, 1)
    at.button(key="msg_prev").click()
    rerun(at)
    check(R_WRIST, 0)
    at.selectbox(key="msg_joint").set_value(NECK)
    rerun(at)
    n = len(graph.neighbours(models.spatial.edges, NECK))
    at.slider(key=f"msg_step_{NECK}").set_value(n)
    rerun(at)
    check(NECK, n - 1)
    assert at.button(key="msg_next").disabled
    r = analysis.peak_report(models, pred)[NECK]
    assert f"moved by **{r['moved']:.0f} crop px**" in texts(at.markdown)


# ------------------------------------------------------------------ Lessons
def test_lessons_link_to_their_pages_and_quote_no_number_by_hand(app):
    at = go(app, "lessons")
    radio = at.radio(key="lesson_pick")
    page_of = {v: k for k, v in common.LESSON_OF.items()}          # lesson file -> url path
    assert len(radio.options) == 6
    for name, path in page_of.items():
        at.query_params["lesson"] = name                           # as common.lesson_link sends it
        rerun(at)
        assert at.radio(key="lesson_pick").value == name
        opens = [p.proto for p in at.get("page_link") if p.proto.label.startswith("Open the")]
        assert len(opens) == 1, name
        assert opens[0].page == ("" if path == "try-it" else path)
        shown = texts(at.markdown)
        assert "](/" not in shown                                  # rewritten, not left as text links
        assert "{{" not in shown and "e_{A|v}" not in shown        # numbers filled in; one prior notation
    assert common.LESSON_OF["try-it"] == "01_heatmaps.md"


# ------------------------------------------------------------------ other kinds of model
def test_pages_work_with_a_full_graph_and_a_detector_only_model(tmp_path, monkeypatch):
    """A retrained model may use the fully connected graph, or have no spatial model at all."""
    from lab.config import DetectorConfig, SpatialConfig, from_dict, to_dict
    from lab.models import io
    from lab.models.pose import PoseNet

    base, meta = io.load(POSE_WEIGHTS)
    det = from_dict(DetectorConfig, meta["detector"])
    for name, spatial in (("full", SpatialConfig(graph="full", belief=base.spatial.cfg.belief)), ("det", None)):
        model = PoseNet(det, spatial)
        model.detector.load_state_dict(base.detector.state_dict())
        (tmp_path / name).mkdir()
        io.save(tmp_path / name / "pose.safetensors", model, dict(meta, spatial=to_dict(spatial) if spatial else None))
        (tmp_path / name / "status.json").write_text(json.dumps({"label": name}))
    monkeypatch.setattr(common, "RUNS_DIR", tmp_path)
    monkeypatch.setattr(analysis, "veto_examples", lambda *a, **k: [])    # the scan is tested above
    at = start()
    for label in ("Retrained: full", "Retrained: det"):
        at.sidebar.selectbox(key=common.CHOICE).set_value(label)
        for view in ("try_it", "detector", "priors", "messages"):
            go(at, view)
            if label.endswith("det") and view in ("priors", "messages"):
                assert "no spatial model" in at.warning[0].value
        if label.endswith("full"):          # 14 neighbours: every joint, in the equation's rows
            assert at.latex[1].value.count(r"\log m_") == 14
        else:
            go(at, "try_it")
            assert "Detector + spatial model" in texts(at.warning)
            assert figure(at, "skeleton_unary")
