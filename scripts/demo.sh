#!/usr/bin/env bash
# Quickstart, command 1: install, then run the example DAG end to end on the embedded stack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/parallels demo "$@"
