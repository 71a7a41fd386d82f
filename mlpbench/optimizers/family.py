"""Registry entries of the structured-curvature family (the ``curvature`` extra): SOAP,
KL-Shampoo, Muon, PSGD-Kron (heavyball), Schedule-Free AdamW (schedulefree) and K-FAC over
curvlinops. What each library default means is written down in
:mod:`mlpbench.optimizers.curvature`; the state closed forms are in
:mod:`mlpbench.optimizers.state_memory`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mlpbench.optimizers import state_memory as sm
from mlpbench.optimizers.base import Optimizer
from mlpbench.optimizers.definition import OptimizerDef
from mlpbench.optimizers.grammar import Value

_MB = 32  # default minibatch size of the stochastic methods (as the first-order entries)


def _heavyball(cls_name: str):
    """Builder for a heavyball class: every hyperparameter but ``batch`` and ``compile`` is
    passed by its heavyball name."""

    def build(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
        from mlpbench.optimizers.curvature import HeavyballOptimizer

        kwargs = {k: v for k, v in hp.items()
                  if k not in ("batch", "compile", "update_probability")}
        prob = hp.get("update_probability", "schedule")
        if prob != "schedule":  # a fixed probability (heavyball needs a float, not an int)
            kwargs["preconditioner_update_probability"] = float(prob)
        return HeavyballOptimizer(cls_name, model.parameters(), batch,
                                  compile=bool(hp["compile"]), **kwargs)

    return build


def _sf_adamw(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
    from mlpbench.optimizers.curvature import ScheduleFreeOptimizer

    return ScheduleFreeOptimizer(model.parameters(), batch, lr=hp["lr"],
                                 weight_decay=hp["weight_decay"],
                                 warmup_steps=int(hp["warmup_steps"]))


def _kfac(model: nn.Module, hp: dict[str, Value], batch: int | None) -> Optimizer:
    from mlpbench.optimizers.curvature import KFAC

    return KFAC(model, batch, lr=float(hp["lr"]), damping=float(hp["damping"]),
                update_every=int(hp["update_every"]))


_BOOL = (True, False)
#: heavyball SOAP / KL-Shampoo defaults kept (heavyball 3.2.1); compile off, see curvature.py
_SOAP = {"lr": 3e-3, "weight_decay": 0.01, "precondition_frequency": 2,
         "max_precond_dim": 2048, "precondition_1d": False, "compile": False, "batch": _MB}
_SOAP_CHOICES = {"precondition_1d": _BOOL, "compile": _BOOL}


def _every(key: str) -> Callable[[dict[str, Value]], float]:
    return lambda hp: float(hp[key])

def _units(n: float) -> Callable[[dict[str, Value]], float]:
    return lambda hp: n


CURVATURE_REGISTRY: dict[str, OptimizerDef] = {
    "soap": OptimizerDef(dict(_SOAP), _heavyball("SOAP"), _SOAP_CHOICES,
                         state_form=sm.soap_like(2), requires="heavyball",
                         update_every=_every("precondition_frequency"),
                         label="SOAP (heavyball)"),
    "kl_shampoo": OptimizerDef(dict(_SOAP), _heavyball("KLShampoo"), _SOAP_CHOICES,
                               state_form=sm.soap_like(1), requires="heavyball",
                               update_every=_every("precondition_frequency"),
                               label="KL-Shampoo (heavyball)"),
    "muon": OptimizerDef({"lr": 0.0025, "compile": False, "batch": _MB}, _heavyball("Muon"),
                         {"compile": _BOOL}, state=_units(1), requires="heavyball",
                         label="Muon (heavyball)"),
    # PSGD: update probability 1 for 1000 steps, then annealed to 0.03 (k = 1 .. ~33)
    "psgd_kron": OptimizerDef({"lr": 1e-3, "max_size_triangular": 2048,
                               "update_probability": "schedule", "compile": False,
                               "batch": _MB}, _heavyball("PSGDKron"), {"compile": _BOOL},
                              state_form=sm.psgd_kron, requires="heavyball",
                              update_every=lambda hp: 1.0, label="PSGD-Kron (heavyball)"),
    "sf_adamw": OptimizerDef({"lr": 0.0025, "weight_decay": 0.0, "warmup_steps": 0,
                              "batch": _MB}, _sf_adamw, {}, state=_units(2),
                             requires="schedulefree", label="Schedule-Free AdamW"),
    # K-FAC's training step is mlpbench's own over curvlinops' operator: these are its defaults
    "kfac": OptimizerDef({"lr": 0.1, "damping": 0.1, "update_every": 10, "batch": _MB},
                         _kfac, {}, state_form=sm.kfac, requires="curvlinops",
                         update_every=_every("update_every"), label="K-FAC (curvlinops)"),
}
#: the structured-curvature family (the ``curvature`` extra), in table order
CURVATURE = ("soap", "kl_shampoo", "muon", "psgd_kron", "sf_adamw", "kfac")

__all__ = ["CURVATURE", "CURVATURE_REGISTRY"]
