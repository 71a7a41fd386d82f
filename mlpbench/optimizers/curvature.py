"""Structured-curvature optimizers from maintained libraries, behind the common contract.

The ``curvature`` extra (``pip install 'mlpbench[curvature]'``) pins the libraries:
heavyball (SOAP, KL-Shampoo, Muon, PSGD-Kron), schedulefree (Schedule-Free AdamW) and
curvlinops-for-pytorch (K-FAC as a linear operator). Nothing here re-implements an update:
each wrapper drives the library's own optimizer (or operator), so a registry entry and the
library driven by hand take the same steps (``tests/test_curvature_optimizers.py``).

Library defaults, read from their sources (heavyball 3.2.1, schedulefree 1.4.1,
curvlinops 3.0.1) and kept unless an entry says otherwise:

* heavyball compiles its fused kernels with ``torch.compile`` (mode
  ``max-autotune-no-cudagraphs``) unless ``heavyball.utils.compile_mode`` is ``None``.
  The entries here default to ``compile=false`` (eager): on this 2-vCPU CPU the first
  compiled Muon step took ~53 s; ``compile=true`` restores the library's default.
* SOAP: ``lr=3e-3``, ``betas=(0.9, 0.95)``, ``shampoo_beta=0.95``, ``weight_decay=0.01``,
  ``precondition_frequency=2`` (the eigenbasis is refreshed by one power iteration + QR
  on every 2nd step, deterministically), ``max_precond_dim=2048`` (a dimension larger than
  this, or of size 1, gets no factor), ``precondition_1d=False`` (biases get none),
  Adam moments in the eigenbasis (2·P).
* KL-Shampoo (heavyball has no plain Shampoo in 3.2.1): the same factor layout and
  frequency as SOAP, one momentum buffer (P), ``init_factor=0.1``.
* Muon: ``lr=0.0025``, Nesterov EMA momentum 0.9 (P), the update orthogonalised by
  Newton–Schulz iterations on *every* parameter (heavyball applies it to all tensors;
  there is no preconditioner to refresh).
* PSGD-Kron: ``lr=1e-3``, momentum 0.9 (P), a triangular Kronecker factor per dimension of
  size ≤ ``max_size_triangular=2048`` (stored as its upper triangle, n(n+1)/2), diagonal
  otherwise and for tensors with fewer than 2 dimensions of size > 1; the preconditioner is
  updated with probability 1 for the first 1000 steps, then annealed to 0.03 (``k`` ≈ 33).
* Schedule-Free AdamW: ``lr=0.0025``, ``betas=(0.9, 0.999)``, ``warmup_steps=0``,
  ``weight_lr_power=2``; state z and the second moment (2·P). The wrapper calls
  ``train()`` before and ``eval()`` after every step, so the model the runner evaluates
  holds the averaged iterate x, as the library's documentation asks.
* K-FAC: curvlinops gives the Kronecker-factored Fisher/GGN as a linear operator and its
  damped inverse (``KFACInverseLinearOperator``), not an optimizer. The entry here is the
  plainest training step over it, chosen by mlpbench: every ``update_every`` steps the
  factors are rebuilt on the current batch (curvlinops defaults: Monte-Carlo Fisher with one
  sample, fixed seed), and each step moves by ``-lr`` times the damped inverse applied to
  the gradient (Martens–Grosse heuristic damping).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from mlpbench.optimizers.base import Objective

#: library module -> PyPI distribution of the ``curvature`` extra
LIBRARIES = {"heavyball": "heavyball", "schedulefree": "schedulefree",
             "curvlinops": "curvlinops-for-pytorch"}


def missing_reason(module: str) -> str | None:
    """Why an optimizer from ``module`` cannot run here (``None``: it can)."""
    if importlib.util.find_spec(module) is None:
        return (f"needs {LIBRARIES.get(module, module)} (the curvature extra: "
                "pip install 'mlpbench[curvature]')")
    return None


@contextlib.contextmanager
def heavyball_compile(enabled: bool) -> Iterator[None]:
    """Run heavyball's kernels compiled (its default mode) or eagerly, then restore."""
    import heavyball.utils as hu

    before = hu.compile_mode
    hu.compile_mode = before if enabled else None
    if enabled and before is None:
        hu.compile_mode = "max-autotune-no-cudagraphs"  # heavyball 3.2.1's default
    try:
        yield
    finally:
        hu.compile_mode = before


class HeavyballOptimizer:
    """A heavyball optimizer class behind the common contract (``compile``: run its
    kernels through ``torch.compile``, else eagerly)."""

    def __init__(self, cls_name: str, params, batch_size: int | None, *, compile: bool,
                 **hparams: Any) -> None:
        import heavyball

        self.opt = getattr(heavyball, cls_name)(params, **hparams)
        self.batch_size = batch_size
        self.compile = compile

    def step(self, objective: Objective) -> torch.Tensor:
        with heavyball_compile(self.compile):
            return self.opt.step(objective.closure)


class ScheduleFreeOptimizer:
    """``schedulefree.AdamWScheduleFree``: train mode for the step, eval mode (the averaged
    iterate x in the parameters) between steps."""

    def __init__(self, params, batch_size: int | None, **hparams: Any) -> None:
        import schedulefree

        self.opt = schedulefree.AdamWScheduleFree(params, **hparams)
        self.opt.eval()  # the model starts at x; train() is a no-op on the first step
        self.batch_size = batch_size

    def step(self, objective: Objective) -> torch.Tensor:
        self.opt.train()
        try:
            loss = objective.closure()
            self.opt.step()
        finally:
            self.opt.eval()
        return loss


class KFAC:
    """K-FAC through curvlinops: ``θ ← θ − lr · (F̂ + λI)⁻¹ g`` with the Kronecker factors
    F̂ rebuilt on the current batch every ``update_every`` steps."""

    def __init__(self, model: nn.Module, batch_size: int | None, *, lr: float, damping: float,
                 update_every: int) -> None:
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.batch_size = batch_size
        self.lr, self.damping, self.update_every = lr, damping, update_every
        self.steps = 0
        self.inverse = None
        self.updates = 0  # factor rebuilds so far

    def refresh(self, objective: Objective) -> None:
        """Rebuild the Kronecker factors and their damped inverses on this batch."""
        from curvlinops import KFACInverseLinearOperator, KFACLinearOperator

        kfac = KFACLinearOperator(self.model, curvlinops_loss(objective), self.params,
                                  [(objective.x, objective.y)], check_deterministic=False)
        self.inverse = KFACInverseLinearOperator(kfac, damping=self.damping,
                                                 use_heuristic_damping=True)
        # the factors cost one forward and one backward pass (sampled targets) on the batch
        objective.counters.closure_calls += 1
        objective.counters.samples += objective.x.shape[0]
        self.updates += 1

    @property
    def state(self) -> dict[str, Any]:
        """The Kronecker factors and their cached inverses (for counting state memory)."""
        if self.inverse is None:
            return {}
        names = ("_input_covariances", "_gradient_covariances")
        inv_names = ("_inverse_input_covariances", "_inverse_gradient_covariances")
        return {**{n: getattr(self.inverse._A, n, {}) for n in names},
                **{n: getattr(self.inverse, n, {}) for n in inv_names}}

    def step(self, objective: Objective) -> torch.Tensor:
        loss = objective.closure()
        if not torch.isfinite(loss):
            return loss  # diverged: a result for the runner, not a failed factorization
        if self.inverse is None or self.steps % self.update_every == 0:
            self.refresh(objective)
        grads = [p.grad.detach() for p in self.params]
        direction = self.inverse @ grads
        with torch.no_grad():
            for p, d in zip(self.params, direction, strict=True):
                p.sub_(self.lr * d)
        self.steps += 1
        return loss


#: the loss modules curvlinops' K-FAC supports (curvlinops 3.0.1)
_KFAC_LOSSES = (nn.MSELoss, nn.CrossEntropyLoss, nn.BCEWithLogitsLoss)


def curvlinops_loss(objective: Objective) -> nn.Module:
    """The objective's loss as the module K-FAC needs: itself when it is one curvlinops
    supports, else ``nn.MSELoss()`` when the loss function *is* the mean squared error
    (checked on random values of the target's shape); anything else is refused."""
    fn = objective.loss_fn
    if isinstance(fn, _KFAC_LOSSES):
        return fn
    gen = torch.Generator(device="cpu").manual_seed(0)
    a, b = (torch.randn(4, *objective.y.shape[1:], generator=gen, dtype=objective.y.dtype)
            for _ in range(2))
    if isinstance(fn, nn.Module) or not torch.allclose(fn(a, b), nn.MSELoss()(a, b)):
        raise ValueError(f"K-FAC supports {', '.join(c.__name__ for c in _KFAC_LOSSES)} "
                         f"(curvlinops); this loss is {getattr(fn, '__name__', fn)!r}")
    return nn.MSELoss()


def state_tensor_elements(opt: Any) -> int:
    """Elements of the floating-point tensors an optimizer holds (its ``state``, recursively;
    int step counters and float64 bookkeeping scalars excluded): the count the memory model
    must reproduce."""
    seen: set[int] = set()

    def walk(obj: Any) -> int:
        if isinstance(obj, torch.Tensor):
            if id(obj) in seen or obj.dtype not in (torch.float32, torch.bfloat16,
                                                    torch.float16):
                return 0
            seen.add(id(obj))
            return obj.numel()
        if isinstance(obj, dict):
            return sum(walk(v) for v in obj.values())
        if isinstance(obj, list | tuple):
            return sum(walk(v) for v in obj)
        return 0

    inner = getattr(opt, "opt", opt)
    return walk(dict(inner.state))


__all__ = ["KFAC", "LIBRARIES", "curvlinops_loss", "HeavyballOptimizer", "ScheduleFreeOptimizer",
           "heavyball_compile", "missing_reason", "state_tensor_elements"]
