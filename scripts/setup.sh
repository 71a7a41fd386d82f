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
# the curvature extra (pinned in pyproject.toml), unless MLPBENCH_CURVATURE=0: --no-deps,
# because backpack-for-pytorch asks for torchvision, which could replace the torch above;
# the libraries' other requirements are listed here instead
if [ "${MLPBENCH_CURVATURE:-1}" != 0 ]; then
  echo "setup: installing the curvature extra (MLPBENCH_CURVATURE=0 leaves it out)" >&2
  mapfile -t curvature < <("$venv/bin/python" -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['curvature'], sep=chr(10))")
  "${pip[@]}" install 'opt-einsum>=3.4' 'einops>=0.3,<1' 'einconv>=0.1' 'linear_operator>=0.2' \
    'unfoldNd>=0.2.3,<1' typing-extensions
  "${pip[@]}" install --no-deps "${curvature[@]}"
fi
"$venv/bin/python" -c "import mlpbench, torch; print('setup: mlpbench', mlpbench.__version__, 'torch', torch.__version__)" >&2
