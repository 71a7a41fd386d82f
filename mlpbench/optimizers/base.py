"""The one optimizer contract: an :class:`Objective` in, one step taken, the loss out.

An :class:`Objective` is the loss of a model on the current batch. First-order methods
use its :meth:`~Objective.closure` (``torch.optim`` convention, so L-BFGS works unchanged);
second-order methods also use the functional view (:meth:`~Objective.loss_of_flat`). Every
gradient and Hessian-vector product goes through the objective's counters, so the runner
reports cost in the same units for every method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn


@dataclass
class Counters:
    """Work done so far, in units comparable across optimizers."""

    closure_calls: int = 0  # forward + backward passes on a batch
    samples: int = 0  # samples seen by those passes (grad_evals = samples / n_train)
    forward_evals: int = 0  # forward-only passes on a batch (f(θ), line-search trials)
    forward_samples: int = 0  # samples through those passes
    hvps: int = 0  # Hessian-vector products on a batch (not those inside a dense Hessian)
    hvp_samples: int = 0
    hessians: int = 0  # dense Hessians built on a batch (vmapped HVPs, costed as measured)
    hessian_samples: int = 0


@dataclass
class Objective:
    """Loss of ``model`` on one batch ``(x, y)``; counts the work done on it."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        # walking the module tree each step costs ~5% of a small model's step
        self._params = list(self.model.parameters())

    def closure(self) -> torch.Tensor:
        """Zero the gradients, evaluate the loss, backpropagate; return the loss."""
        for p in self._params:
            p.grad = None
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.counters.closure_calls += 1
        self.counters.samples += self.x.shape[0]
        return loss

    def loss_of_flat(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
        """``(f, theta)``: the loss as a function of the flat parameter vector, and the
        current flat parameters (see :mod:`mlpbench.measure.second_order`)."""
        from mlpbench.measure.second_order import flat_loss

        return flat_loss(self.model, self.loss_fn, self.x, self.y)


class Optimizer(Protocol):
    """What the convergence runner needs from any optimizer."""

    #: ``None`` for full batch, else the minibatch size
    batch_size: int | None

    def step(self, objective: Objective) -> torch.Tensor:
        """Take one step on ``objective``; return the loss before the step."""
        ...


class TorchOptimizer:
    """Any ``torch.optim.Optimizer`` class behind the common contract."""

    def __init__(self, cls: type[torch.optim.Optimizer], params, batch_size: int | None,
                 **hparams: object) -> None:
        self.opt = cls(params, **hparams)
        self.batch_size = batch_size

    def step(self, objective: Objective) -> torch.Tensor:
        return self.opt.step(objective.closure)
