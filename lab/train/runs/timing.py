"""How long a browser run takes: time left, measured from its own batches on this machine
(`eta`), and time expected before it starts, from the last finished run (`expected_seconds`)."""
from __future__ import annotations

import time
from pathlib import Path

from lab.errors import LabError
from lab.train.runs.settings import RunSettings, describe_cache, stage_plan
from lab.train.runs.store import statuses


def eta(status: dict) -> dict | None:
    """Time left of a training run, measured from its own batches on this machine:
    {"seconds", "rate" (images/s so far), "threads", "text" (what was measured)}; None before
    its first batches."""
    prog, t0 = status.get("progress") or {}, status.get("train_started")
    frac = float(prog.get("fraction") or 0.0)
    if status.get("state") != "running" or not t0 or frac < 0.02:
        return None
    spent = max(time.time() - float(t0), 1e-6)
    left = spent * (1 - frac) / frac
    rate = status.get("images_per_s")
    return {"seconds": left, "rate": rate, "threads": status.get("threads"),
            "text": f"about {fmt_seconds(left)} ({frac:.0%} done in {fmt_seconds(spent)} on this machine"
                    + (f"; {rate:.0f} images/s in the last epoch" if rate else "")
                    + f", {status.get('threads') or '?'} torch thread{'' if status.get('threads') == 1 else 's'})"}


def expected_seconds(settings: RunSettings, runs_dir: Path) -> dict | None:
    """How long a run with these settings should take here, from the most recent finished run
    on this server: its wall time per image trained (validation included) times this run's
    images. {"seconds", "from" (its label), "images", "wall"}; None when no run has finished."""
    done = [st for st in statuses(Path(runs_dir)) if st.get("state") == "done" and st.get("train_started")
            and st.get("finished") and st.get("train_images")]
    if not done:
        return None
    last = max(done, key=lambda st: st["finished"])
    per_image = (last["finished"] - last["train_started"]) / last["train_images"]
    try:
        n = min(settings.train_size or describe_cache(settings.cache)["counts"]["train"],
                describe_cache(settings.cache)["counts"]["train"])
    except LabError:
        return None
    return {"seconds": per_image * n * max(sum(e for _, e in stage_plan(settings.epochs, settings.spatial)), 1),
            "from": last.get("label"), "images": last["train_images"], "wall": last["finished"] - last["train_started"]}


def fmt_seconds(s: float) -> str:
    s = max(0.0, float(s))
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"
