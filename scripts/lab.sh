#!/usr/bin/env bash
# One entry point for a fresh machine.
#   bash scripts/lab.sh app    set up, then open the lab (http://localhost:8501)
#   bash scripts/lab.sh test   set up (with Chromium for the browser test), lint, then run every test
# Setup is idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-app}
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import lab, lab.resources, streamlit, torch, playwright, tqdm, ai_edge_litert" 2>/dev/null \
   || [ ! -x .venv/bin/ruff ]; then
    echo "==> installing pose-lab and its dependencies"
    # torch is pinned exactly: these machines serve a local CPU wheel (torch==2.13.0+cpu);
    # a range would let pip fetch the CUDA build, gigabytes we do not need.
    # (grep hides this machine's pip-config notes about absent local mirrors)
    { .venv/bin/pip install --quiet --disable-pip-version-check "torch==2.13.0" &&
      .venv/bin/pip install --quiet --disable-pip-version-check -e ".[test]"; } 2>&1 |
        { grep -v "^WARNING: Location 'file://" || true; }
fi
# (the person detector's weights ship inside the package: lab/assets/mediapipe)

case "$MODE" in
app)
    shift || true
    exec .venv/bin/pose-lab app "$@"
    ;;
test)
    if [ ! -x /usr/bin/chromium ]; then
        echo "==> installing Debian's Chromium for the browser test"
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    shift || true
    echo "==> ruff check (lint: pyproject.toml [tool.ruff])"
    .venv/bin/ruff check .
    exec .venv/bin/python -m pytest "$@"
    ;;
*)
    echo "usage: bash scripts/lab.sh app|test" >&2
    exit 2
    ;;
esac
