"""Run by torchrun in tests/train/test_distributed.py: one rank of `lab.train.loop.train` on the
bundled mini set (the path `pose-lab train` takes under torchrun).

    python -m torch.distributed.run --nproc_per_node 2 ddp_worker.py RUN_DIR EPOCHS BATCH [STOP_AT_STEP]
"""
import sys
from pathlib import Path

from lab.train.distributed import Dist
from lab.train.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import tiny_setup  # noqa: E402

run_dir, epochs, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
stop_at = int(sys.argv[4]) if len(sys.argv) > 4 else 0
calls = [0]


def should_stop() -> bool:              # every rank stops at the same step: no rank waits alone
    calls[0] += 1
    return bool(stop_at) and calls[0] > stop_at


dist = Dist.from_env("cpu")
cfg, data, tr, val, det = tiny_setup(epochs, batch)
train(cfg, data, tr, val, run_dir, det=det, dist=dist, should_stop=should_stop)
dist.close()
