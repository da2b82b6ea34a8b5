"""A training process killed at any moment, even in the middle of writing a checkpoint,
leaves its previous best checkpoint loadable (lab.train.runs writes to a temporary name,
flushes, then renames).

A real process trains a tiny browser run (small configuration, one batch per epoch, so a
checkpoint is written about every second); the test watches the run folder and sends
SIGKILL the moment a temporary file appears, i.e. while a write is in progress.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.infer import PoseLab
from lab.models import io
from lab.train import runs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

CHILD = r"""
import sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from lab.train import runs
run = runs.start_run(runs.RunSettings(cache="mini", epochs=100, train_size=16, val_size=8, batch_size=16,
                                      spatial=False, label="killed"), Path(sys.argv[1]))
print(run.id, flush=True)
run.join()
"""


def _kill_mid_write(runs_dir: Path, timeout: float = 120.0) -> tuple[Path, bool]:
    """Start the child, wait for its first kept checkpoint, then SIGKILL it while a .tmp exists.
    Returns (run folder, whether the kill landed during a write)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(runs_dir)], stdout=subprocess.PIPE, text=True)
    try:
        run_dir = runs_dir / proc.stdout.readline().strip()
        deadline = time.monotonic() + timeout
        while not (run_dir / runs.POSE).is_file():
            assert proc.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.02)
        mid_write = False
        folders = (str(run_dir), str(run_dir / "detector"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if any(".safetensors" in name and name.endswith(".tmp")      # a checkpoint half written
                   for d in folders for name in os.listdir(d)):
                mid_write = True
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return run_dir, mid_write
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_a_run_killed_mid_write_keeps_a_loadable_best_checkpoint(tmp_path):
    caught = 0
    for attempt in range(3):                                   # until a kill lands inside a write
        run_dir, mid_write = _kill_mid_write(tmp_path / f"runs{attempt}")
        caught += mid_write
        # the best checkpoint and the stage's resume point load, whatever was being written
        model, meta = io.load(run_dir / runs.POSE)
        assert meta["kind"] == "pose" and meta["epoch"] >= 1
        io.load(run_dir / "detector" / "model.safetensors")
        assert PoseLab(run_dir / runs.POSE, None).size > 0
        # status.json is whole, and reads as interrupted now that its process is gone
        json.loads((run_dir / runs.STATUS).read_text())
        st = runs.read_status(run_dir)
        assert st["state"] == "interrupted" and "checkpoint is kept" in st["error"]
        # and the run can be deleted from the page afterwards
        runs.delete_run(run_dir.parent, run_dir.name)
        if caught:
            break
    assert caught, "no kill landed while a checkpoint was being written (3 tries)"
