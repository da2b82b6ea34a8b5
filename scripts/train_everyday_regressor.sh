#!/usr/bin/env bash
# The everyday recipe's DeepPose-style regressor on exactly RUNS_DIR/detector's features (their
# lr at a tenth of the head's), so the heatmaps-vs-regression comparison stays like for like.
# Called by scripts/train_everyday.sh (step 3) and scripts/train_everyday_joint.sh (step 5).
#   usage: scripts/train_everyday_regressor.sh RUNS_DIR [EPOCHS]   (env: CACHE, POSE_LAB, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=$1
EPOCHS=${2:-4}
CACHE=${CACHE:-cache/lsp192ctx.safetensors}
PL=${POSE_LAB:-.venv/bin/pose-lab}
THREADS=${THREADS:-2}
$PL train --stage regressor --reg-loss l1 --augment everyday --cache "$CACHE" --channels-last \
    --threads "$THREADS" --out "$RUNS/regressor" --init "$RUNS/detector/model.safetensors" \
    --detector-lr 0.1 --epochs "$EPOCHS" --lr 1e-3 --warmup 100
