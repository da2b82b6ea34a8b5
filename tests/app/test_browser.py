"""End to end in a real browser: the app as users start it (`streamlit run lab/app/main.py`),
driven in Debian's Chromium through Playwright.

One app and one browser tab for the whole module, so the steps share a Streamlit session:
  1. app start -> the Try it page rendered (timed)
  2. Try it: upload a photo, wait for the three skeletons redrawn (timed); then a 12-MP
     photo of three people: numbered boxes, pick person 2 from the list, its skeletons drawn (timed)
  3. sidebar link to Part detector: the uploaded photo is still the current one and the
     14 unary heatmaps are drawn with data (timed)
  4. Message passing: Next moves the step-through from step 1 to step 2
  5. Retrain: a tiny run (mini set, 4 epochs, 64 crops) shows progress, finishes, and is
     offered in the sidebar's Model choice
No page may show a Streamlit exception box, a traceback or "Page not found".

Artifacts (repo-root artifacts/, gitignored): screenshots/<nn>-<name>.png for every step and
browser_timings.json with the measured seconds (also printed, and attached with
record_property). Training runs go to a temporary POSE_LAB_RUNS, never to runs/.

Waits are generous (POSE_LAB_BROWSER_TIMEOUT seconds each, default 120) because the lab
is often run next to a CPU-heavy training job; raise it on a loaded machine.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import browser_util as bu
import pytest
from PIL import Image

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(bu.CHROMIUM).is_file(), reason=f"needs Debian's Chromium at {bu.CHROMIUM} "
                       "(apt-get install chromium); the browser test never downloads one"),
]
playwright_sync = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")

TIMEOUT = float(os.environ.get("POSE_LAB_BROWSER_TIMEOUT", "120"))
UPLOAD_SAMPLE = "lsp_im1041.jpg"        # mirrored, so its pixels (the app's cache key) are new
RUN_LABEL = "browser test run"
EPOCHS, TRAIN_SIZE = 4, 64              # detector x 3 + spatial x 1 epochs, 4 batches of 16 each: a few seconds
TIMINGS: dict[str, float] = {}
STATE: dict[str, object] = {}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def app(tmp_path_factory, request):
    server, seconds = bu.serve_app(tmp_path_factory, request, "browser_app", TIMEOUT)
    TIMINGS["app_start_to_healthy_s"] = round(seconds, 2)
    return server


@pytest.fixture(scope="module")
def page(app, request):
    pg = bu.new_page(bu.chromium(request), timeout_ms=int(TIMEOUT * 1000))
    console_errors: list[str] = []
    pg.on("pageerror", lambda e: console_errors.append(str(e)))
    STATE["console_errors"] = console_errors
    failed: list[str] = []
    pg.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    STATE["failed_requests"] = failed
    return pg


@pytest.fixture(scope="module", autouse=True)
def _timings_file():
    for old in bu.SCREENSHOTS.glob("[0-9][0-9]-*.png"):     # only this run's screenshots stay
        old.unlink()
    yield
    if TIMINGS:
        bu.write_json(bu.ARTIFACTS / "browser_timings.json",
                      {"timings_s": TIMINGS, "timeout_s": TIMEOUT,
                       "note": "seconds, measured in Debian Chromium driven by Playwright"})
        print("\nbrowser timings (s): " + ", ".join(f"{k} {v}" for k, v in TIMINGS.items()))


def shot(page, name: str) -> None:
    bu.screenshot(page, name)


def assert_clean(page, where: str) -> None:
    found = bu.problems(page)
    assert not found, f"{where}: {found}"


def need(key: str) -> None:
    if not STATE.get(key):
        pytest.skip(f"needs the earlier step that sets {key!r}")


# ------------------------------------------------------------------ 1-2. Try it
def test_try_it_renders_and_an_upload_is_predicted(app, page, tmp_path, record_property):
    t_goto = time.perf_counter()
    t_title, t_results = bu.open_try_it(page, app.url, 2 * TIMEOUT)     # cold start: torch, models
    TIMINGS["app_start_to_first_page_s"] = round(t_goto + t_title - app.started_at, 2)
    TIMINGS["page_load_to_first_results_s"] = round(t_results, 2)
    bu.wait_idle(page, TIMEOUT)
    shot(page, "01-try-it-first-page")
    assert_clean(page, "Try it")
    assert bu.selectbox_value(page, "Photo") == "Tennis serve (LSP im1007)"

    photo = bu.mirrored_photo(UPLOAD_SAMPLE, tmp_path / "my_goalkeeper.jpg")
    TIMINGS["upload_to_results_s"] = round(bu.upload_photo(page, photo, TIMEOUT), 2)
    bu.wait_idle(page, TIMEOUT)
    shot(page, "02-try-it-uploaded")
    assert_clean(page, "Try it after the upload")
    with Image.open(photo) as im:
        w, h = im.size
    assert page.get_by_text(f"The photo ({w}×{h} px)").count() == 1, "the caption names the uploaded photo's size"
    STATE["upload"] = photo.name
    for k in ("app_start_to_first_page_s", "upload_to_results_s"):
        record_property(k, TIMINGS[k])


# ------------------------------------------------------------------ 2b. a group photo
def test_group_photo_pick_the_second_person(page, tmp_path, record_property):
    """A 12-MP photo of three people: numbered boxes on the photo, the largest picked by
    default; picking number 2 from the Person list analyses the second person, and a click on
    number 3 on the photo the third, and a box dragged with Box Select becomes the crop (timed)."""
    need("upload")
    photo = bu.group_photo(tmp_path / "my_team.jpg")
    TIMINGS["upload_12mp_group_to_results_s"] = round(bu.upload_photo(page, photo, TIMEOUT), 2)
    bu.wait_idle(page, TIMEOUT)
    assert_clean(page, "Try it after the group upload")
    people = [t for t in bu.plot(page, "photo_box")["traces"] if t["name"] == "people"]
    assert len(people) == 1, "the numbered people are drawn on the photo"
    assert (bu.person_pick(page) or "").startswith("1 · most prominent")
    first = bu.skeleton_signature(page)
    side = lambda: page.locator('[data-testid="stSlider"]', has_text="Crop side").locator(
        'input[type="range"]').first.input_value()
    side_first = side()
    shot(page, "02b-group-photo")
    TIMINGS["pick_person_2_to_results_s"] = round(bu.choose_person(page, 2, TIMEOUT), 2)
    bu.wait_idle(page, TIMEOUT)
    assert bu.person_pick(page).startswith("2 ·") and bu.skeleton_signature(page) != first
    assert page.get_by_text("detected person 2 of").count() >= 1
    assert side() != side_first, "the crop sliders follow the picked person"
    shot(page, "02c-group-second-person")
    assert_clean(page, "Try it after picking person 2")
    TIMINGS["click_person_3_to_results_s"] = round(bu.click_person(page, 3, TIMEOUT), 2)
    bu.wait_idle(page, TIMEOUT)
    assert bu.person_pick(page).startswith("3 ·"), "a click on number 3 on the photo picks person 3"
    assert_clean(page, "Try it after clicking person 3")
    before = bu.skeleton_signature(page)
    TIMINGS["drag_box_to_results_s"] = round(bu.drag_box(page, (1700, 300, 2700, 1300), TIMEOUT), 2)
    bu.wait_until(lambda: bu.skeletons_redrawn(page, before), TIMEOUT, what="skeletons in the dragged box")
    bu.wait_idle(page, TIMEOUT)
    assert_clean(page, "Try it after dragging a box")
    bu.choose_person(page, 2, TIMEOUT)                      # back to person 2 for the pages that follow
    bu.wait_idle(page, TIMEOUT)
    STATE["upload"] = photo.name
    for k in ("upload_12mp_group_to_results_s", "pick_person_2_to_results_s", "click_person_3_to_results_s",
              "drag_box_to_results_s"):
        record_property(k, TIMINGS[k])


# ------------------------------------------------------------------ 3. Part detector
def test_detector_keeps_the_upload_and_draws_14_unary_heatmaps(page, record_property):
    need("upload")
    TIMINGS["page_switch_to_detector_heatmaps_s"] = round(bu.switch_to_detector(page, TIMEOUT), 2)
    record_property("page_switch_to_detector_heatmaps_s", TIMINGS["page_switch_to_detector_heatmaps_s"])
    bu.wait_idle(page, TIMEOUT)
    # session state survived the client-side page switch: the photo is still the upload
    assert page.locator('[data-testid="stExpander"]', has_text=f"Photo: Your photo: {STATE['upload']}").count() == 1
    grid = bu.unary_grid_ok(page)
    assert grid is not None
    assert "right wrist" in grid["annotations"] and "head top" in grid["annotations"]
    heat = [t for t in grid["traces"] if t["type"] == "heatmap"]
    assert all(t["n"] == heat[0]["n"] >= 16 * 16 for t in heat), [t["n"] for t in heat]
    metas = {p["meta"] for p in bu.plots(page)}
    assert {"bank_input_0", "features", "unary_grid", "unary_overlay"} <= metas, metas
    page.get_by_role("heading", name="3 · The 14 unary heatmaps").scroll_into_view_if_needed()
    shot(page, "03-detector-unary-heatmaps")
    assert_clean(page, "Part detector")


# ------------------------------------------------------------------ 4. Message passing
def _step_text(page) -> str:
    """The "Step i of n: adding the message from ..." line."""
    return next((t for t in bu.texts(page, '[data-testid="stMarkdownContainer"]')
                 if t.startswith("Step ") and "adding the message" in t), "")


def test_messages_next_moves_one_step(page):
    need("upload")
    bu.nav(page, "Message passing")
    bu.wait_title(page, "Message passing", TIMEOUT)
    bu.wait_until(lambda: "Step 1 of" in _step_text(page) and bu.plot(page, "msg_unary_v"), TIMEOUT,
                  what="step 1 of the message passing")
    bu.wait_idle(page, TIMEOUT)
    assert_clean(page, "Message passing")
    first = _step_text(page)
    v1 = bu.plot(page, "msg_unary_v")["title"]
    eq1 = page.locator(".katex-display").nth(1).inner_html()
    page.get_by_role("heading", name="Message passing, step by step").scroll_into_view_if_needed()
    shot(page, "04-messages-step-1")

    page.get_by_role("button", name="Next ▶").click()
    bu.wait_until(lambda: "Step 2 of" in _step_text(page) and not bu.plot(page, "msg_unary_v")["stale"]
                  and bu.plot(page, "msg_unary_v")["title"] != v1, TIMEOUT, what="step 2")
    bu.wait_idle(page, TIMEOUT)
    second = _step_text(page)
    assert first.split(":")[0].replace("1 of", "2 of") == second.split(":")[0], (first, second)
    assert page.locator(".katex-display").nth(1).inner_html() != eq1, "the highlighted term moved"
    assert "steps 1–2" in bu.plot(page, "msg_log_sum")["title"]
    bu.wait_until(lambda: "step=2" in page.url, TIMEOUT, what="the link's step")     # a step reruns a fragment
    shot(page, "05-messages-step-2")
    assert_clean(page, "Message passing after Next")
    assert bu.plot(page, "plant_marginal") is None                 # drawn only once its section is opened
    bu.open_section(page, "3 · Plant a joint", TIMEOUT)
    bu.wait_until(lambda: bu.plot(page, "plant_marginal"), TIMEOUT, what="the plant section")
    # another joint A reruns the whole page: the plant section below follows it
    box = page.locator('input[role="combobox"][aria-label="Joint A"]')
    box.click()
    box.fill("left knee")
    box.press("Enter")

    def whole_page() -> bool:
        marginal = bu.plot(page, "plant_marginal")
        return ((bu.selectbox_value(page, "Joint A") or "").lower() == "left knee" and "Step 1 of" in _step_text(page)
                and "joint=l_kne" in page.url and marginal is not None and not marginal["stale"]
                and "left knee" in (marginal["title"] or "").lower())
    bu.wait_until(whole_page, TIMEOUT, what="the whole page for the left knee")
    bu.wait_idle(page, TIMEOUT)
    assert_clean(page, "Message passing after another joint")


# ------------------------------------------------------------------ 5. Retrain
def _set_slider(page, label: str, want: int) -> None:
    """Keyboard, as a learner would: focus the thumb (react-aria's hidden range input), Home to
    its minimum, then ArrowRight one step at a time (integer sliders, step 1)."""
    thumb = page.locator('[data-testid="stSlider"]', has_text=label).locator('input[type="range"]').first
    lo = int(thumb.get_attribute("min"))
    assert lo <= want <= int(thumb.get_attribute("max")), (label, want)
    thumb.focus()
    thumb.press("Home")
    for _ in range(want - lo):
        thumb.press("ArrowRight")
    bu.wait_until(lambda: thumb.input_value() == str(want), TIMEOUT, what=f"slider {label!r} at {want}")
    bu.wait_idle(page, TIMEOUT)
    assert thumb.input_value() == str(want)


def _progress(page) -> tuple[str, float] | None:
    bars = bu.progress_bars(page)
    return bars[0] if bars else None


def _done(page) -> bool:
    """The watched run's heading ("#### label  :green-badge[done]") says done."""
    return any(RUN_LABEL in t and t.rstrip().endswith("done") for t in bu.texts(page, "h4"))


def test_retrain_a_tiny_run_progresses_and_is_offered_as_a_model(page, app, record_property):
    bu.nav(page, "Retrain")
    bu.wait_title(page, "Retrain", TIMEOUT)
    page.get_by_role("button", name="Start training").wait_for(timeout=TIMEOUT * 1000)
    bu.wait_idle(page, TIMEOUT)
    assert_clean(page, "Retrain")
    assert page.get_by_text("No runs yet").count() == 1, "POSE_LAB_RUNS is a fresh folder"

    _set_slider(page, "Epochs (total", EPOCHS)
    _set_slider(page, "Training-set size", TRAIN_SIZE)
    label = page.get_by_label("Run label (optional)")
    label.fill(RUN_LABEL)
    label.press("Enter")
    bu.wait_idle(page, TIMEOUT)
    stages = page.get_by_text("detector × 3 epochs → spatial × 1 epoch")      # after the sliders' rerun
    bu.wait_until(lambda: stages.count() == 1, TIMEOUT, what="the stage plan for 3 epochs")
    shot(page, "06-retrain-settings")

    t0 = time.perf_counter()
    page.get_by_role("button", name="Start training").click()
    seen: list[tuple[float, str, float]] = []           # (seconds since the click, bar text, bar value)

    def look() -> tuple[str, float] | None:
        p = _progress(page)
        if p and (not seen or seen[-1][1:] != p):
            seen.append((round(time.perf_counter() - t0, 1), *p))
        return p
    bu.wait_until(look, TIMEOUT, what="the run's progress bar")
    TIMINGS["retrain_click_to_progress_s"] = round(time.perf_counter() - t0, 2)
    shot(page, "07-retrain-started")

    # follow it: the fragment polls every 1.5 s; the bar's text names stage, epoch and batch
    def finished() -> bool:
        p = look()
        if p and 0 < p[1] < 100:
            if "progress" not in STATE:                         # the first state mid-run
                STATE["progress"] = p
                shot(page, "08-retrain-progress")
            elif not STATE.get("progress_shot") and any(
                    t.startswith("One validation image after epoch") for t in bu.texts(page, "p")):
                STATE["progress_shot"] = p                      # better: an epoch is charted
                time.sleep(0.6)                                 # the bar's 0.5 s CSS transition
                shot(page, "08-retrain-progress")
        return p is None and _done(page)
    bu.wait_until(finished, 4 * TIMEOUT, interval=0.2, what="the run to finish")
    TIMINGS["retrain_click_to_done_s"] = round(time.perf_counter() - t0, 2)
    record_property("retrain_click_to_done_s", TIMINGS["retrain_click_to_done_s"])
    bu.wait_idle(page, TIMEOUT)
    print("\nprogress seen (s after the click, bar text, value):\n  " + "\n  ".join(map(str, seen)))
    assert any("epoch" in text for _, text, _ in seen), seen
    values = [v for _, _, v in seen]
    assert len(seen) >= 2 and values[-1] > values[0], f"the bar should advance: {seen}"
    assert "progress" in STATE, f"no state between 0 and 100% was seen: {seen}"
    assert page.get_by_text("Kept: epoch").count() >= 1
    page.get_by_role("heading", name="Runs").scroll_into_view_if_needed()
    shot(page, "09-retrain-done")
    assert_clean(page, "Retrain after the run")
    runs = [d for d in (app.runs_dir).iterdir() if (d / "pose.safetensors").is_file()]
    assert len(runs) == 1, list(app.runs_dir.iterdir())

    # the sidebar's Model choice offers it
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=TIMEOUT * 1000)
    texts = options.all_inner_texts()
    shot(page, "10-model-choice")
    page.keyboard.press("Escape")
    assert f"Retrained: {RUN_LABEL}" in texts, texts


def test_no_javascript_errors(page):
    errs = STATE.get("console_errors") or []
    print(f"\nfailed requests: {STATE.get('failed_requests')}")
    assert not errs, errs
