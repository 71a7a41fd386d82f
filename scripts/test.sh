#!/usr/bin/env bash
# The README's test command: set up, lint, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${MLPBENCH_VENV:-.venv}"
"$venv/bin/ruff" check mlpbench benchmarks tests scripts
"$venv/bin/python" -m pytest "$@"
