"""The extrapolation of a Newton step to the 10^7-parameter network, physically consistent.

Every row of :func:`extrapolation_table` (table ``newton_extrapolation``) names its model, its
inputs with the rows they come from, and its bound: ``lower bound`` (cannot be faster),
``upper estimate`` (rates measured at small P, which rose with P), ``central estimate``,
``measured`` (the quantity was timed at the target P: the measurement is used), or a fitted
power law. A fit that lies below a known lower bound is kept but marked ``rejected`` in
``status`` and never enters a range. Parts of a Newton step:

* Hessian (vmapped forward-over-reverse HVPs, as :func:`mlpbench.measure.second_order.
  hessian_vmap` builds it): each column adds the tangent half of an HVP,
  :func:`hessian_column_flops`; at the measured matmul peak that is a lower bound in time.
* solve: one Cholesky factorization costs P³/3 flop (lower bound at the peak); the
  Levenberg–Marquardt retries (factorizations per step) are counted separately, from the
  damping the timed solve ended at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlpbench.fits import fit_power_law, predict
from mlpbench.optimizers.newton import LM_FACTOR
from mlpbench.spec import TARGET_SPEC, MLPSpec
from mlpbench.studies.newton_cost_ops import TIMED_DAMPING

COLUMNS = ["quantity", "bound", "seconds", "kind", "model", "inputs", "status", "params"]
#: ops whose time at the target comes from measurement when it was timed there
MEASURED_OPS = ("grad", "hvp_fwdrev", "hvp_revrev", "newton_cg_step", "sgd_step", "adam_step")
COST = "newton_cost.csv"


@dataclass(frozen=True)
class Peak:
    """A measured dense-matmul rate (an upper bound on the speed of dense linear algebra at
    the same thread count) and where it was recorded."""

    gflops: float
    source: str  # e.g. "modes/machine.json: cpu fp32, 1 thread, n=2048"


def hessian_column_flops(spec: MLPSpec, batch: int) -> int:
    """Matmul FLOPs one more column adds to the vmapped forward-over-reverse Hessian: the
    tangent half of an HVP, twice the gradient's matmuls less the first layer's two tangent
    products with the input's (zero) tangent. Checked against FlopCounterMode in tests."""
    grad = batch * (spec.forward_flops().matmul + spec.backward_flops().matmul)
    fan_in, fan_out = spec.layer_shapes[0]
    return 2 * grad - 2 * (2 * fan_in * fan_out * batch)


def factorizations(damping: float) -> int:
    """Cholesky attempts of one timed solve that started at ``TIMED_DAMPING`` and ended at
    ``damping`` (λ grows by ``LM_FACTOR`` per failed attempt)."""
    return int(round(math.log(damping / TIMED_DAMPING, LM_FACTOR))) + 1


def _ref(op: str, p: int, column: str = "median_s") -> str:
    return f"[{COST}: op={op}, params={p}, {column}]"


class _Rows:
    """The table under construction."""

    def __init__(self, p: int) -> None:
        self.p, self.rows = p, []

    def add(self, quantity: str, bound: str, seconds: float, kind: str, model: str,
            inputs: str, status: str = "ok") -> float:
        self.rows.append({"quantity": quantity, "bound": bound, "seconds": seconds,
                          "kind": kind, "model": model, "inputs": inputs, "status": status,
                          "params": self.p})
        return seconds

    def get(self, quantity: str, bound: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["quantity"] == quantity
                     and r["bound"] == bound and r["status"] == "ok"), None)


def _at(ok: pd.DataFrame, op: str, p: int) -> float | None:
    t = ok[(ok["op"] == op) & (ok["params"] == p)]["median_s"]
    return float(t.iloc[0]) if len(t) else None


def _largest(ok: pd.DataFrame, op: str) -> pd.Series | None:
    g = ok[ok["op"] == op].sort_values("params")
    return g.iloc[-1] if len(g) else None


def _measured(t: _Rows, ok: pd.DataFrame) -> None:
    for op in MEASURED_OPS:
        v = _at(ok, op, t.p)
        if v is not None:
            t.add(op, "measured", v, "measured", "timed at the target P", _ref(op, t.p))


def _hessian(t: _Rows, ok: pd.DataFrame, spec: MLPSpec, batch: int, peak: Peak | None):
    if peak:
        col = hessian_column_flops(spec, batch)
        t.add("hessian", "lower bound", t.p * col / (peak.gflops * 1e9), "physical model",
              "P columns x tangent matmul FLOPs per column / matmul peak",
              f"P={t.p}; flops per column={col} [hessian_column_flops, batch {batch}]; "
              f"peak={peak.gflops:.4g} GFLOP/s [{peak.source}]")
    hvp = _at(ok, "hvp_fwdrev", t.p)
    if hvp is None:
        return
    t.add("hessian", "upper estimate", t.p * hvp, "physical model",
          "P sequential HVPs at the HVP time measured at the target (vmap was faster than "
          "the loop at every measured P)", f"P={t.p}; t_hvp={hvp:.6g} s {_ref('hvp_fwdrev', t.p)}")
    hess = _largest(ok, "hessian")
    h_hvp = _at(ok, "hvp_fwdrev", int(hess["params"])) if hess is not None else None
    if h_hvp:
        p_h = int(hess["params"])
        adv = float(hess["median_s"]) / (p_h * h_hvp)
        t.add("hessian", "central estimate", adv * t.p * hvp, "physical model",
              f"P HVPs x vmap's Hessian/(P·HVP) = {adv:.3f} at the largest measured P "
              "(optimistic: that ratio rose with P at every measured size)",
              f"P={t.p}; t_hvp={hvp:.6g} s {_ref('hvp_fwdrev', t.p)}; Hessian "
              f"{float(hess['median_s']):.6g} s {_ref('hessian', p_h)}; HVP {h_hvp:.6g} s "
              f"{_ref('hvp_fwdrev', p_h)}")


def _solve(t: _Rows, ok: pd.DataFrame, peak: Peak | None) -> None:
    flop = t.p**3 / 3
    if peak:
        one = t.add("factorization", "lower bound", flop / (peak.gflops * 1e9),
                    "physical model", "one Cholesky, P³/3 flop at the matmul peak",
                    f"P={t.p}; peak={peak.gflops:.4g} GFLOP/s [{peak.source}]")
        t.add("solve", "lower bound", one, "physical model",
              "one factorization (no Levenberg–Marquardt retry) at the matmul peak",
              "factorization lower bound (this table)")
    solve = _largest(ok, "solve")
    if solve is None or pd.isna(solve.get("damping")):
        return
    p_s, t_s = int(solve["params"]), float(solve["median_s"])
    n = factorizations(float(solve["damping"]))
    rate = n * p_s**3 / 3 / t_s
    one = t.add("factorization", "upper estimate", flop / rate, "physical model",
                f"one Cholesky, P³/3 flop at the per-factorization rate measured at "
                f"P={p_s:,} ({rate / 1e9:.3g} GFLOP/s; the rate rose with P)",
                f"solve {t_s:.6g} s {_ref('solve', p_s)}; {n} factorizations per solve "
                f"(damping {TIMED_DAMPING:g} -> {float(solve['damping']):g}, x{LM_FACTOR:g} per "
                f"retry) {_ref('solve', p_s, 'damping')}")
    t.add("solve", "upper estimate", n * one, "physical model",
          f"{n} factorizations per step (the retries measured at P={p_s:,}) at that rate",
          "factorization upper estimate (this table); factorizations per solve as above")


def _step(t: _Rows, ok: pd.DataFrame) -> None:
    h, s = t.get("hessian", "lower bound"), t.get("solve", "lower bound")
    if h and s:
        t.add("newton_step", "lower bound", h["seconds"] + s["seconds"], "physical model",
              "Hessian lower bound + solve lower bound (sum of the parts' lower bounds; the "
              "gradient's time is left out)", "hessian and solve lower bounds (this table)")
    h, s = t.get("hessian", "upper estimate"), t.get("solve", "upper estimate")
    grad = _at(ok, "grad", t.p)
    if h and s and grad is not None:
        t.add("newton_step", "upper estimate", h["seconds"] + s["seconds"] + grad,
              "physical model", "Hessian + solve upper estimates + the gradient measured at "
              "the target", f"hessian and solve upper estimates (this table); grad "
              f"{grad:.6g} s {_ref('grad', t.p)}")


def _fits(t: _Rows, ok: pd.DataFrame) -> None:
    for op in ("hessian", "solve", "newton_step"):
        g = ok[ok["op"] == op]
        fit = fit_power_law(list(zip(g["params"], g["median_s"], strict=True)))
        if not fit:
            continue
        seconds = predict(fit, t.p)
        low = t.get(op, "lower bound")
        if low is None:
            status = "not checked: no lower bound (no measured matmul peak)"
        elif seconds < low["seconds"]:
            status = f"rejected: below the lower bound ({low['seconds']:.4g} s)"
        else:
            status = "ok"
        p_min = int(sorted(g["params"])[-fit[3]])
        t.add(op, "fitted", seconds, "fitted power law",
              f"P^{fit[0]:.2f} through the {fit[3]} largest measured points",
              f"{COST}: op={op}, params {p_min}..{int(g['params'].max())}, median_s", status)


def extrapolation_table(frame: pd.DataFrame, p_target: int = TARGET_SPEC.num_params,
                        peak: Peak | None = None, spec: MLPSpec = TARGET_SPEC
                        ) -> pd.DataFrame:
    """The ``newton_extrapolation`` table of a stored cost table: measured quantities at
    ``p_target``, the Hessian, one factorization, the solve and a Newton step by physical
    models (lower bounds only with a measured ``peak``), and the fitted power laws, each
    checked against the lower bound of its quantity."""
    ok = frame[(frame["status"] == "ok") & frame["median_s"].notna()]
    t = _Rows(p_target)
    _measured(t, ok)
    batch = int(frame["batch"].iloc[0]) if "batch" in frame and len(frame) else 1
    _hessian(t, ok, spec, batch, peak)
    _solve(t, ok, peak)
    _step(t, ok)
    _fits(t, ok)
    out = pd.DataFrame(t.rows, columns=COLUMNS)
    if "machine_id" in frame and frame["machine_id"].notna().any():
        out["machine_id"] = frame["machine_id"].dropna().iloc[0]
    return out


def peak_from_machine(meta: dict[str, Any], threads: int, source: str,
                      device: str = "cpu") -> Peak | None:
    """The fp32 matmul peak at ``threads`` threads among a stored machine description's
    ``measurements`` (``modes/machine.json``), or ``None``."""
    for m in meta.get("measurements", []):
        if (m.get("mode"), m.get("device"), m.get("threads")) == ("fp32", device, threads) \
                and m.get("gflops"):
            return Peak(float(m["gflops"]), f"{source}: {device} fp32, {threads} thread"
                        f"{'s' if threads != 1 else ''}, n={m.get('size')}")
    return None


def step_range(table: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """The Newton step's (lower bound, upper estimate) rows of a table, or ``None``."""
    if table is None or "bound" not in table:
        return None
    step = table[(table["quantity"] == "newton_step") & (table["status"] == "ok")]
    low, high = step[step["bound"] == "lower bound"], step[step["bound"] == "upper estimate"]
    if low.empty or high.empty:
        return None
    return low.iloc[0], high.iloc[0]
