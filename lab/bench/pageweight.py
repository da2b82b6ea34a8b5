"""`pose-lab classroom --page-weight`: what each page of the lab costs a learner's browser.

One Chromium context, one tab, as one learner: it opens Try it, uploads a photo of its own,
then opens every other page from the sidebar in order, and comes back to Try it; then it
loads every page afresh by its address (a link a learner opens: the whole app starts in
the tab again, its scripts from the browser's cache). After each
step (once the page's title is shown, no script run is in progress, nothing is stale, every
Plotly figure is drawn, and all that stayed so for SETTLE_S) it records:

  CPU-s          the page's renderer process's CPU time during the step, every thread
                 (CDP Performance.getMetrics, ProcessTime): what drawing the step cost
  main           its main thread's busy time (TaskDuration, in thread time): JavaScript,
                 style, layout, paint; script / layout / style are parts of it
                 (ScriptDuration, LayoutDuration, RecalcStyleDuration); after a page
                 load, the new document's from its start
  received KB    bytes that reached the browser: HTTP bodies as sent (CDP
                 Network.loadingFinished encodedDataLength) plus websocket frames
  figures, traces   Plotly figures on the page and their traces (gd.data)

The figures are the browser's alone; the server runs elsewhere or on other cores. On a busy
machine the main thread is preempted and every figure grows: measure on a quiet one (the
load average is printed). The polling that detects "drawn" runs in the page too, a few ms
per step.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from lab.bench.browser import CHROMIUM_ARGS, UNTHROTTLED, chromium_missing, launch
from lab.errors import LabError

SETTLE_S = 1.0              # the page must stay drawn and idle this long
METRICS = {"cpu_s": "ProcessTime", "task_s": "TaskDuration", "script_s": "ScriptDuration",
           "layout_s": "LayoutDuration", "style_s": "RecalcStyleDuration"}
VIEWPORT = {"width": 1440, "height": 900}

# Drawn and idle: no script run, nothing stale, every Plotly figure drawn; its figures and traces.
DRAWN_JS = r"""
(title) => {
  const ex = document.querySelector('[data-testid="stException"]');
  if (ex) return {error: ex.innerText.slice(0, 300)};
  const h1 = Array.from(document.querySelectorAll('h1')).some(h => h.innerText.includes(title));
  if (!h1) return false;
  if (document.querySelector('[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'))
    return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  const figs = Array.from(document.querySelectorAll('.js-plotly-plot'));
  if (figs.some(gd => !gd.querySelector('.main-svg'))) return false;
  return {figures: figs.length, traces: figs.reduce((a, gd) => a + (gd.data || []).length, 0),
          heatmaps: figs.reduce((a, gd) => a + (gd.data || []).filter(t => t.type === 'heatmap').length, 0)};
}
"""


def parse_metrics(result: dict) -> dict[str, float]:
    """CDP Performance.getMetrics's answer -> {our name: value} for METRICS."""
    try:
        got = {m["name"]: float(m["value"]) for m in result["metrics"]}
    except (KeyError, TypeError, ValueError):
        raise LabError(f"not an answer of CDP Performance.getMetrics: {str(result)[:200]}")
    return {ours: got.get(theirs, 0.0) for ours, theirs in METRICS.items()}


def step_row(name: str, before: dict, after: dict, received: int, drawn: dict, wall_s: float,
             new_document: bool = False) -> dict:
    """One line of the table from the metrics before and after a step. `new_document`: the
    step loaded a new document, whose main-thread counters start at 0 (ProcessTime, the
    renderer process's, goes on)."""
    if new_document:
        before = {**before, **{k: 0.0 for k in METRICS if k != "cpu_s"}}
    row = {"step": name, "wall_s": round(wall_s, 2), "received_kb": round(received / 1024, 1),
           "figures": int(drawn.get("figures", 0)), "traces": int(drawn.get("traces", 0)),
           "heatmaps": int(drawn.get("heatmaps", 0))}
    row.update({k: round(after[k] - before[k], 3) for k in METRICS})
    if row["cpu_s"] < 0:              # a navigation moved the tab to a new renderer: its counters began at 0
        row.update({k: round(after[k], 3) for k in METRICS})
        row["note"] = "new renderer process: counted from its start"
    return row


def table(rows: list[dict]) -> str:
    lines = [f"{'step':<38}{'CPU-s':>7}{'main':>7}{'script':>8}{'layout':>8}{'style':>7}{'recv KB':>10}"
             f"{'figures':>9}{'traces':>8}{'wall s':>8}"]
    for r in rows:
        lines.append(f"{r['step']:<38}{r['cpu_s']:>7.2f}{r['task_s']:>7.2f}{r['script_s']:>8.2f}{r['layout_s']:>8.2f}"
                     f"{r['style_s']:>7.2f}{r['received_kb']:>10.1f}{r['figures']:>9}{r['traces']:>8}"
                     f"{r['wall_s']:>8.1f}")
    for kind in ("open ", "load "):
        pages = [r for r in rows if r["step"].startswith(kind)]
        if pages:
            worst = max(pages, key=lambda r: r["cpu_s"])
            lines.append(f"heaviest page to {kind.strip()}: {worst['step'][5:].split(' (')[0]}, {worst['cpu_s']:.2f} CPU-s, "
                         f"{worst['figures']} figures / {worst['traces']} traces")
    return "\n".join(lines)


def _wait_drawn(page, title: str, timeout: float) -> dict:
    """Until DRAWN_JS holds, with the same figures, for SETTLE_S."""
    deadline = time.monotonic() + timeout
    last, since = None, None
    while time.monotonic() < deadline:
        v = page.evaluate(DRAWN_JS, title)
        if isinstance(v, dict) and "error" in v:
            raise LabError(f"the page shows an exception: {v['error']}")
        if v and v == last:
            if time.monotonic() - since >= SETTLE_S:
                return v
        else:
            last, since = v, time.monotonic()
        time.sleep(0.2)
    raise LabError(f"{title!r} was not drawn and idle after {timeout:.0f} s")


def measure(url: str, timeout: float = 240.0, out=print) -> list[dict]:
    """Walk the pages in one Chromium context; one row per step."""
    from playwright.sync_api import sync_playwright

    from lab.app.common import PAGES
    from lab.bench.learners import SKELETONS_JS, learner_photos
    rows = []
    received = [0]
    with tempfile.TemporaryDirectory(prefix="pose-lab-pageweight-") as tmp, sync_playwright() as pw:
        photo = learner_photos(1, Path(tmp))[0]
        browser = launch(pw, UNTHROTTLED)
        try:
            ctx = browser.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            page.set_default_timeout(timeout * 1000)
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
            cdp.send("Network.enable")
            cdp.on("Network.loadingFinished", lambda e: received.__setitem__(0, received[0] + int(e.get("encodedDataLength", 0))))
            page.on("websocket", lambda ws: ws.on("framereceived", lambda p: received.__setitem__(
                0, received[0] + len(p if isinstance(p, (bytes, str)) else b""))))

            def step(name: str, title: str, act, extra_wait=None, new_document: bool = False) -> None:
                before = parse_metrics(cdp.send("Performance.getMetrics"))
                received[0] = 0
                t0 = time.perf_counter()
                act()
                if extra_wait:
                    extra_wait()
                drawn = _wait_drawn(page, title, timeout)
                wall = time.perf_counter() - t0 - SETTLE_S
                after = parse_metrics(cdp.send("Performance.getMetrics"))
                rows.append(step_row(name, before, after, received[0], drawn, wall, new_document))
                out(table(rows[-1:]).splitlines()[1])

            nav = lambda title: page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
            skeletons = lambda: page.wait_for_function(SKELETONS_JS, arg=[1, None, None], polling=200)
            step("open Try it", "Try it", lambda: page.goto(url + "/"), skeletons, new_document=True)
            first = page.evaluate(SKELETONS_JS, [1, None, None])
            step("upload a photo (Try it)", "Try it",
                 lambda: page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(str(photo)),
                 lambda: page.wait_for_function(SKELETONS_JS, arg=[first["n"], first["sig"], f"Your photo: {photo.name}"],
                                                polling=200))
            for _, title, _ in PAGES[1:]:
                step(f"open {title}", title, lambda t=title: nav(t))
            step("back to Try it", "Try it", lambda: nav("Try it"))
            for _, title, path in PAGES:                      # a link opened: the app starts afresh
                step(f"load {title} (address)", title, lambda p=path: page.goto(f"{url}/{p}"),
                     skeletons if path == "try-it" else None, new_document=True)
        finally:
            browser.close()
    return rows


def run(url: str | None = None, timeout: float = 240.0, out=print) -> dict:
    """Start `pose-lab app` (unless `url`), measure, print; returns the rows."""
    why = chromium_missing()
    if why:
        raise LabError(f"the page-weight benchmark {why}.")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise LabError("the page-weight benchmark needs Playwright: pip install 'pose-lab[test]'.")
    from lab.bench.server import Server, machine
    res = {"machine": machine(), "chromium_args": CHROMIUM_ARGS + UNTHROTTLED}
    with tempfile.TemporaryDirectory(prefix="pose-lab-pageweight-server-") as tmp:
        server = None
        try:
            if url is None:
                server = Server(Path(tmp))
                server.wait_healthy()
                url = server.url
                out(f"pose-lab app started on {url}")
            out(f"one learner in one Chromium context; load average {res['machine']['load_average_at_start']:.2f}")
            out(table([]).splitlines()[0])
            res["rows"] = measure(url, timeout, out)
        finally:
            if server is not None:
                server.stop()
    res["load_average_at_end"] = os.getloadavg()[0]
    out("")
    out(table(res["rows"]))
    out(f"load average (1 min): {res['machine']['load_average_at_start']:.2f} at the start, "
        f"{res['load_average_at_end']:.2f} at the end (a busy machine inflates every figure)")
    return res


def dump(res: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(res, indent=1))
