#!/usr/bin/env bash
# Trains every shipped model from scratch, then evaluates them on the LSP test set and
# writes their model cards and eval JSONs:
#   pretrained/pose.safetensors       detector on the ImageNet trunk -> spatial -> joint
#   pretrained/pose_full.safetensors  the same detector with a fully connected graph's spatial model
#   pretrained/scratch.safetensors    the paper's from-scratch detector -> spatial
#   pretrained/regressor.safetensors  DeepPose-style regressor on the same banks
# Every stage resumes from its run folder, so rerunning after an interruption continues
# where it stopped (`nohup bash scripts/train_pretrained.sh > train.log 2>&1 &`).
# Runs on CUDA when there is one, else on the CPU.
#   usage: scripts/train_pretrained.sh [RUNS_DIR] [CACHE]
#
# Settings were chosen on the validation split only (never the test set); the model
# cards list the validation PCK after every epoch of every stage. What was tried and
# dropped is in lessons/06_training.md and the closing notes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/pretrained}
CACHE=${2:-cache/lsp128.safetensors}
PL=${POSE_LAB:-.venv/bin/pose-lab}
LOSS=${LOSS:-mse}                 # detector heatmap loss: mse (the paper) or softmax
DET_EPOCHS=${DET_EPOCHS:-12}
DET_LR=${DET_LR:-2e-3}
SP_EPOCHS=${SP_EPOCHS:-1}
SP_LR=${SP_LR:-3e-2}
JOINT_EPOCHS=${JOINT_EPOCHS:-2}
JOINT_LR=${JOINT_LR:-1e-3}
REG_EPOCHS=${REG_EPOCHS:-4}
REG_LR=${REG_LR:-1e-3}
REG_LOSS=${REG_LOSS:-l1}
COMMON="--cache $CACHE --channels-last"
# The spatial stages: the marginal scored by the softmax cross-entropy, priors held near their
# histograms by a light penalty. The ImageNet model's spatial stage starts its pair biases at
# 1.0 (chosen on validation against 3.0 and 0.3, and the penalty 1e-3 against 1e-2 and 0, on
# cached unaries; 1e-2 held the priors too tightly to help, 0 let one limb prior drift 3 px).
SPATIAL="--marginal-loss softmax --prior-decay 1e-3"
# the from-scratch model's spatial stage keeps the recipe it shipped with (and the full graph uses it)
SCRATCH_SPATIAL="--marginal-loss softmax --prior-decay 1e-2"

[ -f "$CACHE" ] || $PL prepare --out "$CACHE"

# 0. The loss choice, on validation: two epochs with each heatmap loss (listed in the card).
for L in mse softmax; do
    $PL train --stage detector --config pretrained --loss "$L" $COMMON --out "$RUNS/cmp_$L" \
        --epochs 2 --lr "$DET_LR" --warmup 200
done

# 1. The paper's model on ImageNet features: detector, spatial model, then both jointly
#    (the detector at half the learning rate, the priors at ten times, the unary loss at 0.1,
#    then 0).
$PL train --stage detector --config pretrained --loss "$LOSS" $COMMON --out "$RUNS/detector" \
    --epochs "$DET_EPOCHS" --lr "$DET_LR" --warmup 200
$PL train --stage spatial $COMMON $SPATIAL --bias-init 1.0 --out "$RUNS/spatial" \
    --init "$RUNS/detector/model.safetensors" --epochs "$SP_EPOCHS" --lr "$SP_LR" --warmup 20
$PL train --stage joint $COMMON $SPATIAL --out "$RUNS/joint" --init "$RUNS/spatial/model.safetensors" \
    --epochs "$JOINT_EPOCHS" --lr "$JOINT_LR" --warmup 50 --detector-lr 0.5 --prior-lr 10 --unary-weight 0.1
# ... and two more joint epochs at half the learning rate (the card lists validation per epoch)
$PL train --stage joint $COMMON $SPATIAL --out "$RUNS/joint2" --init "$RUNS/joint/model.safetensors" \
    --epochs "$JOINT_EPOCHS" --lr 5e-4 --warmup 20 --detector-lr 0.5 --prior-lr 10 --unary-weight 0.1
# ... then as the paper does, the marginal alone is supervised (unary weight 0), for three more
#     pairs of epochs, each continued while validation marginal PCK still rose: 5e-4, then 2.5e-4,
#     then 2.5e-4 with the prior penalty lowered to 3e-4 (every limb prior still within 1 px of its
#     histogram). Validation marginal 60.4 -> 60.5 -> 60.6 -> 60.6 (60.64); the unary alone drops
#     from 58.8 to 58.3, since it is no longer asked to be a detector on its own.
$PL train --stage joint $COMMON $SPATIAL --out "$RUNS/joint3" --init "$RUNS/joint2/model.safetensors" \
    --epochs "$JOINT_EPOCHS" --lr 5e-4 --warmup 20 --detector-lr 0.5 --prior-lr 10 --unary-weight 0
$PL train --stage joint $COMMON $SPATIAL --out "$RUNS/joint4" --init "$RUNS/joint3/model.safetensors" \
    --epochs "$JOINT_EPOCHS" --lr 2.5e-4 --warmup 20 --detector-lr 0.5 --prior-lr 10 --unary-weight 0
$PL train --stage joint $COMMON --marginal-loss softmax --prior-decay 3e-4 --out "$RUNS/joint5" \
    --init "$RUNS/joint4/model.safetensors" --epochs "$JOINT_EPOCHS" --lr 2.5e-4 --warmup 20 \
    --detector-lr 0.5 --prior-lr 10 --unary-weight 0

# 2. The paper's from-scratch detector with a spatial model trained by the same recipe.
$PL train --stage detector --config scratch $COMMON --out "$RUNS/scratch_detector" --epochs 24 --lr 1e-3
$PL train --stage spatial --config scratch $COMMON $SCRATCH_SPATIAL --out "$RUNS/scratch_spatial" \
    --init "$RUNS/scratch_detector/model.safetensors" --epochs "$SP_EPOCHS" --lr 1e-2 --warmup 20

# 2b. Tree or fully connected graph? A spatial model over all 196 directed edges, trained on
#     the shipped (jointly trained) detector, frozen: the two shipped models share one unary.
#     The penalty is per edge on average, so 196 edges need the stronger 1e-2: at 1e-3 (validation
#     marginal 60.1) 10 of the 26 limb priors lost their anatomy; at 1e-2 (59.1) none did.
$PL train --stage spatial $COMMON $SCRATCH_SPATIAL --graph full --out "$RUNS/full" \
    --init "$RUNS/joint5/model.safetensors" --epochs 2 --lr "$SP_LR" --warmup 20

# 3. The DeepPose-style regressor on exactly the detector's features (trunk and banks, then
#    fine-tuned at a tenth of the learning rate): only the head differs. L1 was chosen on
#    validation against L2 (one epoch of 3,000 crops each).
for L in l1 l2; do
    $PL train --stage regressor --reg-loss "$L" $COMMON --out "$RUNS/regcmp_det_$L" --train-limit 3000 \
        --init "$RUNS/detector/model.safetensors" --detector-lr 0.1 --epochs 1 --lr "$REG_LR" --warmup 50
done
$PL train --stage regressor --reg-loss "$REG_LOSS" $COMMON --out "$RUNS/regressor" \
    --init "$RUNS/detector/model.safetensors" --detector-lr 0.1 --epochs "$REG_EPOCHS" --lr "$REG_LR" --warmup 100

# 4. Ship: weights, eval JSONs (LSP test), model cards.
cp "$RUNS/joint5/model.safetensors" pretrained/pose.safetensors
cp "$RUNS/scratch_spatial/model.safetensors" pretrained/scratch.safetensors
cp "$RUNS/full/model.safetensors" pretrained/pose_full.safetensors
cp "$RUNS/regressor/model.safetensors" pretrained/regressor.safetensors
# Multi-scale + flip testing at scales 0.8 1.0 1.2, chosen on validation (marginal 64.9, against
# 64.3 for 0.9-1.1 and 64.6 for five scales 0.7-1.3; flip alone 62.7, neither 61.1). The upload
# path and the robustness table read the original test photos.
$PL eval --model pretrained/pose.safetensors --split test --flip --scales 0.8 1.0 1.2 --ablate-banks --ablate-edges \
    --upload-path --robustness --json pretrained/pose.eval.json
$PL eval --model pretrained/pose_full.safetensors --split test --ablate-edges --json pretrained/pose_full.eval.json
for m in scratch regressor; do
    $PL eval --model "pretrained/$m.safetensors" --split test --json "pretrained/$m.eval.json"
done
for m in pose scratch regressor pose_full; do
    extra=""
    [ "$m" = pose ] && extra="--compared $RUNS/cmp_mse/model.safetensors --compared $RUNS/cmp_softmax/model.safetensors"
    [ "$m" = regressor ] && extra="--compared $RUNS/regcmp_det_l1/model.safetensors --compared $RUNS/regcmp_det_l2/model.safetensors"
    $PL card --model "pretrained/$m.safetensors" --eval "pretrained/$m.eval.json" --out "pretrained/$m.md" $extra
done
$PL card --summary --eval pretrained/pose.eval.json --eval pretrained/scratch.eval.json \
    --eval pretrained/regressor.eval.json --eval pretrained/pose_full.eval.json --out pretrained/README.md
