#!/usr/bin/env bash
# Set up mlpbench in ./.venv (or in $MLPBENCH_VENV): idempotent, fast on a second run.
#
# PyTorch is installed first, on its own, when it is absent: a plain `torch` requirement
# may resolve to a multi-GB CUDA build, so the version comes from $MLPBENCH_TORCH
# (default torch==2.13.0; set e.g. MLPBENCH_TORCH="torch --index-url .../cu124" for CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MLPBENCH_VENV:-.venv}"
torch_req="${MLPBENCH_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: installing $torch_req" >&2
  # shellcheck disable=SC2086  # $torch_req may carry pip options
  "${pip[@]}" install $torch_req
fi
echo "setup: installing mlpbench with the test and keras extras" >&2
"${pip[@]}" install -e '.[test,keras]'
"$venv/bin/python" -c "import mlpbench, torch; print('setup: mlpbench', mlpbench.__version__, 'torch', torch.__version__)" >&2
