#!/usr/bin/env bash
# The CI regression gate (what .github/workflows/benchmarks.yml runs), anywhere:
#
#   scripts/ci_regress.sh BASE HEAD [FACTOR] [extra `mlpbench regress` options...]
#
# The gate's own code -- this script, `mlpbench regress`, its worker and statistics -- runs
# from the tree this script sits in (in CI: an export of the merge-base, so a pull request
# cannot change the gate that judges it); the commits compared come from the git repository
# $MLPBENCH_REGRESS_REPO (default: this tree). `mlpbench regress` exports both commits with
# `git archive` and benchmarks them in this environment, interleaved (it never checks
# anything out); BASE is replaced by its merge-base with HEAD. Results go to
# $MLPBENCH_REGRESS_OUT (default .mlpbench-regress/ in the repository, never results/asv/),
# the verdict table is appended to $GITHUB_STEP_SUMMARY when set.
# Exit codes: 0 ok, 1 regressed, 2 bad input, 3 a benchmark broke, hung, vanished or was
# skipped on HEAD (unless declared in benchmarks/RETIRED), 4 could not run. An exit 1 counts
# only when the gate's own gate.json says 1; anything else is 4, never a false REGRESSED.
# The checkout (branch or detached commit) is verified and restored on every exit path.
set -uo pipefail
usage="usage: ci_regress.sh BASE HEAD [FACTOR] [mlpbench regress options]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
base_ref=$1 head_ref=$2
shift 2
factor=1.3
if [ $# -gt 0 ] && [[ $1 != -* ]]; then factor=$1; shift; fi
gate_root=$(cd "$(dirname "$0")/.." && pwd) || exit 4
repo=${MLPBENCH_REGRESS_REPO:-$gate_root}
cd "$repo" || { echo "ci_regress: no repository at $repo" >&2; exit 4; }
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
args=(regress "$base_ref" "$head_ref" --factor "$factor" --out "$out" --repo "$repo")
[ -n "${GITHUB_STEP_SUMMARY:-}" ] && args+=(--summary "$GITHUB_STEP_SUMMARY")
# -P: the current folder (the checkout under test) is never put on sys.path
PYTHONPATH="$gate_root" "$python" -P -m mlpbench.cli "${args[@]}" "$@"
code=$?
case $code in
  0|2|3|4) ;;
  1)
    said=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["context"]["exit_code"])' \
           "$out/gate.json" 2>/dev/null)
    if [ "$said" != 1 ]; then
      echo "ci_regress: exit 1 without a REGRESSED verdict in $out/gate.json: an error, not a regression" >&2
      code=4
    fi ;;
  *) echo "ci_regress: gate crashed (exit $code)" >&2; code=4 ;;
esac
exit $code
