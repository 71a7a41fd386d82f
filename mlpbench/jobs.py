"""Compositions: what each command does, end to end (study → stored tables → analysis →
text or report). The CLI parses flags and calls exactly one function here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError

_TABLE = {"index": False, "float_format": lambda v: f"{v:.4g}"}


def params_summary(spec, *, dtype: str = "fp32", batch: int = 1,
                   lbfgs_history: int = 10) -> dict[str, Any]:
    """``mlpbench params``: counts and the memory table against this machine's memory."""
    import torch

    from mlpbench.analysis.params import spec_summary
    from mlpbench.devices import device_memory_bytes

    gpu = (device_memory_bytes(torch.device("cuda")) if torch.cuda.is_available() else None)
    return spec_summary(spec, ram=device_memory_bytes(torch.device("cpu")), gpu=gpu,
                        dtype=dtype, batch=batch, lbfgs_history=lbfgs_history)


def sweep(config, out: str | os.PathLike, *, resume: bool = False,
          progress: bool = True) -> str:
    """``mlpbench sweep``: measure, store, summarise."""
    from mlpbench.analysis.summaries import sweep_text
    from mlpbench.studies.sweep import run_sweep

    frame = run_sweep(config, out, resume=resume, progress=progress)
    return sweep_text(frame) + f"\nresults: {out}/sweep.csv, {out}/sweep.json"


def converge(out: str | os.PathLike, **kwargs: Any) -> str:
    """``mlpbench converge``: the runs, then their aggregates as text."""
    from mlpbench.analysis.convergence import aggregate, lr_summary
    from mlpbench.measure.second_order import op_time_limit
    from mlpbench.studies.convergence import converge_to_dir

    budget = kwargs.get("budget")
    with op_time_limit(budget.max_seconds if budget is not None else None, "--max-seconds"):
        tables = converge_to_dir(out, **kwargs)
    cols = ["workload", "optimizer", "reached", "runs", "steps_median", "time_median",
            "evals_median", "final_loss_median"]
    parts = [aggregate(tables["converge"])[cols].to_string(**_TABLE)]
    if "lr_sensitivity" in tables:
        parts.append("best learning rate per optimizer:\n"
                     + lr_summary(tables["lr_sensitivity"])[1].to_string(**_TABLE))
    return "\n\n".join(parts) + f"\nresults: {out}/"


def _study_peak(cfg):
    """The measuring machine's fp32 matmul peak at the cost study's threads (cached per
    machine): the speed bound behind the extrapolation's lower bounds."""
    from mlpbench.analysis.newton_extrap import Peak
    from mlpbench.devices import threads
    from mlpbench.measure.peak import get_peak

    with threads(cfg.threads) as n:
        pk = get_peak(cfg.device, "fp32")
    return Peak(pk.gflops, f"mlpbench peak: {pk.device} fp32, {n} thread{'s' * (n != 1)}, "
                f"n={pk.size}, machine {pk.machine_id}")


def newton_cost(cfg, out: str | os.PathLike, *, resume: bool = False, per_cost: bool = False,
                refuse: bool = False, progress: bool = True) -> str:
    """``mlpbench newton-cost``: measure; store the fits, ratios and per-cost race beside."""
    from mlpbench.analysis.newton import analyse, per_cost_table, report_text, wall_table
    from mlpbench.devices import describe_hardware
    from mlpbench.measure.second_order import op_time_limit
    from mlpbench.results import write_table
    from mlpbench.studies.newton_cost import refuse_newton, run_cost_study
    from mlpbench.studies.newton_cost_ops import isolated_peaks

    if refuse and "newton_step" in cfg.operations:
        for spec in cfg.specs():
            refuse_newton(spec, cfg.device, cfg.memory_fraction)
    with op_time_limit(cfg.max_op_seconds):
        frame = run_cost_study(cfg, out, resume=resume, progress=progress)
    frame = frame.assign(machine_id=describe_hardware()["machine_id"])
    info = analyse(frame, _study_peak(cfg))
    write_table(Path(out), "newton_fit", info["fits"])
    write_table(Path(out), "newton_ratios", info["ratios"])
    write_table(Path(out), "newton_extrapolation", info["extrapolation_table"])
    peaks = isolated_peaks(cfg.specs(), cfg.batch, cfg.seed) \
        if "newton_step" in cfg.operations else []
    write_table(Path(out), "newton_wall", wall_table(frame, info, peaks))
    text = report_text(info)
    if per_cost:
        from mlpbench.studies.per_cost import convergence_per_cost

        runs = convergence_per_cost(progress=progress)
        per, verdict = per_cost_table(runs)
        write_table(Path(out), "newton_runs", runs)
        write_table(Path(out), "newton_convergence", per)
        loses = verdict["newton_loses_from_params"]
        text += ("\n\nconvergence per unit of cost (teacher-student, median over seeds):\n"
                 + per.to_string(**_TABLE) + "\nexact Newton loses on wall time from P = "
                 + (f"{loses:,}" if loses else "never, in this grid"))
    return text + f"\nresults: {out}/"


def minima(out: str | os.PathLike, cfg, *, resume: bool = False, log=print) -> str:
    """``mlpbench minima``: run (or finish) the GD-vs-SGD experiment, then its summary tables
    (fractions with Wilson intervals; paired McNemar tests)."""
    from mlpbench.analysis.minima_stats import paired_all, summary_table
    from mlpbench.results import write_table
    from mlpbench.studies.minima import PAIRED, SUMMARY, run_study

    runs = run_study(out, cfg, resume=resume, log=log)
    write_table(Path(out), Path(SUMMARY).stem, summary_table(runs))
    write_table(Path(out), Path(PAIRED).stem, paired_all(runs))
    return f"{len(runs)} runs in {out}"


def _reference_sweep(parts: tuple[str, ...]) -> bool:
    """Whether a committed table belongs in the reference report (not a modes-study repeat
    other than the default preset's)."""
    if "modes" not in parts:
        return True
    rest = parts[parts.index("modes") + 1:]
    return len(rest) == 1 or rest[0] == "preset"


def _results_env() -> Path:
    """``$MLPBENCH_RESULTS``: a folder holding ``runs/`` or ``asv/``, or a one-line error
    (never a silent fallback to the checkout's own results)."""
    root = Path(os.environ["MLPBENCH_RESULTS"])
    if not root.is_dir():
        raise UsageError(f"MLPBENCH_RESULTS={str(root)!r} is not a folder (point it at a "
                         "results/ folder of a source checkout, or unset it)")
    if not ((root / "runs").is_dir() or (root / "asv").is_dir()):
        raise UsageError(f"MLPBENCH_RESULTS={str(root)!r} holds neither runs/ nor asv/ (point "
                         "it at a results/ folder of a source checkout, or unset it)")
    return root


def reference_results() -> tuple[str | None, list[str]]:
    """The committed reference results: ``$MLPBENCH_RESULTS`` when set (and valid), else
    ``results/`` beside the package (a source checkout). Returns (asv results folder or None,
    run folders)."""
    import mlpbench
    from mlpbench.results import KINDS

    root = (_results_env() if os.environ.get("MLPBENCH_RESULTS", "").strip()
            else Path(mlpbench.__file__).resolve().parents[1] / "results")
    # folders holding a known table, and regression-gate verdicts (gate.json). The
    # execution-mode studies' per-repeat sweeps are summarised in their own tables
    # (runs/<machine>/modes/modes_*.csv); only the default preset's repeats are sweeps
    runs = sorted({str(p.parent) for p in root.glob("runs/**/*.csv")
                   if p.stem in KINDS and _reference_sweep(p.relative_to(root).parts)}
                  | {str(p.parent) for p in root.glob("regress/**/gate.json")})
    asv = root / "asv"
    if runs or asv.is_dir():
        return (str(asv) if asv.is_dir() else None), runs
    raise UsageError(f"--reference: no reference results found in {root} (set "
                     "MLPBENCH_RESULTS to a results folder of a source checkout)")


def report(asv_dir: str | None, runs: list[str], out: str | os.PathLike, *,
           reference: bool = False, failures: list[str] | None = None) -> str:
    """``mlpbench report``: one HTML page from asv results and run folders; what could not
    be drawn is shown on the page and appended to ``failures``."""
    from mlpbench.report import build_report

    if reference:
        ref_asv, ref_runs = reference_results()
        asv_dir = asv_dir or ref_asv
        runs = list(runs) + ref_runs
    return f"report: {build_report(asv_dir, runs, out, failures=failures)}"


#: bytes the write probe writes (and syncs): enough to need a fresh block on any filesystem
PROBE_BYTES = 64 * 1024


def probe_writable(path: str | os.PathLike, what: str, *, folder: bool) -> None:
    """Check before measuring that ``path`` (a folder, or a file's folder) can take bytes:
    create it, write and sync ``PROBE_BYTES`` to a probe file there, remove it. A full disk,
    a read-only or impossible path is one-line :class:`UsageError` naming ``what``."""
    path = Path(path)
    if not folder and path.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a folder, not a file")
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a file, not a folder")
    where = path if folder else path.parent
    probe = where / f".mlpbench-probe-{os.getpid()}"
    try:
        where.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise UsageError(f"cannot write {what} {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def main_job(preset_name: str, out: str | os.PathLike, report_path: str, *,
             everything: bool = False, resume: bool = False, progress: bool = True,
             n_threads: int | None = None, failures: list[str] | None = None,
             retries: int | None = None) -> str:
    """The main job: a sweep (and with ``everything`` the convergence and Newton studies),
    then the HTML report (what it could not draw is appended to ``failures``). Both output
    paths are probed with a real write before anything is measured."""
    from mlpbench.studies.convergence import DEFAULT_OPTIMIZERS, lr_grid
    from mlpbench.studies.newton_cost import CostConfig
    from mlpbench.studies.sweep import preset

    if not str(out).strip() or not str(report_path).strip():
        raise UsageError("--out and --report must name a folder and a file, got an empty "
                         "string")
    out = Path(out)
    probe_writable(report_path, "--report", folder=False)
    probe_writable(out, "--out", folder=True)
    extra = {"retries": retries} if retries is not None else {}
    parts = [sweep(preset(preset_name, threads=n_threads, **extra), out / "sweep",
                   resume=resume, progress=progress)]
    runs = [str(out / "sweep")]
    if everything:
        parts.append(converge(out / "converge", workloads=["teacher", "mixture"],
                              optimizers=list(DEFAULT_OPTIMIZERS), seeds=list(range(5)),
                              lr_values=lr_grid(1e-3, 1.0, 7),
                              n_threads=n_threads, resume=resume, progress=progress))
        parts.append(newton_cost(CostConfig(threads=n_threads), out / "newton", resume=resume,
                                 per_cost=True, progress=progress))
        runs += [str(out / "converge"), str(out / "newton")]
    parts.append(report(None, runs, report_path, failures=failures))
    return "\n".join(parts)


def frame_text(frame: pd.DataFrame) -> str:
    return frame.to_string(**_TABLE)
