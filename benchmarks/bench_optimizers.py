"""Optimizer-step time per optimizer, and convergence to a target on small problems."""

from mlpbench.optimizers import CURVATURE, REGISTRY, make_optimizer
from mlpbench.optimizers.base import Objective
from mlpbench.problems.phases import make_bench
from mlpbench.problems.runner import Budget, run
from mlpbench.problems.workloads import make_workload, mse
from mlpbench.spec import MLPSpec

from .common import (
    DEVICES,
    REPEAT,
    WARMUP,
    cached_state,
    device_or_skip,
    set_threads_from_env,
    synced,
)

#: the structured-curvature family runs at its library defaults (heavyball eager, SOAP's
#: eigenbasis refreshed every 2nd step, K-FAC's factors every 10th), so a point's time is
#: the mean over its update and cheap steps; skipped with the reason without the extra
STEP_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
                   "lbfgs", *CURVATURE]


@cached_state
def _optimizer_step(device, optimizer):
    dev = device_or_skip(device)
    reason = REGISTRY[optimizer].skip_reason()
    if reason:
        raise NotImplementedError(f"{optimizer} {reason}")
    bench = make_bench(MLPSpec(100, 1000, 2), batch=256, device=dev)
    # a tiny learning rate keeps repeated steps finite; batch=full: the bench's batch
    name = "lbfgs[lr=1e-6]" if optimizer == "lbfgs" else f"{optimizer}[lr=1e-6,batch=full]"
    opt = make_optimizer(name, bench.model)
    objective = Objective(bench.model, bench.x, bench.y, mse)
    step = synced(lambda: opt.step(objective), dev)
    step()  # optimizer state
    return step


class OptimizerStep:
    """One full step (closure: forward, loss, backward; then the update) at d=100,
    n_h=1000, L=2 (P = 1,103,001), batch 256. Warm calls: state built once per process."""

    params = (DEVICES, STEP_OPTIMIZERS)
    param_names = ["device", "optimizer"]
    warmup_time = WARMUP
    repeat = REPEAT

    def time_step(self, *args):
        _optimizer_step(*args)()


CONVERGE_OPTIMIZERS = ["gd[lr=0.1]", "sgd[lr=0.1,batch=32]", "adam[lr=0.01,batch=32]", "lbfgs"]


class Convergence:
    """Steps, optimizer seconds and gradient evaluations to the workload's target (seed 0,
    CPU: deterministic). A run that misses the target reports NaN (asv: skipped)."""

    params = (["quadratic", "teacher"], CONVERGE_OPTIMIZERS)
    param_names = ["workload", "optimizer"]
    timeout = 300

    def setup(self, workload, optimizer):
        set_threads_from_env()
        self.result = run(make_workload(workload), optimizer, seed=0,
                          budget=Budget(max_steps=5000, max_seconds=60))

    def _value(self, key):
        return float(getattr(self.result, key))  # NaN when the target was missed

    def track_steps_to_target(self, *args):
        return self._value("steps_to_target")

    track_steps_to_target.unit = "steps"

    def track_time_to_target(self, *args):
        return self._value("time_to_target")

    track_time_to_target.unit = "seconds"

    def track_grad_evals_to_target(self, *args):
        return self._value("grad_evals_to_target")

    track_grad_evals_to_target.unit = "full-batch gradient evaluations"
