"""`pose-lab classroom --page-weight`: what each page of the lab costs a learner's browser.

One Chromium context, one tab, as one learner: it opens Try it, uploads a photo of its own,
then opens every other page from the sidebar in order, doing each page's main interaction
once it is open (`INTERACTIONS`: the whole photo, a bank switched off, v moved one cell, the
next message, and opening the sections drawn only once opened), and comes back to Try it; then it
loads every page afresh by its address (a link a learner opens: the whole app starts in
the tab again, its scripts from the browser's cache). Before the walk, Start here (a page of
text) is opened once in a context of its own, its cache empty: Streamlit's own first-visit
floor, before the lab draws anything. After each
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

`--before REF` measures an older commit in the same run: a second server runs that commit's
tree (`git archive REF`, the same Python and data), and the walk alternates, before then
after, `--rounds` times; the table gives each step's median CPU-s before and after and
their ratio, which a busy machine inflates alike on both sides.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
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


def open_section(label: str):
    """A step that opens a section the page draws only once opened (an expander whose label is
    the heading, `lab.app.common.section`): its heading clicked, unless open. On a tree from
    before those sections (`--before`) there is none, and the step costs next to nothing."""
    def act(page) -> None:
        details = page.locator('[data-testid="stExpander"] details').filter(has=page.locator("summary", has_text=label))
        if details.count() and details.first.get_attribute("open") is None:
            details.first.locator("summary").first.click()
    return act


# Each page's main interaction, done once the page is open (a widget click: one script run,
# the figures it changes redrawn), and opening the sections drawn only when opened. Try it's
# is the upload, measured first.
INTERACTIONS = {
    "Try it": [("whole photo", lambda page: page.locator('[data-testid="stButtonGroup"]')
                .get_by_text("Whole photo", exact=True).first.click())],
    "Part detector": [("open 6 · Switch off a bank", open_section("6 · Switch off a bank")),
                      ("switch bank 1 off", lambda page: page.get_by_text("Bank 1 on", exact=True).first.click())],
    "Spatial priors": [("move v one cell", lambda page: page.locator('[data-testid="stSlider"]', has_text=" x (heatmap px)")
                        .first.get_by_role("slider").first.press("ArrowRight"))],
    "Message passing": [("next step", lambda page: page.get_by_role("button", name="Next ▶").first.click()),
                        ("open 3 · Plant a joint", open_section("3 · Plant a joint"))],
    "Heatmaps vs regression": [("open Where the two disagree most", open_section("Where the two disagree most"))],
}


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


def watched_page(browser, timeout: float, received: list[int]):
    """A tab in a fresh context, its renderer's metrics on (CDP, thread time) and every byte it
    receives (HTTP bodies as sent, websocket frames) added to received[0]; (context, page, cdp)."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.set_default_timeout(timeout * 1000)
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    cdp.send("Network.enable")
    cdp.on("Network.loadingFinished", lambda e: received.__setitem__(0, received[0] + int(e.get("encodedDataLength", 0))))
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: received.__setitem__(
        0, received[0] + len(p if isinstance(p, (bytes, str)) else b""))))
    return ctx, page, cdp


def first_visit_floor(browser, url: str, timeout: float) -> dict:
    """Streamlit's own cost of a first visit: Start here (text, no charts) opened in a fresh
    context, its cache empty; what any first visit costs before the lab draws anything."""
    received = [0]
    ctx, page, cdp = watched_page(browser, timeout, received)
    try:
        before = parse_metrics(cdp.send("Performance.getMetrics"))
        t0 = time.perf_counter()
        page.goto(f"{url}/start")
        drawn = _wait_drawn(page, "Start here", timeout)
        after = parse_metrics(cdp.send("Performance.getMetrics"))
        return step_row("first visit of Start here (no charts)", before, after, received[0], drawn,
                        time.perf_counter() - t0 - SETTLE_S, new_document=True)
    finally:
        ctx.close()


def measure(url: str, timeout: float = 240.0, out=print, pages: list[str] | None = None) -> list[dict]:
    """Walk the pages in one Chromium context; one row per step. `pages`: only these titles
    (Try it and its upload always)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from lab.app.common import PAGES
    from lab.bench.learners import SKELETONS_JS, learner_photos
    rows = []
    received = [0]
    with tempfile.TemporaryDirectory(prefix="pose-lab-pageweight-") as tmp, sync_playwright() as pw:
        photo = learner_photos(1, Path(tmp))[0]
        browser = launch(pw, UNTHROTTLED)
        try:
            rows.append(first_visit_floor(browser, url, timeout))
            out(table(rows[-1:]).splitlines()[1])
            _, page, cdp = watched_page(browser, timeout, received)

            def step(name: str, title: str, act, extra_wait=None, new_document: bool = False) -> None:
                before = parse_metrics(cdp.send("Performance.getMetrics"))
                received[0] = 0
                t0 = time.perf_counter()
                try:
                    act()
                    if extra_wait:
                        extra_wait()
                except PlaywrightTimeout:
                    raise LabError(f"page weight, step {name!r}: the page was not drawn within {timeout:.0f} s "
                                   f"({page.url}); --timeout allows more") from None
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
            walk = [p for p in PAGES if pages is None or p[1] in pages or p[1] == "Try it"]
            for _, title, _ in walk[1:] if walk[0][1] != "Try it" else walk:
                step(f"open {title}", title, lambda t=title: nav(t))
                for what, act in INTERACTIONS.get(title, ()):
                    step(f"{what} ({title})", title, lambda a=act: a(page))
            step("back to Try it", "Try it", lambda: nav("Try it"))
            for _, title, path in walk:                       # a link opened: the app starts afresh
                step(f"load {title} (address)", title, lambda p=path: page.goto(f"{url}/{p}"),
                     skeletons if path == "try-it" else None, new_document=True)
        finally:
            browser.close()
    return rows


TREE = Path(__file__).resolve().parents[2]          # the tree this lab is imported from


def _server_env(tree: Path) -> dict:
    """A server that imports `lab` from `tree` (not whatever `pip install -e` points at) and
    reads the same datasets as this process."""
    from lab.config import data_root
    return {"PYTHONPATH": os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "POSE_LAB_DATA": str(data_root())}


def checkout(ref: str, into: Path) -> str:
    """`git archive` of `ref` (this repository's) unpacked into `into`; returns its short commit."""
    try:
        commit = subprocess.run(["git", "-C", str(TREE), "rev-parse", "--short", f"{ref}^{{commit}}"],
                                check=True, capture_output=True, text=True).stdout.strip()
        into.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "-C", str(TREE), "archive", commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise subprocess.CalledProcessError(archive.returncode, "git archive")
    except (OSError, subprocess.CalledProcessError) as e:
        raise LabError(f"--before {ref}: cannot check out that commit of {TREE} ({e}); give a commit, "
                       "branch or tag of this repository.")
    return commit


def compared(before: list[list[dict]], after: list[list[dict]]) -> list[dict]:
    """Per step (the walks are the same, step i of each), the median over rounds of before
    and after, and after / before."""
    def med(runs, i, step, key):
        xs = [rows[i][key] for rows in runs if i < len(rows) and rows[i]["step"] == step]
        return statistics.median(xs) if xs else None
    out = []
    for i, r in enumerate(after[0]):
        s = r["step"]
        row = {"step": s}
        for key in ("cpu_s", "task_s", "received_kb", "figures", "traces"):
            row[f"{key}_before"], row[f"{key}_after"] = med(before, i, s, key), med(after, i, s, key)
        b, a = row["cpu_s_before"], row["cpu_s_after"]
        row["ratio"] = round(a / b, 2) if b else None
        out.append(row)
    return out


def compare_table(rows: list[dict], page_s: float = 1.5, interaction_s: float = 0.5) -> str:
    """Before and after side by side; `*` marks a step over its target (pages `page_s`,
    interactions `interaction_s` CPU-s)."""
    lines = [f"{'step':<38}{'CPU-s before':>13}{'after':>7}{'ratio':>7}{'KB before':>11}{'after':>8}"
             f"{'figs/traces before':>20}{'after':>8}"]
    for r in rows:
        target = page_s if r["step"].startswith(("open ", "load ", "back ", "first ")) else interaction_s
        over = "*" if (r["cpu_s_after"] or 0) > target else " "
        lines.append(f"{r['step']:<38}{r['cpu_s_before'] or 0:>13.2f}{r['cpu_s_after']:>6.2f}{over}"
                     f"{r['ratio'] if r['ratio'] is not None else float('nan'):>7.2f}"
                     f"{r['received_kb_before'] or 0:>11.1f}{r['received_kb_after']:>8.1f}"
                     f"{'%d/%d' % (r['figures_before'] or 0, r['traces_before'] or 0):>20}"
                     f"{'%d/%d' % (r['figures_after'], r['traces_after']):>8}")
    lines.append(f"* over the target: {page_s} CPU-s to open a page, {interaction_s} CPU-s an interaction")
    return "\n".join(lines)


def run(url: str | None = None, timeout: float = 240.0, out=print, before: str | None = None,
        rounds: int = 1, pages: list[str] | None = None) -> dict:
    """Start `pose-lab app` (unless `url`), measure, print; returns the rows. `before`: also
    a server of that commit, measured in turn with this tree's (`rounds` times each)."""
    why = chromium_missing()
    if why:
        raise LabError(f"the page-weight benchmark {why}.")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise LabError("the page-weight benchmark needs Playwright: pip install 'pose-lab[test]'.")
    if before is not None and url is not None:
        raise LabError("--before starts both servers itself: leave out --url.")
    from lab.bench.server import Server, machine
    res = {"machine": machine(), "chromium_args": CHROMIUM_ARGS + UNTHROTTLED}
    with tempfile.TemporaryDirectory(prefix="pose-lab-pageweight-server-") as tmp:
        servers = []
        try:
            trees = {"after": TREE}
            if before is not None:
                res["before"] = {"ref": before, "commit": checkout(before, Path(tmp) / "before" / "tree")}
                trees = {"before": Path(tmp) / "before" / "tree", "after": TREE}
            urls = {}
            if url is not None:
                urls["after"] = url
            else:
                for side, tree in trees.items():
                    (Path(tmp) / side).mkdir(exist_ok=True)
                    servers.append(Server(Path(tmp) / side, env=_server_env(tree)))
                    servers[-1].wait_healthy()
                    urls[side] = servers[-1].url
                    out(f"pose-lab app ({side}: {tree}) started on {urls[side]}")
            out(f"one learner in one Chromium context; load average {res['machine']['load_average_at_start']:.2f}")
            runs: dict[str, list] = {side: [] for side in urls}
            for i in range(rounds if before is not None else 1):
                for side in (urls if i % 2 == 0 else reversed(list(urls))):
                    out(f"{side} (round {i + 1}): " + table([]).splitlines()[0])
                    runs[side].append(measure(urls[side], timeout, out, pages))
                    out(f"load average {os.getloadavg()[0]:.2f}")
            res["rows"] = runs["after"][0]
            if before is not None:
                res["runs"] = runs
                res["compared"] = compared(runs["before"], runs["after"])
        finally:
            for server in servers:
                server.stop()
    res["load_average_at_end"] = os.getloadavg()[0]
    out("")
    if before is not None:
        out(f"before: {before} ({res['before']['commit']}), after: {TREE}; median of {rounds} round(s) each")
        out(compare_table(res["compared"]))
    else:
        out(table(res["rows"]))
    out(f"load average (1 min): {res['machine']['load_average_at_start']:.2f} at the start, "
        f"{res['load_average_at_end']:.2f} at the end (a busy machine inflates every figure)")
    return res


def dump(res: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(res, indent=1))
