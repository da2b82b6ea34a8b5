"""lab.app.workers and lab.app.memo: the app's models run their network calls in the pool,
explicitly (no patched classes), and the drawing helpers are memoised by their arguments."""
import threading

import numpy as np

from lab.app import plots, workers
from lab.app.memo import STATS


class FakeLab:
    size = 128

    def predict(self, rgb):
        return threading.current_thread().name

    def crop(self, rgb, box):
        return threading.current_thread().name


def test_heavy_calls_run_in_the_pool_and_the_rest_in_the_caller():
    lab = workers.PooledLab(FakeLab())
    assert lab.predict(None).startswith("pose-lab-model")
    assert lab.crop(None, None) == threading.current_thread().name
    assert lab.size == 128 and lab.lab.__class__ is FakeLab


def test_installing_the_app_patches_no_class(monkeypatch):
    from lab.infer import PoseLab
    before = dict(vars(PoseLab)), dict(vars(plots))
    monkeypatch.setattr(workers, "_INSTALLED", False)
    workers.install()
    assert dict(vars(PoseLab)) == before[0] and dict(vars(plots)) == before[1]


def test_a_drawing_helper_is_built_once_per_distinct_photo():
    rgb = np.zeros((20, 30, 3), np.uint8)
    before = dict(STATS)
    a = plots.photo_figure(rgb, "same")
    b = plots.photo_figure(rgb.copy(), "same")                   # equal content, another array
    assert STATS["misses"] - before["misses"] == 1 and STATS["hits"] - before["hits"] == 1
    assert a is not b and a.to_dict() == b.to_dict()             # each caller gets its own figure
