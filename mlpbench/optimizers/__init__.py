"""Optimizers behind one contract and one name grammar.

=============  ===========================================  ==============================
name           what                                         hyperparameters (defaults)
=============  ===========================================  ==============================
gd             full-batch gradient descent                  lr=0.1
sgd            minibatch SGD                                lr=0.1, batch=32
momentum       SGD with heavy-ball momentum                 lr=0.01, momentum=0.9, batch=32
nesterov       SGD with Nesterov momentum                   lr=0.01, momentum=0.9, batch=32
adam           Adam                                         lr=0.001, batch=32
adamw          AdamW                                        lr=0.001, weight_decay=0.01, batch=32
rmsprop        RMSprop                                      lr=0.001, batch=32
adagrad        Adagrad                                      lr=0.01, batch=32
lbfgs          L-BFGS, full batch                           lr=1, history=10, max_iter=1,
                                                            line_search=strong_wolfe|none
newton         exact Newton (dense Hessian, Cholesky),      damping=0.0001,
               Levenberg–Marquardt fallback, Armijo search  line_search=armijo|none
newton_cg      Newton-CG / Hessian-free: CG on HVPs         cg_iters=10, damping=0.001,
                                                            cg_tol=0.0001, mode=fwdrev|revrev
=============  ===========================================  ==============================

``batch`` takes a positive integer or ``full``. One ``step`` of L-BFGS is ``max_iter``
iterations of ``torch.optim.LBFGS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mlpbench.errors import UsageError
from mlpbench.optimizers.base import Counters, Objective, Optimizer, TorchOptimizer
from mlpbench.optimizers.grammar import OptimizerId, Value, parse_optimizer_id


@dataclass(frozen=True)
class OptimizerDef:
    """A registered optimizer: its defaults and how to build it."""

    defaults: dict[str, Value]
    build: Callable[[nn.Module, dict[str, Value], int | None], Optimizer]
    choices: dict[str, tuple[str, ...]]
    full_batch_only: bool = False


def _torch(cls: type[torch.optim.Optimizer], **rename: str):
    """Builder for a torch.optim class; ``rename`` maps our keys to its keyword names."""

    def build(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
        kwargs = {rename.get(k, k): v for k, v in hp.items() if k != "batch"}
        return TorchOptimizer(cls, model.parameters(), batch, **kwargs)

    return build


def _nesterov(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
    return TorchOptimizer(torch.optim.SGD, model.parameters(), batch, lr=hp["lr"],
                          momentum=hp["momentum"], nesterov=True)


def _lbfgs(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
    search = None if hp["line_search"] == "none" else "strong_wolfe"
    # torch derives max_eval = 1.25 * max_iter, i.e. 1 at max_iter=1: a strong-Wolfe search
    # then cannot evaluate and L-BFGS stalls; allow torch's default budget of 25 instead
    max_eval = max(25, hp["max_iter"] * 5 // 4)
    return TorchOptimizer(torch.optim.LBFGS, model.parameters(), batch, lr=hp["lr"],
                          history_size=hp["history"], max_iter=hp["max_iter"],
                          max_eval=max_eval, line_search_fn=search)


def _newton(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
    from mlpbench.optimizers.newton import Newton

    return Newton(model, damping=float(hp["damping"]), line_search=hp["line_search"] == "armijo",
                  batch_size=batch)


def _newton_cg(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
    from mlpbench.optimizers.newton import NewtonCG

    return NewtonCG(model, cg_iters=int(hp["cg_iters"]), damping=float(hp["damping"]),
                    cg_tol=float(hp["cg_tol"]), mode=str(hp["mode"]), batch_size=batch)


_MB = 32  # default minibatch size of the stochastic methods

REGISTRY: dict[str, OptimizerDef] = {
    "gd": OptimizerDef({"lr": 0.1}, _torch(torch.optim.SGD), {}, full_batch_only=True),
    "sgd": OptimizerDef({"lr": 0.1, "batch": _MB}, _torch(torch.optim.SGD), {}),
    "momentum": OptimizerDef({"lr": 0.01, "momentum": 0.9, "batch": _MB},
                             _torch(torch.optim.SGD), {}),
    "nesterov": OptimizerDef({"lr": 0.01, "momentum": 0.9, "batch": _MB},
                             _nesterov, {}),
    "adam": OptimizerDef({"lr": 1e-3, "batch": _MB}, _torch(torch.optim.Adam), {}),
    "adamw": OptimizerDef({"lr": 1e-3, "weight_decay": 0.01, "batch": _MB},
                          _torch(torch.optim.AdamW), {}),
    "rmsprop": OptimizerDef({"lr": 1e-3, "batch": _MB}, _torch(torch.optim.RMSprop), {}),
    "adagrad": OptimizerDef({"lr": 1e-2, "batch": _MB}, _torch(torch.optim.Adagrad), {}),
    "lbfgs": OptimizerDef({"lr": 1.0, "history": 10, "max_iter": 1,
                           "line_search": "strong_wolfe"}, _lbfgs,
                          {"line_search": ("strong_wolfe", "none")}, full_batch_only=True),
    "newton": OptimizerDef({"damping": 1e-4, "line_search": "armijo"}, _newton,
                           {"line_search": ("armijo", "none")}, full_batch_only=True),
    "newton_cg": OptimizerDef({"cg_iters": 10, "damping": 1e-3, "cg_tol": 1e-4,
                               "mode": "fwdrev"}, _newton_cg,
                              {"mode": ("fwdrev", "revrev")}, full_batch_only=True),
}

_INT_KEYS = {"history", "max_iter", "cg_iters"}


def resolve(text: str | OptimizerId) -> tuple[OptimizerId, dict[str, Value]]:
    """Parse and validate an identifier; return it with its full hyperparameters."""
    oid = parse_optimizer_id(text) if isinstance(text, str) else text
    if oid.name not in REGISTRY:
        raise UsageError(f"unknown optimizer {oid.name!r}; choose from {', '.join(REGISTRY)}")
    d = REGISTRY[oid.name]
    hp = dict(d.defaults)
    for key, value in oid.params:
        if key == "batch" and d.full_batch_only and value != "full":
            raise UsageError(f"{oid.name} is a full-batch method; it takes no batch={value}")
        if key not in d.defaults and key != "batch":
            raise UsageError(f"unknown hyperparameter {key!r} for {oid.name}; "
                             f"known: {', '.join(d.defaults)}")
        hp[key] = _check_value(oid.name, key, value, d)
    return oid, hp


def _check_value(name: str, key: str, value: Value, d: OptimizerDef) -> Value:
    if key in d.choices:
        if value not in d.choices[key]:
            raise UsageError(f"{name}: {key}={value} not one of {', '.join(d.choices[key])}")
        return value
    if key == "batch":
        if value == "full":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"{name}: batch must be a positive integer or full, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{name}: {key} must be a number, got {value!r}")
    if key in _INT_KEYS and (not isinstance(value, int) or value <= 0):
        raise UsageError(f"{name}: {key} must be a positive integer, got {value}")
    if key == "lr" and value <= 0:
        raise UsageError(f"{name}: learning rate must be positive, got {value}")
    if value < 0:
        raise UsageError(f"{name}: {key} must not be negative, got {value}")
    return value


def make_optimizer(text: str | OptimizerId, model: nn.Module) -> Optimizer:
    """Build the optimizer named by ``text`` for ``model``'s parameters."""
    oid, hp = resolve(text)
    batch = hp.get("batch")
    batch_size = None if batch in (None, "full") else int(batch)
    return REGISTRY[oid.name].build(model, hp, batch_size)


def batch_size_of(text: str | OptimizerId) -> int | None:
    """Minibatch size an identifier asks for (``None``: full batch)."""
    _, hp = resolve(text)
    batch = hp.get("batch")
    return None if batch in (None, "full") else int(batch)


__all__ = ["REGISTRY", "Counters", "Objective", "Optimizer", "OptimizerId", "TorchOptimizer",
           "batch_size_of", "make_optimizer", "parse_optimizer_id", "resolve"]
