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
soap           SOAP: Adam in Shampoo's eigenbasis           lr=0.003, weight_decay=0.01,
               (heavyball)                                  precondition_frequency=2,
                                                            max_precond_dim=2048,
                                                            precondition_1d=false,
                                                            compile=false, batch=32
kl_shampoo     KL-Shampoo (heavyball)                       as soap
muon           Muon: orthogonalised momentum (heavyball)    lr=0.0025, compile=false, batch=32
psgd_kron      PSGD with Kronecker factors (heavyball)      lr=0.001, max_size_triangular=2048,
                                                            update_probability=schedule|p,
                                                            compile=false, batch=32
sf_adamw       Schedule-Free AdamW (schedulefree)           lr=0.0025, weight_decay=0,
                                                            warmup_steps=0, batch=32
kfac           K-FAC over curvlinops' Kronecker-factored    lr=0.1, damping=0.1,
               Fisher (factors rebuilt every k steps)       update_every=10, batch=32
=============  ===========================================  ==============================

The last six come from the ``curvature`` extra; without it they still resolve (their memory
model works everywhere) but building one raises :class:`UsageError` naming the missing
library. Their library defaults, and what each means, are written down in
:mod:`mlpbench.optimizers.curvature`.

``batch`` takes a positive integer or ``full``. One ``step`` of L-BFGS is ``max_iter``
iterations of ``torch.optim.LBFGS``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import torch
from torch import nn

from mlpbench.errors import UsageError
from mlpbench.optimizers.base import Counters, Objective, Optimizer, TorchOptimizer
from mlpbench.optimizers.definition import OptimizerDef
from mlpbench.optimizers.family import CURVATURE, CURVATURE_REGISTRY
from mlpbench.optimizers.grammar import OptimizerId, Value, parse_optimizer_id
from mlpbench.spec import MemoryModel, MLPSpec, dtype_bytes


@dataclass(frozen=True)
class Resolved:
    """An identifier parsed and validated once: use it everywhere instead of the text."""

    id: OptimizerId
    #: read-only (a mapping proxy): a Resolved is shared by the lru_cache of resolve()
    hp: Mapping[str, Value]

    @property
    def name(self) -> str:
        return self.id.name

    @property
    def definition(self) -> OptimizerDef:
        return REGISTRY[self.id.name]

    @property
    def batch_size(self) -> int | None:
        """Minibatch size (``None``: full batch)."""
        batch = self.hp.get("batch")
        return None if batch in (None, "full") else int(batch)

    @property
    def state_per_param(self) -> float:
        """Optimizer state in units of P elements (P-proportional optimizers only)."""
        return float(self.definition.state(self.hp))

    def state_elements(self, spec: MLPSpec) -> int:
        """Optimizer state elements for ``spec``: the closed form of its layer shapes and
        the hyperparameters, or ``state_per_param``·P for P-proportional optimizers."""
        form = self.definition.state_form
        if form is not None:
            return int(form(spec, self.hp))
        return int(self.state_per_param * spec.num_params)

    def build(self, model: nn.Module) -> Optimizer:
        reason = self.definition.skip_reason()
        if reason:
            raise UsageError(f"{self.name}: {reason}")
        return self.definition.build(model, self.hp, self.batch_size)

    def __str__(self) -> str:
        return str(self.id)


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


def _units(n: float) -> Callable[[dict[str, Value]], float]:
    return lambda hp: n


REGISTRY: dict[str, OptimizerDef] = {
    "gd": OptimizerDef({"lr": 0.1}, _torch(torch.optim.SGD), {}, full_batch_only=True,
                       label="gradient descent (full batch)"),
    "sgd": OptimizerDef({"lr": 0.1, "batch": _MB}, _torch(torch.optim.SGD), {},
                        label="minibatch SGD"),
    "momentum": OptimizerDef({"lr": 0.01, "momentum": 0.9, "batch": _MB},
                             _torch(torch.optim.SGD), {}, state=_units(1),
                             label="SGD with heavy-ball momentum"),
    "nesterov": OptimizerDef({"lr": 0.01, "momentum": 0.9, "batch": _MB},
                             _nesterov, {}, state=_units(1), label="SGD with Nesterov momentum"),
    "adam": OptimizerDef({"lr": 1e-3, "batch": _MB}, _torch(torch.optim.Adam), {},
                         state=_units(2), label="Adam"),
    "adamw": OptimizerDef({"lr": 1e-3, "weight_decay": 0.01, "batch": _MB},
                          _torch(torch.optim.AdamW), {}, state=_units(2), label="AdamW"),
    "rmsprop": OptimizerDef({"lr": 1e-3, "batch": _MB}, _torch(torch.optim.RMSprop), {},
                            state=_units(1), label="RMSprop"),
    "adagrad": OptimizerDef({"lr": 1e-2, "batch": _MB}, _torch(torch.optim.Adagrad), {},
                            state=_units(1), label="Adagrad"),
    # L-BFGS keeps h (s, y) pairs plus the direction and the previous gradient
    "lbfgs": OptimizerDef({"lr": 1.0, "history": 10, "max_iter": 1,
                           "line_search": "strong_wolfe"}, _lbfgs,
                          {"line_search": ("strong_wolfe", "none")}, full_batch_only=True,
                          state=lambda hp: 2 * int(hp["history"]) + 2,
                          label="L-BFGS (full batch)"),
    # Newton: the dense Hessian and its factor are counted by the Newton memory model
    "newton": OptimizerDef({"damping": 1e-4, "line_search": "armijo"}, _newton,
                           {"line_search": ("armijo", "none")}, full_batch_only=True,
                           label="exact Newton (dense Hessian)", second_order=True),
    # Newton-CG: CG's residual, direction, iterate and HVP output
    "newton_cg": OptimizerDef({"cg_iters": 10, "damping": 1e-3, "cg_tol": 1e-4,
                               "mode": "fwdrev"}, _newton_cg,
                              {"mode": ("fwdrev", "revrev")}, full_batch_only=True,
                              state=_units(4), label="Newton-CG (Hessian-free)",
                              second_order=True),
    **CURVATURE_REGISTRY,
}

_INT_KEYS = {"history", "max_iter", "cg_iters", "precondition_frequency", "max_precond_dim",
             "max_size_triangular", "update_every"}


@functools.lru_cache(maxsize=512)
def _resolve_text(text: str) -> Resolved:
    return _resolve_id(parse_optimizer_id(text))


def _resolve_id(oid: OptimizerId) -> Resolved:
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
    return Resolved(oid, MappingProxyType(hp))


def resolve(text: str | OptimizerId | Resolved) -> Resolved:
    """Parse and validate an identifier once; return it with its full hyperparameters."""
    if isinstance(text, Resolved):
        return text
    return _resolve_text(text) if isinstance(text, str) else _resolve_id(text)


def _check_value(name: str, key: str, value: Value, d: OptimizerDef) -> Value:
    if key in d.choices:
        if not any(type(value) is type(c) and value == c for c in d.choices[key]):
            raise UsageError(f"{name}: {key}={value} not one of "
                             f"{', '.join(_format_choice(c) for c in d.choices[key])}")
        return value
    if key == "update_probability":  # heavyball's annealed schedule, or a fixed p in [0, 1]
        if value == "schedule" or (isinstance(value, int | float) and not isinstance(
                value, bool) and 0 <= value <= 1):
            return value
        raise UsageError(f"{name}: update_probability must be schedule or a number in "
                         f"[0, 1], got {value!r}")
    if key == "batch":
        if value == "full":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"{name}: batch must be a positive integer or full, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{name}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UsageError(f"{name}: {key} must be a finite number, got {value}")
    if key in _INT_KEYS and (not isinstance(value, int) or value <= 0):
        raise UsageError(f"{name}: {key} must be a positive integer, got {value}")
    if key == "lr" and value <= 0:
        raise UsageError(f"{name}: learning rate must be positive, got {value}")
    if value < 0:
        raise UsageError(f"{name}: {key} must not be negative, got {value}")
    if key == "momentum" and value >= 1:
        raise UsageError(f"{name}: momentum must be below 1, got {value}")
    return value


def _format_choice(c: Value) -> str:
    return str(c).lower() if isinstance(c, bool) else str(c)


def make_optimizer(text: str | OptimizerId | Resolved, model: nn.Module) -> Optimizer:
    """Build the optimizer named by ``text`` for ``model``'s parameters."""
    return resolve(text).build(model)


def batch_size_of(text: str | OptimizerId | Resolved) -> int | None:
    """Minibatch size an identifier asks for (``None``: full batch)."""
    return resolve(text).batch_size


def memory_model(spec: MLPSpec, optimizer: str | Resolved = "sgd", dtype: str = "fp32",
                 batch: int = 1) -> MemoryModel:
    """Training memory of ``spec`` with ``optimizer``: the spec's terms plus the registry's
    optimizer state (e.g. Adam 2·P, L-BFGS (2h+2)·P, SOAP 2·P + Σ 2n² over its factors)."""
    mem = spec.memory(dtype, batch)
    return replace(mem, optimizer_state=resolve(optimizer).state_elements(spec) * dtype_bytes(dtype))


__all__ = ["CURVATURE", "REGISTRY", "Counters", "Objective", "Optimizer", "OptimizerDef",
           "OptimizerId", "Resolved",
           "TorchOptimizer", "batch_size_of", "make_optimizer", "memory_model",
           "parse_optimizer_id", "resolve"]
