"""Cost of second-order operations against first-order ones as P grows."""

import torch

from mlpbench.measure.second_order import flat_loss, hessian_loop, hessian_vmap
from mlpbench.models import build_torch
from mlpbench.problems.workloads import mse
from mlpbench.spec import MLPSpec
from mlpbench.studies.newton_cost import CostConfig, operation_callable, predicted_op_bytes

from .common import FULL, WARMUP, Skip, cached_state, device_or_skip, skip_if_too_big, synced

OPS = ["grad", "hvp_fwdrev", "hvp_revrev", "hessian", "solve", "newton_step",
       "newton_cg_step", "sgd_step", "adam_step"]
#: d=10, L=2 networks: P = 465, 4,929 and 18,049
WIDTHS = [16, 64, 128]
#: dense operations beyond this P take tens of seconds per call: MLPBENCH_FULL only
HEAVY_DENSE_P = 10_000


@cached_state
def _operation(device, op, width):
    dev = device_or_skip(device)
    spec = MLPSpec(10, width, 2)
    skip_if_too_big(predicted_op_bytes(spec, op, 64), dev)
    if op in ("hessian", "solve", "newton_step") and spec.num_params > HEAVY_DENSE_P and not FULL:
        raise Skip(f"dense {op} at P={spec.num_params:,} takes tens of seconds; "
                   "set MLPBENCH_FULL=1 to run it")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=gen).to(dev)
    y = torch.randn(64, 1, generator=gen).to(dev)
    model = build_torch(spec, device=dev)
    timed = operation_callable(op, spec, model, x, y, CostConfig(), {})

    def call():
        # the parameters are restored first (an O(P) copy), so every call sees the same problem
        if timed.setup is not None:
            timed.setup()
        return timed.fn()

    return synced(call, dev)


@cached_state
def _hessian_problem():
    model = build_torch(MLPSpec(10, 38, 2))
    x, y = torch.randn(64, 10), torch.randn(64, 1)
    return flat_loss(model, mse, x, y)


class NewtonCost:
    """One call of each operation on a batch of 64 (CPU and CUDA); warm calls."""

    params = (["cpu", "cuda"], OPS, WIDTHS)
    param_names = ["device", "op", "width"]
    warmup_time = WARMUP
    timeout = 900
    repeat = (3, 10, 10.0)

    def time_op(self, *args):
        _operation(*args)()


class HessianBuild:
    """Dense Hessian at P = 1,939 (d=10, n_h=38, L=2): vmapped HVPs against a Python loop."""

    warmup_time = WARMUP
    timeout = 300
    repeat = (3, 6, 30.0)

    def time_vmap(self):
        hessian_vmap(*_hessian_problem())

    def time_loop(self):
        hessian_loop(*_hessian_problem())
