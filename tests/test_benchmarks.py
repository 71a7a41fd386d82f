"""The asv suite times warm calls, skips with reasons and validates its environment."""

import importlib
import inspect
import os
import statistics
import subprocess
import sys
import time

import pytest
import torch

from benchmarks import bench_hardware, bench_newton, bench_optimizers
from benchmarks.common import Skip, env_full, env_threads
from mlpbench.errors import UsageError
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.problems.phases import make_bench, phase_callable
from mlpbench.spec import MLPSpec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = (bench_hardware, bench_newton, bench_optimizers)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_bad_thread_counts_are_clear_errors(value):
    with pytest.raises(UsageError, match="MLPBENCH_THREADS"):
        env_threads(value)


def test_env_values():
    assert env_threads("") is None and env_threads("3") == 3
    assert env_full("true") and env_full("1") and env_full("YES")
    assert not env_full("") and not env_full("0") and not env_full("off")
    with pytest.raises(UsageError, match="MLPBENCH_FULL"):
        env_full("maybe")


def test_bad_environment_fails_the_suite_import():
    env = dict(os.environ, MLPBENCH_THREADS="abc")
    proc = subprocess.run([sys.executable, "-c", "import benchmarks.common"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "MLPBENCH_THREADS='abc': must be a positive integer" in proc.stderr


def _timed_classes():
    for mod in MODULES:
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and any(m.startswith(("time_", "peakmem_"))
                                                      for m in dir(cls)):
                yield name, cls


def test_timed_classes_have_no_setup_hook():
    """asv_runner re-runs setup before every timed call and forces number=1 (asv#966)."""
    names = [n for n, _ in _timed_classes()]
    assert {"ForwardBackward", "TrainStep", "OptimizerStep", "NewtonCost"} <= set(names)
    for mod in MODULES:
        assert not hasattr(mod, "setup")
    for name, cls in _timed_classes():
        assert not hasattr(cls, "setup"), name


def test_cuda_points_skip_with_a_reason():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(Skip, match="CUDA"):
        bench_hardware.TrainStep().time_step("cuda", 64, 2, 32)


def test_heavy_points_skip_without_full():
    importlib.reload(importlib.import_module("benchmarks.common"))
    with pytest.raises(NotImplementedError, match="MLPBENCH_FULL"):
        bench_hardware.TrainStep().time_step("cpu", 4096, 10, 1024)


def test_asv_time_agrees_with_warm_timing():
    """asv_runner's own timing of TrainStep matches mlpbench's warm timing of the same point
    within 2x (cold single calls after a fresh setup were 30x off). Both clocks are process
    CPU time: on a loaded 2-vCPU VM one preemption adds ~40 ms of wall time to a 1 ms call."""
    from asv_runner.benchmarks.time import TimeBenchmark

    torch.set_num_threads(1)
    params = ("cpu", 64, 2, 32)
    obj = bench_hardware.TrainStep()
    bench = TimeBenchmark("bench_hardware.TrainStep.time_step", obj.time_step,
                          [obj.time_step, bench_hardware.TrainStep, bench_hardware])
    bench.repeat, bench.timer = (6, 10, 2.0), time.process_time
    assert not bench._setups  # no setup hook: asv does not rebuild state between calls
    asv = bench.run(*params)
    step = phase_callable(make_bench(MLPSpec(100, 64, 2), batch=32, device=torch.device("cpu")),
                          "train_sgd")[0]
    ref = measure(step, config=TimerConfig(budget_s=0.5), clock=time.process_time).median
    ratio = statistics.median(asv["samples"]) / ref
    assert 0.5 < ratio < 2.0, (ratio, asv)


def test_every_cpu_method_runs_once_on_a_small_point():
    fb = bench_hardware.ForwardBackward()
    for method in (fb.time_infer, fb.time_forward, fb.time_forward_backward):
        method("cpu", 10, 64, 2)
        method("cpu", 10, 64, 2)  # second call reuses the cached state
    bench_optimizers.OptimizerStep().time_step("cpu", "sgd")
    bench_newton.NewtonCost().time_op("cpu", "grad", 16)
    with pytest.raises(NotImplementedError, match="MLPBENCH_FULL"):
        bench_newton.NewtonCost().time_op("cpu", "hessian", 128)


def test_mode_step_runs_each_mode_and_skips_cudagraphs_on_cpu(monkeypatch, tmp_path):
    import mlpbench.problems.modes as modes

    monkeypatch.setattr(modes, "BACKEND", "eager")  # dynamo without inductor: fast
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    step = bench_hardware.ModeStep()
    for mode in ("eager", "compile"):
        for phase in ("infer", "train_sgd"):
            step.time_call("cpu", mode, 64, phase)
            step.time_call("cpu", mode, 64, phase)  # the cached (compiled) state again
    if not torch.cuda.is_available():
        with pytest.raises(Skip, match="cudagraphs: CUDA graphs need a CUDA device"):
            step.time_call("cpu", "cudagraphs", 64, "infer")
