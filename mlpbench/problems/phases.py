"""The measured phases of running and training an MLP, as ready-to-time callables.

=============  ==============================================================  ==============
phase          what one call does                                              FLOPs/sample
=============  ==============================================================  ==============
``infer``      forward under ``torch.no_grad``                                 forward
``forward``    forward with the autograd graph recorded                        forward
``backward``   ``loss.backward()``; the forward runs untimed before each call  backward
``train_sgd``  zero_grad + forward + MSE loss + backward + SGD step            fwd + bwd
``train_adam`` the same with Adam                                              fwd + bwd
=============  ==============================================================  ==============

A :class:`Bench` holds a model, a fixed batch and targets; :func:`phase_callable` returns
``(fn, setup)`` for :func:`mlpbench.measure.timing.measure`. The execution mode (eager or
``torch.compile``) and the precision (``fp32``, ``bf16``, ``bf16-autocast``, ``tf32``) are
described in :mod:`mlpbench.problems.modes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mlpbench.errors import UsageError
from mlpbench.models import build_keras, build_torch, torch_dtype
from mlpbench.optimizers import make_optimizer, memory_model, resolve
from mlpbench.problems.modes import storage_dtype, wrap_model
from mlpbench.spec import MLPSpec, dtype_bytes

PHASES = ("infer", "forward", "backward", "train_sgd", "train_adam")
FRAMEWORKS = ("torch", "keras")
#: phases the Keras API exposes as one call (its forward and backward are not separable)
KERAS_PHASES = ("infer", "train_sgd", "train_adam")
#: the optimizer of each training phase, from the registry; learning rates small enough that
#: a benchmark's repeated steps on one batch stay finite
PHASE_OPTIMIZERS = {"train_sgd": "sgd[lr=0.001,batch=full]",
                    "train_adam": "adam[lr=0.0001,batch=full]"}


def phase_flops(spec: MLPSpec, phase: str) -> int:
    """Matmul FLOPs per sample of a phase (the term a matmul peak can be compared with)."""
    fwd, bwd = spec.forward_flops().matmul, spec.backward_flops().matmul
    return {"infer": fwd, "forward": fwd, "backward": bwd,
            "train_sgd": fwd + bwd, "train_adam": fwd + bwd}[phase]


def predicted_bytes(spec: MLPSpec, phase: str, dtype: str, batch: int) -> int:
    """Memory-model bytes a phase needs (inputs and targets included); a mixed precision
    (``bf16-autocast``, ``tf32``) is counted at its storage dtype, an upper bound."""
    dtype = storage_dtype(dtype)
    io = batch * (spec.input_dim + spec.output_dim) * dtype_bytes(dtype)
    if phase in ("infer", "forward"):
        m = spec.memory(dtype, batch)
        return m.params + m.activations + io
    return memory_model(spec, PHASE_OPTIMIZERS.get(phase, "sgd"), dtype, batch).training + io


def check_phase(phase: str, framework: str = "torch") -> None:
    if framework not in FRAMEWORKS:
        raise UsageError(f"unknown framework {framework!r}; choose from {', '.join(FRAMEWORKS)}")
    if phase not in PHASES:
        raise UsageError(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")


@dataclass
class Bench:
    """A model and one fixed batch on a device, ready for timing."""

    spec: MLPSpec
    model: Any
    x: torch.Tensor
    y: torch.Tensor
    framework: str
    device: torch.device
    dtype: str  # the precision: fp32, bf16, bf16-autocast, tf32
    mode: str = "eager"  # eager, compile, max-autotune, cudagraphs

    def forward(self, model: Any) -> torch.Tensor:
        """``model(x)``, under bf16 autocast when the precision asks for it."""
        if self.dtype == "bf16-autocast":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return model(self.x)
        return model(self.x)


def make_bench(spec: MLPSpec, *, batch: int, device: torch.device, dtype: str = "fp32",
               framework: str = "torch", seed: int = 0, mode: str = "eager") -> Bench:
    """Build the model (compiled lazily for a compiled ``mode``) and a seeded random batch
    (inputs and regression targets), stored in the precision's storage dtype."""
    check_phase(PHASES[0], framework)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, spec.input_dim, generator=gen)
    y = torch.randn(batch, spec.output_dim, generator=gen)
    store = storage_dtype(dtype)
    tdtype = torch_dtype(store)
    x, y = x.to(device=device, dtype=tdtype), y.to(device=device, dtype=tdtype)
    if framework == "torch":
        model = build_torch(spec, seed=seed, dtype=store, device=device)
    else:
        model = build_keras(spec, seed=seed, dtype=store)
        _check_keras_device(device)
    return Bench(spec, model, x, y, framework, device, dtype, mode)


def _check_keras_device(device: torch.device) -> None:
    from keras.src.backend.torch.core import get_device

    keras_device = torch.device(get_device())
    if keras_device.type != device.type:
        raise UsageError(f"Keras runs on {keras_device.type} here, not {device.type}; "
                         "set KERAS_TORCH_DEVICE accordingly")


def phase_callable(bench: Bench, phase: str) -> tuple[Callable[[], Any], Callable[[], Any] | None]:
    """``(fn, setup)`` timing ``phase`` on ``bench``; ``setup`` is ``None`` when not needed."""
    check_phase(phase, bench.framework)
    if bench.framework == "keras":
        return _keras_phase(bench, phase), None
    return _torch_phase(bench, phase)


def _torch_phase(bench: Bench, phase: str):
    model: nn.Module = bench.model
    run = wrap_model(model, bench.mode)  # the model itself, or its torch.compile wrapper
    y = bench.y
    loss_fn = nn.MSELoss()
    if phase == "infer":
        def infer():
            with torch.no_grad():
                return bench.forward(run)
        return infer, None
    if phase == "forward":
        return (lambda: bench.forward(run)), None
    if phase == "backward":
        box: list[torch.Tensor] = []

        def forward():
            model.zero_grad(set_to_none=True)
            box[:] = [loss_fn(bench.forward(run).to(y.dtype), y)]

        return (lambda: box[0].backward()), forward
    opt = make_optimizer(PHASE_OPTIMIZERS[phase], model).opt  # the torch.optim instance

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(bench.forward(run).to(y.dtype), y)
        loss.backward()
        opt.step()
        return loss

    return train_step, None


def _keras_phase(bench: Bench, phase: str):
    import keras

    model = bench.model
    if phase not in KERAS_PHASES:
        raise UsageError(f"phase {phase!r} is not separable through the Keras API "
                         f"(Keras phases: {', '.join(KERAS_PHASES)})")
    if phase == "infer":
        def infer():
            with torch.no_grad():
                return model(bench.x, training=False)
        return infer
    lr = float(resolve(PHASE_OPTIMIZERS[phase]).hp["lr"])
    opt = (keras.optimizers.SGD(learning_rate=lr) if phase == "train_sgd"
           else keras.optimizers.Adam(learning_rate=lr))
    model.compile(optimizer=opt, loss="mse")
    return lambda: model.train_on_batch(bench.x, bench.y)
