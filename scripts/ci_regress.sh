#!/usr/bin/env bash
# The CI regression gate (what .github/workflows/benchmarks.yml runs), anywhere:
#
#   scripts/ci_regress.sh BASE HEAD [FACTOR] [extra `mlpbench regress` options...]
#
# `mlpbench regress` exports both commits with `git archive` and benchmarks them in this
# environment, interleaved (it never checks anything out); BASE is replaced by its
# merge-base with HEAD. Results go to $MLPBENCH_REGRESS_OUT (default .mlpbench-regress/,
# never results/asv/), the verdict table is appended to $GITHUB_STEP_SUMMARY when set.
# Exit codes: 0 ok, 1 regressed, 2 bad input, 3 a benchmark broke on HEAD, 4 could not run.
# The checkout (branch or detached commit) is verified and restored on every exit path.
set -uo pipefail
usage="usage: ci_regress.sh BASE HEAD [FACTOR] [mlpbench regress options]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
base_ref=$1 head_ref=$2
shift 2
factor=1.3
if [ $# -gt 0 ] && [[ $1 != -* ]]; then factor=$1; shift; fi
cd "$(dirname "$0")/.." || exit 4
start=$(git symbolic-ref -q --short HEAD || git rev-parse HEAD) || exit 4
restore() {
  local now
  now=$(git symbolic-ref -q --short HEAD || git rev-parse HEAD)
  if [ "$now" != "$start" ]; then
    echo "ci_regress: restoring the checkout to $start" >&2
    git checkout --quiet "$start" || echo "ci_regress: could not restore $start" >&2
  fi
}
trap restore EXIT
python=${MLPBENCH_PYTHON:-python}
command -v "$python" >/dev/null || { echo "ci_regress: $python not found" >&2; exit 4; }
out=${MLPBENCH_REGRESS_OUT:-.mlpbench-regress}
args=(regress "$base_ref" "$head_ref" --factor "$factor" --out "$out")
[ -n "${GITHUB_STEP_SUMMARY:-}" ] && args+=(--summary "$GITHUB_STEP_SUMMARY")
"$python" -m mlpbench.cli "${args[@]}" "$@"
code=$?
case $code in 0|1|2|3|4) ;; *) echo "ci_regress: gate crashed (exit $code)" >&2; code=4 ;; esac
exit $code
