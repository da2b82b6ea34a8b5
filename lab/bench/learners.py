"""The classroom benchmark's learner (`pose-lab classroom`, lab/bench/classroom.py): one
browser context walking the app's steps, how a phase's learners are paced, when the
server's figures reached the browser, and a photo of its own for every learner.

Each learner

  open       opens the app: the Try it page until its skeletons are drawn
  upload     uploads a photo of its own (a bundled sample, mirrored and rescaled so no two
             learners share pixels, so nothing is served from another learner's cache)
             until the skeletons are redrawn for it ("upload-to-skeleton")
  detector   switches to Part detector until its 14 unary heatmaps (one tiled trace) are drawn
  back       switches back to Try it until the skeletons are drawn again

Also used by the page-weight benchmark (lab/bench/pageweight.py) and the replicas test.
"""
from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

VIEWPORT = {"width": 1440, "height": 900}          # a laptop screen
STEPS = ("open", "upload", "detector", "back")
RECEIVED = "_received"      # suffix: the same step, until its figures reached the browser (see Frames)
STEP_NAMES = {"open": "open Try it -> skeletons", "upload": "upload -> skeletons",
              "detector": "switch -> detector heatmaps", "back": "switch back -> skeletons"}
PHOTOS = ("lsp_im1041.jpg", "lsp_im1051.jpg", "lsp_im1091.jpg", "lsp_im1007.jpg", "astronaut.jpg",
          "wide_lsp_im1033.jpg")
SETTLE_S, IDLE_CPU_S = 15.0, 0.015    # a step's server CPU: until it used under 15 ms in 0.3 s (idle)


# ------------------------------------------------------------------ reading the page (in the browser)
# Skeleton figures are the Try it page's Plotly charts whose layout.meta starts with "skeleton_"
# (lab/app/plots.py). Returns their joints' signature once all are drawn and none is stale.
SKELETONS_JS = r"""
([want, before, photo]) => {
  const ex = document.querySelector('[data-testid="stException"]');
  if (ex) return {error: ex.innerText.slice(0, 300)};
  const figs = Array.from(document.querySelectorAll('.js-plotly-plot'))
      .filter(gd => String((gd.layout || {}).meta || '').startsWith('skeleton_'));
  if (figs.length < want) return false;
  if (figs.some(gd => !gd.querySelector('.main-svg') || gd.closest('[data-stale="true"]'))) return false;
  if (photo) {
    const box = Array.from(document.querySelectorAll('input[role="combobox"]'))
        .find(i => i.getAttribute('aria-label') === 'Photo');
    if (!box || box.value !== photo) return false;
  }
  const sig = figs.map(gd => JSON.stringify((gd.data || []).filter(t => t.type === 'scatter')
      .map(t => [Array.from(t.x || []), Array.from(t.y || [])]))).join('|');
  if (before !== null && sig === before) return false;
  return {n: figs.length, sig: sig};
}
"""
DETECTOR_JS = r"""
() => {
  const ex = document.querySelector('[data-testid="stException"]');
  if (ex) return {error: ex.innerText.slice(0, 300)};
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
      .find(g => (g.layout || {}).meta === 'unary_grid');
  if (!gd || !gd.querySelector('.main-svg') || gd.closest('[data-stale="true"]')) return false;
  // the 14 maps: one heatmap trace of 14 tiles (meta.grid = [n, h, w, cols]) or a trace each
  const heat = (gd._fullData || gd.data || []).filter(t => t.type === 'heatmap');
  return heat.reduce((a, t) => a + ((t.meta && t.meta.grid) ? t.meta.grid[0] : 1), 0) === 14;
}
"""
PROBLEMS_JS = r"""
() => {
  const out = [];
  document.querySelectorAll('[data-testid="stException"]').forEach(e => out.push('exception: ' + e.innerText.slice(0, 200)));
  document.querySelectorAll('[data-testid="stAlertContentError"]').forEach(e => out.push('error: ' + e.innerText.slice(0, 200)));
  const body = document.body ? document.body.innerText : '';
  if (body.includes('Traceback (most recent call last)')) out.push('traceback text');
  if (body.includes('Page not found')) out.push("'Page not found'");
  if (body.includes('Connection error') || body.includes('Is Streamlit still running')) out.push('connection error');
  return out;
}
"""


# ------------------------------------------------------------------ photos
def learner_photos(n: int, folder: Path) -> list[Path]:
    """n photos with pairwise different pixels: bundled samples, mirrored on odd rounds and
    scaled down by 3% per round."""
    from PIL import Image, ImageOps

    from lab.resources import SAMPLES
    out = []
    for i in range(n):
        base, rnd = PHOTOS[i % len(PHOTOS)], i // len(PHOTOS)
        with Image.open(SAMPLES / base) as im:
            im = ImageOps.mirror(im.convert("RGB")) if i % 2 else im.convert("RGB")
            scale = 0.97 ** (rnd + 1)
            im = im.resize((max(32, round(im.width * scale)), max(32, round(im.height * scale))), Image.BILINEAR)
            path = folder / f"learner{i:02d}_{base}"
            im.save(path, format="JPEG", quality=90)
        out.append(path)
    return out


# ------------------------------------------------------------------ one learner
async def _wait(page, js: str, arg, timeout: float):
    h = await page.wait_for_function(js, arg=arg, polling=100, timeout=timeout * 1000)
    v = await h.json_value()
    if isinstance(v, dict) and "error" in v:
        raise LabError(f"the page shows an exception: {v['error']}")
    return v


async def _nav(page, title: str) -> None:
    await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


# What the server sends for each step's figures: their Plotly specs carry layout.meta
FIGURES = {"skeletons": re.compile(rb'"meta":\s*"skeleton_'), "unary_grid": re.compile(rb'"meta":\s*"unary_grid"')}
STEP_FIGURES = {"open": "skeletons", "upload": "skeletons", "detector": "unary_grid", "back": "skeletons"}


class Frames:
    """When the server's websocket messages reached a learner's browser, before any drawing.

    A step's "received" time is from its start to the last message carrying one of that step's
    figures, up to the moment they were drawn: what the server took to answer, without the
    learner's own browser drawing it. On one machine the simulated browsers draw on the
    server's cores; in a class every learner draws on their own computer."""

    def __init__(self):
        self.seen: list[tuple[float, str]] = []        # (arrival, which FIGURES it carries)

    def watch(self, ws) -> None:
        ws.on("framereceived", self._got)

    def _got(self, payload) -> None:
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        t = time.perf_counter()
        self.seen += [(t, name) for name, pattern in FIGURES.items() if pattern.search(data)]

    def note(self, times: dict, step: str, t0: float) -> None:
        """times[step + RECEIVED] from the frames that arrived during the step (t0 .. t0 + times[step])."""
        t1 = t0 + times[step]
        hits = [t for t, name in self.seen if t0 <= t <= t1 and name == STEP_FIGURES[step]]
        if hits:
            times[step + RECEIVED] = max(hits) - t0
        self.seen = [(t, name) for t, name in self.seen if t > t1]


@dataclass(frozen=True)
class Pace:
    """How the learners of one phase move. The default, a burst, starts everyone at the same
    moment and moves on the instant a step is drawn: the worst case. A class: learners
    arrive over `arrive_s` seconds (learner i of n at i * arrive_s / n) and look at each
    page for `think_s` seconds (times 0.5-1.5, drawn from `seed`) before the next step.
    The waits are not part of any step's time."""
    arrive_s: float = 0.0
    think_s: float = 0.0
    seed: int = 0

    def arrival(self, i: int, n: int) -> float:
        return self.arrive_s * i / max(n, 1)

    def thinks(self, i: int) -> list[float]:
        rng = random.Random(self.seed * 1000 + i)
        return [self.think_s * rng.uniform(0.5, 1.5) for _ in STEPS]

    @property
    def kind(self) -> str:
        return "class" if self.arrive_s or self.think_s else "burst"

    def describe(self) -> str:
        if self.kind == "burst":
            return "burst: every learner starts at the same moment and moves on at once"
        return (f"class: learners arrive over {self.arrive_s:g} s and look at each page for "
                f"{0.5 * self.think_s:g}-{1.5 * self.think_s:g} s before the next step")


class StepClock:
    """A learner's step times (`times`, with what `Frames` saw arrive) and, with `cpu` (a
    function: the server's CPU-s so far), the server's CPU-s per step (`used`)."""

    def __init__(self, cpu=None):
        self.cpu, self.c0 = cpu, None
        self.times: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.frames = Frames()

    def begin(self) -> float:
        self.c0 = self.cpu() if self.cpu else None
        return time.perf_counter()

    def done(self, step: str, t0: float) -> None:
        self.times[step] = time.perf_counter() - t0
        self.frames.note(self.times, step, t0)

    async def settled(self, step: str) -> None:
        """used[step]: the server's CPU from the step's start until it is idle again (the rest
        of the page's script may run after the figures were drawn), so no step's work is
        counted in the next one. Waits at most SETTLE_S; not part of any step's time."""
        c1 = self.cpu() if self.cpu else None
        if self.c0 is None or c1 is None:
            return
        deadline = time.perf_counter() + SETTLE_S
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.3)
            now = self.cpu()
            if now is None or now - c1 < IDLE_CPU_S:
                break
            c1 = now
        self.used[step] = round(c1 - self.c0, 3)


async def learner(browser, url: str, photo: Path, start: asyncio.Event, timeout: float,
                  arrive: float = 0.0, thinks=(0.0,) * len(STEPS), cpu=None, context_args: dict | None = None,
                  opened: asyncio.Event | None = None) -> dict:
    """One learner's walk; returns {"times": {step: s}, "problems": [...]}, and with `cpu` (a
    function: the server's CPU-s so far) "cpu": {step: server CPU-s during it}, meaningful
    when the learner walks alone. `arrive` and `thinks` (seconds, see Pace) are waited
    before the walk and after each step. `context_args`: more options of the learner's
    browser context (its user_agent, say); `opened` is set once the app is open."""
    problems: list[str] = []
    ctx = await browser.new_context(viewport=VIEWPORT, **(context_args or {}))
    page = await ctx.new_page()
    page.on("pageerror", lambda e: problems.append(f"javascript: {str(e)[:200]}"))
    clock = StepClock(cpu)
    page.on("websocket", clock.frames.watch)
    page.set_default_timeout(timeout * 1000)
    begin, done, settled, times, used = clock.begin, clock.done, clock.settled, clock.times, clock.used
    step = "open"
    try:
        await start.wait()
        await asyncio.sleep(arrive)
        t0 = begin()
        await page.goto(url + "/", timeout=timeout * 1000)
        first = await _wait(page, SKELETONS_JS, [1, None, None], timeout)
        done("open", t0)
        await settled("open")
        n = first["n"]
        if opened is not None:
            opened.set()

        await asyncio.sleep(thinks[0])
        step = "upload"
        t0 = begin()
        await page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(str(photo))
        await _wait(page, SKELETONS_JS, [n, first["sig"], f"Your photo: {photo.name}"], timeout)
        done("upload", t0)
        await settled("upload")

        await asyncio.sleep(thinks[1])
        step = "detector"
        t0 = begin()
        await _nav(page, "Part detector")
        await _wait(page, DETECTOR_JS, None, timeout)
        done("detector", t0)
        await settled("detector")

        await asyncio.sleep(thinks[2])
        step = "back"
        t0 = begin()
        await _nav(page, "Try it")
        await _wait(page, SKELETONS_JS, [n, None, f"Your photo: {photo.name}"], timeout)
        done("back", t0)
        await settled("back")
    except Exception as e:                                  # a timeout or a closed page: reported, not raised
        problems.append(f"{step}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    try:
        problems += await page.evaluate(PROBLEMS_JS)
    except Exception:
        pass
    await ctx.close()
    return {"times": times, "problems": problems, **({"cpu": used} if cpu else {})}


async def phase(browser, url: str, photos: list[Path], timeout: float, pace: Pace = Pace(), cpu=None) -> list[dict]:
    """The learners of `photos` at once; `cpu` (the server's CPU-s so far) is read around each
    step of a learner that walks alone."""
    start = asyncio.Event()
    n = len(photos)
    alone = cpu if n == 1 else None
    tasks = [asyncio.create_task(learner(browser, url, p, start, timeout, pace.arrival(i, n), pace.thinks(i), alone))
             for i, p in enumerate(photos)]
    await asyncio.sleep(0.5)                                # every context is open before anyone starts
    start.set()
    return await asyncio.gather(*tasks)
