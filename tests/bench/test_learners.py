"""The classroom learner's pacing and its received times (lab/bench/learners.py)."""
import pytest

from lab.bench import learners
from lab.bench.learners import RECEIVED, STEPS, Frames, Pace


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


def test_received_is_the_last_frame_carrying_the_steps_figures(monkeypatch):
    f = Frames()
    for t, payload in [(10.1, b'{"layout": {"meta": "skeleton_unary"}}'),   # the step's figures, in two frames
                       (10.3, '{"layout":{"meta":"skeleton_marginal"}}'),
                       (10.4, b'$$ID-skeleton_view radio'),                 # a widget key is not a figure
                       (10.9, b'{"layout": {"meta": "skeleton_unary"}}')]:  # after the step was drawn
        monkeypatch.setattr(learners.time, "perf_counter", lambda t=t: t)
        f._got(payload)
    monkeypatch.undo()
    times = {"upload": 0.6}
    f.note(times, "upload", 10.0)
    assert times["upload" + RECEIVED] == pytest.approx(0.3)
    assert [t for t, _ in f.seen] == [10.9]                             # later frames kept for the next step
    times = {"detector": 0.5}
    f.note(times, "detector", 11.0)
    assert "detector" + RECEIVED not in times                           # none of its figures arrived
