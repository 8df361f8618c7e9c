#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the project into it. Idempotent.
# Usage: scripts/bootstrap.sh [extras]   e.g. "dev"
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Parallels needs Python 3.11 or newer")'
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
target="."
if [ -n "${1:-}" ]; then target=".[$1]"; fi
# The MLflow UI plugin is its own distribution (it goes into an MLflow server's environment);
# installed beside the engine, `parallels up` serves MLflow with the Parallels tab.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target" -e ./ui_plugin
