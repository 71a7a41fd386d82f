"""Optimizer figures: loss curves aggregated on a common grid, learning-rate sensitivity per
workload with success rates, performance profiles, GD vs SGD with Wilson intervals, Newton
cost scaling with fitted lines, the wall and the extrapolated points. Data first, return Axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpbench.analysis.curves import X_LABELS
from mlpbench.report.style import MAX_SERIES, hover, new_axes, optimizer_style, series_style

#: optimizer families drawn in one panel (≤ MAX_SERIES each); others go to "other"
FAMILIES = (("gradient descent", ("gd", "sgd", "momentum", "nesterov")),
            ("adaptive", ("adam", "adamw", "adagrad", "rmsprop")),
            ("quasi-Newton / Newton", ("lbfgs", "newton")))


def family_of(optimizer: str) -> str:
    base = optimizer.split("[")[0]
    for name, members in FAMILIES:
        if base in members or any(base.startswith(m) for m in members if m != "gd"):
            return name
    return "other"


def panels(optimizers) -> list[tuple[str, list[str]]]:
    """Optimizers grouped into families, each cut to ≤ MAX_SERIES per panel."""
    groups: dict[str, list[str]] = {}
    for o in optimizers:
        groups.setdefault(family_of(o), []).append(o)
    out = []
    for fam, opts in groups.items():
        for i in range(0, len(opts), MAX_SERIES):
            out.append((fam, opts[i:i + MAX_SERIES]))
    return out


def loss_grid(curves: dict[str, pd.DataFrame], *, target: float | None = None,
              ylabel: str = "train loss"):
    """Rows: x-axes (``curves`` maps an x column to :func:`aggregate_curves` output); columns:
    optimizer families. Median line, quartile band."""
    xs = list(curves)
    opts = list(dict.fromkeys(pd.concat(curves.values())["optimizer"]))
    cols = panels(opts)
    axes = new_axes((3.9 * len(cols) + 0.9, 2.9 * len(xs) + 0.2), ncols=len(cols),
                    nrows=len(xs), sharey=True, margins=(0.85, 0.15, 0.6, 0.35))
    axes = np.atleast_1d(axes).reshape(len(xs), len(cols))
    for r, x in enumerate(xs):
        c = curves[x]
        for k, (fam, members) in enumerate(cols):
            ax = axes[r, k]
            for o in members:
                g = c[c["optimizer"] == o]
                st = optimizer_style(o)
                ax.plot(g[x], g["median"], color=st["color"], linestyle=st["linestyle"],
                        lw=1.6, label=o)
                ax.fill_between(g[x], g["q25"], g["q75"], color=st["color"], alpha=0.15, lw=0)
                every = g.iloc[:: max(1, len(g) // 12)]
                hover(ax, every[x], every["median"],
                      [f"{o} at {X_LABELS[x]} {v:,.3g}: median {m:.3g} [q25 {a:.3g}, q75 "
                       f"{b:.3g}], {n} running" for v, m, a, b, n in zip(
                           every[x], every["median"], every["q25"], every["q75"],
                           every["running"], strict=True)])
            if target is not None:
                ax.axhline(target, color="black", lw=1, ls=":")
            ax.set(yscale="log", xscale="linear" if x == "step" else "log",
                   xlabel=X_LABELS[x])
            if r == 0:
                ax.set_title(fam, fontsize=10)
                ax.legend(fontsize=9, loc="upper right", frameon=True)
            if k == 0:
                ax.set_ylabel(ylabel)
    return axes


def lr_panel(lr: pd.DataFrame):
    """One workload: top, final train loss (median over seeds, diverged runs left out) against
    η; bottom, the fraction of seeds reaching the target. One line per base optimizer."""
    bases = list(dict.fromkeys(lr["base"]))
    n = -(-len(bases) // MAX_SERIES)
    axes = new_axes((4.3 * n + 0.9, 5.4), ncols=n, nrows=2, sharex=True,
                    margins=(0.85, 0.15, 0.6, 0.2))
    axes = np.atleast_1d(axes).reshape(2, n)
    for j in range(n):
        top, bottom = axes[0, j], axes[1, j]
        for b in bases[j * MAX_SERIES:(j + 1) * MAX_SERIES]:
            g = lr[lr["base"] == b].sort_values("lr")
            st = optimizer_style(b)
            y = g["final_loss"].where(np.isfinite(g["final_loss"]))
            top.plot(g["lr"], y, label=b, lw=1.3, ms=5, **st)
            bottom.plot(g["lr"], g["success"], lw=1.3, ms=5, **st)
            text = [f"{b} η={r.lr:.3g}: success {r.success:.0%}, diverged {r.diverged:.0%}, "
                    f"final loss {r.final_loss:.3g}, time to target {r.time_to_target:.3g} s"
                    for r in g.itertuples()]
            hover(top, g["lr"], y, text)
            hover(bottom, g["lr"], g["success"], text)
        top.set(xscale="log", yscale="log", ylabel="final train loss (median)")
        bottom.set(xscale="log", ylim=(-0.05, 1.05), xlabel="learning rate η",
                   ylabel="fraction of seeds at target")
        top.legend(fontsize=9, loc="best")
    return axes


def profile(prof: pd.DataFrame, *, xlabel: str, ax=None):
    """Performance profiles: fraction of workloads solved within τ × the best."""
    opts = list(dict.fromkeys(prof["optimizer"]))
    cols = panels(opts)
    axes = np.atleast_1d(new_axes((3.9 * len(cols) + 0.9, 3.2), ncols=len(cols), sharey=True,
                                      margins=(0.85, 0.15, 0.6, 0.35)))
    for ax, (fam, members) in zip(axes, cols, strict=True):
        for o in members:
            g = prof[prof["optimizer"] == o]
            st = optimizer_style(o)
            ax.step(g["tau"], g["fraction"], where="post", color=st["color"],
                    linestyle=st["linestyle"], lw=1.6, label=o)
        ax.set(xscale="log", xlabel=xlabel, ylim=(-0.03, 1.03), title=fam)
        ax.legend(fontsize=9, loc="lower right")
    axes[0].set_ylabel("fraction of workloads solved")
    return axes


#: the Newton cost figure's two panels (≤ MAX_SERIES operations each)
COST_PANELS = (("Newton path", ("grad", "hvp_fwdrev", "hessian", "solve", "newton_step",
                                "newton_cg_step")),
               ("first order and other", None))


def cost_scaling(ok: pd.DataFrame, fits: pd.DataFrame, extrap: dict, wall: dict | None):
    """Seconds per call against P (log–log), two panels: measured points, fitted power laws
    drawn out to the 10^7 network (dashed), extrapolated points (hollow), the Newton wall."""
    first = [o for o in COST_PANELS[0][1] if o in set(ok["op"])]
    rest = [o for o in dict.fromkeys(ok["op"]) if o not in first][:MAX_SERIES]
    groups = [(t, ops) for t, ops in ((COST_PANELS[0][0], first), (COST_PANELS[1][0], rest))
              if ops]
    axes = np.atleast_1d(new_axes((5.2 * len(groups) + 0.9, 5.0), ncols=len(groups),
                                  sharey=True, margins=(0.85, 0.2, 0.6, 0.35)))
    for ax, (title, ops) in zip(axes, groups, strict=True):
        _cost_panel(ax, ok[ok["op"].isin(ops)], fits, extrap, wall)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("seconds per call")
    return axes


def _cost_panel(ax, ok: pd.DataFrame, fits: pd.DataFrame, extrap: dict, wall: dict | None):
    p_target = extrap["params"]
    for i, (op, g) in enumerate(ok.groupby("op", sort=False)):
        st = series_style(i)
        g = g.sort_values("params")
        f = fits[fits["op"] == op] if len(fits) else fits
        label = f"{op} (P^{float(f['exponent'].iloc[0]):.2f})" if len(f) else op
        ax.plot(g["params"], g["median_s"], color=st["color"], marker=st["marker"], ls="",
                label=label)
        hover(ax, g["params"], g["median_s"], [f"{op} P={p:,}: {t:.3g} s (measured)"
                                               for p, t in zip(g["params"], g["median_s"],
                                                               strict=True)])
        if len(f):
            k, c = float(f["exponent"].iloc[0]), float(f["log_intercept"].iloc[0])
            xs = np.geomspace(float(f["p_min"].iloc[0]), p_target, 30)
            ax.plot(xs, np.exp(c) * xs ** k, color=st["color"], ls=st["linestyle"], lw=1)
            y_t = np.exp(c) * p_target ** k
            ax.scatter([p_target], [y_t], facecolors="none", edgecolors=st["color"],
                       marker=st["marker"], s=50)
            hover(ax, [p_target], [y_t], [f"{op} at P={p_target:,}: {y_t:.3g} s "
                                          "(EXTRAPOLATED)"])
    if wall and wall.get("predicted_params"):
        ax.axvline(wall["predicted_params"], color="#D55E00", lw=2)
        ax.annotate(f"Newton wall\nP≈{wall['predicted_params']:,}",
                    (wall["predicted_params"], 0.02), xycoords=("data", "axes fraction"),
                    xytext=(4, 0), textcoords="offset points", fontsize=9, color="#D55E00")
    ax.axvline(p_target, color="grey", lw=1, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="parameters P (dotted: 10^7 network)")
    ax.legend(fontsize=9, loc="upper left", title="op (fit exponent)", title_fontsize=9)
