"""Hardware figures: throughput per configuration with IQR error bars, memory needed against
P with the machine's memory drawn in, machine-vs-machine speedups. Data first, return Axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpbench.report.style import (
    MAX_SERIES,
    hover,
    label_bottoms,
    legend_outside,
    new_axes,
    panel_grid,
    series_style,
)
from mlpbench.units import format_bytes

#: what a throughput panel can show: column → axis label with unit
Y_LABELS = {"gflops": "achieved GFLOP/s (matmul FLOPs)", "samples_per_s": "samples per second",
            "peak_fraction": "fraction of measured matmul peak"}


def _spread(g: pd.DataFrame, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Error bar lengths (below, above) of ``y`` from the time's IQR: the value at median ± IQR/2
    (every throughput is ∝ 1/time)."""
    t = g["median_s"].to_numpy(float)
    iqr = g["iqr_s"].to_numpy(float) if "iqr_s" in g else np.zeros_like(t)
    iqr = np.nan_to_num(iqr)
    v = g[y].to_numpy(float)
    lo = v * t / (t + iqr / 2)
    hi = v * t / np.maximum(t - iqr / 2, t * 1e-3)
    return v - lo, hi - v


def _reasons(g: pd.DataFrame) -> list[str]:
    if "contention" not in g:
        return [""] * len(g)
    return [str(c) if isinstance(c, str) else "" for c in g["contention"]]


def _flags(g: pd.DataFrame) -> pd.Series:
    """Which rows were measured only on a busy machine (a non-empty ``contention``)."""
    return pd.Series([bool(c.strip()) for c in _reasons(g)], index=g.index)


def throughput_panels(data: pd.DataFrame, *, y: str = "gflops", series: str = "series",
                      peak: float | None = None):
    """One panel per phase: ``y`` against P, one line per ``series`` value (a depth and batch:
    networks of one depth and batch joined across widths), error bars from the IQR. With
    ``peak`` (GFLOP/s) a right axis shows the fraction of it and a wide grey band the peak."""
    phases = list(dict.fromkeys(data["phase"]))
    axes, ncols = panel_grid(len(phases))
    names = list(dict.fromkeys(data.sort_values(["depth", "batch"])[series]))[:MAX_SERIES]
    flagged_label = False
    for j, (ax, phase) in enumerate(zip(axes, phases, strict=False)):
        p = data[data["phase"] == phase]
        for i, name in enumerate(names):
            g = p[p[series] == name].sort_values("params")
            if g.empty:
                continue
            st = series_style(i)
            ax.errorbar(g["params"], g[y], yerr=_spread(g, y), label=name, capsize=2,
                        ms=5, lw=1.4, **st)
            busy = _flags(g)
            if busy.any():  # measured only on a busy machine: hollow, the reason on hover
                ax.plot(g["params"][busy], g[y][busy], ls="none", marker=st.get("marker", "o"),
                        ms=7, mfc="white", mec=st.get("color"), mew=1.6, zorder=5)
                flagged_label = True
            hover(ax, g["params"], g[y], [
                f"{phase} d={r.input_dim} w={r.width} L={r.depth} B={r.batch} P={r.params:,}: "
                f"{getattr(r, y):,.3g} {Y_LABELS[y]}; median {r.median_s:.3g} s, IQR "
                f"{r.iqr_s:.2g} s" + (f" — BUSY MACHINE: {c}" if c else "")
                for r, c in zip(g.itertuples(), _reasons(g), strict=True)])
        ax.set_title(phase, fontsize=10)
        ax.set(xscale="log", yscale="log" if y != "peak_fraction" else "linear")
        if y == "peak_fraction":
            ax.axhline(1.0, color="grey", lw=1, ls=":")
        if peak and y == "gflops":
            ax.axhline(peak, color="0.55", lw=4, alpha=0.35, zorder=0)  # unlike any series
            if j % ncols == ncols - 1 or j == len(phases) - 1:  # rightmost panel of a row
                sec = ax.secondary_yaxis("right", functions=(lambda v: v / peak,
                                                             lambda f: f * peak))
                sec.set_ylabel("fraction of peak (grey band: peak)")
    for ax in axes[len(phases):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel(Y_LABELS[y])
    label_bottoms(axes, len(phases), ncols, "parameters P")
    if flagged_label:  # a legend entry for the hollow markers
        axes[min(ncols, len(phases)) - 1].plot([], [], ls="none", marker="o", mfc="white",
                                                mec="0.3", label="hollow: busy machine")
    legend_outside(axes[min(ncols, len(phases)) - 1], "depth, batch",
                   x=1.32 if peak and y == "gflops" else 1.01)
    return axes


def memory_needed(spec_curves: pd.DataFrame, limits: dict[str, int], *, ax=None):
    """Bytes needed to train P parameters per optimizer (the memory model's curves), with the
    machine's RAM and GPU memory as horizontal lines."""
    ax = ax if ax is not None else new_axes((8.5, 4.4), margins=(1.1, 2.4, 0.6, 0.2))
    for i, (opt, g) in enumerate(spec_curves.groupby("optimizer", sort=False)):
        st = series_style(i)
        ax.plot(g["params"], g["bytes"], label=opt, color=st["color"],
                linestyle=st["linestyle"], lw=1.8)
        hover(ax, g["params"], g["bytes"], [f"{opt}: P={p:,} needs {format_bytes(b)}"
                                             for p, b in zip(g["params"], g["bytes"],
                                                             strict=True)])
    for j, (name, b) in enumerate(limits.items()):
        ax.axhline(b, color="black" if j == 0 else "#D55E00", lw=1.2, ls=":" if j else "-.")
        ax.annotate(f"{name}: {format_bytes(b)}", (spec_curves["params"].min(), b),
                    xytext=(2, 3), textcoords="offset points", fontsize=9)
    ax.set(xscale="log", yscale="log", xlabel="parameters P",
           ylabel="bytes to train (memory model)")
    ticks = [2.0 ** k for k in range(10, 60, 10)]
    ax.set_yticks([t for t in ticks if spec_curves["bytes"].min() / 10 < t
                   < spec_curves["bytes"].max() * 10])
    ax.set_yticklabels([format_bytes(int(t)) for t in ax.get_yticks()])
    legend_outside(ax, "optimizer")
    return ax


def measured_vs_model(data: pd.DataFrame, *, ax=None):
    """Measured increase over the process baseline against the model, one marker per kind,
    with the y = x line."""
    ax = ax if ax is not None else new_axes((8, 4.6), margins=(1.1, 2.4, 0.6, 0.2))
    for i, (kind, g) in enumerate(data.groupby("kind", sort=False)):
        st = series_style(i)
        ax.scatter(g["predicted_bytes"], g["measured_bytes"], label=kind, color=st["color"],
                   marker=st["marker"], s=28)
        hover(ax, g["predicted_bytes"], g["measured_bytes"], g["label"])
    vals = data[["predicted_bytes", "measured_bytes"]].to_numpy(float)
    vals = vals[vals > 0]
    lo, hi = float(vals.min()), float(vals.max())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="measured = model")
    ax.set(xscale="log", yscale="log", xlabel="memory model (bytes)",
           ylabel="measured increase over baseline (bytes)")
    legend_outside(ax)
    return ax


def speedups(geo: pd.DataFrame, *, ax=None):
    """Geometric-mean speedup per group (horizontal bars, log scale, 1× line)."""
    ax = ax if ax is not None else new_axes((9, max(2.6, 0.32 * len(geo) + 1.2)),
                                              margins=(3.4, 0.3, 0.6, 0.2))
    labels = geo["group"] + "  (" + geo["machine"] + ", n=" + geo["benchmarks"].astype(str) + ")"
    ypos = np.arange(len(geo))
    colors = [series_style(i)["color"] for i in pd.factorize(geo["machine"])[0]]
    ax.barh(ypos, geo["geomean_speedup"], color=colors)
    ax.set_yticks(ypos, labels, fontsize=9)
    ax.axvline(1.0, color="black", lw=1)
    ax.set(xscale="log", xlabel="geometric-mean speedup (× , > 1: faster than the reference)")
    hover(ax, geo["geomean_speedup"], ypos, [f"{g}: {s:.3g}× over {n} benchmarks"
                                            for g, s, n in zip(labels, geo["geomean_speedup"],
                                                               geo["benchmarks"], strict=True)])
    ax.invert_yaxis()
    return ax
