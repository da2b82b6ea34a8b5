"""Issue 9 end to end in Debian's Chromium: type a page's own path, switch a bank off, drag a
rectangle to hide part of the crop, click to plant a joint, and open each copied URL in a
fresh browser context. Every time, the plotted maps (read back from Plotly in the page) are
compared with `lab.touch` computed here on the same crop and weights.

One app for the module; screenshots go to artifacts/screenshots/touch-*.png.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import browser_util as bu
import numpy as np
import pytest
from app_util import framed_box

from lab import touch
from lab.app import grid
from lab.data.images import load_image
from lab.infer import POSE_WEIGHTS, PoseLab
from lab.joints import NAMES, SHORT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(bu.CHROMIUM).is_file(), reason=f"needs Debian's Chromium at {bu.CHROMIUM}"),
]
playwright_sync = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")

TIMEOUT = float(os.environ.get("POSE_LAB_BROWSER_TIMEOUT", "180"))
SAMPLE = Path(__file__).resolve().parents[2] / "lab" / "assets" / "samples" / "lsp_im1007.jpg"
STATE: dict[str, object] = {}

Z_JS = r"""
meta => { for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.closest('[data-stale="true"]') || !gd._fullData) continue;
    const whole = gd.layout && gd.layout.meta === meta;         // the figure, or a panel of a chart of panels
    const own = t => (gd.data[t.index] || {}).meta;
    const heat = gd._fullData.filter(t => t.type === 'heatmap' && (whole || own(t) === meta));
    if (whole || heat.length)
      return heat.map(t => ({z: Array.from(t.z, r => Array.from(r)), grid: (own(t) || {}).grid || null}));
  }
  return null; }
"""
# data (crop px) -> page px of a figure's plot area
XY_JS = r"""
([meta, x, y]) => { const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(g => g.layout && g.layout.meta === meta);
  const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [r.left + xa._offset + xa.d2p(x), r.top + ya._offset + ya.d2p(y)]; }
"""


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def models() -> PoseLab:
    if not POSE_WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    return PoseLab(POSE_WEIGHTS, None)


@pytest.fixture(scope="module")
def crop(models) -> np.ndarray:
    """The crop the pages show for the first sample: the automatic framing, as the app does."""
    rgb = load_image(SAMPLE)
    return models.predict(rgb, framed_box(rgb)).crop


@pytest.fixture(scope="module")
def app(tmp_path_factory, request):
    return bu.serve_app(tmp_path_factory, request, "browser_touch", TIMEOUT)[0]


@pytest.fixture(scope="module")
def browser(app, request):
    return bu.chromium(request)


@pytest.fixture(scope="module")
def page(browser):
    return bu.new_page(browser, timeout_ms=int(TIMEOUT * 1000))


# ------------------------------------------------------------------ helpers
def zs(page, meta: str) -> list[np.ndarray] | None:
    """The figure's (or panel's) heatmaps; a mosaic of maps (`heatmap_grid(mosaic=True)`) as its maps."""
    got = page.evaluate(Z_JS, meta)
    if not got:
        return None
    out = []
    for t in got:
        z = np.asarray(t["z"], np.float64)
        if t["grid"] is None:
            out.append(z)
            continue
        n, h, w, cols = t["grid"]
        out += [z[y0:y0 + h, x0:x0 + w] for x0, y0 in grid.grid_layout(n, h, w, cols)[0]]
    return out


def same(page, meta: str, want) -> bool:
    """The figure's heatmaps equal `want` (a list of (H, W) maps) to float32 precision."""
    got = zs(page, meta)
    want = [np.asarray(w, np.float64) for w in want]
    return got is not None and len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g, w, rtol=1e-4, atol=1e-6) for g, w in zip(got, want))


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def settle(page, what: str, predicate) -> None:
    bu.wait_until(lambda: not bu.running(page) and predicate(), TIMEOUT, what=what)
    bu.wait_idle(page, TIMEOUT)
    assert not bu.problems(page), bu.problems(page)


def fresh_open(browser, url: str):
    """The copied URL in a new browser context: a new Streamlit session."""
    pg = bu.new_page(browser, timeout_ms=int(TIMEOUT * 1000))
    pg.goto(url)
    return pg


def banks_off_maps(models, crop, off):
    return list(models.belief(touch.maps(models, crop, off=off)["unary"]).numpy())


def occluded_wrist(models, crop, q: dict):
    box = tuple(int(t) for t in q["occ"].split(","))
    off = tuple(int(t) - 1 for t in q["off"].split(",")) if q.get("off") else ()
    k = SHORT.index(q["joint"])
    return [models.belief(touch.maps(models, touch.occlude(crop, box), off=off)["unary"])[k].numpy()]


# ------------------------------------------------------------------ the tests
def test_typed_path_opens_the_page_and_a_bank_switches_off(app, page, models, crop):
    page.goto(app.url.rstrip("/") + "/detector")
    bu.wait_title(page, "Part detector", TIMEOUT)
    settle(page, "the page", lambda: zs(page, "unary_grid"))
    assert zs(page, "unary_banks_off") is None                     # drawn only once its section is opened
    bu.open_section(page, "6 · Switch off a bank", TIMEOUT)
    settle(page, "the bank section", lambda: zs(page, "unary_banks_off"))
    assert page.get_by_text("Page not found").count() == 0
    assert same(page, "unary_banks_off", banks_off_maps(models, crop, ()))
    page.get_by_text("Bank 1 on").click()
    settle(page, "bank 1 off", lambda: query(page).get("off") == "1")
    settle(page, "maps with bank 1 off", lambda: same(page, "unary_banks_off", banks_off_maps(models, crop, (0,))))
    page.locator("summary", has_text="6 · Switch off a bank").scroll_into_view_if_needed()
    bu.screenshot(page, "touch-1-bank-off")


def test_dragging_a_rectangle_occludes_it(page, models, crop):
    bu.open_section(page, "7 · Hide part of the crop", TIMEOUT)
    settle(page, "the occlusion section", lambda: zs(page, "occ_unary_after"))
    fig = page.locator(".js-plotly-plot").filter(has=page.locator("text=Drag a rectangle")).first
    fig.scroll_into_view_if_needed()
    x0, y0 = page.evaluate(XY_JS, ["occlusion_crop", 60, 4])
    x1, y1 = page.evaluate(XY_JS, ["occlusion_crop", 100, 40])
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    settle(page, "an occlusion box in the URL", lambda: "occ" in query(page))
    q = query(page)
    box = [int(t) for t in q["occ"].split(",")]
    assert abs(box[0] - 60) <= 4 and abs(box[1] - 4) <= 4 and abs(box[2] - 101) <= 4 and abs(box[3] - 41) <= 4, box
    settle(page, "the occluded unary", lambda: same(page, "occ_unary_after", occluded_wrist(models, crop, q)))
    page.locator("summary", has_text="7 · Hide part of the crop").scroll_into_view_if_needed()
    bu.screenshot(page, "touch-2-occluded")
    STATE["detector_url"] = page.url


def test_the_detector_link_reproduces_the_view(browser, models, crop):
    if not STATE.get("detector_url"):
        pytest.skip("needs the occlusion step")
    pg = fresh_open(browser, STATE["detector_url"])
    try:
        bu.wait_title(pg, "Part detector", TIMEOUT)
        q = query(pg)
        settle(pg, "the linked view", lambda: same(pg, "unary_banks_off", banks_off_maps(models, crop, (0,)))
               and same(pg, "occ_unary_after", occluded_wrist(models, crop, q)))
        assert q.get("off") == "1" and q.get("occ") == query_of(STATE["detector_url"])["occ"]
        bu.screenshot(pg, "touch-3-detector-from-link")
    finally:
        pg.context.close()


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_clicking_plants_a_joint(app, page, models, crop):
    if page.url.startswith(app.url):
        bu.nav(page, "Message passing")
    else:                                               # run on its own: open the page by its path
        page.goto(app.url.rstrip("/") + "/messages")
    bu.wait_title(page, "Message passing", TIMEOUT)
    settle(page, "the message page", lambda: zs(page, "msg_maps"))
    page.get_by_text("The current photo", exact=True).first.click()       # the sample, not an example
    settle(page, "the sample photo", lambda: query(page).get("ex") == "own")
    bu.open_section(page, "3 · Plant a joint", TIMEOUT)
    settle(page, "the plant section", lambda: zs(page, "plant_message"))
    fig = page.locator(".js-plotly-plot").filter(has=page.locator("text=Unary of v")).first
    fig.scroll_into_view_if_needed()
    bu.wait_idle(page, TIMEOUT)
    cx, cy = (float(t) for t in models.codec.to_crop(np.array([10.0, 12.0])))
    x, y = page.evaluate(XY_JS, ["plant_v", cx, cy])
    page.mouse.click(x, y)
    settle(page, "a planted joint in the URL", lambda: "plant" in query(page))
    q = query(page)
    v, hx, hy = q["plant"].split(",")
    assert abs(int(hx) - 10) <= 1 and abs(int(hy) - 12) <= 1, q["plant"]     # the cell clicked (or its neighbour)
    a = SHORT.index(q["joint"])
    unary = touch.maps(models, crop)["unary"]
    at = tuple(float(t) for t in models.codec.to_crop(np.array([float(hx), float(hy)])))
    out = touch.plant(models, unary, a, SHORT.index(v), at)
    settle(page, "the planted message", lambda: same(page, "plant_message", [out["message"].numpy()]))
    page.locator("summary", has_text="3 · Plant a joint").scroll_into_view_if_needed()
    bu.screenshot(page, "touch-4-planted")
    STATE["messages_url"], STATE["planted"] = page.url, out


def test_the_message_link_reproduces_the_planted_joint(browser, models):
    if not STATE.get("messages_url"):
        pytest.skip("needs the planting step")
    pg = fresh_open(browser, STATE["messages_url"])
    try:
        bu.wait_title(pg, "Message passing", TIMEOUT)
        out = STATE["planted"]
        settle(pg, "the linked planted joint", lambda: same(pg, "plant_message", [out["message"].numpy()])
               and same(pg, "plant_marginal", [touch.marginal_map(out["log_marginal"]).numpy()]))
        assert query(pg)["plant"] == query_of(STATE["messages_url"])["plant"]
        assert NAMES  # the page names its joints; the maps above are the check
        bu.screenshot(pg, "touch-5-messages-from-link")
    finally:
        pg.context.close()


def slider_values(page) -> dict[str, str]:
    """Each slider's label -> the value its thumb shows."""
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('[data-testid="stSlider"]'))
        .map(s => [(s.querySelector('label') || {}).innerText || '',
                   (s.querySelector('[data-testid="stSliderThumbValue"]') || {}).innerText || null]))""")


def test_hovering_and_clicking_the_crop_places_v(app, page, models):
    """Spatial priors, section 3: the click grid draws one marker only (`plots.add_click_grid`),
    yet hovering any cell names it and clicking it moves v's sliders there."""
    page.goto(app.url.rstrip("/") + "/priors")
    bu.wait_title(page, "Spatial priors", TIMEOUT)
    settle(page, "the placed prior", lambda: zs(page, "prior_placed"))
    fig = page.locator(".js-plotly-plot").filter(has=page.locator("text=Where p(")).first
    fig.scroll_into_view_if_needed()
    bu.wait_idle(page, TIMEOUT)
    assert fig.locator(".scatterlayer .point").count() <= 3          # the grid's one marker and v's star
    cx, cy = (float(t) for t in models.codec.to_crop(np.array([9.0, 30.0])))
    x, y = page.evaluate(XY_JS, ["prior_placed", cx, cy])
    page.mouse.move(x, y)
    bu.wait_until(lambda: "heatmap (9, 30)" in (fig.locator(".hoverlayer").first.text_content() or ""), TIMEOUT,
                  what="the hover label of cell (9, 30)")
    page.mouse.click(x, y)

    def placed() -> bool:
        v = slider_values(page)
        xs = [val for lab, val in v.items() if lab.endswith(" x (heatmap px)")]
        ys = [val for lab, val in v.items() if lab.endswith(" y (heatmap px)")]
        return xs == ["9"] and ys == ["30"]
    settle(page, "v's sliders at the clicked cell (9, 30)", placed)
    bu.screenshot(page, "touch-6-prior-placed")
