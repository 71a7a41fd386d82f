"""Loading run folders for the report: every table of every folder, with the metadata that
decides what may be aggregated together."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.point import with_defaults
from mlpbench.results.schema import KINDS, read_meta, read_table


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
            frame = frame.assign(run_dir=str(csv.parent), **checked_metadata(meta, frame))
            if csv.stem == "sweep":  # format 1: axes added later read as their defaults
                frame = with_defaults(frame)
            hw = meta.get("hardware")
            if "machine_id" not in frame and isinstance(hw, dict):
                frame = frame.assign(machine_id=hw.get("machine_id"))
            wall = meta.get("wall")  # cost tables written before rows carried usable_bytes
            if csv.stem == "newton_cost" and "usable_bytes" not in frame \
                    and isinstance(wall, dict) and wall.get("usable_bytes"):
                frame = frame.assign(usable_bytes=wall["usable_bytes"])
            found.setdefault(csv.stem, []).append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in found.items()}


#: what must be equal for rows of one machine to be aggregated together (as pyperf's
#: checked metadata): the library that did the work, the code and the results format
CHECKED_METADATA = ("torch", "mlpbench", "format")


def checked_metadata(meta: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """The checked-metadata columns a table's rows lack, from its metadata file."""
    hw = meta.get("hardware") if isinstance(meta.get("hardware"), dict) else {}
    values = {"torch": meta.get("torch") or hw.get("torch"), "mlpbench": meta.get("mlpbench"),
              "format": meta.get("migrated_from") or meta.get("format_version")}
    return {k: ("" if v is None else str(v)) for k, v in values.items() if k not in frame}


def separate_unlike(runs: dict[str, pd.DataFrame], hardware: dict[str, dict[str, Any]]
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]], list[str]]:
    """Rows of one machine whose checked metadata differ become separate machines
    (``<id> · torch 2.12.0``), so no section takes a median across them; returns the runs,
    the hardware with an entry per separated identity, and one note per split machine."""
    combos: dict[str, set[tuple]] = {}
    for frame in runs.values():
        if "machine_id" not in frame:
            continue
        cols = [c for c in CHECKED_METADATA if c in frame]
        for mid, g in frame.groupby("machine_id", dropna=False):
            combos.setdefault(str(mid), set()).update(
                tuple((c, str(v)) for c, v in zip(cols, t, strict=True))
                for t in g[cols].fillna("").astype(str).drop_duplicates().itertuples(
                    index=False))
    split = {}
    for mid, seen in combos.items():
        values: dict[str, set[str]] = {}
        for combo in seen:
            for c, v in combo:
                values.setdefault(c, set()).add(v)
        differ = [c for c, vs in values.items() if len({v for v in vs if v}) > 1]
        if differ:
            split[mid] = differ
    if not split:
        return runs, hardware, []
    hardware, notes = dict(hardware), []
    out = {}
    for kind, frame in runs.items():
        if "machine_id" not in frame or not set(frame["machine_id"].astype(str)) & set(split):
            out[kind] = frame
            continue
        frame = frame.copy()
        mids = frame["machine_id"].astype(str)
        for mid, differ in split.items():
            rows = mids == mid
            label = frame.loc[rows, differ].fillna("").astype(str).apply(
                lambda r, differ=differ: " · ".join(f"{c} {r[c] or '?'}" for c in differ),
                axis=1)
            frame.loc[rows, "machine_id"] = mid + " · " + label
            for new in set(frame.loc[rows, "machine_id"]):
                hardware.setdefault(new, {**hardware.get(mid, {}), "machine_id": new})
        out[kind] = frame
    for mid, differ in split.items():
        notes.append(f"Runs of machine {mid} differ in {', '.join(differ)}: shown as separate "
                     "machines, never aggregated together.")
    return out, hardware, notes


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
