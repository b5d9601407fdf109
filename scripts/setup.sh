#!/usr/bin/env bash
# One command sets up a fresh machine: a virtual environment with every Python package, and
# Debian's Chromium for the browser tests (never a browser download).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
quiet() { grep -v "^WARNING: Location" || true; }
log=$(mktemp)
trap 'rm -f "$log" "$log.req" "$log.dev"' EXIT
# requirements.txt links PyTorch's CPU-only wheels directly (what Community Cloud installs). Where
# only PyPI is reachable that fails within seconds; then install the same versions from PyPI, every
# other pin unchanged.
if ! .venv/bin/python -m pip install --quiet -r requirements-dev.txt >"$log" 2>&1; then
    grep -vE '^(torch|torchvision) @ ' requirements.txt | sed -E 's/^((torch|torchvision)==[^ ;]+) *;.*/\1/' >"$log.req"
    grep -v '^-r ' requirements-dev.txt >"$log.dev"
    echo "setup: PyTorch's CPU-only wheels are out of reach here; installing $(grep -E '^torch(vision)?==' "$log.req" | tr '\n' ' ')from PyPI instead"
    .venv/bin/python -m pip install --quiet -r "$log.req" -r "$log.dev" 2>&1 | quiet
else
    quiet <"$log"
fi
.venv/bin/python -c "import torch, torchvision, streamlit, matplotlib, playwright, hypothesis" \
    || { cat "$log" >&2; echo "setup: Python packages failed to install" >&2; exit 1; }
.venv/bin/python -m pip install --quiet -r requirements-ray.txt 2>&1 | quiet || echo "setup: Ray (requirements-ray.txt, optional) did not install; tests/ray will be skipped" >&2
# Debian's Chromium for the browser tests; its headless shell (lighter, optional) when apt has it.
apt_install() {
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        false
    fi
}
if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    apt_install chromium fonts-noto-color-emoji \
        || echo "setup: install Debian's chromium package for the browser tests (apt-get install chromium)" >&2
fi
if [ ! -x /usr/bin/chromium-headless-shell ]; then
    apt_install chromium-headless-shell \
        || echo "setup: chromium-headless-shell did not install; the browser tests use chromium" >&2
fi
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
