"""What a registry entry is: defaults, a builder, the grammar's choices, the memory model's
state term, and the library it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from mlpbench.optimizers import state_memory as sm
from mlpbench.optimizers.base import Optimizer
from mlpbench.optimizers.curvature import missing_reason
from mlpbench.optimizers.grammar import Value


@dataclass(frozen=True)
class OptimizerDef:
    """A registered optimizer: its defaults, how to build it, and what it costs in memory."""

    defaults: dict[str, Value]
    build: Callable[[nn.Module, dict[str, Value], int | None], Optimizer]
    choices: dict[str, tuple[str, ...]]
    full_batch_only: bool = False
    #: extra state per parameter, in units of P elements, from the full hyperparameters
    state: Callable[[dict[str, Value]], float] = lambda hp: 0.0
    label: str = ""  # one line for legends and help texts
    second_order: bool = False  # uses Hessians or HVPs (the Newton family)
    #: state elements as a closed form of the spec and the hyperparameters (layer shapes:
    #: Kronecker factors); ``None``: ``state`` units of P
    state_form: sm.StateForm | None = None
    requires: str | None = None  # library module it needs (the ``curvature`` extra)
    #: steps per preconditioner update at these hyperparameters (None: no preconditioner)
    update_every: Callable[[dict[str, Value]], float] | None = None

    def skip_reason(self) -> str | None:
        """Why this optimizer cannot be built here (``None``: it can)."""
        return missing_reason(self.requires) if self.requires else None


__all__ = ["OptimizerDef"]
