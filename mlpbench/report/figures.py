"""Figures for the report. Each function takes its data first and ``ax=None`` and returns
the Axes (the seaborn convention); :func:`to_data_uri` embeds a figure in the page."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


def _ax(ax, size=(8.5, 4.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _legend_out(ax) -> None:
    """Move the legend to the right of the axes, where it hides no data."""
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                        fontsize=8, title_fontsize=8)


def to_data_uri(ax) -> str:
    """PNG of the Axes' figure as a data URI; the figure is closed."""
    fig = ax.figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def throughput(data: pd.DataFrame, *, y: str = "gflops", style: str = "batch", ax=None):
    """``y`` against parameter count, one line per phase and ``style`` value (log–log).

    Points of the same P but different settings must differ in hue or style: lines never
    average over them."""
    ax = _ax(ax)
    sns.lineplot(data=data, x="params", y=y, hue="phase", style=style, markers=True,
                 dashes=True, errorbar=None, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="parameters P", ylabel=y)
    _legend_out(ax)
    return ax


def peak_fraction(data: pd.DataFrame, *, style: str = "batch", ax=None):
    ax = _ax(ax)
    sns.lineplot(data=data, x="params", y="peak_fraction", hue="phase", style=style,
                 markers=True, errorbar=None, ax=ax)
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set(xscale="log", xlabel="parameters P", ylabel="fraction of measured matmul peak",
           ylim=(0, max(1.1, float(data["peak_fraction"].max()) * 1.05)))
    _legend_out(ax)
    return ax


def measured_vs_model(data: pd.DataFrame, *, x: str = "predicted_bytes",
                      y: str = "measured_bytes", hue: str = "kind", ax=None):
    """Measured memory against the memory model, with the y = x line."""
    ax = _ax(ax, (6.5, 4.8))
    sns.scatterplot(data=data, x=x, y=y, hue=hue, style=hue, ax=ax)
    lo = float(np.nanmin(data[[x, y]].to_numpy()[data[[x, y]].to_numpy() > 0]))
    hi = float(np.nanmax(data[[x, y]].to_numpy()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="model = measured")
    ax.set(xscale="log", yscale="log", xlabel="memory model (bytes)", ylabel="measured (bytes)")
    ax.legend()
    _legend_out(ax)
    return ax


def loss_curves(data: pd.DataFrame, *, x: str = "step", ax=None, target: float | None = None):
    """Median train loss over seeds against ``x`` per optimizer."""
    ax = _ax(ax)
    if x != "step":  # log axis: the start (t = 0) cannot be drawn
        data = data[data[x] > 0]
    sns.lineplot(data=data, x=x, y="train_loss", hue="optimizer", estimator="median",
                 errorbar=("pi", 50), ax=ax)
    if target is not None:
        ax.axhline(target, color="black", lw=1, ls=":", label="target")
    ax.set(yscale="log", xlabel={"step": "steps", "time_s": "optimizer seconds",
                                 "grad_evals": "gradient evaluations"}.get(x, x),
           ylabel="train loss")
    if x != "step":
        ax.set_xscale("log")
    ax.legend()
    _legend_out(ax)
    return ax


def lr_sensitivity(data: pd.DataFrame, *, y: str = "final_loss", ax=None):
    ax = _ax(ax)
    sns.lineplot(data=data, x="lr", y=y, hue="base", marker="o", estimator="median",
                 errorbar=None, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="learning rate η", ylabel=y)
    _legend_out(ax)
    return ax


def minima_bars(data: pd.DataFrame, *, ax=None):
    ax = _ax(ax, (6.5, 3.6))
    sns.barplot(data=data, y="optimizer", x="fraction_global", color="C0", ax=ax)
    ax.set(xlim=(0, 1), xlabel="fraction of seeds reaching the global minimum", ylabel="")
    _legend_out(ax)
    return ax


def cost_scaling(data: pd.DataFrame, fits: pd.DataFrame | None = None, *, ax=None):
    """Operation time against P (log–log), legend with fitted exponents."""
    ax = _ax(ax, (8, 5))
    data = data.copy()
    if fits is not None and len(fits):
        exps = dict(zip(fits["op"], fits["exponent"], strict=True))
        data["op"] = data["op"].map(lambda o: f"{o} (P^{exps[o]:.2f})" if o in exps else o)
    sns.lineplot(data=data, x="params", y="median_s", hue="op", style="op", markers=True,
                 dashes=False, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="parameters P", ylabel="seconds per call")
    ax.legend()
    _legend_out(ax)
    return ax


def machine_comparison(data: pd.DataFrame, *, ax=None):
    ax = _ax(ax, (8, max(3.0, 0.3 * data["benchmark"].nunique() + 1.5)))
    sns.barplot(data=data, y="benchmark", x="value", hue="machine", ax=ax)
    ax.set(xscale="log", xlabel="value (benchmark's unit)", ylabel="")
    _legend_out(ax)
    return ax
