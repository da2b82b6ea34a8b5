"""The classroom benchmark's figures: percentiles and tables of the learners' step times,
the server's CPU-s per step, and from those the capacity of one server core at a stated
pace (`Capacity`: by default one upload and two page changes a minute per learner)."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from lab.bench.learners import RECEIVED, STEP_NAMES, STEPS
from lab.errors import LabError


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
