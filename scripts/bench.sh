#!/usr/bin/env bash
# The benchmarks (docs/benchmarks.md): installs into .venv, then runs every measurement at full
# size and writes benchmarks/results/<time>.json. Extra arguments go to benchmarks.run, e.g.
#   bash scripts/bench.sh --only e2e,api --compare benchmarks/baseline.json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m benchmarks.run "$@"
