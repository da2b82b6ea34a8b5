"""The classroom benchmark's figures (lab/bench/capacity.py): percentiles, the server's CPU
per step and the capacity of one core."""
import pytest

from lab.bench.capacity import Capacity, cost_report, percentile, step_cpu, summarise
from lab.bench.learners import STEPS
from lab.errors import LabError


def test_summary_reports_percentiles_and_every_problem():
    runs = [{"times": {s: float(i + 1) for s in STEPS}, "problems": []} for i in range(10)]
    runs[4]["problems"] = ["upload: TimeoutError"]
    out = summarise(runs)
    assert out["errors"] == ["upload: TimeoutError"]
    assert out["steps"]["upload"]["p50"] == pytest.approx(5.5)
    assert out["steps"]["upload"]["p95"] == pytest.approx(percentile([float(i + 1) for i in range(10)], 95))
    assert out["steps"]["upload"]["p95"] == pytest.approx(9.55)


# Recorded on this 2-core machine (2026-12-07, load average about 7 from a training run):
# `pose-lab classroom --learners 1 --rounds 3`, server CPU-s per step of the learner alone.
RECORDED = [{"times": {}, "problems": [], "cpu": {"open": 0.56, "upload": 0.48, "detector": 1.49, "back": 0.32}},
            {"times": {}, "problems": [], "cpu": {"open": 0.59, "upload": 0.44, "detector": 1.22, "back": 0.25}},
            {"times": {}, "problems": [], "cpu": {"open": 0.52, "upload": 0.48, "detector": 1.18, "back": 0.24}},
            {"times": {}, "problems": []}]                    # a learner of a crowded phase: not counted


def test_server_cpu_per_step_is_the_median_of_learners_alone():
    per = step_cpu(RECORDED)
    assert per["upload"] == {"n": 3, "p50": 0.48, "mean": 0.467}
    assert per["open"]["p50"] == pytest.approx(0.56) and per["detector"]["p50"] == pytest.approx(1.22)
    assert per["back"]["p50"] == pytest.approx(0.25)
    assert step_cpu([{"times": {}, "problems": []}]) == {}


def test_capacity_of_one_core_at_a_stated_pace():
    p50 = {s: r["p50"] for s, r in step_cpu(RECORDED).items()}     # upload 0.48, detector 1.22, back 0.25
    c = Capacity(uploads=1, switches=2).of(p50)
    assert c["switch_cpu_s"] == pytest.approx(0.735)
    assert c["cpu_s_per_learner_minute"] == pytest.approx(0.48 + 2 * 0.735)          # 1.95 CPU-s a minute
    assert c["learners_per_core"] == pytest.approx(30.8)                              # 60 / 1.95
    assert c["learners_per_core_70pct"] == pytest.approx(21.5)
    assert c["open_cpu_s"] == pytest.approx(0.56)
    slow = Capacity(uploads=1, switches=2, minutes=2).of(p50)                        # half the pace, twice the class
    assert slow["learners_per_core"] == pytest.approx(2 * 60 / 1.95, abs=0.05)
    lines = cost_report(step_cpu(RECORDED), Capacity(), {1: {"server_cpu_s": 7.8, "learners": 3}})
    text = "\n".join(lines)
    assert "upload -> skeletons" in text and "0.48" in text and "30.8 learners" in text
    assert "2.60 per learner's walk" in text


def test_capacity_needs_the_steps_it_counts():
    with pytest.raises(LabError, match="upload and both page changes"):
        Capacity().of({"open": 1.0, "upload": 0.4})
    assert "--server-pid" in cost_report({}, Capacity())[0]
