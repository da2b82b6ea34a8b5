#!/usr/bin/env bash
# Trains the shipped weights: the paper's three stages, then the regressor.
# Every stage resumes from its run folder, so rerunning after an interruption
# continues where it stopped. Runs on CUDA when there is one, else on the CPU.
#   usage: scripts/train_pretrained.sh [RUNS_DIR] [CACHE]
set -euo pipefail
RUNS=${1:-runs/pretrained}
CACHE=${2:-cache/lsp128.safetensors}
DET_EPOCHS=${DET_EPOCHS:-24}
SP_EPOCHS=${SP_EPOCHS:-3}
JOINT_EPOCHS=${JOINT_EPOCHS:-2}
REG_EPOCHS=${REG_EPOCHS:-10}
[ -f "$CACHE" ] || pose-lab prepare --out "$CACHE"
pose-lab train --stage detector --config full --cache "$CACHE" --out "$RUNS/detector" \
    --epochs "$DET_EPOCHS" --lr 1e-3
pose-lab train --stage spatial --config full --cache "$CACHE" --out "$RUNS/spatial" \
    --init "$RUNS/detector/model.safetensors" --epochs "$SP_EPOCHS" --lr 1e-2
pose-lab train --stage joint --config full --cache "$CACHE" --out "$RUNS/joint" \
    --init "$RUNS/spatial/model.safetensors" --epochs "$JOINT_EPOCHS" --lr 2e-4
pose-lab train --stage regressor --config full --cache "$CACHE" --out "$RUNS/regressor" \
    --epochs "$REG_EPOCHS" --lr 1e-3
