"""The curvature cost study's table, read: amortised step cost at each library's default
preconditioner frequency, as multiples of SGD and Adam steps; the FLOP model of the factor
eigendecompositions beside the measured update time; the memory model against what was
allocated and measured; and the labelled extrapolation to 10^7 parameters and beyond.
Pure functions over stored rows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlpbench.fits import fit_power_law, predict
from mlpbench.optimizers import memory_model
from mlpbench.optimizers.newton import newton_bytes
from mlpbench.spec import TARGET_SPEC, MLPSpec
from mlpbench.units import format_bytes, human_seconds

#: steps per preconditioner refresh at each library's default (heavyball SOAP/KL-Shampoo
#: precondition_frequency=2; K-FAC update_every=10 is mlpbench's; PSGD refreshes with
#: probability 1 for 1000 steps, then anneals to 0.03: both regimes are reported)
DEFAULT_K: dict[str, tuple[tuple[str, float], ...]] = {
    "soap": (("k=2", 2.0),), "kl_shampoo": (("k=2", 2.0),), "kfac": (("k=10", 10.0),),
    "psgd_kron": (("k=1 (first 1000 steps)", 1.0), ("k=33 (annealed, p=0.03)", 1 / 0.03)),
}
#: networks the memory model extrapolates to: the 10^7 one, and 4096- and 8192-wide layers
EXTRAPOLATE = (TARGET_SPEC, MLPSpec(100, 4096, 10), MLPSpec(100, 8192, 10))
#: rows whose modelled training memory (less the parameters) is at least this large are
#: checked against the RSS peak: below it, allocator caching and Python objects dominate
RSS_CHECK_MIN_BYTES = 64 * 2 ** 20


#: the methods of the memory panel of the curvature-wall figure (Newton: Hessian + factor)
WALL_METHODS = ("newton", "lbfgs", "soap", "kfac", "psgd_kron", "adam")
#: the networks the memory curves run over: d=10/L=2 of growing width (the measured grid),
#: then d=100, L=10 of growing width (the 10^7 network and beyond)
WALL_SPECS = tuple(MLPSpec(10, w, 2) for w in (32, 128, 512, 2048)) + tuple(
    MLPSpec(100, w, 10) for w in (250, 500, 1000, 2048, 4096, 8192, 16384))


def memory_curves(methods: tuple[str, ...] = WALL_METHODS,
                  specs: tuple[MLPSpec, ...] = WALL_SPECS) -> pd.DataFrame:
    """Training memory (fp32, batch 1: parameters, gradients, activations, state) per
    method and network, from the closed forms; Newton adds its dense Hessian and factor."""
    out = []
    for spec in specs:
        for method in methods:
            base = memory_model(spec, "sgd" if method == "newton" else method, "fp32", 1)
            extra = newton_bytes(spec.num_params) if method == "newton" else 0
            out.append({"params": spec.num_params, "method": method,
                        "network": f"d={spec.input_dim} w={spec.width} L={spec.depth}",
                        "bytes": float(base.training + extra)})  # > int64 at 16384
    return pd.DataFrame(out).sort_values(["method", "params"]).reset_index(drop=True)


def memory_walls(curves: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Per method, the largest network of the curves whose training memory fits in
    ``budget`` bytes, and the first that does not (the wall lies between)."""
    out = []
    for method, g in curves.groupby("method", sort=False):
        g = g.sort_values("params")
        fits, over = g[g["bytes"] <= budget], g[g["bytes"] > budget]
        out.append({"method": method,
                    "largest_fitting": fits["network"].iloc[-1] if len(fits) else None,
                    "largest_fitting_params": int(fits["params"].iloc[-1]) if len(fits) else None,
                    "first_over": over["network"].iloc[0] if len(over) else None,
                    "first_over_bytes": float(over["bytes"].iloc[0]) if len(over) else None})
    return pd.DataFrame(out)


def default_steps(costs: pd.DataFrame) -> pd.DataFrame:
    """Each method's step at its default regime (PSGD: annealed), one row per (P, method)."""
    parts = [d for m in dict.fromkeys(costs["method"]) if (d := _default_regime(costs, m))
             is not None] if not costs.empty else []
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _ok(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df[(df["status"] == "ok") & df["median_s"].notna()]


def step_costs(rows: pd.DataFrame | list[dict], compiled: bool = False) -> pd.DataFrame:
    """One row per (P, method, regime): update and cheap step seconds, the amortised step
    (t_update + (k−1)·t_cheap)/k at the default k, and its multiples of the SGD and Adam
    steps measured at the same P (the median over repeated runs; rows at the most common
    thread count only)."""
    ok = _ok(rows)
    if ok.empty:
        return pd.DataFrame()
    if "threads" in ok:  # one thread count: the most common one (a side run may use another)
        ok = ok[ok["threads"] == ok["threads"].mode().iloc[0]]
    ok = ok[ok["compiled"].astype(bool) == compiled]
    if ok.empty:
        return pd.DataFrame()
    med = ok.groupby(["params", "method", "variant"])["median_s"].median()
    out = []
    for (p, method), g in med.groupby(level=[0, 1]):
        t = {v: g.loc[(p, method, v)] for _, _, v in g.index}
        cubes = ok[(ok["params"] == p) & (ok["method"] == method)]["factor_cubes"].max()
        if "step" in t:
            out.append({"params": p, "method": method, "regime": "every step",
                        "k": 1.0, "step_s": t["step"]})
        for label, k in DEFAULT_K.get(method, ()):
            if "update" in t and "cheap" in t:
                out.append({"params": p, "method": method, "regime": label, "k": k,
                            "update_s": t["update"], "cheap_s": t["cheap"],
                            "step_s": (t["update"] + (k - 1) * t["cheap"]) / k,
                            "factor_cubes": cubes,
                            "update_extra_s": t["update"] - t["cheap"]})
    df = pd.DataFrame(out)
    base = df[df["regime"] == "every step"].set_index(["params", "method"])["step_s"]
    for ref in ("sgd", "adam"):
        ref_s = df["params"].map(lambda p, ref=ref: base.get((p, ref)))
        df[f"x_{ref}"] = df["step_s"] / ref_s
    return df.sort_values(["params", "method", "k"]).reset_index(drop=True)


def spread(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Per (P, method, variant, compiled): the median, min and max of the per-run medians
    over repeated runs, and how many runs measured it."""
    ok = _ok(rows)
    if ok.empty:
        return pd.DataFrame()
    g = ok.groupby(["params", "method", "variant", "compiled"])["median_s"]
    return g.agg(["median", "min", "max", "count"]).reset_index().rename(
        columns={"median": "median_s", "min": "min_s", "max": "max_s", "count": "runs"})


def flop_model(costs: pd.DataFrame) -> pd.DataFrame:
    """The preconditioner refresh beside its FLOP model: Σ n³ over the factors (each
    eigendecomposition, QR or inverse is O(n³); the constant is not claimed) and the
    measured extra seconds of an update step over a cheap one, per n³."""
    if costs.empty or "factor_cubes" not in costs:
        return pd.DataFrame()
    df = costs[costs["factor_cubes"].notna() & (costs["factor_cubes"] > 0)]
    df = df.drop_duplicates(["params", "method"])[["params", "method", "factor_cubes",
                                                     "update_extra_s"]].copy()
    df["ns_per_cube"] = df["update_extra_s"] / df["factor_cubes"] * 1e9
    return df.reset_index(drop=True)


def memory_check(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Per measured row: the state model against the state the library allocated
    (``state_ratio`` = counted / model), and the RSS peak over building the optimizer and its
    first steps against the modelled gradients + activations + state (``rss_ratio``;
    ``checked``: the model is large enough for RSS to mean something)."""
    ok = _ok(rows)
    if ok.empty:
        return pd.DataFrame()
    df = ok[~ok["compiled"].astype(bool)].copy()
    params_bytes = df["params"] * 4
    df["model_less_params_bytes"] = df["training_model_bytes"] - params_bytes
    df["state_ratio"] = df["state_counted_bytes"] / df["state_model_bytes"].where(
        df["state_model_bytes"] > 0)
    df["rss_ratio"] = df["rss_peak_bytes"] / df["model_less_params_bytes"]
    df["checked"] = df["model_less_params_bytes"] >= RSS_CHECK_MIN_BYTES
    cols = ["params", "method", "variant", "state_model_bytes", "state_counted_bytes",
            "state_ratio", "model_less_params_bytes", "rss_peak_bytes", "rss_ratio", "checked"]
    return df[cols].reset_index(drop=True)


def extrapolation(costs: pd.DataFrame, methods: tuple[str, ...]) -> pd.DataFrame:
    """State memory (closed form, exact) at :data:`EXTRAPOLATE`; the amortised step time
    measured at the 10^7 network when it was, else a power law fitted to the d=10/L=2 grid
    and evaluated there (labelled EXTRAPOLATION)."""
    out = []
    for spec in EXTRAPOLATE:
        p = spec.num_params
        for method in methods:
            mem = memory_model(spec, method, "fp32", 1)
            row: dict[str, Any] = {"network": f"d={spec.input_dim} w={spec.width} "
                                   f"L={spec.depth}", "params": p, "method": method,
                                   "state_bytes": mem.optimizer_state,
                                   "training_bytes": mem.training, "seconds": None,
                                   "x_adam": None, "kind": "memory model"}
            default = _default_regime(costs, method)
            if default is not None:
                here = default[default["params"] == p]
                if len(here):
                    row.update(seconds=float(here["step_s"].iloc[0]),
                               x_adam=here["x_adam"].iloc[0], kind="measured")
                else:
                    grid = default[default["params"] < TARGET_SPEC.num_params]
                    fit = fit_power_law(list(zip(grid["params"], grid["step_s"], strict=True)))
                    if fit is not None:
                        row.update(seconds=predict(fit, p),
                                   kind=f"EXTRAPOLATION (P^{fit[0]:.2f} fit, time)")
            out.append(row)
    return pd.DataFrame(out)


def _default_regime(costs: pd.DataFrame, method: str) -> pd.DataFrame | None:
    if costs.empty:
        return None
    g = costs[costs["method"] == method]
    if g.empty:
        return None
    first = g["regime"].iloc[0] if method not in DEFAULT_K else DEFAULT_K[method][-1][0]
    return g[g["regime"] == first]


def render_costs(costs: pd.DataFrame) -> str:
    """The amortised step table as text (``mlpbench curvature-cost``)."""
    if costs.empty:
        return "no measured steps"
    lines = [f"{'P':>10} {'method':<11} {'regime':<24} {'step':>9} {'×SGD':>7} {'×Adam':>7}"]
    for r in costs.itertuples():
        lines.append(f"{r.params:>10,} {r.method:<11} {r.regime:<24} "
                     f"{human_seconds(r.step_s):>9} {_x(r.x_sgd):>7} {_x(r.x_adam):>7}")
    return "\n".join(lines)


def _x(v: float | None) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.1f}"


def headline(costs: pd.DataFrame, method: str = "soap") -> str | None:
    """"<method> step = k× Adam, state m at P = 9.1 M" from the measured 10^7 row."""
    default = _default_regime(costs, method)
    if default is None:
        return None
    here = default[default["params"] == TARGET_SPEC.num_params]
    if here.empty or pd.isna(here["x_adam"].iloc[0]):
        return None
    state = memory_model(TARGET_SPEC, method, "fp32", 1).optimizer_state
    return (f"{method} step = {here['x_adam'].iloc[0]:.1f}× Adam "
            f"({here['regime'].iloc[0]}), state {format_bytes(state)} at "
            f"P = {TARGET_SPEC.num_params:,}")


__all__ = ["DEFAULT_K", "EXTRAPOLATE", "RSS_CHECK_MIN_BYTES", "WALL_METHODS", "WALL_SPECS",
           "default_steps", "extrapolation", "spread", "flop_model", "headline", "memory_check",
           "memory_curves", "memory_walls", "render_costs", "step_costs"]
