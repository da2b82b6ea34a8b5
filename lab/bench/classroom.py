"""`pose-lab classroom`: N learners against one `pose-lab app` process, in one Chromium.

Starts `pose-lab app --headless` on a free port (its own process, runs in a temporary
folder), warms it up with one learner that is not counted (models load once per process),
then for every N in --learners (for example 1 10), N browser contexts, each a learner with
its own Streamlit session, start at the same moment and each walks open, upload, detector,
back (lab/bench/learners.py).

It prints p50 and p95 of every step for every N, the ratio of each to the first N's
(normally 1), and the errors any learner saw (exception boxes, tracebacks, error
messages, timeouts), and can write it all as JSON.

Server cost per learner: the server's own CPU-s (its process and its children, read from
/proc, so the browsers' share is left out) for each step of the single learner, and for
each phase in all. From those, the capacity of one server core at a stated pace
(`Capacity`: by default one upload and two page changes a minute per learner). Needs
the server's PID: known when the benchmark starts the server, else `--server-pid`. The goal for a class: with 10
learners, p95 of upload-to-skeleton at most 3x the single learner's, and no errors.

Here the command; the learner's walk in lab/bench/learners.py, the server and /proc in
lab/bench/server.py, the figures and the capacity arithmetic in lab/bench/capacity.py.

Needs Playwright (`pip install pose-lab[test]`) and Debian's Chromium (/usr/bin/chromium).
The browser runs on the same machine as the server and takes its share of the CPU, so
the figures are pessimistic for a real class, where every learner brings a computer.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from lab.bench.browser import CHROMIUM, CHROMIUM_ARGS, UNTHROTTLED
from lab.bench.capacity import Capacity, cost_report, step_cpu, summarise, table
from lab.bench.learners import STEPS, Pace, learner_photos, phase
from lab.bench.server import RunningServer, Server, machine, machine_cpu_s
from lab.errors import LabError

CHROMIUM_ARGS = [*CHROMIUM_ARGS, *UNTHROTTLED]
GOAL_STEP, GOAL_RATIO = "upload", 3.0


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
            warm = await phase(browser, url, take(1), timeout)          # loads the models; not counted
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
                    results += await phase(browser, url, take(n), timeout, pace, server.cpu_s if server else None)
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
