"""Figures of execution modes, threads, precision and the roofline, from the tables of
:func:`mlpbench.analysis.modes.over_runs` (median over runs, error bars from the min–max over
runs) and :func:`mlpbench.analysis.roofline.roofline_table`. Data first, return Axes."""

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


def _bars(g: pd.DataFrame, value: str) -> np.ndarray | None:
    """Error bar lengths (below, above) from ``<value>_min`` / ``<value>_max``."""
    if f"{value}_min" not in g or f"{value}_max" not in g:
        return None
    v = g[value].to_numpy(float)
    lo = np.nan_to_num(v - g[f"{value}_min"].to_numpy(float)).clip(min=0)
    hi = np.nan_to_num(g[f"{value}_max"].to_numpy(float) - v).clip(min=0)
    return np.vstack([lo, hi])


def speedup_panels(data: pd.DataFrame, *, series: str = "series", x: str = "params",
                   value: str = "speedup", ylabel: str = "speedup (× less time)",
                   legend: str = "network"):
    """One panel per phase: ``value`` against ``x`` (log–log), one line per ``series``,
    error bars from the min–max over runs, a dotted line at 1 (no change)."""
    phases = list(dict.fromkeys(data["phase"]))
    axes, ncols = panel_grid(len(phases))
    names = list(dict.fromkeys(data[series]))[:MAX_SERIES]
    for ax, phase in zip(axes, phases, strict=False):
        p = data[data["phase"] == phase]
        for i, name in enumerate(names):
            g = p[p[series] == name].sort_values(x)
            if g.empty:
                continue
            ax.errorbar(g[x], g[value], yerr=_bars(g, value), label=name, capsize=2, ms=5,
                        lw=1.4, **series_style(i))
            hover(ax, g[x], g[value], [
                f"{phase}, {name}, P={int(r.params):,}: {getattr(r, value):.3g}× "
                f"(runs: {int(r.reps)}, min {getattr(r, value + '_min', np.nan):.3g}, max "
                f"{getattr(r, value + '_max', np.nan):.3g}); {r.base_median_s:.3g} s → "
                f"{r.median_s:.3g} s" for r in g.itertuples()])
        ax.axhline(1.0, color="grey", lw=1, ls=":")
        ax.set_title(phase, fontsize=10)
        ax.set(xscale="log", yscale="log")
    for ax in axes[len(phases):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel(ylabel)
    label_bottoms(axes, len(phases), ncols, "parameters P" if x == "params" else x)
    legend_outside(axes[min(ncols, len(phases)) - 1], legend)
    return axes


def thread_efficiency(data: pd.DataFrame):
    """One panel per phase: parallel efficiency (speedup / threads) against the thread
    count, one line per network size, error bars from the min–max over runs."""
    data = data.assign(size="P=" + data["params"].map(lambda p: f"{int(p):,}"))
    phases = list(dict.fromkeys(data["phase"]))
    axes, ncols = panel_grid(len(phases), width=3.6)
    sizes = list(dict.fromkeys(data.sort_values("params")["size"]))[:MAX_SERIES]
    for ax, phase in zip(axes, phases, strict=False):
        p = data[data["phase"] == phase]
        for i, size in enumerate(sizes):
            g = p[p["size"] == size].sort_values("threads")
            if g.empty:
                continue
            ax.errorbar(g["threads"], g["efficiency"], yerr=_bars(g, "efficiency"), label=size,
                        capsize=2, ms=5, lw=1.4, **series_style(i))
            hover(ax, g["threads"], g["efficiency"], [
                f"{phase}, {size}, {int(r.threads)} threads: efficiency {r.efficiency:.2f}, "
                f"speedup {r.speedup:.2f}× ({r.median_s:.3g} s vs {r.base_median_s:.3g} s)"
                for r in g.itertuples()])
        ax.axhline(1.0, color="grey", lw=1, ls=":")
        ax.set_title(phase, fontsize=10)
        ax.set_xticks(sorted(data["threads"].unique()))
        ax.set_ylim(0, max(1.1, float(data["efficiency"].max()) * 1.1))
    for ax in axes[len(phases):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("parallel efficiency (1 = linear)")
    label_bottoms(axes, len(phases), ncols, "torch threads")
    legend_outside(axes[min(ncols, len(phases)) - 1], "network")
    return axes


def precision_bars(data: pd.DataFrame, *, ax=None):
    """Speedup of each precision over fp32 per phase: grouped bars, min–max error bars."""
    ax = ax if ax is not None else new_axes((8.0, 3.6), margins=(0.85, 2.6, 0.6, 0.2))
    phases = list(dict.fromkeys(data["phase"]))
    settings = list(dict.fromkeys(data["dtype"] + ", P=" + data["params"].map(
        lambda p: f"{int(p):,}")))[:MAX_SERIES]
    data = data.assign(setting=data["dtype"] + ", P=" + data["params"].map(
        lambda p: f"{int(p):,}"))
    width = 0.8 / max(1, len(settings))
    for i, setting in enumerate(settings):
        g = data[data["setting"] == setting].set_index("phase").reindex(phases)
        xs = np.arange(len(phases)) + (i - (len(settings) - 1) / 2) * width
        ax.bar(xs, g["speedup"], width, yerr=_bars(g, "speedup"), capsize=3, label=setting,
               color=series_style(i)["color"], hatch=["", "//", "..", "xx"][i % 4])
        hover(ax, xs, g["speedup"], [f"{ph}, {setting}: {v:.3g}× fp32's speed"
                                     for ph, v in zip(phases, g["speedup"], strict=True)])
    ax.axhline(1.0, color="black", lw=1, ls=":")
    ax.set_xticks(np.arange(len(phases)), phases)
    ax.set(ylabel="speedup over fp32 (×)")
    legend_outside(ax, "precision")
    return ax


def roofline(data: pd.DataFrame, *, peak_gflops: float, bandwidth_gbs: float, ax=None):
    """Measured GFLOP/s against arithmetic intensity (log–log) under the roofline
    ``min(peak, intensity × bandwidth)``, one marker per phase."""
    ax = ax if ax is not None else new_axes((8.0, 4.2), margins=(0.85, 2.6, 0.6, 0.2))
    for i, (phase, g) in enumerate(data.groupby("phase", sort=False)):
        st = series_style(i)
        ax.scatter(g["intensity"], g["gflops"], label=phase, color=st["color"],
                   marker=st["marker"], s=30)
        hover(ax, g["intensity"], g["gflops"], [
            f"{phase}, P={int(r.params):,}, B={int(r.batch)}: {r.gflops:,.1f} GFLOP/s at "
            f"{r.intensity:.3g} FLOP/byte ({r.bound}-bound, {r.roof_fraction:.0%} of the roof)"
            for r in g.itertuples()])
    lo = max(1e-2, float(data["intensity"].min()) / 2)
    hi = max(lo * 10, float(data["intensity"].max()) * 2)
    x = np.geomspace(lo, hi, 200)
    ax.plot(x, np.minimum(peak_gflops, x * bandwidth_gbs), color="black", lw=1.2,
            label=f"roof ({peak_gflops:,.0f} GFLOP/s, {bandwidth_gbs:,.1f} GB/s)")
    ax.axvline(peak_gflops / bandwidth_gbs, color="grey", lw=1, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP per byte moved)",
           ylabel="achieved GFLOP/s")
    legend_outside(ax, "phase")
    return ax
