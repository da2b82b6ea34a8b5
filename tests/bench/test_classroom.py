"""The classroom benchmark's pacing and figures (the benchmark itself is `pose-lab classroom`)."""
import pytest

from lab.bench.classroom import STEPS, Pace, percentile, summarise


def test_a_burst_starts_everyone_at_once_and_never_waits():
    pace = Pace()
    assert [pace.arrival(i, 10) for i in range(10)] == [0.0] * 10
    assert pace.thinks(3) == [0.0] * len(STEPS)
    assert pace.describe().startswith("burst")


def test_a_class_spreads_arrivals_and_think_times_reproducibly():
    pace = Pace(arrive_s=20, think_s=4, seed=1)
    assert [pace.arrival(i, 10) for i in range(10)] == pytest.approx([2.0 * i for i in range(10)])
    t = pace.thinks(2)
    assert len(t) == len(STEPS) and all(2.0 <= x <= 6.0 for x in t)
    assert t == Pace(arrive_s=20, think_s=4, seed=1).thinks(2)            # same seed, same class
    assert t != pace.thinks(3)                                             # learners differ
    assert pace.describe().startswith("class") and "20 s" in pace.describe()


def test_summary_reports_percentiles_and_every_problem():
    runs = [{"times": {s: float(i + 1) for s in STEPS}, "problems": []} for i in range(10)]
    runs[4]["problems"] = ["upload: TimeoutError"]
    out = summarise(runs)
    assert out["errors"] == ["upload: TimeoutError"]
    assert out["steps"]["upload"]["p50"] == pytest.approx(5.5)
    assert out["steps"]["upload"]["p95"] == pytest.approx(percentile([float(i + 1) for i in range(10)], 95))
    assert out["steps"]["upload"]["p95"] == pytest.approx(9.55)


def test_received_is_the_last_frame_carrying_the_steps_figures(monkeypatch):
    from lab.bench import classroom
    from lab.bench.classroom import RECEIVED, Frames
    f = Frames()
    for t, payload in [(10.1, b'{"layout": {"meta": "skeleton_unary"}}'),   # the step's figures, in two frames
                       (10.3, '{"layout":{"meta":"skeleton_marginal"}}'),
                       (10.4, b'$$ID-skeleton_view radio'),                 # a widget key is not a figure
                       (10.9, b'{"layout": {"meta": "skeleton_unary"}}')]:  # after the step was drawn
        monkeypatch.setattr(classroom.time, "perf_counter", lambda t=t: t)
        f._got(payload)
    monkeypatch.undo()
    times = {"upload": 0.6}
    f.note(times, "upload", 10.0)
    assert times["upload" + RECEIVED] == pytest.approx(0.3)
    assert [t for t, _ in f.seen] == [10.9]                             # later frames kept for the next step
    times = {"detector": 0.5}
    f.note(times, "detector", 11.0)
    assert "detector" + RECEIVED not in times                           # none of its figures arrived


# ------------------------------------------------------------------ server cost per learner
# Recorded on this 2-core machine (2026-12-07, load average about 7 from a training run):
# `pose-lab classroom --learners 1 --rounds 3`, server CPU-s per step of the learner alone.
RECORDED = [{"times": {}, "problems": [], "cpu": {"open": 0.56, "upload": 0.48, "detector": 1.49, "back": 0.32}},
            {"times": {}, "problems": [], "cpu": {"open": 0.59, "upload": 0.44, "detector": 1.22, "back": 0.25}},
            {"times": {}, "problems": [], "cpu": {"open": 0.52, "upload": 0.48, "detector": 1.18, "back": 0.24}},
            {"times": {}, "problems": []}]                    # a learner of a crowded phase: not counted


def test_server_cpu_per_step_is_the_median_of_learners_alone():
    from lab.bench.classroom import step_cpu
    per = step_cpu(RECORDED)
    assert per["upload"] == {"n": 3, "p50": 0.48, "mean": 0.467}
    assert per["open"]["p50"] == pytest.approx(0.56) and per["detector"]["p50"] == pytest.approx(1.22)
    assert per["back"]["p50"] == pytest.approx(0.25)
    assert step_cpu([{"times": {}, "problems": []}]) == {}


def test_capacity_of_one_core_at_a_stated_pace():
    from lab.bench.classroom import Capacity, cost_report, step_cpu
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
    from lab.bench.classroom import Capacity, cost_report
    from lab.errors import LabError
    with pytest.raises(LabError, match="upload and both page changes"):
        Capacity().of({"open": 1.0, "upload": 0.4})
    assert "--server-pid" in cost_report({}, Capacity())[0]


def test_server_cpu_is_read_from_proc_with_the_children(tmp_path):
    import os
    import subprocess
    import sys

    from lab.bench.classroom import tree_cpu_s
    # a parent that starts a busy child: the child's CPU counts while it runs
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.6: pass\\ntime.sleep(30)']);"
            " time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)   # killed as a group
    try:
        import time
        deadline = time.monotonic() + 60
        while (tree_cpu_s(proc.pid) or 0) < 0.6:
            assert time.monotonic() < deadline, "the child's CPU never showed"
            time.sleep(0.2)
        own = sum(int(v) for v in open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
        assert own / os.sysconf("SC_CLK_TCK") < 0.5          # the parent itself idles: the rest is its child's
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    assert tree_cpu_s(proc.pid) is None


def test_bad_classroom_options_get_a_clear_message(capsys):
    from lab.cli import main
    for argv, words in ((["classroom", "--per-minute", "0", "0"], "not both 0"),
                        (["classroom", "--per-minute", "-1", "2"], "neither negative"),
                        (["classroom", "--server-pid", "123"], "goes with --url"),
                        (["classroom", "--url", "http://127.0.0.1:9", "--server-pid", "999999999"], "no such process")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
