"""Reading results: a schema per table kind, validated on read.

A run folder holds tables (``<kind>.csv``) and one metadata file per kind (``<kind>.json``).
Readers check the columns a kind must have and that numeric columns hold numbers; a corrupt
file is one :class:`~mlpbench.errors.UsageError` naming the file, row and column.
"""

from __future__ import annotations

import csv as csvlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError


def _modes_cmp(axis: str) -> tuple[set[str], set[str]]:
    """The schema of an execution-mode comparison over runs along ``axis``."""
    return ({"phase", "params", "reps", "speedup", axis},
            {"params", "reps", "input_dim", "width", "depth", "batch", "threads",
             "base_median_s", "median_s", "speedup", "speedup_min", "speedup_max"})


#: kind -> (required columns, numeric columns); numeric cells may be empty (missing)
SCHEMAS: dict[str, tuple[set[str], set[str]]] = {
    "sweep": ({"device", "framework", "phase", "params", "batch", "status"},
              {"params", "batch", "input_dim", "width", "depth", "median_s", "iqr_s",
               "gflops", "peak_fraction", "samples_per_s", "host_peak_rss", "first_call_s",
               "compile_s", "threads"}),
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
                    {"seed", "steps", "grad_evals", "run_loss", "polished_loss", "grad_norm"}),
    "minima_summary": ({"problem", "budget", "optimizer", "runs", "frac_global"},
                       {"runs", "n_global", "frac_global", "global_lo", "global_hi"}),
    "newton_cost": ({"params", "op", "status", "device"},
                    {"params", "median_s", "predicted_bytes", "host_peak_bytes"}),
    "newton_fit": ({"op", "exponent"}, {"exponent", "log_intercept", "r2"}),
    "newton_wall": ({"quantity", "params"}, {"params", "bytes"}),
    "newton_extrapolation": ({"quantity", "seconds", "kind"}, {"seconds"}),
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
    "sweep": ("params", "batch", "input_dim", "width", "depth"),
    "converge": ("seed",), "trajectories": ("seed", "step"), "lr_sensitivity": ("seed",),
    "minima_runs": ("seed",), "newton_cost": ("params",),
}


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
    return _check_keys(_check_numeric(frame, path, numeric), path, kind)


def read_meta(path: Path) -> dict[str, Any]:
    """A metadata JSON object; missing is ``{}``, anything but an object is corrupt."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"corrupt metadata {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UsageError(f"corrupt metadata {path}: expected a JSON object, got "
                         f"{type(data).__name__}")
    return data


def _tables_in(d: Path) -> list[Path]:
    csvs = [d / f"{k}.csv" for k in KINDS if (d / f"{k}.csv").exists()]
    return csvs + [p for p in sorted(d.glob("*/*.csv")) if p.stem in KINDS]


def load_runs(dirs: Iterable[str | os.PathLike]) -> dict[str, pd.DataFrame]:
    """All tables found in the run folders, concatenated per kind.

    Each row gains ``run_dir``; rows without a ``machine_id`` take the one in the kind's
    metadata. A folder holding no mlpbench table is a :class:`UsageError`.
    """
    found: dict[str, list[pd.DataFrame]] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise UsageError(f"run folder {str(d)!r} does not exist")
        csvs = _tables_in(d)
        if not csvs and not (d / "gate.json").is_file():
            raise UsageError(f"run folder {str(d)!r} holds no mlpbench results "
                             f"({', '.join(k + '.csv' for k in KINDS[:3])}, ...)")
        for csv in csvs:
            frame = read_table(csv)
            if frame.empty:
                continue
            meta = read_meta(csv.with_suffix(".json"))
            frame = frame.assign(run_dir=str(csv.parent))
            hw = meta.get("hardware")
            if "machine_id" not in frame and isinstance(hw, dict):
                frame = frame.assign(machine_id=hw.get("machine_id"))
            wall = meta.get("wall")  # cost tables written before rows carried usable_bytes
            if csv.stem == "newton_cost" and "usable_bytes" not in frame \
                    and isinstance(wall, dict) and wall.get("usable_bytes"):
                frame = frame.assign(usable_bytes=wall["usable_bytes"])
            found.setdefault(csv.stem, []).append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in found.items()}


def load_meta(dirs: Iterable[str | os.PathLike]) -> dict[str, dict[str, dict[str, Any]]]:
    """Metadata per kind, keyed by run folder: ``{kind: {run_dir: meta}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d in dirs:
        for csv in _tables_in(Path(d)):
            meta = read_meta(csv.with_suffix(".json"))
            if meta:
                out.setdefault(csv.stem, {})[str(csv.parent)] = meta
    return out


def load_hardware(dirs: Iterable[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """Hardware descriptions found in run metadata, keyed by machine id."""
    machines: dict[str, dict[str, Any]] = {}
    for d in dirs:
        for meta_path in list(Path(d).glob("*.json")) + list(Path(d).glob("*/*.json")):
            try:
                hw = read_meta(meta_path).get("hardware")
            except UsageError:  # not a metadata object (e.g. a study's log list)
                continue
            if isinstance(hw, dict) and hw.get("machine_id"):
                machines.setdefault(hw["machine_id"], hw)
    return machines
