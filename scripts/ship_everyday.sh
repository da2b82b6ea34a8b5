#!/usr/bin/env bash
# Ship a campaign's pose model, its full graph and (optionally) its regressor, only if the new
# pose model's validation marginal beats the shipped one's and its own unary; then write the eval JSONs, cards and
# pretrained/README.md. Called by scripts/train_everyday.sh and scripts/train_everyday_joint.sh.
#   usage: scripts/ship_everyday.sh POSE FULL [REGRESSOR]
#          scripts/ship_everyday.sh --check POSE   (exit 0 when POSE would ship; nothing else)
#   COMPARED="--compared RUN/model.safetensors ..." adds runs chosen against to the pose card.
set -euo pipefail
cd "$(dirname "$0")/.."
PL=${POSE_LAB:-.venv/bin/pose-lab}
CHECK_ONLY=""
[ "$1" = "--check" ] && { CHECK_ONLY=1; shift; }
POSE=$1 FULL=${2:-} REGRESSOR=${3:-}

.venv/bin/python - "$POSE" pretrained/pose.safetensors <<'EOF'
import sys
from lab.models import io
new, old = (io.read_meta(p)["history"][-1]["val_pck"] for p in sys.argv[1:])
print(f"validation marginal PCK@0.2: new {100 * new['marginal']:.1f} (its unary {100 * new['unary']:.1f}), "
      f"shipped {100 * old['marginal']:.1f}")
# ships when it beats the shipped marginal and its spatial model adds (the lessons say it does)
sys.exit(0 if new["marginal"] > old["marginal"] and new["marginal"] > new["unary"] else 1)
EOF
[ -z "$CHECK_ONLY" ] || exit 0
cp "$POSE" pretrained/pose.safetensors
cp "$FULL" pretrained/pose_full.safetensors
MODELS="pose pose_full"
if [ -n "$REGRESSOR" ]; then
    cp "$REGRESSOR" pretrained/regressor.safetensors
    MODELS="$MODELS regressor"
fi
$PL eval --model pretrained/pose.safetensors --split test --flip --scales 0.8 1.0 1.2 --upload-path \
    --robustness --ablate-banks --ablate-edges --json pretrained/pose.eval.json
$PL eval --model pretrained/pose_full.safetensors --split test --ablate-edges --json pretrained/pose_full.eval.json
[ -z "$REGRESSOR" ] || $PL eval --model pretrained/regressor.safetensors --split test --json pretrained/regressor.eval.json
for m in $MODELS; do
    extra=""
    [ "$m" = pose ] && extra=${COMPARED:-}
    $PL card --model "pretrained/$m.safetensors" --eval "pretrained/$m.eval.json" --out "pretrained/$m.md" $extra
done
$PL card --summary --eval pretrained/pose.eval.json --eval pretrained/scratch.eval.json \
    --eval pretrained/regressor.eval.json --eval pretrained/pose_full.eval.json --out pretrained/README.md
