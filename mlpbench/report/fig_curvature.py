"""The curvature-wall figure: training memory (closed forms) and measured seconds per step
against P for the structured-curvature family beside Newton, L-BFGS, Adam and SGD.
Data first, return Axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpbench.report.style import MAX_SERIES, hover, new_axes, series_style
from mlpbench.spec import TARGET_SPEC

#: the seconds panels: methods with a preconditioner, and those without
STEP_PANELS = (("preconditioned (amortised at the default k)",
                ("soap", "kl_shampoo", "psgd_kron", "kfac", "newton_step", "newton_cg_step")),
               ("no preconditioner", ("sgd", "adam", "muon", "sf_adamw")))


def curvature_wall(memory: pd.DataFrame, steps: pd.DataFrame, budget: float | None):
    """Three panels, log–log against P: bytes of a training step per method (the memory
    model, with the machine's usable memory as a line), then seconds per step measured."""
    axes = new_axes((15.5, 4.6), ncols=3, margins=(0.85, 0.2, 0.6, 0.35))
    _memory_panel(axes[0], memory, budget)
    for ax, (title, methods) in zip(axes[1:], STEP_PANELS, strict=True):
        _steps_panel(ax, steps[steps["method"].isin(methods)] if len(steps) else steps, title)
    axes[1].set_ylabel("seconds per step (measured)")
    return axes


def _memory_panel(ax, memory: pd.DataFrame, budget: float | None) -> None:
    for i, (method, g) in enumerate(memory.groupby("method", sort=False)):
        if i >= MAX_SERIES:
            break
        st = series_style(i)
        g = g.sort_values("params")
        ax.plot(g["params"], g["bytes"], color=st["color"], marker=st["marker"],
                ls=st["linestyle"], label=method, ms=4)
        hover(ax, g["params"], g["bytes"], [f"{method} {n}: {b:.3g} B (memory model)"
                                            for n, b in zip(g["network"], g["bytes"],
                                                            strict=True)])
    if budget:
        ax.axhline(budget, color="#D55E00", lw=2)
        ax.annotate("usable memory", (0.02, budget), xycoords=("axes fraction", "data"),
                    xytext=(0, 3), textcoords="offset points", fontsize=8, color="#D55E00")
    ax.axvline(TARGET_SPEC.num_params, color="grey", lw=1, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="parameters P (dotted: 10^7 network)",
           ylabel="bytes of a training step (model)", title="memory (closed forms)")
    ax.legend(fontsize=7, loc="upper left")


def _steps_panel(ax, steps: pd.DataFrame, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.axvline(TARGET_SPEC.num_params, color="grey", lw=1, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="parameters P (dotted: 10^7 network)")
    if steps.empty:
        ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center")
        return
    for i, (method, g) in enumerate(steps.groupby("method", sort=False)):
        st = series_style(i)
        g = g.sort_values("params")
        ax.plot(g["params"], g["step_s"], color=st["color"], marker=st["marker"],
                ls=st["linestyle"], label=method, ms=4)
        hover(ax, g["params"], g["step_s"],
              [f"{method} P={p:,}: {t:.3g} s" for p, t in zip(g["params"], g["step_s"],
                                                             strict=True)])
    ax.legend(fontsize=7, loc="upper left")
    ax.set_ylim(bottom=max(np.nanmin(steps["step_s"]) / 2, 1e-6))


__all__ = ["curvature_wall"]
