"""asv results as tidy frames: one row per benchmark, parameter combination, commit and
machine (asv's result format version 2)."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.results.schema import read_meta


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
            try:
                rows.extend(_asv_rows(read_meta(path), bench_meta, mdir.name))
            except (TypeError, ValueError, AttributeError) as exc:
                raise UsageError(f"corrupt asv result file {path}: {exc}".splitlines()[0]
                                 ) from None
    if not machines:
        raise UsageError(f"{root} holds no asv results (no <machine>/machine.json)")
    return pd.DataFrame(rows), machines


def _asv_rows(data: dict[str, Any], bench_meta: dict[str, Any],
              machine: str) -> list[dict[str, Any]]:
    """Rows of one asv result file (format version 2: columnar ``results`` lists)."""
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
