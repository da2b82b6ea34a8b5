"""`pose-lab classroom`: N learners against one `pose-lab app` process, in one Chromium.

Starts `pose-lab app --headless` on a free port (its own process, runs in a temporary
folder), warms it up with one learner that is not counted (models load once per process),
then for every N in --learners (for example 1 10), N browser contexts, each a learner with
its own Streamlit session, start at the same moment and each

  open       opens the app: the Try it page until its skeletons are drawn
  upload     uploads a photo of its own (a bundled sample, mirrored and rescaled so no two
             learners share pixels, so nothing is served from another learner's cache)
             until the skeletons are redrawn for it ("upload-to-skeleton")
  detector   switches to Part detector until its 14 unary heatmaps are drawn
  back       switches back to Try it until the skeletons are drawn again

It prints p50 and p95 of every step for every N, the ratio of each to the first N's
(normally 1), and the errors any learner saw (exception boxes, tracebacks, error
messages, timeouts), and can write it all as JSON.

Server cost per learner: the server's own CPU-s (its process and its children, read from
/proc, so the browsers' share is left out) for each step of the single learner, and for
each phase in all. From those, the capacity of one server core at a stated pace
(`Capacity`: by default one upload and two page changes a minute per learner). Needs
the server's PID: known when the benchmark starts the server, else `--server-pid`. The goal for a class: with 10
learners, p95 of upload-to-skeleton at most 3x the single learner's, and no errors.

Needs Playwright (`pip install pose-lab[test]`) and Debian's Chromium (/usr/bin/chromium).
The browser runs on the same machine as the server and takes its share of the CPU, so
the figures are pessimistic for a real class, where every learner brings a computer.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.bench.browser import CHROMIUM, CHROMIUM_ARGS, UNTHROTTLED, free_port, wait_healthy
from lab.errors import LabError

CHROMIUM_ARGS = [*CHROMIUM_ARGS, *UNTHROTTLED]
VIEWPORT = {"width": 1440, "height": 900}          # a laptop screen
STEPS = ("open", "upload", "detector", "back")
RECEIVED = "_received"      # suffix: the same step, until its figures reached the browser (see Frames)
STEP_NAMES = {"open": "open Try it -> skeletons", "upload": "upload -> skeletons",
              "detector": "switch -> detector heatmaps", "back": "switch back -> skeletons"}
PHOTOS = ("lsp_im1041.jpg", "lsp_im1051.jpg", "lsp_im1091.jpg", "lsp_im1007.jpg", "astronaut.jpg",
          "wide_lsp_im1033.jpg")
GOAL_STEP, GOAL_RATIO = "upload", 3.0
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
  const heat = (gd._fullData || gd.data || []).filter(t => t.type === 'heatmap');
  return heat.length === 14;
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


# ------------------------------------------------------------------ the server
class Server:
    """`pose-lab app --headless` as a subprocess (the same Python), stopped with SIGTERM."""

    def __init__(self, folder: Path, extra: list[str] | None = None, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        self.log = folder / "server.log"
        cmd = [sys.executable, "-m", "lab.cli", "app", "--headless", "--port", str(self.port),
               "--address", "127.0.0.1", "--runs", str(folder / "runs"), *(extra or [])]
        self._log = open(self.log, "wb")
        self.t0 = time.perf_counter()
        self.timings = folder / "server_runs.jsonl"        # every script run's duration (lab.app.workers)
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=folder,
                                     env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                                          "POSE_LAB_TIMINGS": str(self.timings)})

    def runs_between(self, t0: float, t1: float) -> dict:
        """p50 / p95 / max seconds of the server's script runs per page that started in [t0, t1]."""
        per: dict[str, list[float]] = {}
        try:
            lines = self.timings.read_text().splitlines()
        except OSError:
            return {}
        for line in lines:
            r = json.loads(line)
            if t0 <= r["start"] <= t1:
                per.setdefault(r["page"] or "try-it", []).append(r["seconds"])
        return {p: {"runs": len(xs), "p50": round(percentile(xs, 50), 3), "p95": round(percentile(xs, 95), 3),
                    "max": round(max(xs), 3)} for p, xs in sorted(per.items())}

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds from the start until the health check answers."""
        wait_healthy(self.url, self.proc, timeout, self.tail)
        return time.perf_counter() - self.t0

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def memory_mib(self) -> dict:
        """Resident and peak resident memory of the server process."""
        out = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out["rss" if line.startswith("VmRSS") else "peak_rss"] = round(int(line.split()[1]) / 1024)
        except OSError:
            pass
        return out

    def cpu_s(self) -> float | None:
        """CPU-s of the server process and its children so far (`tree_cpu_s`)."""
        return tree_cpu_s(self.proc.pid)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class RunningServer:
    """A server this benchmark did not start (`--url` with `--server-pid`): only its CPU."""

    def __init__(self, pid: int):
        if tree_cpu_s(pid) is None:
            raise LabError(f"--server-pid {pid}: no such process on this machine (the server's CPU is read "
                           f"from /proc/{pid}/stat; run the benchmark where the server runs).")
        self.pid = pid

    def cpu_s(self) -> float | None:
        return tree_cpu_s(self.pid)

    def memory_mib(self) -> dict:
        return {}

    def runs_between(self, t0: float, t1: float) -> dict:
        return {}


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (field 3 onwards), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree_cpu_s(pid: int) -> float | None:
    """CPU-s (user + system) a process has used, with its children: the live ones (found by
    their parent pid in /proc) and the exited ones it waited for (cutime, cstime). None when
    there is no such process. Linux only."""
    f = _stat(pid)
    if f is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    own = lambda f: sum(int(v) for v in f[11:15])              # utime stime cutime cstime
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            g = _stat(int(d.name))
            if g is not None:
                parents.setdefault(int(g[1]), []).append(int(d.name))
    total, todo, seen = own(f), list(parents.get(pid, [])), {pid}
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        g = _stat(c)
        if g is not None:
            total += own(g)
            todo += parents.get(c, [])
    return total / ticks


# ------------------------------------------------------------------ server cost per learner
@dataclass(frozen=True)
class Capacity:
    """How busy a learner keeps the server: `uploads` photo uploads and `switches` page changes
    per `minutes`. A page change costs the mean of the two switches the benchmark times
    (to Part detector, back to Try it); opening the app is counted apart, once per learner."""
    uploads: float = 1.0
    switches: float = 2.0
    minutes: float = 1.0

    def describe(self) -> str:
        return f"{self.uploads:g} upload(s) and {self.switches:g} page change(s) every {self.minutes:g} min"

    def of(self, step_cpu: dict[str, float]) -> dict:
        """Server CPU-s a minute per learner and learners per core, from CPU-s per step."""
        if any(s not in step_cpu for s in ("upload", "detector", "back")):
            raise LabError("the server's CPU per step needs the upload and both page changes measured.")
        switch = (step_cpu["detector"] + step_cpu["back"]) / 2
        per_min = (self.uploads * step_cpu["upload"] + self.switches * switch) / self.minutes
        out = {"pace": self.describe(), "switch_cpu_s": round(switch, 3), "cpu_s_per_learner_minute": round(per_min, 3),
               "learners_per_core": math.inf if per_min <= 0 else round(60.0 / per_min, 1),
               "learners_per_core_70pct": math.inf if per_min <= 0 else round(0.7 * 60.0 / per_min, 1)}
        if "open" in step_cpu:
            out["open_cpu_s"] = round(step_cpu["open"], 3)
        return out


def step_cpu(results: list[dict]) -> dict[str, dict]:
    """p50 and mean of the server's CPU-s for each step, over learners that walked alone
    (results[i]["cpu"]: step -> CPU-s, recorded only then)."""
    out = {}
    for s in STEPS:
        xs = [r["cpu"][s] for r in results if s in r.get("cpu", {})]
        if xs:
            out[s] = {"n": len(xs), "p50": round(percentile(xs, 50), 3), "mean": round(statistics.fmean(xs), 3)}
    return out


def cost_report(per_step: dict[str, dict], capacity: Capacity, phases: dict | None = None) -> list[str]:
    """The lines `pose-lab classroom` prints about the server's CPU."""
    if not per_step:
        return ["server CPU per step: not measured (the server's PID is unknown: pass --server-pid with --url)"]
    lines = ["server CPU-s per step (its process and children, /proc; one learner alone, p50 of "
             f"{max(r['n'] for r in per_step.values())}):"]
    lines += [f"  {STEP_NAMES[s]:<32}{r['p50']:>7.2f}" for s, r in per_step.items()]
    try:
        c = capacity.of({s: r["p50"] for s, r in per_step.items()})
    except LabError as e:
        return lines + [f"capacity: {e}"]
    lines.append(f"capacity of one server core at {c['pace']} per learner: "
                 f"{c['cpu_s_per_learner_minute']:.2f} CPU-s a minute each -> {c['learners_per_core']:g} learners "
                 f"with the core 100 % busy, {c['learners_per_core_70pct']:g} at 70 % (short queues)"
                 + (f"; opening the app costs {c['open_cpu_s']:.2f} CPU-s once per learner" if "open_cpu_s" in c else ""))
    for n, ph in (phases or {}).items():
        if ph.get("server_cpu_s") is not None and ph.get("learners"):
            lines.append(f"  {n} learner(s): the server used {ph['server_cpu_s']:.2f} CPU-s for {ph['learners']} walk(s), "
                         f"{ph['server_cpu_s'] / ph['learners']:.2f} per learner's walk (open, upload, 2 page changes)")
    return lines


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


async def learner(browser, url: str, photo: Path, start: asyncio.Event, timeout: float,
                  arrive: float = 0.0, thinks=(0.0,) * len(STEPS), cpu=None, context_args: dict | None = None,
                  opened: asyncio.Event | None = None) -> dict:
    """One learner's walk; returns {"times": {step: s}, "problems": [...]}, and with `cpu` (a
    function: the server's CPU-s so far) "cpu": {step: server CPU-s during it}, meaningful
    when the learner walks alone. `arrive` and `thinks` (seconds, see Pace) are waited
    before the walk and after each step. `context_args`: more options of the learner's
    browser context (its user_agent, say); `opened` is set once the app is open."""
    times: dict[str, float] = {}
    used: dict[str, float] = {}
    c0 = None
    problems: list[str] = []
    ctx = await browser.new_context(viewport=VIEWPORT, **(context_args or {}))
    page = await ctx.new_page()
    page.on("pageerror", lambda e: problems.append(f"javascript: {str(e)[:200]}"))
    frames = Frames()
    page.on("websocket", frames.watch)
    page.set_default_timeout(timeout * 1000)

    def begin() -> float:
        nonlocal c0
        c0 = cpu() if cpu else None
        return time.perf_counter()

    def done(step: str, t0: float) -> None:
        times[step] = time.perf_counter() - t0
        frames.note(times, step, t0)

    async def settled(step: str) -> None:
        """used[step]: the server's CPU from the step's start until it is idle again (the rest
        of the page's script may run after the figures were drawn), so no step's work is
        counted in the next one. Waits at most SETTLE_S; not part of any step's time."""
        c1 = cpu() if cpu else None
        if c0 is None or c1 is None:
            return
        deadline = time.perf_counter() + SETTLE_S
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.3)
            now = cpu()
            if now is None or now - c1 < IDLE_CPU_S:
                break
            c1 = now
        used[step] = round(c1 - c0, 3)
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


async def _phase(browser, url: str, photos: list[Path], timeout: float, pace: Pace = Pace(), cpu=None) -> list[dict]:
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


# ------------------------------------------------------------------ figures
def percentile(xs: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between order statistics."""
    xs = sorted(xs)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarise(results: list[dict]) -> dict:
    out = {"learners": len(results), "errors": [p for r in results for p in r["problems"]], "steps": {},
           "received": {}}
    for s in STEPS:
        out["steps"][s] = _stats([r["times"][s] for r in results if s in r["times"]])
        out["received"][s] = _stats([r["times"][s + RECEIVED] for r in results if s + RECEIVED in r["times"]])
    return out


def _stats(xs: list[float]) -> dict:
    return {"n": len(xs), "p50": percentile(xs, 50), "p95": percentile(xs, 95),
            "max": max(xs) if xs else math.nan, "mean": statistics.fmean(xs) if xs else math.nan}


def table(phases: dict[int, dict], base: int, key: str = "steps") -> str:
    """p50 / p95 of every step (key "steps": until drawn; "received": until its figures arrived)."""
    b = phases[base][key]
    lines = [f"{'step' if key == 'steps' else 'step, until received':<30}{'learners':>9}{'p50 s':>9}"
             f"{'p95 s':>9}{'p50 ratio':>11}{'p95 ratio':>11}"]
    for s in STEPS:
        for n, ph in phases.items():
            r = ph.get(key, {}).get(s)
            if not r or not r["n"] or not b[s]["n"]:
                continue
            lines.append(f"{STEP_NAMES[s] if n == base else '':<30}{n:>9}{r['p50']:>9.2f}{r['p95']:>9.2f}"
                         f"{r['p50'] / b[s]['p50']:>10.2f}x{r['p95'] / b[s]['p95']:>10.2f}x")
    return "\n".join(lines)


# ------------------------------------------------------------------ the command
def run(learners: list[int], timeout: float = 240.0, rounds_single: int = 3, server_args: list[str] | None = None,
        url: str | None = None, out=print, pace: Pace = Pace(), server_pid: int | None = None,
        capacity: Capacity = Capacity()) -> dict:
    """Measure and print; returns every figure. `server_pid`: with `url`, the running server's
    process, whose CPU is then read (/proc) as when the benchmark starts the server."""
    if server_pid is not None and url is None:
        raise LabError("--server-pid goes with --url (without --url the benchmark starts the server and knows it).")
    watched = RunningServer(server_pid) if server_pid is not None else None
    if not Path(CHROMIUM).is_file():
        raise LabError(f"the classroom benchmark drives Debian's Chromium at {CHROMIUM}: "
                       "apt-get install chromium (it never downloads a browser).")
    try:
        from playwright.async_api import async_playwright  # noqa: F401 (availability check)
    except ImportError:
        raise LabError("the classroom benchmark needs Playwright: pip install 'pose-lab[test]'.")
    learners = sorted(set(max(1, n) for n in learners))

    def _term(*_):                                          # SIGTERM (a timeout): still stop the server
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    with tempfile.TemporaryDirectory(prefix="pose-lab-classroom-") as tmp:
        tmp = Path(tmp)
        photos = learner_photos(1 + sum(rounds_single if n == 1 else n for n in learners), tmp)
        server = None
        res: dict = {"machine": machine(), "learners": learners, "phases": {}, "pace": asdict(pace),
                     "pace_text": pace.describe()}
        out(f"pace: {pace.describe()}")
        try:
            if url is None:
                server = Server(tmp, server_args)
                res["start_to_healthy_s"] = round(server.wait_healthy(), 2)
                url = server.url
                out(f"pose-lab app started on {url} in {res['start_to_healthy_s']:.1f} s; "
                    f"log {server.log}")
            res["phases"] = asyncio.run(_all(url, learners, photos, timeout, rounds_single, out, server or watched,
                                             res, pace))
        finally:
            if server is not None:
                res["server_exit_code_on_sigterm"] = server.stop()
    phases = {int(n): ph for n, ph in res["phases"].items()}
    base = min(phases)
    out("")
    out(table(phases, base))
    out("")
    out(table(phases, base, "received"))
    out("(received: until the step's figures reached the learner's browser, before it drew them; "
        "the simulated browsers draw on this machine's cores, a class's on their own)")
    errors = {n: ph["errors"] for n, ph in phases.items() if ph["errors"]}
    out("errors seen by learners: " + ("none" if not errors else json.dumps(errors, indent=1)))
    for n, ph in phases.items():
        if ph.get("server_runs"):
            out(f"server script runs, {n} learner(s): " + "; ".join(
                f"{p} p50 {r['p50']:.2f} / p95 {r['p95']:.2f} s ({r['runs']} runs)" for p, r in ph["server_runs"].items())
                + f"; CPU s: server {ph.get('server_cpu_s')}, whole machine {ph.get('machine_cpu_s')} "
                  f"in {ph['wall_s']:.0f} s")
    per_step = step_cpu([r for ph in phases.values() for r in ph.get("per_learner", [])])
    res["server_cpu_per_step"] = per_step
    if per_step and all(s in per_step for s in ("upload", "detector", "back")):
        res["capacity"] = capacity.of({s: r["p50"] for s, r in per_step.items()})
    res["load_average_at_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for line in cost_report(per_step, capacity, {n: {"server_cpu_s": ph.get("server_cpu_s"), "learners": ph["learners"]}
                                                  for n, ph in phases.items()}):
        out(line)
    out(f"load average (1 min): {res['machine']['load_average_at_start']} at the start, "
        f"{res['load_average_at_end']} at the end")
    if len(phases) > 1:
        top = max(phases)
        ratio = phases[top]["steps"][GOAL_STEP]["p95"] / phases[base]["steps"][GOAL_STEP]["p95"]
        ok = ratio <= GOAL_RATIO and not phases[top]["errors"]
        res["goal"] = {"learners": top, "step": GOAL_STEP, "p95_ratio": round(ratio, 2), "limit": GOAL_RATIO,
                       "errors": len(phases[top]["errors"]), "met": ok, "pace": pace.describe()}
        rec = [phases[n].get("received", {}).get(GOAL_STEP, {}) for n in (base, top)]
        if all(r.get("n") for r in rec):
            res["goal"]["p95_ratio_received"] = round(rec[1]["p95"] / rec[0]["p95"], 2)
        out(f"goal ({top} learners, {pace.kind}: p95 upload-to-skeleton <= {GOAL_RATIO:g}x one learner's, no errors): "
            f"{ratio:.2f}x, {len(phases[top]['errors'])} errors -> {'met' if ok else 'NOT met'}"
            + (f" (until received: {res['goal']['p95_ratio_received']:.2f}x)"
               if "p95_ratio_received" in res["goal"] else ""))
    return res


async def _all(url, learners, photos, timeout, rounds_single, out, server, res, pace: Pace = Pace()) -> dict:
    from playwright.async_api import async_playwright
    phases = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            fresh = iter(photos)                                        # every learner a photo of its own

            def take(k):
                return [next(fresh) for _ in range(k)]
            warm = await _phase(browser, url, take(1), timeout)          # loads the models; not counted
            res["warm_up"] = warm[0]
            out("warm-up learner (not counted): " + ", ".join(f"{s} {t:.1f} s" for s, t in warm[0]["times"].items())
                + (f"; problems {warm[0]['problems']}" if warm[0]["problems"] else ""))
            for n in learners:
                cpu0 = server.cpu_s() if server else None
                busy0 = machine_cpu_s()
                wall0 = time.time()
                t0 = time.perf_counter()
                results = []
                for r in range(rounds_single if n == 1 else 1):      # one learner: a few rounds, for a stabler figure
                    results += await _phase(browser, url, take(n), timeout, pace, server.cpu_s if server else None)
                ph = summarise(results)
                ph["wall_s"] = round(time.perf_counter() - t0, 2)
                busy1 = machine_cpu_s()
                if busy0 is not None and busy1 is not None:
                    ph["machine_cpu_s"] = round(busy1 - busy0, 2)     # server + browser + anything else
                if server:
                    cpu1 = server.cpu_s()
                    ph["server_cpu_s"] = round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None
                    ph["server_memory_mib"] = server.memory_mib()
                    ph["server_runs"] = server.runs_between(wall0, time.time())
                ph["per_learner"] = results
                phases[n] = ph
                out(f"{n:>3} learner(s): " + ", ".join(
                    f"{s} p50 {ph['steps'][s]['p50']:.2f} / p95 {ph['steps'][s]['p95']:.2f} s" for s in STEPS)
                    + f"; {len(ph['errors'])} errors; {ph['wall_s']:.0f} s wall, CPU s: server "
                    f"{ph.get('server_cpu_s')}, whole machine {ph.get('machine_cpu_s')}")
        finally:
            await browser.close()
    return phases


def machine_cpu_s() -> float | None:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    try:
        f = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")       # minus idle and iowait
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict:
    import platform
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average_at_start": load, "python": platform.python_version()}
