"""Browser-launched training runs (lab.train.runs): a run finishes with its files, a
cancelled run keeps its last good checkpoint, two runs at once stay apart, at most K train
at once and the rest queue (cancel works there too), ids and labels never escape the runs
folder, disk use is reported, and a bad cache ends in a clear message, never a traceback.

Tiny on purpose (shared two-core CPU): the `tiny` settings of conftest.py.
"""
import json
import os
import time

import numpy as np
import pytest

from lab.config import TrainConfig
from lab.data.codec import HeatmapCodec
from lab.errors import LabError
from lab.infer import PoseLab
from lab.models import io
from lab.train import losses, runs
from lab.train.runs import RunSettings, stage_plan, start_run

TIMEOUT = 120


@pytest.fixture(autouse=True)
def _two_at_once(limits):
    """Two at once for these tests (two-runs test); restored after each test."""
    limits(max_running=2, max_queued=8)


def wait(run, timeout=TIMEOUT):
    run.join(timeout)
    assert not run.thread.is_alive(), "run did not finish in time"
    return json.loads((run.path / "status.json").read_text())


def test_stage_plan_shares_the_budget():
    assert stage_plan(4, False) == [("detector", 4)]
    assert stage_plan(1, True) == [("detector", 1), ("spatial", 1)]
    assert stage_plan(2, True) == [("detector", 1), ("spatial", 1)]
    assert stage_plan(10, True) == [("detector", 6), ("spatial", 2), ("joint", 2)]
    for e in range(1, 31):
        plan = stage_plan(e, True)
        assert sum(n for _, n in plan) == max(e, 2) and all(n >= 1 for _, n in plan)


def test_run_finishes_with_status_history_and_a_loadable_model(tmp_path, mini, tiny):
    run = start_run(tiny(spatial=True, label="tiny spatial"), tmp_path)
    st = wait(run)
    assert st["state"] == "done", st["error"]
    assert st["error"] is None and st["label"] == "tiny spatial"
    assert [(h["stage"], h["epoch"]) for h in st["history"]] == [("detector", 1), ("spatial", 2)]
    assert set(st["history"][1]["val_pck"]) == {"unary", "marginal"}
    assert st["progress"]["fraction"] == 1.0 and len(st["steps"]) == 2 * 3
    assert st["best"]["stage"] == "spatial" and st["best"]["method"] == "marginal"
    assert st["settings"]["train_size"] == 48 and st["plan"] == [["detector", 1], ["spatial", 1]]
    assert (run.path / runs.LIVE).is_file() and st["live"]["kind"] == "marginal"
    # every epoch has a validation loss next to its training loss, and it is the stage's own loss
    assert all(h["val_loss"] is not None and h["val_loss"] > 0 for h in st["history"])
    spatial = PoseLab(run.path / runs.POSE, None).pose
    val = runs.open_cache("mini")["val"].subset(16)
    codec = HeatmapCodec.from_config(runs.open_cache("mini").data)
    images, coords, lab = val.tensors()
    got = losses.step_loss(spatial.eval(), "spatial", images.float() / 255, coords, lab, codec, 0.0,
                           TrainConfig().marginal_loss)
    assert float(got) == pytest.approx(st["history"][1]["val_loss"], rel=1e-4)
    # the picture's caption does not compare a marginal with a target's peak of 1
    assert "peak is 1" not in runs.live_caption(st["live"]) and "read its shape" in runs.live_caption(st["live"])
    # the kept model is the one every page can choose
    lab = PoseLab(run.path / runs.POSE, None)
    assert lab.spatial is not None
    pred = lab.predict(mini["val"].images[0])
    assert pred.joints["marginal"].shape == (14, 2) and np.isfinite(pred.joints["marginal"]).all()
    listed = runs.list_runs(tmp_path)
    assert [r["id"] for r in listed] == [run.id] and listed[0]["has_model"]
    # the library's comparison on the validation crops reproduces the run's own number
    res = runs.val_pck(run.path / runs.POSE, "mini", "val", 16)
    assert res["marginal"] == pytest.approx(st["best"]["val_pck"]["marginal"])
    assert not list(run.path.rglob("*.tmp"))


def test_cancel_keeps_the_last_good_checkpoint(tmp_path, tiny):
    run = start_run(tiny(epochs=30), tmp_path)
    deadline = time.time() + TIMEOUT
    while not (run.path / runs.POSE).is_file():
        assert time.time() < deadline and run.thread.is_alive(), run.snapshot()["error"]
        time.sleep(0.05)
    assert runs.cancel_run(run.id)
    st = wait(run)
    assert st["state"] == "cancelled" and st["error"] is None
    assert 1 <= len(st["history"]) < 30
    model, meta = io.load(run.path / runs.POSE)          # intact, finite, loadable
    assert meta["epoch"] == st["best"]["epoch"]
    assert runs.read_status(run.path)["state"] == "cancelled"
    assert not runs.cancel_run(run.id)                    # nothing left to cancel


def test_two_runs_at_once_stay_separate(tmp_path, tiny):
    a = start_run(tiny(sigma=1.0, label="same"), tmp_path)
    b = start_run(tiny(sigma=2.0, label="same", epochs=1), tmp_path)
    sa, sb = wait(a), wait(b)
    assert a.path != b.path and a.id != b.id
    assert sa["state"] == sb["state"] == "done", (sa["error"], sb["error"])
    assert {sa["label"], sb["label"]} == {"same", "same (2)"}             # model choices stay distinct
    assert len(sa["history"]) == 2 and len(sb["history"]) == 1
    for run, sigma in ((a, 1.0), (b, 2.0)):
        meta = io.read_meta(run.path / runs.POSE)
        assert meta["data"]["sigma"] == sigma                          # each kept its own settings
        assert json.loads((run.path / "status.json").read_text())["settings"]["sigma"] == sigma
    assert {r["id"] for r in runs.list_runs(tmp_path)} == {a.id, b.id}


@pytest.mark.parametrize("content", [None, b"not a cache at all"])
def test_bad_cache_fails_with_a_clear_message(tmp_path, content, tiny):
    path = tmp_path / "broken.safetensors"
    if content is not None:
        path.write_bytes(content)
    run = start_run(tiny(cache=str(path)), tmp_path / "runs")
    st = wait(run)
    assert st["state"] == "failed"
    assert ("not found" in st["error"] and "pose-lab prepare" in st["error"]) if content is None \
        else "not a readable pose-lab cache" in st["error"]
    assert "Traceback" not in st["error"] and not (run.path / runs.POSE).exists()
    with pytest.raises(LabError):
        runs.describe_cache(path)


def test_describe_and_refusals(tmp_path):
    info = runs.describe_cache("mini")
    assert info["counts"]["train"] == 900 and info["counts"]["val"] == 100
    with pytest.raises(LabError, match="folder"):
        runs.open_cache(tmp_path)
    with pytest.raises(LabError):
        runs.delete_run(tmp_path, "../etc")


def test_only_k_train_at_once_the_rest_queue_and_cancel_works_in_the_queue(tmp_path, tiny):
    runs.configure(max_running=1, max_queued=2)
    first = start_run(tiny(epochs=30, label="first"), tmp_path)
    second = start_run(tiny(epochs=1, label="second"), tmp_path)
    third = start_run(tiny(epochs=1, label="third"), tmp_path)
    with pytest.raises(LabError, match="waiting"):                      # the queue holds two
        start_run(tiny(epochs=1, label="fourth"), tmp_path)
    assert len(list(tmp_path.iterdir())) == 3                           # a refused run leaves no folder
    deadline = time.time() + TIMEOUT
    while first.state != "running":
        assert time.time() < deadline
        time.sleep(0.05)
    assert second.state == third.state == "queued"
    assert second.snapshot()["queue_position"] == 1 and third.snapshot()["queue_position"] == 2
    assert runs.queue_counts()["running"] == 1 and runs.queue_counts()["waiting"] == 2
    listed = {r["id"]: r for r in runs.list_runs(tmp_path)}
    assert listed[third.id]["queue_position"] == 2

    assert runs.cancel_run(second.id)                                # leaves the queue at once
    s2 = wait(second, 10)
    assert s2["state"] == "cancelled" and not s2["history"] and not (second.path / runs.POSE).exists()
    assert third.snapshot()["queue_position"] == 1
    with pytest.raises(LabError, match="cancel it first"):
        runs.delete_run(tmp_path, third.id)
    assert runs.cancel_run(first.id)                                 # the queue moves on
    assert wait(first)["state"] == "cancelled"
    assert wait(third)["state"] == "done"
    runs.delete_run(tmp_path, second.id)
    assert not second.path.exists()


def test_training_can_be_turned_off(tmp_path, tiny):
    runs.configure(max_running=0)
    with pytest.raises(LabError, match="turned off"):
        start_run(tiny(), tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", ["../etc", "..", "/etc/passwd", "20000101-000000-abcdef/../..", "", None,
                                 "20000101-000000-ABCDEF"])
def test_ids_never_name_a_folder_outside_the_runs_directory(tmp_path, bad):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    (tmp_path / "status.json").write_text("{}")          # bait one level up
    with pytest.raises(LabError):
        runs.delete_run(runs_dir, bad)
    with pytest.raises(LabError):
        runs.status_of(runs_dir, bad)
    assert runs.get_run(bad) is None and not runs.cancel_run(bad)
    assert (tmp_path / "status.json").exists()


def test_labels_are_one_clean_line_and_stay_out_of_paths(tmp_path, tiny):
    run = start_run(tiny(epochs=1, label="../../evil\n\x1b[31m" + "x" * 200), tmp_path)
    st = wait(run)
    assert st["state"] == "done", st["error"]
    assert "\n" not in st["label"] and "\x1b" not in st["label"] and len(st["label"]) <= runs.MAX_LABEL
    assert [p.parent for p in tmp_path.iterdir()] == [tmp_path] and runs.RUN_ID.match(run.id)
    with pytest.raises(LabError, match="epochs"):
        start_run(tiny(epochs=0), tmp_path)


def test_disk_usage_counts_every_run(tmp_path, tiny):
    run = start_run(tiny(epochs=1), tmp_path)
    wait(run)
    use = runs.disk_usage(tmp_path)
    assert use["per_run"][run.id] == use["runs"] > (run.path / runs.POSE).stat().st_size
    assert use["free"] > 0
    assert runs.disk_usage(tmp_path / "absent") == {"runs": 0, "per_run": {}, "free": use["free"]}


def test_stale_running_status_reads_as_interrupted(tmp_path):
    d = tmp_path / "20000101-000000-abcdef"
    d.mkdir()
    (d / "status.json").write_text(json.dumps({"id": d.name, "label": "old", "state": "running",
                                               "pid": os.getpid() + 1, "updated": 0, "created": 0}))
    st = runs.read_status(d)
    assert st["state"] == "interrupted" and "last good checkpoint" in st["error"]
    runs.delete_run(tmp_path, d.name)
    assert not d.exists()


def test_a_diverging_run_fails_clearly_and_keeps_its_last_good_epoch(tmp_path, monkeypatch, tiny):
    from lab.train import losses
    real, calls = losses.step_loss, []

    def nan_after_first_epoch(*a, **kw):            # 3 batches an epoch; then the loss blows up
        calls.append(1)
        loss = real(*a, **kw)
        return loss * float("nan") if len(calls) > 3 else loss
    monkeypatch.setattr(losses, "step_loss", nan_after_first_epoch)
    run = start_run(tiny(epochs=3), tmp_path)
    st = wait(run)
    assert st["state"] == "failed" and "NaN" in st["error"] and "learning rate" in st["error"]
    assert st["best"]["epoch"] == 1 and len(st["history"]) == 1
    assert io.read_meta(run.path / runs.POSE)["epoch"] == 1


def test_a_lone_run_trains_on_every_core_and_two_runs_share_them():
    cores = os.cpu_count() or 1
    assert runs.train_threads(RunSettings(), max_running=1, load=0.1) == cores       # a quiet machine
    assert runs.train_threads(RunSettings(), max_running=2, load=0.1) == max(1, cores // 2)
    assert runs.train_threads(RunSettings(), max_running=1, load=cores + 6.0) == 1   # a busy one
    # a browser drawing the page (under a core of load) does not take a core from a lone run
    assert runs.train_threads(RunSettings(), max_running=1, load=0.9) == cores
    assert runs.train_threads(RunSettings(), max_running=1, load=1.2) == max(1, cores - 1)
    assert runs.train_threads(RunSettings(threads=3), max_running=1) == 3


def test_time_left_is_measured_from_the_runs_own_batches(monkeypatch):
    now = 1000.0
    monkeypatch.setattr(time, "time", lambda: now)
    running = {"state": "running", "train_started": now - 30, "progress": {"fraction": 0.25},
               "images_per_s": 40.0, "threads": 2}
    left = runs.eta(running)
    assert left["seconds"] == pytest.approx(90.0)                  # 30 s for a quarter: 90 s to go
    assert "25% done in 30 s on this machine" in left["text"] and "2 torch threads" in left["text"]
    assert runs.eta({**running, "progress": {"fraction": 0.0}}) is None
    assert runs.eta({**running, "state": "queued"}) is None


def test_expected_time_comes_from_the_last_finished_run(tmp_path, tiny):
    assert runs.expected_seconds(RunSettings(), tmp_path) is None
    run = start_run(tiny(label="measure"), tmp_path)
    st = wait(run)
    assert st["threads"] >= 1 and st["train_images"] == 48 * 2
    guess = runs.expected_seconds(tiny(epochs=4), tmp_path)
    per_image = (st["finished"] - st["train_started"]) / st["train_images"]
    assert guess["seconds"] == pytest.approx(per_image * 48 * 4) and guess["from"] == "measure"
