"""Figures of the distributed (DDP) study. Each takes its data first and ``ax=None`` and
returns the Axes; data come from :mod:`mlpbench.analysis.distributed`.

Measured points are solid markers with their interquartile range over rounds; projected
points (``kind == "projection"``) are dashed and labelled as a projection.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import seaborn as sns
from matplotlib.ticker import LogLocator  # noqa: E402

from mlpbench.report.style import axes_or_new  # noqa: E402

PALETTE = "colorblind"


def _ax(ax, size=(7.5, 4.2)):
    return axes_or_new(ax, size)


def _labels(data: pd.DataFrame) -> pd.Series:
    """``P=…`` per network (with its scaling when both are shown, and its DDP bucket size
    when one network was run with several)."""
    label = "P=" + data["params"].map(lambda p: f"{int(p):,}")
    if data["scaling"].nunique() > 1:
        label = label + " (" + data["scaling"].astype(str) + ")"
    if "bucket_cap_mb" in data:
        several = data.groupby(["params", "scaling"])["bucket_cap_mb"].transform("nunique") > 1
        label = label.where(~several, label + ", bucket " + data["bucket_cap_mb"].map(
            lambda b: f"{b:g}") + " MB")
    return label


def _lines(data: pd.DataFrame, y: str, ax) -> None:
    """One colour per network (and bucket size); measured solid with IQR bars, projection
    dashed."""
    data = data.assign(series=_labels(data)).sort_values(["params", "world_size"])
    colours = dict(zip(list(dict.fromkeys(data["series"])),
                       sns.color_palette(PALETTE, data["series"].nunique()), strict=True))
    for series, part in data.groupby("series", sort=False):
        meas = part[part["kind"] == "measured"]
        lo, hi = f"{y}_q25", f"{y}_q75"
        if lo in meas and hi in meas:
            err = [(meas[y] - meas[lo]).clip(lower=0), (meas[hi] - meas[y]).clip(lower=0)]
        else:
            err = None
        ax.errorbar(meas["world_size"], meas[y], yerr=err, marker="o", capsize=3,
                    color=colours[series], label=f"{series} measured")
        proj = part[part["kind"] == "projection"]
        if not proj.empty:
            tail = pd.concat([meas.tail(1), proj])
            ax.plot(tail["world_size"], tail[y], ls="--", marker="x", color=colours[series],
                    label=f"{series} projection")


def _world_ticks(ax, data: pd.DataFrame) -> None:
    """Ticks at the world sizes shown, labelled as plain integers (after the log scale)."""
    sizes = sorted(data["world_size"].unique())
    ax.set_xticks(sizes, [str(int(n)) for n in sizes])
    ax.minorticks_off()


def scaling_efficiency(data: pd.DataFrame, *, ax=None):
    """Scaling efficiency (samples/s over P × one worker's) against world size (log x)."""
    ax = _ax(ax)
    _lines(data, "efficiency", ax)
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set(xscale="log", xlabel="world size (workers)", ylabel="scaling efficiency (1 = ideal)",
           title="DDP scaling efficiency (dashed: ring-model projection)")
    _world_ticks(ax, data)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def comm_share(data: pd.DataFrame, *, ax=None):
    """Exposed communication as a share of the step time against world size."""
    ax = _ax(ax)
    _lines(data, "comm_share", ax)
    ax.set(xscale="log", ylim=(0, 1.02), xlabel="world size (workers)",
           ylabel="communication share of step time",
           title="Exposed all-reduce time / step time (dashed: projection)")
    _world_ticks(ax, data)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def bus_bandwidth(collectives: pd.DataFrame, *, ax=None):
    """All-reduce bus bandwidth (GB/s) against message size, one line per world size > 1
    (median over rounds, band: interquartile range)."""
    ax = _ax(ax)
    data = collectives[collectives["world_size"] > 1]
    sns.lineplot(data=data, x="bytes", y="busbw_gbps", hue="world_size", palette=PALETTE,
                 marker="o", estimator="median", errorbar=("pi", 50), ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="message size (bytes)",
           ylabel="bus bandwidth (GB/s, 10⁹ B/s)",
           title="All-reduce bus bandwidth (as nccl-tests defines it)")
    # 1-2-5 ticks at every decade: the plateau (~0.45 GB/s on gloo) gets labelled ticks
    ax.yaxis.set_major_locator(LogLocator(10, subs=(1.0, 2.0, 5.0)))
    return ax
