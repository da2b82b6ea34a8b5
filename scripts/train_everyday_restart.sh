#!/usr/bin/env bash
# The everyday campaign, third pass (issue 19): the 24-epoch detector's validation rose to the
# end of its cosine schedule (63.4, 63.3, 63.6, 63.6), so a warm restart: a fresh, shorter cosine
# schedule at half the first peak lr from its weights, then the second joint pass's stages on
# it (spatial, joint with the unary loss at 0.1, then without, full graph). Ships only if the validation
# marginal beats the shipped model's (scripts/ship_everyday.sh).
#   usage: scripts/train_everyday_restart.sh [FROM_RUNS] [RUNS_DIR]
#   env: RESTART_EPOCHS (12), REGRESSOR_EPOCHS (4), UW_EPOCHS (4), M_EPOCHS (2), FULL_EPOCHS (2),
#        CONFIG (everyday; everyday-lite1 grows the detector's trunk to EfficientNet-Lite1's depth)
# Needs FROM_RUNS/detector (cp -r checkpoints/everyday/detector runs/everyday/).
set -euo pipefail
cd "$(dirname "$0")/.."
FROM=${1:-runs/everyday}
RUNS=${2:-runs/everyday3}
CACHE=${CACHE:-cache/lsp192ctx.safetensors}
PL=${POSE_LAB:-.venv/bin/pose-lab}
THREADS=${THREADS:-2}
RESTART_EPOCHS=${RESTART_EPOCHS:-12}
CONFIG=${CONFIG:-everyday}
COMMON="--cache $CACHE --channels-last --threads $THREADS"

[ -f "$CACHE" ] || $PL prepare --size 192 --context 1.5 --out "$CACHE"

# 1. The detector, warm-restarted: the same recipe, lr 1e-3 (the first schedule's peak was 2e-3).
$PL train --stage detector --config "$CONFIG" --augment everyday $COMMON --out "$RUNS/detector" \
    --init "$FROM/detector/model.safetensors" --epochs "$RESTART_EPOCHS" --lr 1e-3 --warmup 100

# 2-6. Spatial, joint (unary weight 0.1, then the marginal alone), full graph, then, once the pick
#      is known to beat the shipped model on validation, the regressor on exactly this detector's
#      features, and ship: as the second joint pass, with fewer joint epochs (it levelled off after 4).
UW_EPOCHS=${UW_EPOCHS:-4} M_EPOCHS=${M_EPOCHS:-2} FULL_EPOCHS=${FULL_EPOCHS:-2} \
    REGRESSOR_EPOCHS=${REGRESSOR_EPOCHS:-4} \
    bash scripts/train_everyday_joint.sh "$RUNS"
