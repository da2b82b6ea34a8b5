"""Training under torchrun: 2 CPU processes (gloo) against one process on the combined batch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lab.models import io
from lab.train.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import tiny_setup  # noqa: E402

WORKER = Path(__file__).parent / "ddp_worker.py"


def torchrun(run_dir: Path, epochs: int, batch: int, stop_at: int = 0) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POSE_LAB_PROGRESS": "off"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(29500 + os.getpid() % 1000), str(WORKER), str(run_dir), str(epochs), str(batch), str(stop_at)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def weights(run_dir: Path) -> dict:
    model, meta = io.load(run_dir / "model.safetensors")
    return {"state": model.state_dict(), "meta": meta}


def assert_same_weights(a: dict, b: dict, atol: float = 1e-5) -> None:
    """Equal up to float summation order. AdamW's first steps divide each gradient by its own
    magnitude, so where a gradient is near zero, gloo's all-reduce (another order of the same
    sums) moves a weight by a few 1e-6 on some CPUs (3.7e-6 seen); a wrong shard or a missed
    all-reduce moves weights by the step itself, lr 1e-3 here."""
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= atol, f"largest weight difference {worst:.2e}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    torchrun(root / "ddp", epochs=1, batch=4)                    # 2 ranks x 4 crops, 2 steps
    cfg, data, tr, val, det = tiny_setup(epochs=1, batch=8)       # 1 process x 8 crops, 2 steps
    train(cfg, data, tr, val, root / "single", det=det)
    torchrun(root / "whole", epochs=2, batch=4)
    torchrun(root / "resumed", epochs=2, batch=4, stop_at=2)      # stops after epoch 1 ...
    stopped = weights(root / "resumed")
    torchrun(root / "resumed", epochs=2, batch=4)                 # ... and is run again
    return {k: weights(root / k) for k in ("ddp", "single", "whole", "resumed")} | {"stopped": stopped}


def test_two_ranks_step_like_one_process_on_the_combined_batch(runs):
    assert runs["single"]["meta"]["epoch"] == runs["ddp"]["meta"]["epoch"] == 1
    before = train_start_weights()
    moved = max((runs["ddp"]["state"][k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-4                                         # the step did change the weights
    assert_same_weights(runs["ddp"]["state"], runs["single"]["state"])


def test_only_rank_0_writes_and_the_log_counts_both_ranks(runs):
    hist = runs["ddp"]["meta"]["history"]
    assert len(hist) == 1 and hist[0]["epoch"] == 1
    assert "2 processes (gloo)" in runs["ddp"]["meta"]["provenance"]["hardware"]
    assert runs["ddp"]["meta"]["train_images"] == 16


def test_a_resumed_run_continues_where_it_stopped(runs):
    assert runs["stopped"]["meta"]["epoch"] == 1
    assert runs["resumed"]["meta"]["epoch"] == 2
    assert [h["epoch"] for h in runs["resumed"]["meta"]["history"]] == [1, 2]
    assert_same_weights(runs["resumed"]["state"], runs["whole"]["state"])


def train_start_weights() -> dict:
    """The model every run starts from (seeded, ImageNet trunk)."""
    from lab.config import RegressorConfig, SpatialConfig
    from lab.train.loop import new_model
    torch.manual_seed(0)
    cfg, data, tr, _, det = tiny_setup(epochs=1, batch=8)
    model, _ = new_model(cfg, det, SpatialConfig(), RegressorConfig(), None, tr.subset(16), data)
    return model.state_dict()
