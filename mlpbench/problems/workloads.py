"""Seeded synthetic problems, each with a model, a loss and a declared target loss.

A workload is separate from the optimizer (as in AlgoPerf and benchopt): it fixes data,
model family, loss and target; the convergence runner times only the optimizer's steps.

================  =========================================================================
name              problem
================  =========================================================================
``quadratic``     least squares with a linear model: convex, closed-form minimum
``teacher``       teacher–student regression: a random tanh MLP teacher, a wider student
``mixture``       4-class Gaussian-mixture classification with cross-entropy
``local_minima``  exact-capacity teacher–student: a ReLU student exactly as wide as its
                  teacher; the global minimum is 0 but spurious minima and dead units exist
================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from mlpbench.errors import UsageError
from mlpbench.models import build_torch
from mlpbench.spec import MLPSpec

#: share of the initial optimality gap left at the quadratic workload's target
GAP_SHARE = 0.01


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, written out: ``F.mse_loss`` fails under forward-over-reverse AD
    (``jvp(grad(f))`` raises "ZeroTensors are immutable" in torch 2.13), which the
    Hessian-vector products of :mod:`mlpbench.measure.second_order` need."""
    return (out - target).pow(2).mean()


@dataclass
class Workload:
    """Data on a device, a model factory, the loss and the target loss."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    target_loss: float  # the run succeeds once the full-batch train loss is <= this
    make_model: Callable[[int], nn.Module]  # seed -> fresh model on the workload's device
    spec: MLPSpec | None = None  # the student's architecture, when it is an MLP
    info: dict[str, float] = field(default_factory=dict)
    #: when set, each run's target is min_loss + gap_share × (its own initial loss − min_loss)
    gap_share: float | None = None

    def target_for(self, initial_loss: float) -> float:
        """The target loss of a run that starts at ``initial_loss``."""
        if self.gap_share is None or "min_loss" not in self.info:
            return self.target_loss
        best = self.info["min_loss"]
        return best + self.gap_share * (initial_loss - best)

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @torch.no_grad()
    def losses(self, model: nn.Module) -> tuple[float, float]:
        """Full-batch (train, test) loss."""
        return (float(self.loss_fn(model(self.x_train), self.y_train)),
                float(self.loss_fn(model(self.x_test), self.y_test)))


def _split(x: torch.Tensor, y: torch.Tensor, n_train: int):
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _teacher_data(spec: MLPSpec, teacher_seed: int, n: int, data_seed: int):
    """Gaussian inputs and a random teacher's outputs, normalized to zero mean, unit variance."""
    x = torch.randn(n, spec.input_dim, generator=torch.Generator().manual_seed(data_seed))
    with torch.no_grad():
        y = build_torch(spec, seed=teacher_seed)(x)
    return x, (y - y.mean()) / y.std()


def _mlp_factory(spec: MLPSpec, device: torch.device, seed_offset: int = 0):
    return lambda seed: build_torch(spec, seed=seed + seed_offset, device=device)


def quadratic(seed: int = 0, device: str | torch.device = "cpu", n_train: int = 256,
              n_test: int = 256, dim: int = 10) -> Workload:
    """Linear least squares; the target is the exact minimum plus 1% of each run's own initial
    optimality gap."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    # a design with condition number ~10 in X^T X, so first- and second-order methods differ
    scales = torch.logspace(-0.5, 0, dim)
    x = torch.randn(n, dim, generator=gen) * scales
    w = torch.randn(dim, 1, generator=gen)
    y = x @ w + 0.1 * torch.randn(n, 1, generator=gen)
    xt, yt, xv, yv = (t.to(device) for t in _split(x, y, n_train))
    design = torch.cat([xt, torch.ones(n_train, 1, device=device)], 1)
    sol = torch.linalg.lstsq(design.double(), yt.double()).solution
    best = float(((design.double() @ sol - yt.double()) ** 2).mean())

    def make_model(s: int) -> nn.Module:
        torch.manual_seed(s)
        return nn.Linear(dim, 1).to(device)

    # each run must close 99% of the gap between ITS OWN initial loss and the exact minimum
    # (Workload.target_for); target_loss is that target for the seed-0 model. The old target
    # used mean(y²), the loss of a zero model, which no seeded nn.Linear starts from.
    with torch.no_grad():
        start = float(mse(make_model(0)(xt), yt))
    return Workload("quadratic", xt, yt, xv, yv, mse, best + GAP_SHARE * (start - best),
                    make_model, info={"min_loss": best}, gap_share=GAP_SHARE)


def teacher(seed: int = 0, device: str | torch.device = "cpu", n_train: int = 512,
            n_test: int = 512, dim: int = 8, teacher_width: int = 8,
            student_width: int = 32) -> Workload:
    """Regression on a random tanh teacher; targets normalized to unit variance."""
    device = torch.device(device)
    tspec = MLPSpec(dim, teacher_width, 2, activation="tanh")
    x, y = _teacher_data(tspec, 10_000 + seed, n_train + n_test, seed)
    sspec = MLPSpec(dim, student_width, 2, activation="tanh")
    xt, yt, xv, yv = (t.to(device) for t in _split(x, y, n_train))
    # target: 1% of the targets' variance left unexplained
    return Workload("teacher", xt, yt, xv, yv, mse, 0.01,
                    _mlp_factory(sspec, device), spec=sspec)


def mixture(seed: int = 0, device: str | torch.device = "cpu", n_train: int = 512,
            n_test: int = 512, dim: int = 10, classes: int = 4, width: int = 32) -> Workload:
    """Gaussian-mixture classification: unit-variance clusters whose means have norm ~6."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    means = 6.0 * torch.randn(classes, dim, generator=gen) / dim**0.5
    labels = torch.randint(classes, (n_train + n_test,), generator=gen)
    x = means[labels] + torch.randn(n_train + n_test, dim, generator=gen)
    spec = MLPSpec(dim, width, 2, output_dim=classes)
    xt, yt, xv, yv = (t.to(device) for t in _split(x, labels, n_train))
    return Workload("mixture", xt, yt, xv, yv, nn.CrossEntropyLoss(), 0.05,
                    _mlp_factory(spec, device), spec=spec)


def local_minima(seed: int = 0, device: str | torch.device = "cpu", n_train: int = 256,
                 n_test: int = 256, dim: int = 4, width: int = 4) -> Workload:
    """A one-hidden-layer ReLU student exactly as wide as its ReLU teacher.

    The student can represent the teacher exactly, so the global minimum loss is 0, but
    the landscape has spurious local minima (Safran & Shamir, 2018) and dead-unit plateaus.
    The data are fixed per ``seed``; the seed passed to ``make_model`` picks the student's
    initialization.
    """
    device = torch.device(device)
    spec = MLPSpec(dim, width, 1, activation="relu")
    x, y = _teacher_data(spec, 20_000 + seed, n_train + n_test, seed)
    xt, yt, xv, yv = (t.to(device) for t in _split(x, y, n_train))
    # 1e-5 of the unit target variance: below the lowest spurious stationary point found
    # (2.51e-4, fp64-polished; results/runs/intel-xeon-2c/minima), so reaching it means the
    # teacher's basin (the old 1e-3 lay above a spurious minimum at 2.5e-4)
    return Workload("local_minima", xt, yt, xv, yv, mse, 1e-5,
                    _mlp_factory(spec, device, seed_offset=1), spec=spec)


def _minima(name: str):
    """A factory from :mod:`mlpbench.problems.minima_workloads` (imported when used: that
    module builds on this one)."""
    def make(seed: int = 0, device: str | torch.device = "cpu") -> Workload:
        from mlpbench.problems.minima_workloads import MINIMA_PROBLEMS

        return MINIMA_PROBLEMS[name](seed=seed, device=device)

    return make


#: the one workload registry: name -> factory(seed, device)
_FACTORIES = {"quadratic": quadratic, "teacher": teacher, "mixture": mixture,
              "local_minima": local_minima, "minima_deep": _minima("minima_deep"),
              "minima_wide": _minima("minima_wide")}
WORKLOADS = tuple(_FACTORIES)


def make_workload(name: str, seed: int = 0, device: str | torch.device = "cpu") -> Workload:
    """The named workload with data drawn from ``seed``."""
    if name not in _FACTORIES:
        raise UsageError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    return _FACTORIES[name](seed=seed, device=device)
