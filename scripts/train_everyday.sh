#!/usr/bin/env bash
# The everyday-photos campaign: the paper's model (banks -> unary -> spatial model, trained
# jointly) on 192-px crops with surroundings, the trunk's stride-32 blocks, and CPM-strength
# plus everyday-photo augmentation (README, "The everyday-photos recipe").
#
# A campaign across sessions: every stage resumes from its run folder, so rerunning continues
# where it stopped; checkpoints/README.md says where it stands. Nothing here is shipped until
# the new model's validation marginal beats the shipped one's (step 4): the partly trained
# model lives in runs/ and checkpoints/, not pretrained/.
#   usage: scripts/train_everyday.sh [RUNS_DIR]      (UNTIL=detector stops after the detector)
# Runs on CUDA when there is one, else on the CPU (THREADS torch threads; 1 keeps a core free
# for other work without the 2-thread slowdown that sharing a core causes).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/everyday}
CACHE=${CACHE:-cache/lsp192ctx.safetensors}
PL=${POSE_LAB:-.venv/bin/pose-lab}
THREADS=${THREADS:-1}
DET_EPOCHS=${DET_EPOCHS:-24}
UNTIL=${UNTIL:-all}
COMMON="--cache $CACHE --channels-last --threads $THREADS"
SPATIAL="--marginal-loss softmax --prior-decay 1e-3"

[ -f "$CACHE" ] || $PL prepare --size 192 --context 1.5 --out "$CACHE"

# 1. The detector: a long cosine schedule (validation was still rising at the end of the
#    shipped detector's 12 epochs).
$PL train --stage detector --config everyday --augment everyday $COMMON --out "$RUNS/detector" \
    --epochs "$DET_EPOCHS" --lr 2e-3 --warmup 200
[ "$UNTIL" = detector ] && exit 0

# 2. The spatial model on the frozen detector, then both jointly, as the shipped recipe
#    (scripts/train_pretrained.sh); to be re-chosen on validation for 48x48 heatmaps.
$PL train --stage spatial $COMMON $SPATIAL --bias-init 1.0 --out "$RUNS/spatial" \
    --init "$RUNS/detector/model.safetensors" --epochs 1 --lr 3e-2 --warmup 20
$PL train --stage joint $COMMON $SPATIAL --augment everyday --out "$RUNS/joint" \
    --init "$RUNS/spatial/model.safetensors" --epochs 2 --lr 5e-4 --warmup 20 --detector-lr 0.5 \
    --prior-lr 10 --unary-weight 0

# 2b. The fully connected graph on the same (jointly trained, frozen) detector, so the tree vs
#     full graph comparison keeps one shared unary.
$PL train --stage spatial $COMMON --marginal-loss softmax --prior-decay 1e-2 --graph full --out "$RUNS/full" \
    --init "$RUNS/joint/model.safetensors" --epochs 2 --lr 3e-2 --warmup 20

# 3. The regressor on exactly this detector's features.
CACHE=$CACHE POSE_LAB=$PL THREADS=$THREADS bash scripts/train_everyday_regressor.sh "$RUNS" 4

# 4. Ship only what beats the shipped model on the validation split, then eval and cards.
bash scripts/ship_everyday.sh "$RUNS/joint/model.safetensors" "$RUNS/full/model.safetensors" \
    "$RUNS/regressor/model.safetensors"
