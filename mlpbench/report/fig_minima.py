"""Figure for the minima study: the fraction of initialisations in one class, per optimizer
(batch size) and learning rate, with 95% Wilson intervals. Data first, ``ax=None``,
returns the Axes (seaborn convention); colour-blind palette."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mlpbench.errors import UsageError  # noqa: E402


def minima_fractions(data: pd.DataFrame, *, cls: str = "global", problem: str | None = None,
                     budget: str = "steps", ax=None):
    """Bars of ``frac_<cls>`` by batch size (GD = the full batch), one hue per η.

    ``data`` is the ``minima_summary.csv`` table; error bars are its Wilson bounds
    (``<cls>_lo``, ``<cls>_hi``). ``problem`` picks one problem (default: the first).
    """
    if f"frac_{cls}" not in data:
        raise UsageError(f"no class {cls!r} in the summary table")
    problem = problem or str(data["problem"].iloc[0])
    d = data[(data["problem"] == problem) & (data["budget"] == budget)].copy()
    if d.empty:
        raise UsageError(f"no rows for problem={problem!r}, budget={budget!r}")
    n_full = int(d["batch"].max())
    d["method"] = [("GD" if b == n_full else f"SGD b={b}") for b in d["batch"]]
    order = ["GD", *[f"SGD b={b}" for b in sorted(d["batch"].unique(), reverse=True)
                     if b != n_full]]
    d["η"] = d["lr"].map(lambda v: f"{v:g}")
    hues = sorted(d["η"].unique(), key=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    palette = sns.color_palette("colorblind", len(hues))
    sns.barplot(data=d, x="method", y=f"frac_{cls}", hue="η", order=order,
                hue_order=hues, palette=palette, errorbar=None, ax=ax)
    width = 0.8 / len(hues)
    for k, h in enumerate(hues):
        sub = d[d["η"] == h].set_index("method").reindex(order)
        xs = np.arange(len(order)) - 0.4 + width * (k + 0.5)
        y = sub[f"frac_{cls}"].to_numpy(float)
        err = np.vstack([y - sub[f"{cls}_lo"].to_numpy(float),
                         sub[f"{cls}_hi"].to_numpy(float) - y])
        ax.errorbar(xs, y, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
        counts = (sub[f"frac_{cls}"] * sub["runs"]).round()
        for x, c, r in zip(xs, counts, sub["runs"], strict=True):
            if np.isfinite(c):  # the count itself: a zero bar is not a missing bar
                ax.annotate(f"{int(c)}/{int(r)}", (x, 0), xytext=(0, 2),
                            textcoords="offset points", ha="center", fontsize=9)
    n = int(d["runs"].min())
    top = float(np.nanmax(d[f"{cls}_hi"].to_numpy(float))) if len(d) else 1.0
    ax.set(ylim=(0, min(1.0, max(0.1, top * 1.25))), xlabel=f"optimizer ({budget} budget)",
           ylabel=f"fraction '{cls}' (of {n} inits)", title=problem)
    ax.legend(title="learning rate η", frameon=False, fontsize=9)
    return ax


#: every outcome class of a polished end point, in stacking order, each with one colour
OUTCOMES = {"global": "#009E73", "spurious": "#D55E00", "saddle": "#CC79A7",
            "kink": "#E69F00", "dead_relu": "#000000", "still_descending": "#56B4E9",
            "unresolved": "#999999"}


def minima_outcomes(data: pd.DataFrame, *, problem: str, budget: str = "steps", ax=None):
    """Stacked bars: where each setting's initialisations ended (every outcome class), one
    bar per optimizer (batch size) and η, with a hover per segment."""
    from mlpbench.report.style import hover, new_axes

    d = data[(data["problem"] == problem) & (data["budget"] == budget)]
    if d.empty:
        raise UsageError(f"no rows for problem={problem!r}, budget={budget!r}")
    n_full = int(d["batch"].max())
    d = d.sort_values(["batch", "lr"], ascending=[False, True])
    labels = [("GD" if b == n_full else f"SGD\nb={b}") + f"\nη={lr:g}"
              for b, lr in zip(d["batch"], d["lr"], strict=True)]
    ax = ax if ax is not None else new_axes((max(6.0, 0.75 * len(d) + 2.5), 4.4),
                                              margins=(0.85, 2.1, 1.1, 0.35))
    xs = np.arange(len(d))
    bottom = np.zeros(len(d))
    for cls, colour in OUTCOMES.items():
        if f"n_{cls}" not in d:
            continue
        frac = (d[f"n_{cls}"] / d["runs"]).to_numpy(float)
        ax.bar(xs, frac, bottom=bottom, color=colour, label=cls.replace("_", " "), width=0.75)
        hover(ax, xs, bottom + frac / 2, [f"{lab.replace(chr(10), ' ')}: {cls} "
                                          f"{int(n)}/{int(r)}" for lab, n, r in
                                          zip(labels, d[f"n_{cls}"], d["runs"], strict=True)])
        bottom += np.nan_to_num(frac)
    ax.set_xticks(xs, labels, fontsize=9)
    ax.set(ylim=(0, 1), ylabel=f"fraction of {int(d['runs'].min())} initialisations",
           title=f"{problem} — equal {budget}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9,
              title="end point", title_fontsize=9)
    return ax
