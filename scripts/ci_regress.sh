#!/usr/bin/env bash
# Regression check between two commits in an existing environment (what CI runs):
# benchmark BASE and HEAD with `asv run --python=same`, then `mlpbench regress`.
#
#   scripts/ci_regress.sh BASE HEAD [BENCH_REGEX] [FACTOR]
#
# Exit codes are mlpbench regress's: 0 ok, 1 regressed, 3 a benchmark broke, 4 could not run.
set -euo pipefail
base_ref=${1:?usage: ci_regress.sh BASE HEAD [BENCH_REGEX] [FACTOR]}
head_ref=${2:?usage: ci_regress.sh BASE HEAD [BENCH_REGEX] [FACTOR]}
bench=${3:-"TrainStep.time_step\\('cpu', (64|1000), 2, 32\\)|OptimizerStep.time_step\\('cpu'"}
factor=${4:-1.1}
cd "$(dirname "$0")/.."
start=$(git rev-parse --abbrev-ref HEAD)
[ "$start" = HEAD ] && start=$(git rev-parse HEAD)
base=$(git rev-parse "$base_ref")
head=$(git rev-parse "$head_ref")
asv machine --yes >/dev/null
for sha in "$base" "$head"; do
  git checkout --quiet "$sha"
  python -m pip install --quiet --no-deps -e .
  asv run --python=same --set-commit-hash "$sha" -b "$bench"
done
git checkout --quiet "$start"
python -m pip install --quiet --no-deps -e .
mlpbench regress "$base" "$head" --factor "$factor"
