"""Figures of execution modes, threads, precision and the roofline. Each takes the table an
:mod:`mlpbench.analysis.modes` / :mod:`mlpbench.analysis.roofline` function returns first,
options by keyword and ``ax=None``, and returns the Axes (the seaborn convention)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mlpbench.report.style import axes_or_new  # noqa: E402

PALETTE = "colorblind"


def _ax(ax, size=(7.5, 4.0)):
    return axes_or_new(ax, size)


def _legend_out(ax) -> None:
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                        fontsize=8, title_fontsize=8)


def compile_speedup(data: pd.DataFrame, *, ax=None):
    """Speedup of each compiled mode over eager against P, one line per phase (and mode);
    from :func:`mlpbench.analysis.modes.compile_speedup`. Above 1: compiled is faster."""
    ax = _ax(ax)
    sns.lineplot(data=data, x="params", y="speedup", hue="phase", style="mode", markers=True,
                 errorbar=None, palette=PALETTE, ax=ax)
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set(xscale="log", xlabel="parameters P", ylabel="speedup over eager (× time)",
           title="torch.compile vs eager")
    _legend_out(ax)
    return ax


def thread_efficiency(data: pd.DataFrame, *, ax=None):
    """Parallel efficiency against thread count, one line per network size and phase;
    from :func:`mlpbench.analysis.modes.thread_scaling`. 1 is perfect scaling."""
    ax = _ax(ax)
    data = data.assign(P=data["params"].map(lambda p: f"{int(p):,}"))
    sns.lineplot(data=data, x="threads", y="efficiency", hue="P", style="phase", markers=True,
                 errorbar=None, palette=PALETTE, ax=ax)
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set(xlabel="torch threads", ylabel="parallel efficiency (speedup / threads)",
           title="thread scaling", ylim=(0, max(1.1, float(data["efficiency"].max()) * 1.05)))
    ax.set_xticks(sorted(data["threads"].unique()))
    _legend_out(ax)
    return ax


def precision_speedup(data: pd.DataFrame, *, ax=None):
    """Speedup of each precision over fp32 per phase (bars; one bar per network and dtype);
    from :func:`mlpbench.analysis.modes.precision_speedup`."""
    ax = _ax(ax)
    data = data.assign(setting=data["dtype"] + ", P=" + data["params"].map(
        lambda p: f"{int(p):,}"))
    sns.barplot(data=data, x="phase", y="speedup", hue="setting", errorbar=None,
                palette=PALETTE, ax=ax)
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set(xlabel="phase", ylabel="speedup over fp32 (× time)", title="precision")
    _legend_out(ax)
    return ax


def roofline(data: pd.DataFrame, *, peak_gflops: float, bandwidth_gbs: float, ax=None):
    """Measured GFLOP/s against arithmetic intensity (log–log) under the roofline
    ``min(peak, intensity × bandwidth)``; from :func:`mlpbench.analysis.roofline.roofline_table`."""
    ax = _ax(ax)
    sns.scatterplot(data=data, x="intensity", y="gflops", hue="phase", style="dtype",
                    palette=PALETTE, ax=ax)
    lo = max(1e-3, float(data["intensity"].min()) / 2) if len(data) else 1e-2
    hi = max(lo * 10, float(data["intensity"].max()) * 2) if len(data) else 1e3
    x = np.geomspace(lo, hi, 200)
    ax.plot(x, np.minimum(peak_gflops, x * bandwidth_gbs), color="black", lw=1.2,
            label=f"roof: {peak_gflops:.0f} GFLOP/s, {bandwidth_gbs:.0f} GB/s")
    ax.axvline(peak_gflops / bandwidth_gbs, color="grey", lw=1, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)",
           ylabel="throughput (GFLOP/s)", title="roofline")
    ax.legend()
    _legend_out(ax)
    return ax
