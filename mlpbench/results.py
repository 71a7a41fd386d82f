"""The results store: run folders written by mlpbench, and asv results, as tidy frames.

A run folder holds one or more tables (``<kind>.csv``) and one metadata file per kind
(``<kind>.json``: hardware description, configuration, timestamps). Kinds written by
mlpbench: ``sweep`` (hardware sweeps), ``converge`` / ``trajectories`` / ``lr_sensitivity``
/ ``minima`` (optimizer runs) and ``newton_cost`` (the Newton cost study). Files are
replaced atomically, so a reader never sees half a table.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError

KINDS = ("sweep", "converge", "converge_agg", "trajectories", "lr_sensitivity", "lr_best",
         "minima", "minima_runs",
         "newton_cost", "newton_fit", "newton_convergence")


#: columns a table must have for the report to read it
REQUIRED = {
    "sweep": {"device", "framework", "phase", "params", "batch", "status", "median_s"},
    "converge": {"workload", "optimizer", "seed", "status", "target_loss"},
    "converge_agg": {"workload", "optimizer", "runs", "reached"},
    "trajectories": {"workload", "optimizer", "seed", "step", "time_s", "train_loss"},
    "lr_sensitivity": {"base", "lr", "final_loss", "time_to_target"},
    "minima": {"optimizer", "fraction_global"},
    "newton_cost": {"params", "op", "status", "median_s", "device"},
}


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_table(out: Path, kind: str, frame: pd.DataFrame) -> Path:
    path = Path(out) / f"{kind}.csv"
    atomic_write(path, frame.to_csv(index=False))
    return path


def write_meta(out: Path, kind: str, meta: dict[str, Any]) -> Path:
    path = Path(out) / f"{kind}.json"
    atomic_write(path, json.dumps(meta, indent=2, default=str))
    return path


def prepare_out(out: str | os.PathLike, marker: str | None = None, resume: bool = False) -> Path:
    """Create ``out`` and check it is writable; refuse to overwrite ``marker`` unless resuming."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to --out {str(path)!r}: {exc.strerror or exc}") from None
    if marker and (path / marker).exists() and not resume:
        raise UsageError(f"{path / marker} already holds results; pass --resume to continue "
                         "it or choose another --out")
    return path


def read_table(path: Path) -> pd.DataFrame:
    """A results CSV; an unreadable or malformed file is a :class:`UsageError`."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"cannot read results table {path}: {exc}".splitlines()[0]) from None


def read_meta(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"corrupt metadata {path}: {exc}".splitlines()[0]) from None


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
        csvs = [d / f"{k}.csv" for k in KINDS if (d / f"{k}.csv").exists()]
        csvs += [p for p in sorted(d.glob("*/*.csv")) if p.stem in KINDS]
        if not csvs:
            raise UsageError(f"run folder {str(d)!r} holds no mlpbench results "
                             f"({', '.join(k + '.csv' for k in KINDS[:3])}, ...)")
        for csv in csvs:
            frame = read_table(csv)
            if frame.empty:
                continue
            missing = REQUIRED.get(csv.stem, set()) - set(frame.columns)
            if missing:
                raise UsageError(f"malformed results table {csv}: missing columns "
                                 f"{', '.join(sorted(missing))}")
            meta = read_meta(csv.with_suffix(".json"))
            frame = frame.assign(run_dir=str(csv.parent))
            if "machine_id" not in frame and meta.get("hardware"):
                frame = frame.assign(machine_id=meta["hardware"].get("machine_id"))
            found.setdefault(csv.stem, []).append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in found.items()}


def load_hardware(dirs: Iterable[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """Hardware descriptions found in run metadata, keyed by machine id."""
    machines: dict[str, dict[str, Any]] = {}
    for d in dirs:
        for meta_path in list(Path(d).glob("*.json")) + list(Path(d).glob("*/*.json")):
            hw = read_meta(meta_path).get("hardware")
            if isinstance(hw, dict) and hw.get("machine_id"):
                machines.setdefault(hw["machine_id"], hw)
    return machines


def load_asv(results_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, dict]]:
    """asv results JSON as one tidy frame: one row per benchmark, parameter combination,
    commit and machine. ``value`` NaN with ``status`` ``skipped`` is what asv records for a
    skipped point (NaN); ``failed`` is asv's null.

    Returns ``(frame, machines)`` where ``machines`` maps machine name to asv's machine.json.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise UsageError(f"asv results folder {str(root)!r} does not exist")
    bench_meta = read_meta(root / "benchmarks.json")
    rows: list[dict[str, Any]] = []
    machines: dict[str, dict] = {}
    for mdir in sorted(p for p in root.iterdir() if p.is_dir()):
        machine = read_meta(mdir / "machine.json")
        if not machine:
            continue
        machines[mdir.name] = machine
        for path in sorted(mdir.glob("*.json")):
            if path.name == "machine.json":
                continue
            rows.extend(_asv_rows(read_meta(path), bench_meta, mdir.name))
    if not machines:
        raise UsageError(f"{root} holds no asv results (no <machine>/machine.json)")
    return pd.DataFrame(rows), machines


def _asv_rows(data: dict[str, Any], bench_meta: dict[str, Any],
              machine: str) -> list[dict[str, Any]]:
    """Rows of one asv result file (format version 2: columnar ``results`` lists)."""
    import itertools

    columns = data.get("result_columns") or ["result", "params"]
    out = []
    for name, packed in (data.get("results") or {}).items():
        rec = dict(zip(columns, packed, strict=False))
        params = rec.get("params") or []
        values = rec.get("result")
        meta = bench_meta.get(name, {})
        names = meta.get("param_names", [])
        combos = list(itertools.product(*params)) if params else [()]
        if not isinstance(values, list):
            values = [values] * len(combos)
        for combo, value in zip(combos, values, strict=False):
            status = ("failed" if value is None else
                      "skipped" if isinstance(value, float) and math.isnan(value) else "ok")
            row = {"benchmark": name, "machine": machine,
                   "commit": data.get("commit_hash"), "date": data.get("date"),
                   "env_name": data.get("env_name"), "python": data.get("python"),
                   "unit": meta.get("unit"), "type": meta.get("type"),
                   "value": math.nan if value is None else value, "status": status}
            for pname, pval in zip(names, combo, strict=False):
                row[pname] = pval.strip("'\"") if isinstance(pval, str) else pval
            row["params"] = ", ".join(str(c) for c in combo)
            out.append(row)
    return out
