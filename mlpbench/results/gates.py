"""Regression-gate verdicts (``gate.json`` written by ``mlpbench regress --out DIR``) as one
tidy frame: a row per verdict, with its gate's context."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.results.schema import read_meta

#: the columns of a verdict row, then those taken from the gate's context
VERDICT_COLS = ("tier", "bench", "verdict", "base", "head", "ratio", "low", "high", "note")
CONTEXT_COLS = ("base_commit", "head_commit", "exit_code", "seconds", "load1", "host")


def load_gates(dirs: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Every ``gate.json`` directly in ``dirs``; a malformed one is a :class:`UsageError`."""
    rows = []
    for d in dirs:
        path = Path(d) / "gate.json"
        if not path.is_file():
            continue
        doc = read_meta(path)
        ctx, verdicts = doc.get("context"), doc.get("verdicts")
        if not isinstance(ctx, dict) or not isinstance(verdicts, list) or not all(
                isinstance(v, dict) and "bench" in v and "verdict" in v for v in verdicts):
            raise UsageError(f"malformed gate file {path}: expected 'context' and 'verdicts' "
                             "(each with 'bench' and 'verdict') as `mlpbench regress` writes")
        load = ctx.get("load_avg") or [None]
        context = {"base_commit": str(ctx.get("base", ""))[:10],
                   "head_commit": str(ctx.get("head", ""))[:10],
                   "exit_code": ctx.get("exit_code"), "seconds": ctx.get("seconds"),
                   "load1": load[0] if isinstance(load, list) else None,
                   "host": ctx.get("host"), "run_dir": str(d)}
        rows += [{**{k: v.get(k) for k in VERDICT_COLS}, **context} for v in verdicts]
    frame = pd.DataFrame(rows, columns=[*VERDICT_COLS, *CONTEXT_COLS, "run_dir"])
    for col in ("base", "head", "ratio", "low", "high", "seconds", "load1", "exit_code"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame
