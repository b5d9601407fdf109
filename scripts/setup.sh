#!/usr/bin/env bash
# One command sets up a fresh machine: a virtual environment with every Python package, and
# Debian's Chromium for the browser tests (never a browser download).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, torchvision, streamlit, matplotlib, playwright, hypothesis" \
    || { echo "setup: Python packages failed to install" >&2; exit 1; }
if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
    else
        echo "setup: install Debian's chromium package for the browser tests (apt-get install chromium)" >&2
    fi
fi
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
