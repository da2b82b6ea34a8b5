"""Issue 16 in a real browser (Debian's Chromium through Playwright), one app and one tab:

  1. Try it: a photo of three people; click number k on the photo and check that the crop
     is on the person in the box labelled k (the number inside its own box, the crop's
     centre inside that box and on the pasted person, not on a neighbour);
  2. Lessons: answer a self-check question and see the verdict at once;
  3. the handout (`pose-lab handout --url <this app>`) opened as a file: numbers filled in,
     and its "Try it: hide the right wrist" link opens the Part detector in that state;
  4. (POSE_LAB_MEASURE_RETRAIN=1 only: minutes) the Retrain page's default preset, started
     with one click: wall time from the click to "done" and the kept validation PCK, with the
     load average, written to artifacts/retrain_default.json.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import browser_util as bu
import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(bu.CHROMIUM).is_file(), reason=f"needs Debian's Chromium at {bu.CHROMIUM}"),
]
playwright_sync = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")

TIMEOUT = float(os.environ.get("POSE_LAB_BROWSER_TIMEOUT", "180"))
GROUP_SIZE = (1600, 1200)
# where bu.group_photo pastes its three people: (sample, height, fx, fy) as fractions of the photo
PASTED = (("lsp_im1007.jpg", 0.6, 0.05, 0.2), ("lsp_im1051.jpg", 0.33, 0.45, 0.1), ("lsp_im1041.jpg", 0.2, 0.75, 0.66))


@pytest.fixture(scope="module")
def app(tmp_path_factory, request):
    return bu.serve_app(tmp_path_factory, request, "browser_lessons", TIMEOUT)[0]


@pytest.fixture(scope="module")
def page(app, request):
    return bu.new_page(bu.chromium(request), timeout_ms=int(TIMEOUT * 1000))


def pasted_rects(size) -> list[tuple[float, float, float, float]]:
    """The three pasted photos' rectangles (x0, y0, x1, y1) in photo px."""
    from PIL import Image
    w, h = size
    out = []
    for name, height, fx, fy in PASTED:
        with Image.open(bu.SAMPLES / name) as im:
            k = height * h / im.height
            pw, ph = round(im.width * k), round(height * h)
        x0, y0 = round(fx * w), round(fy * h)
        out.append((x0, y0, min(x0 + pw, w), min(y0 + ph, h)))
    return out


SHAPES_JS = """() => { const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.layout && g.layout.meta === 'photo_box');
  if (!gd) return null;
  const t = gd._fullData.find(d => d.name === 'people');
  return {shapes: (gd.layout.shapes || []).map(s => ({name: s.name, x0: s.x0, x1: s.x1, y0: s.y0, y1: s.y1})),
          numbers: t ? Array.from(t.x).map((x, i) => [x, t.y[i], t.text[i]]) : []}; }"""


def inside(pt, r) -> bool:
    x0, x1 = sorted((r[0], r[2]))
    y0, y1 = sorted((r[1], r[3]))
    return x0 <= pt[0] <= x1 and y0 <= pt[1] <= y1


def test_pick_person_k_and_the_crop_is_that_person(app, page, tmp_path):
    bu.open_try_it(page, app.url, TIMEOUT)
    photo = bu.group_photo(tmp_path / "three_people.jpg", size=GROUP_SIZE)
    bu.upload_photo(page, photo, TIMEOUT)
    bu.wait_idle(page, TIMEOUT)
    got = page.evaluate(SHAPES_JS)
    boxes = {s["name"]: (s["x0"], s["y0"], s["x1"], s["y1"]) for s in got["shapes"] if s["name"]}
    rects = pasted_rects(GROUP_SIZE)
    k = 2
    x, y, text = got["numbers"][k - 1]
    assert text == str(k)
    box = boxes[f"person {k}"]
    assert inside((x, y), box), "number k sits inside box k"
    assert not any(inside((x, y), b) for name, b in boxes.items() if name.startswith("person") and name != f"person {k}")
    bu.click_person(page, k, TIMEOUT)                               # a click on the number, as a learner does
    bu.wait_idle(page, TIMEOUT)
    assert (bu.person_pick(page) or "").startswith(f"{k} ·")
    crop = {s["name"]: s for s in page.evaluate(SHAPES_JS)["shapes"]}["crop"]
    centre = ((crop["x0"] + crop["x1"]) / 2, (crop["y0"] + crop["y1"]) / 2)
    assert inside(centre, box), (centre, box)                       # the crop is on box k ...
    (person,) = [r for r in rects if inside(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), r)]
    assert inside(centre, person)                                   # ... and on the person pasted there
    assert not bu.problems(page)
    bu.screenshot(page, "16a-picked-person-2")


def test_answer_a_self_check_question(app, page):
    bu.nav(page, "Lessons")
    bu.wait_title(page, "Lessons", TIMEOUT)
    bu.wait_idle(page, TIMEOUT)
    question = page.locator('[data-testid="stRadio"]').filter(has=page.get_by_text("8", exact=True)).first
    question.get_by_text("4", exact=True).click()                 # lesson 1: stride 4
    bu.wait_until(lambda: page.get_by_text(re.compile(r"^Right\. 128 / 32 = 4")).count() > 0, TIMEOUT,
                  what="the verdict")
    question.get_by_text("2", exact=True).click()
    bu.wait_until(lambda: page.get_by_text(re.compile(r"^Not quite: the answer is “4”")).count() > 0, TIMEOUT,
                  what="the wrong answer's verdict")
    assert page.get_by_text(re.compile(r"^On your current photo")).count() >= 1
    assert not bu.problems(page)
    bu.screenshot(page, "16b-self-check")


def test_the_handout_opens_and_its_link_opens_the_lab(app, page, tmp_path):
    from lab.cli import main
    out = tmp_path / "handout.html"
    main(["handout", "--url", app.url, "--out", str(out)])
    page.goto(out.as_uri())
    assert page.locator("h1").first.inner_text() == "pose-lab: the lessons"
    body = page.locator("body").inner_text()
    assert "{{" not in body and "Check yourself" in body
    link = page.get_by_role("link", name="Try it: hide the right wrist").first
    assert link.get_attribute("href").startswith(app.url + "/detector?occ=")
    bu.screenshot(page, "16c-handout")
    link.click()
    bu.wait_title(page, "Part detector", TIMEOUT)
    bu.wait_idle(page, TIMEOUT)
    assert bu.selectbox_value(page, "Joint to show") == "right wrist"
    moved = next(t for t in bu.texts(page, "p") if t.startswith("Joints that moved:"))
    assert moved.startswith("Joints that moved: right wrist (")             # the lesson's promise, on screen
    assert not bu.problems(page)


@pytest.mark.skipif(os.environ.get("POSE_LAB_MEASURE_RETRAIN") != "1",
                    reason="minutes of training: set POSE_LAB_MEASURE_RETRAIN=1 to measure the default preset")
def test_retrain_default_preset_through_the_page(app, page):
    page.goto(f"{app.url}/retrain")
    bu.wait_title(page, "Retrain", TIMEOUT)
    page.get_by_role("button", name="Start training").wait_for()
    bu.wait_idle(page, TIMEOUT)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    page.get_by_role("button", name="Start training").click()
    etas = []

    def done():
        for text in bu.texts(page, "p"):
            if text.startswith("Time left: about"):
                etas.append((round(time.perf_counter() - t0, 1), text))
        return any(t.rstrip().endswith("done") for t in bu.texts(page, "h4"))
    bu.wait_until(done, 30 * 60, interval=0.5, what="the default run to finish")
    wall = time.perf_counter() - t0
    kept = page.get_by_text(re.compile(r"^Kept: epoch")).first.inner_text()
    pck = float(re.search(r"validation PCK@0\.2 ([\d.]+)%", kept)[1])
    result = {"wall_s_click_to_done": round(wall, 1), "kept": kept, "val_pck": pck,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cores": os.cpu_count(), "eta_seen": etas[:3] + etas[-2:]}
    bu.write_json(bu.ARTIFACTS / "retrain_default.json", result)
    print("\nretrain default preset:", json.dumps(result))
    assert pck >= 50
    assert etas, "the page shows the time left while it trains"
    if load_before[0] < 1.0:                                       # only a quiet machine can hold the 60 s goal
        assert wall <= 60
