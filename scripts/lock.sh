#!/usr/bin/env bash
# Regenerate deploy/requirements.lock: the exact runtime dependencies the container image
# installs, from a fresh virtualenv of this checkout (Python 3.11, as in the image).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q .
{
  echo "# Pinned runtime dependencies of the container image (deploy/Dockerfile)."
  echo "# Regenerate with: bash scripts/lock.sh"
  "$tmp/venv/bin/pip" freeze --exclude mlflow-parallels
} > deploy/requirements.lock
echo "wrote deploy/requirements.lock ($(grep -vc '^#' deploy/requirements.lock) packages)"
