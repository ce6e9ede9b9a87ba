#!/usr/bin/env bash
# One-time (idempotent) setup on a fresh Debian machine, as root:
# Docker engine + Compose v2 + the local busybox:1.36 image, tmux, git,
# the pinned agent CLIs (claude, codex; Node.js from Debian where absent),
# and a virtualenv in .venv with kinfra and its dev tools installed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-docker.sh
bash scripts/ensure-agents.sh
bash scripts/ensure-prometheus.sh

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: kinfra needs Python >= 3.11 (found: $(python3 --version 2>&1))" >&2
  exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "setup: ready (.venv/bin/kinfra)" >&2
