"""Shared helpers for driving the real pose-lab app in Debian's Chromium through Playwright.

Used by tests/app/test_browser.py and scripts/browser_timings.py (which puts the
repository root on sys.path and imports `tests.app.browser_util`).

- `AppServer`: `python -m streamlit run lab/app/main.py` on a free port, in its own
  process group (killed as a group by `stop()`), with POSE_LAB_RUNS pointing wherever
  the caller says; `wait_healthy()` polls /_stcore/health.
- `launch_chromium()`: /usr/bin/chromium, headless, never a downloaded browser.
- Page helpers that read Streamlit's DOM and Plotly's graph divs (`gd.layout.meta` is
  the short id every pose-lab figure carries, see lab/app/plots.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.bench.browser import CHROMIUM, CHROMIUM_ARGS, free_port, launch, wait_healthy  # noqa: F401 (shared)

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "lab" / "app" / "main.py"
SAMPLES = ROOT / "lab" / "assets" / "samples"
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
VIEWPORT = {"width": 1400, "height": 2600}      # Streamlit scrolls inside its own container: be tall
TRACEBACK = "Traceback (most recent call last)"


# ------------------------------------------------------------------ the app
class AppServer:
    """The real app as a subprocess in its own session (process group)."""

    def __init__(self, runs_dir: Path, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs_dir = Path(runs_dir)
        self.log_path = Path(log_path) if log_path else self.runs_dir.parent / f"streamlit-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self._log = None

    def start(self) -> "AppServer":
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, POSE_LAB_RUNS=str(self.runs_dir), PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "streamlit", "run", str(MAIN),
               "--server.headless", "true", "--server.port", str(self.port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               # another edit of lab/ while the test runs must not rerun the page under it
               "--server.fileWatcherType", "none",
               "--server.enableStaticServing", "true"]         # as `pose-lab app`: the charts' plotly.js
        self._log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Seconds from start() until /_stcore/health answers "ok"."""
        wait_healthy(self.url, self.proc, timeout, self.log_tail, what="streamlit")
        return time.perf_counter() - self.started_at

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill the whole process group (streamlit and anything it started)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None


def serve_app(tmp_path_factory, request, name: str, timeout: float) -> tuple[AppServer, float]:
    """A module's app server: started in a fresh folder, stopped at teardown; returns it and the
    seconds it took to become healthy."""
    tmp = tmp_path_factory.mktemp(name)
    server = AppServer(tmp / "runs", log_path=tmp / "streamlit.log")
    request.addfinalizer(server.stop)           # always: the whole process group
    server.start()
    return server, server.wait_healthy(timeout=max(timeout, 120))


def chromium(request):
    """Playwright's Chromium for a module, closed at teardown."""
    import playwright.sync_api
    pw = playwright.sync_api.sync_playwright().start()
    request.addfinalizer(pw.stop)
    browser = launch_chromium(pw)
    request.addfinalizer(browser.close)
    return browser


def launch_chromium(playwright):
    return launch(playwright)


def new_page(browser, timeout_ms: int = 120_000):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(timeout_ms)
    return page


# ------------------------------------------------------------------ photos
def mirrored_photo(sample: str, dst: Path, quality: int = 92) -> Path:
    """A real photo that is not byte- or pixel-identical to a bundled sample (the app caches
    predictions by pixel digest): the sample mirrored left-right, re-encoded as JPEG."""
    from PIL import Image, ImageOps
    with Image.open(SAMPLES / sample) as im:
        ImageOps.mirror(im.convert("RGB")).save(dst, format="JPEG", quality=quality)
    return dst


def group_photo(dst: Path, size: tuple[int, int] = (4000, 3000), quality: int = 90) -> Path:
    """A photo of three people (bundled LSP samples pasted at about 60%, 33% and 20% of the
    height onto a smooth background), `size` = (w, h): 4000 x 3000 is a 12-megapixel phone photo.
    People from left to right: the largest (the default pick), then the two smaller ones."""
    import numpy as np
    from PIL import Image
    w, h = size
    rng = np.random.default_rng(0)
    rgb = np.array(Image.fromarray(rng.integers(60, 200, (3, 4, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR))
    for name, height, fx, fy in (("lsp_im1007.jpg", 0.6, 0.05, 0.2), ("lsp_im1051.jpg", 0.33, 0.45, 0.1),
                                 ("lsp_im1041.jpg", 0.2, 0.75, 0.66)):
        with Image.open(SAMPLES / name) as im:
            k = height * h / im.height
            im = im.convert("RGB").resize((round(im.width * k), round(height * h)), Image.BILINEAR)
            x0, y0 = round(fx * w), round(fy * h)
            rgb[y0:y0 + im.height, x0:x0 + im.width] = np.asarray(im)[: h - y0, : w - x0]
    Image.fromarray(rgb).save(dst, format="JPEG", quality=quality)
    return dst


# ------------------------------------------------------------------ reading the page
PLOTS_JS = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const full = gd._fullData || gd.data || [];
  const traces = full.map(t => {
    let lo = Infinity, hi = -Infinity, n = 0;
    const scan = a => { if (a == null) return;
      if (typeof a === 'number') { if (isFinite(a)) { n++; if (a < lo) lo = a; if (a > hi) hi = a; } return; }
      if (a.length !== undefined) for (let i = 0; i < a.length; i++) scan(a[i]); };
    if (t.type === 'heatmap') scan(t.z);
    return {type: t.type, name: t.name || null, n, lo: n ? lo : null, hi: n ? hi : null,
            meta: typeof t.meta === 'string' ? t.meta : null, grid: (t.meta && t.meta.grid) || null,
            xy: t.type === 'scatter' ? JSON.stringify([Array.from(t.x || []), Array.from(t.y || [])]) : null};
  });
  const titles = {};
  ((gd.layout && gd.layout.annotations) || []).forEach(a => { if (a.name) titles[a.name] = a.text; });
  return {meta: (gd.layout && gd.layout.meta) || null,
          title: (gd.layout && gd.layout.title && gd.layout.title.text) || null,
          rendered: !!gd.querySelector('.main-svg'),
          annotations: Array.from(gd.querySelectorAll('.annotation-text')).map(e => e.textContent),
          width: gd.getBoundingClientRect().width, height: gd.getBoundingClientRect().height,
          stale: !!gd.closest('[data-stale="true"]'),
          titles, traces};
})
"""


def plots(page) -> list[dict]:
    """Every Plotly chart on the page: meta id, rendered?, subplot titles, traces (heatmap z
    range). A chart of several panels (`chart.panels`: each trace's meta names its panel) is
    listed as one entry per panel, as the page would have drawn them apart."""
    out = []
    for p in page.evaluate(PLOTS_JS):
        ids = list(dict.fromkeys(t["meta"] for t in p["traces"] if t["meta"]))
        if not ids:
            out.append(p)
        out += [{**p, "meta": m, "title": p["titles"].get(m), "panel_of": p["meta"],
                 "traces": [t for t in p["traces"] if t["meta"] == m]} for m in ids]
    return out


def plot(page, meta: str) -> dict | None:
    return next((p for p in plots(page) if p["meta"] == meta), None)


def skeletons_redrawn(page, before: dict) -> bool:
    """Every skeleton plot in `before` rendered afresh and showing other joints than then."""
    now = {p["meta"]: p for p in plots(page) if p["meta"] in before}
    if len(now) != len(before) or any(p["stale"] or not p["rendered"] for p in now.values()):
        return False
    sig = skeleton_signature(page)
    return all(sig.get(m) and sig[m] != before[m] for m in before)


def skeleton_signature(page) -> dict:
    """meta -> the joints' scatter coordinates of the Try it page's skeleton figures."""
    return {p["meta"]: "|".join(t["xy"] for t in p["traces"] if t["xy"])
            for p in plots(page) if (p["meta"] or "").startswith("skeleton_") and p["rendered"]}


def running(page) -> bool:
    """Streamlit's "Running…" status widget is showing (a script run is in progress)."""
    return page.locator('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'
                        ).count() > 0


def wait_until(predicate, timeout: float = 120.0, interval: float = 0.25, what: str = "condition"):
    """Poll predicate() (Python side) until truthy; return its value."""
    deadline = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < deadline:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:          # the page may be mid-rerender
            last_err = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                       + (f" (last error: {last_err})" if last_err else ""))


def wait_idle(page, timeout: float = 120.0, settle: float = 0.5) -> None:
    """Until no script run is in progress for `settle` seconds."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        if running(page):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the app was still running after {timeout:.0f} s")


def wait_title(page, text: str, timeout: float = 120.0) -> None:
    page.locator("h1", has_text=text).first.wait_for(state="visible", timeout=timeout * 1000)


def problems(page) -> list[str]:
    """Streamlit exception boxes and traceback text on the page (should be empty)."""
    out = []
    n = page.locator('[data-testid="stException"]').count()
    if n:
        msgs = page.locator('[data-testid="stException"]').all_inner_texts()
        out.append(f"{n} exception box(es): " + " | ".join(m[:300] for m in msgs))
    body = page.locator("body").inner_text()
    if "Page not found" in body:
        out.append("a 'Page not found' dialog")
    if TRACEBACK in body:
        i = body.index(TRACEBACK)
        out.append("traceback text: " + body[i:i + 400])
    return out


# Polling reads go through page.evaluate: one atomic look at the DOM. A locator read
# (inner_text, input_value...) would auto-wait up to the page timeout if Streamlit removed the
# element between count() and the read.
def texts(page, selector: str) -> list[str]:
    """innerText of every element matching a CSS selector, right now."""
    return page.evaluate("s => Array.from(document.querySelectorAll(s)).map(e => e.innerText)", selector)


def selectbox_value(page, label: str) -> str | None:
    """The option shown by a st.selectbox (a react-aria combobox input named by its label)."""
    return page.evaluate("""l => { const e = Array.from(document.querySelectorAll('input[role="combobox"]'))
        .find(i => i.getAttribute('aria-label') === l); return e ? e.value : null; }""", label)


def progress_bars(page) -> list[tuple[str, float]]:
    """(text, value 0-100) of every st.progress on the page."""
    return [tuple(x) for x in page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stProgress"]'))
        .map(e => { const b = e.querySelector('[role="progressbar"]');
                    return [e.innerText.trim(), b ? Number(b.getAttribute('aria-valuenow') || 0) : 0]; })""")]


def nav(page, title: str) -> None:
    """Follow the sidebar's navigation link (a client-side page switch: session state is kept)."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


def open_section(page, label: str, timeout: float = 120.0) -> None:
    """Open a section the page draws only once opened (`lab.app.common.section`, an expander
    whose label is the section's heading), as a learner does: click its heading, unless it is
    open already."""
    details = page.locator('[data-testid="stExpander"] details').filter(has=page.locator("summary", has_text=label)).first
    details.wait_for(timeout=timeout * 1000)
    details.scroll_into_view_if_needed()
    if details.get_attribute("open") is None:
        details.locator("summary").first.click()
    wait_until(lambda: details.get_attribute("open") is not None, timeout, what=f"section {label!r} open")


def screenshot(page, name: str, folder: Path = SCREENSHOTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


# ------------------------------------------------------------------ flows shared by the test and the benchmark
JOINT_NAMES = ("right ankle", "right knee", "right hip", "left hip", "left knee", "left ankle", "right wrist",
               "right elbow", "right shoulder", "left shoulder", "left elbow", "left wrist", "neck", "head top")
# The Try it page always draws these two; "skeleton_regressor" too when a regressor is shipped.
SKELETONS = ("skeleton_unary", "skeleton_marginal")


def skeletons_drawn(page) -> bool:
    sig = skeleton_signature(page)
    return all(m in sig for m in SKELETONS)


def open_try_it(page, url: str, timeout: float = 120.0) -> tuple[float, float]:
    """Load the app's root (Try it is the default page, which Streamlit serves at "/", not at
    /try-it); returns (seconds to the page title, seconds to the skeletons)."""
    t0 = time.perf_counter()
    page.goto(f"{url}/", timeout=timeout * 1000)
    wait_title(page, "Try it", timeout)
    t_title = time.perf_counter() - t0
    wait_until(lambda: skeletons_drawn(page), timeout, what="the skeletons")
    return t_title, time.perf_counter() - t0


def upload_photo(page, path: Path, timeout: float = 120.0) -> float:
    """Upload `path` on the Try it page; seconds until the photo is the current one and every
    skeleton figure has been redrawn with new joints (no figure still stale)."""
    before = skeleton_signature(page)
    assert all(m in before for m in SKELETONS), f"skeletons before the upload: {sorted(before)}"
    t0 = time.perf_counter()
    page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(str(path))

    def done():
        if selectbox_value(page, "Photo") != f"Your photo: {path.name}":
            return False
        return skeletons_redrawn(page, before)
    wait_until(done, timeout, interval=0.1, what=f"the skeletons for {path.name}")
    return time.perf_counter() - t0


def unary_grid_ok(page) -> dict | None:
    """The Part detector page's unary grid if it is drawn with 14 non-constant heatmaps (the
    tiles of one trace, `grid.heatmap_grid(mosaic=True)`) and every joint's subplot title,
    else None."""
    g = plot(page, "unary_grid")
    if g is None or not g["rendered"] or g["stale"]:
        return None
    heat = [t for t in g["traces"] if t["type"] == "heatmap"]
    if sum(t["grid"][0] if t["grid"] else 1 for t in heat) != 14 or \
            not all(t["n"] > 0 and t["hi"] > t["lo"] for t in heat):
        return None
    if not set(JOINT_NAMES) <= set(g["annotations"]):
        return None
    return g


def switch_to_detector(page, timeout: float = 120.0) -> float:
    """Sidebar link to Part detector; seconds until the 14 unary heatmaps are drawn."""
    t0 = time.perf_counter()
    nav(page, "Part detector")
    wait_title(page, "Part detector", timeout)
    wait_until(lambda: unary_grid_ok(page), timeout, interval=0.1, what="the 14 unary heatmaps")
    return time.perf_counter() - t0


def switch_to_try_it(page, timeout: float = 120.0) -> None:
    nav(page, "Try it")
    wait_title(page, "Try it", timeout)
    wait_until(lambda: skeletons_drawn(page), timeout, what="the skeletons")


PERSON_LABEL_START = "Person ("


def person_pick(page) -> str | None:
    """The Try it page's person list value ("2 · centre, 310 px tall (52% of the photo's height)"), or None."""
    return page.evaluate("""p => { const e = Array.from(document.querySelectorAll('input[role="combobox"]'))
        .find(i => (i.getAttribute('aria-label') || '').startsWith(p)); return e ? e.value : null; }""",
                         PERSON_LABEL_START)


def choose_person(page, n: int, timeout: float = 120.0) -> float:
    """Pick person n (1-based) from the Try it page's Person list, as a learner would; seconds
    until the list shows that person and the skeletons are redrawn with new joints."""
    import re
    before = skeleton_signature(page)
    box = page.locator('input[role="combobox"][aria-label^="Person ("]').first
    t0 = time.perf_counter()
    box.click()
    page.get_by_role("option", name=re.compile(rf"^{n} ·")).first.click()
    wait_picked(page, n, before, timeout, f"the skeletons of person {n}")
    return time.perf_counter() - t0


def wait_picked(page, n: int, before: dict, timeout: float, what: str) -> None:
    """Until the Person list shows person n and the skeletons in `before` are redrawn."""
    wait_until(lambda: (person_pick(page) or "").startswith(f"{n} ·") and skeletons_redrawn(page, before),
               timeout, interval=0.1, what=what)


TO_SCREEN_JS = """
([meta, pts, trace, i]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout && g.layout.meta === meta);
  if (!gd || !gd._fullLayout) return null;
  if (trace) {                                     // point i of the named trace instead of `pts`
    const t = gd._fullData.find(d => d.name === trace);
    if (!t) return null;
    pts = [[t.x[i], t.y[i]]];
  }
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return pts.map(([x, y]) => [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)]);
}
"""


def to_screen(page, meta: str, pts=(), trace: str | None = None, i: int = 0) -> list | None:
    """Page pixels of data points `pts` [(x, y), ...] of the chart `meta`, or of point i of its
    trace named `trace`; None when the chart (or trace) is not there."""
    return page.evaluate(TO_SCREEN_JS, [meta, [list(p) for p in pts], trace, i])


def click_person(page, n: int, timeout: float = 120.0) -> float:
    """Click person n's (1-based) numbered marker on the Try it page's photo, as a learner
    would; seconds until the Person list shows that person and the skeletons are redrawn."""
    before = skeleton_signature(page)
    xy = to_screen(page, "photo_box", trace="people", i=n - 1)
    assert xy is not None, "no numbered people on the photo"
    t0 = time.perf_counter()
    page.mouse.click(*xy[0])
    wait_picked(page, n, before, timeout, f"person {n} picked by a click on the photo")
    return time.perf_counter() - t0


def drag_box(page, box: tuple[float, float, float, float], timeout: float = 120.0) -> float:
    """On the Try it page's photo, pick the toolbar's Box Select and drag a box from (x0, y0)
    to (x1, y1) photo px, as a learner would; seconds until the framing says the box is theirs."""
    pts = to_screen(page, "photo_box", [(box[0], box[1]), (box[2], box[3])])
    assert pts is not None, "no photo chart"
    page.mouse.move(*pts[0])                                    # the toolbar shows on hover
    page.locator('[data-title="Box Select"]').first.click()
    t0 = time.perf_counter()
    page.mouse.move(*pts[0])
    page.mouse.down()
    for k in range(1, 11):                                      # a drag, not a jump
        page.mouse.move(pts[0][0] + (pts[1][0] - pts[0][0]) * k / 10, pts[0][1] + (pts[1][1] - pts[0][1]) * k / 10)
    page.mouse.up()
    wait_until(lambda: page.get_by_text("drawn or adjusted by you").count() > 0, timeout, interval=0.1,
               what="the dragged box to become the crop")
    return time.perf_counter() - t0
