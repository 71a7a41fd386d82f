"""Reading results: a schema per table kind, validated on read.

A run folder holds tables (``<kind>.csv``) and one metadata file per kind (``<kind>.json``).
Readers check the columns a kind must have and that numeric columns hold numbers; a corrupt
file is one :class:`~mlpbench.errors.UsageError` naming the file, row and column.
"""

from __future__ import annotations

import csv as csvlib
import io
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.point import INT_KEYS
from mlpbench.results.provenance import migrate


def _modes_cmp(axis: str) -> tuple[set[str], set[str]]:
    """The schema of an execution-mode comparison over runs along ``axis``."""
    return ({"phase", "params", "reps", "speedup", axis},
            {"params", "reps", "input_dim", "width", "depth", "batch", "threads",
             "base_median_s", "median_s", "speedup", "speedup_min", "speedup_max"})


#: kind -> (required columns, numeric columns); numeric cells may be empty (missing)
SCHEMAS: dict[str, tuple[set[str], set[str]]] = {
    "sweep": ({"device", "framework", "phase", "params", "batch", "status"},
              {"params", *INT_KEYS, "median_s", "iqr_s", "gflops", "peak_fraction",
               "samples_per_s", "host_peak_rss", "first_call_s", "compile_s"}),
    "crossover": ({"phase", "crossover_params"}, {"crossover_params", "points_compared"}),
    "converge": ({"workload", "optimizer", "seed", "status", "target_loss"},
                 {"seed", "steps", "time_s", "grad_evals", "final_loss", "target_loss"}),
    "converge_agg": ({"workload", "optimizer", "runs", "reached"}, {"runs", "reached"}),
    "trajectories": ({"workload", "optimizer", "seed", "step", "time_s", "train_loss"},
                     {"seed", "step", "time_s", "grad_evals", "train_loss", "test_loss"}),
    "lr_sensitivity": ({"base", "lr", "final_loss", "time_to_target"},
                       {"lr", "final_loss", "time_to_target"}),
    "lr_best": ({"base", "lr"}, {"lr"}),
    "minima_runs": ({"problem", "optimizer", "budget", "seed", "cls", "end_point"},
                    {"seed", "steps", "grad_evals", "run_loss", "polished_loss", "grad_norm",
                     "polish_iterations"}),
    "minima_summary": ({"problem", "budget", "optimizer", "runs", "frac_global"},
                       {"runs", "n_global", "frac_global", "global_lo", "global_hi"}),
    "newton_cost": ({"params", "op", "status", "device"},
                    {"params", "median_s", "predicted_bytes", "host_peak_bytes"}),
    "newton_fit": ({"op", "exponent"}, {"exponent", "log_intercept", "r2"}),
    "curvature_cost": ({"params", "method", "variant", "status", "device"},
                       {"params", "median_s", "state_model_bytes", "state_counted_bytes",
                        "rss_peak_bytes"}),
    "newton_wall": ({"quantity", "params"}, {"params", "bytes"}),
    "newton_extrapolation": ({"quantity", "seconds", "kind"}, {"seconds", "params"}),
    "newton_ratios": ({"params"}, {"params"}),
    "newton_convergence": ({"params", "optimizer"}, {"params"}),
    "distributed": ({"world_size", "nodes", "backend", "scaling", "params", "status", "step_s",
                     "compute_s", "efficiency", "comm_share"},
                    {"world_size", "nodes", "params", "step_s", "compute_s", "efficiency",
                     "comm_share"}),
    "collectives": ({"world_size", "bytes", "median_s", "busbw_gbps"},
                    {"world_size", "bytes", "median_s", "busbw_gbps"}),
    # the execution-mode study's summaries over repeated runs (scripts/bench_modes.py)
    "modes_compile": _modes_cmp("mode"), "modes_preset": _modes_cmp("mode"),
    "modes_precision": _modes_cmp("dtype"), "modes_threads": _modes_cmp("threads"),
    "modes_roofline": ({"dtype", "phase", "peak_gflops", "bandwidth_gbs"},
                       {"peak_gflops", "bandwidth_gbs", "ridge_flop_per_byte", "input_dim",
                        "depth", "batch", "memory_bound_below_width"}),
    "modes_roofline_points": ({"phase", "params", "intensity", "gflops", "peak_gflops"},
                              {"params", "width", "batch", "intensity", "gflops", "peak_gflops",
                               "attainable_gflops", "roof_fraction", "bandwidth_gbs"}),
}
KINDS = tuple(SCHEMAS)
#: kind -> integer key columns: every row must hold a whole number there (a resume matches
#: rows by them, so a missing or fractional key would re-measure or duplicate a point)
INTEGER_KEYS: dict[str, tuple[str, ...]] = {
    "sweep": ("params", *(k for k in INT_KEYS if k != "threads")),  # threads: 0 in old tables
    "converge": ("seed",), "trajectories": ("seed", "step"), "lr_sensitivity": ("seed",),
    "minima_runs": ("seed",), "newton_cost": ("params",), "curvature_cost": ("params",),
}


#: columns that hold a physical non-negative quantity wherever they hold a number (times,
#: counts, sizes, bytes, rates); a negative or infinite value there is corruption
NON_NEGATIVE = ("params", "batch", "input_dim", "width", "depth", "threads", "median_s",
                "mean_s", "iqr_s", "n_samples", "gflops", "samples_per_s", "peak_fraction",
                "peak_gflops", "host_peak_rss", "host_baseline_rss", "first_call_s",
                "compile_s", "time_s", "steps", "grad_evals", "runs", "reached", "seed",
                "predicted_bytes", "host_peak_bytes", "bytes", "world_size", "nodes",
                "step_s", "compute_s", "busbw_gbps", "calls_per_sample")
#: kind -> (status column value meaning "measured", the columns such a row must hold)
MEASURED: dict[str, tuple[str, tuple[str, ...]]] = {
    "sweep": ("ok", ("median_s",)), "newton_cost": ("ok", ("median_s",)),
    "distributed": ("ok", ("step_s",)),
}


def _check_values(frame: pd.DataFrame, path: Path, kind: str) -> None:
    """Numbers are physical: non-negative and finite where they measure something, and a row
    whose status says it was measured holds its measurement."""
    for col in NON_NEGATIVE:
        if col not in frame or not pd.api.types.is_numeric_dtype(frame[col]):
            continue
        v = frame[col]
        bad = (v < 0) | v.isin([math.inf, -math.inf])
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise UsageError(f"corrupt results table {path}: row {row + 2}, column {col!r}: "
                             f"{v.iloc[row]!r} is not a finite non-negative number")
    status, need = MEASURED.get(kind, ("", ()))
    if "status" not in frame:
        return
    for col in need:
        if col not in frame:
            continue
        bad = (frame["status"].astype(str) == status) & ~(frame[col] > 0)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise UsageError(f"corrupt results table {path}: row {row + 2} has status "
                             f"{status!r} but {col} {frame[col].iloc[row]!r} (a measured row "
                             "needs a positive time)")


def _check_numeric(frame: pd.DataFrame, path: Path, numeric: set[str]) -> pd.DataFrame:
    for col in sorted(numeric & set(frame.columns)):
        raw = frame[col]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if bad.any():
            row = int(bad.idxmax())
            raise UsageError(f"corrupt results table {path}: row {row + 2}, column {col!r}: "
                             f"{str(raw.iloc[row])[:40]!r} is not a number")
        frame[col] = values
    return frame


def _check_keys(frame: pd.DataFrame, path: Path, kind: str) -> pd.DataFrame:
    for col in INTEGER_KEYS.get(kind, ()):
        if col not in frame or frame.empty:
            continue
        values = frame[col]
        bad = values.isna() | (values % 1 != 0)
        if bad.any():
            row = int(bad.idxmax())
            raise UsageError(f"corrupt results table {path}: row {row + 2}, column {col!r}: "
                             f"{values.iloc[row]!r} is not a whole number")
        frame[col] = values.astype("int64")
    return frame


def _check_rows(text: str, path: Path) -> None:
    """Every record has as many fields as the header. A torn (truncated) or spliced line is
    refused with its row named, never padded with missing values or read as an index."""
    try:
        records = csvlib.reader(io.StringIO(text))
        width = len(next(records))
        for row, cells in enumerate(records, start=2):
            if cells and len(cells) != width:
                raise UsageError(f"corrupt results table {path}: row {row} has {len(cells)} "
                                 f"fields, the header {width} (a torn or edited line; remove "
                                 "it to continue)")
    except csvlib.Error as exc:
        raise UsageError(f"corrupt results table {path}: {exc}") from None


def read_table(path: Path, kind: str | None = None) -> pd.DataFrame:
    """A results CSV, validated against its kind's schema (by file stem unless given)."""
    path = Path(path)
    kind = kind or path.stem
    _regular_file(path, "results table")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise UsageError(f"corrupt results table {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read results table {path}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise UsageError(f"corrupt results table {path}: it holds NUL bytes")
    if not text.strip():
        return pd.DataFrame()
    _check_rows(text, path)
    try:
        frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"corrupt results table {path}: {exc}".splitlines()[0]) from None
    required, numeric = SCHEMAS.get(kind, (set(), set()))
    missing = required - set(frame.columns)
    if missing:
        raise UsageError(f"malformed results table {path}: missing columns "
                         f"{', '.join(sorted(missing))}")
    if len(frame) and (frame[list(frame.columns)].astype(str) == pd.Series(
            frame.columns, index=frame.columns)).all(axis=1).any():
        raise UsageError(f"corrupt results table {path}: a header line repeats inside it")
    frame = _check_keys(_check_numeric(frame, path, numeric), path, kind)
    _check_values(frame, path, kind)
    return frame


def _regular_file(path: Path, what: str) -> None:
    """Refuse anything but a regular file (a FIFO would block the reader forever)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # open() below names it
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"cannot read {what} {path}: not a regular file")


def read_meta(path: Path) -> dict[str, Any]:
    """A metadata JSON object in the current results format (older formats migrated, unknown
    ones refused: :mod:`mlpbench.results.provenance`); missing is ``{}``, anything but an
    object is corrupt."""
    _regular_file(Path(path), "metadata")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise UsageError(f"corrupt metadata {path}: not UTF-8 text") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"corrupt metadata {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UsageError(f"corrupt metadata {path}: expected a JSON object, got "
                         f"{type(data).__name__}")
    return migrate(data, path) if data else data
