#!/usr/bin/env bash
# The prepared GPU check (one call on a lent GPU machine, ~5 minutes):
#   1. the gpu-marked tests;
#   2. a quick CUDA + CPU sweep (CPU-vs-CUDA crossover), fp32 and bf16;
#   3. execution modes (compile, CUDA graphs, TF32/bf16) on the 10^7 network at B=4096, a
#      one-GPU NCCL data-parallel run, and the Newton cost study on CUDA;
#   4. the asv CUDA benchmarks in the existing environment, if asv is importable
#      (carry asv's wheels and set MLPBENCH_WHEELS to their folder to install them).
# Everything lands under $MLPBENCH_GPU_OUT (default: $OUT, else ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${MLPBENCH_GPU_OUT:-${OUT:-gpu-out}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MLPBENCH_CACHE="$out/cache"
py=${PYTHON:-python3}
status=0
log() { echo "== $*" | tee -a "$out/gpu_check.log"; }

log "device"
$py -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" \
  2>&1 | tee -a "$out/gpu_check.log" || { log "no CUDA device"; exit 1; }
if [ -n "${MLPBENCH_WHEELS:-}" ]; then
  $py -m pip install --quiet --no-index --find-links "$MLPBENCH_WHEELS" asv tqdm 2>&1 | tail -2
fi
$py -c "import tqdm" 2>/dev/null || $py -m pip install --quiet tqdm 2>/dev/null || true

log "gpu-marked tests"
timeout 120 $py -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tail -15 | tee -a "$out/gpu_check.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

log "peak (fp32, tf32, bf16)"
timeout 60 $py -m mlpbench.cli peak --device cuda --mode fp32 --mode tf32 --mode bf16 --json \
  > "$out/peak_cuda.json" 2>>"$out/gpu_check.log" || status=1

log "quick sweep, CPU and CUDA, fp32 and bf16"
timeout 150 $py -m mlpbench.cli sweep --preset quick --devices cpu,cuda --dtypes fp32,bf16 \
  --widths 128,1024,4096 --depths 2,4 --batches 1024 --quiet --out "$out/sweep" \
  2>&1 | tail -20 | tee -a "$out/gpu_check.log" || status=1

log "execution modes on CUDA: eager, compile, cudagraphs; fp32, tf32, bf16, bf16-autocast"
timeout 240 $py -m mlpbench.cli sweep --devices cuda --modes eager,compile,cudagraphs \
  --dtypes fp32,tf32,bf16,bf16-autocast --input-dims 100 --widths 1000 --depths 10 \
  --batches 4096 --phases infer,train_sgd --budget 0.3 --quiet --out "$out/modes" \
  2>&1 | tail -20 | tee -a "$out/gpu_check.log" || status=1

log "data-parallel on NCCL, one GPU (world size 1)"
timeout 120 $py -m mlpbench.cli distributed --backend nccl --world-sizes 1 --input-dims 100 \
  --widths 1000 --depths 10 --batches 1024 --scaling weak --rounds 2 --quiet \
  --out "$out/distributed" 2>&1 | tail -10 | tee -a "$out/gpu_check.log" || status=1

log "Newton cost study on CUDA"
timeout 120 $py -m mlpbench.cli newton-cost --device cuda --widths 16,64,128,256 \
  --max-op-seconds 10 --quiet --out "$out/newton" 2>&1 | tail -30 | tee -a "$out/gpu_check.log" \
  || status=1

if $py -c "import asv" 2>/dev/null; then
  log "asv CUDA benchmarks (existing environment)"
  $py -m asv machine --yes --machine gpu-check >/dev/null 2>&1
  timeout 120 $py -m asv run --python=same --set-commit-hash "$(git rev-parse HEAD)" \
    --machine gpu-check -b "Throughput|CudaMemory|OptimizerStep" 2>&1 | tail -30 \
    | tee -a "$out/gpu_check.log"
  cp -r results/asv "$out/asv" 2>/dev/null
else
  log "asv not importable: skipped the asv run (set MLPBENCH_WHEELS)"
fi
log "done (status $status)"
exit $status
