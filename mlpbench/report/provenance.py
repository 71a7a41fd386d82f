"""Which given run folders contributed nothing to the page, and which tables below them were
not read (the loader reads a folder and its direct subfolders only), so nothing is dropped
without a word."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mlpbench.report.page import ReportData
from mlpbench.results import KINDS


def _contributors(d: ReportData) -> set[str]:
    dirs = {str(v) for f in d.runs.values() if "run_dir" in f for v in f["run_dir"].unique()}
    if len(d.gates) and "run_dir" in d.gates:
        dirs |= {str(v) for v in d.gates["run_dir"].unique()}
    return dirs


def silent_folders(run_dirs: Sequence[str], d: ReportData) -> list[str]:
    """One line per given folder that contributed no row, and per table found deeper below a
    given folder that was not read (e.g. ``modes/preset/rep1/sweep.csv``)."""
    used = _contributors(d)
    lines = []
    for given in dict.fromkeys(os.path.realpath(r) for r in run_dirs):
        root = Path(given)
        if not any(u == given or u.startswith(given + os.sep) for u in used):
            lines.append(f"{_short(root)}: contributed no rows")
        deeper = sorted({p.parent for p in root.glob("*/*/**/*.csv") if p.stem in KINDS}
                        - {Path(u) for u in used})
        by_parent: dict[Path, list[Path]] = {}
        for sub in deeper:
            by_parent.setdefault(sub.parent, []).append(sub)
        for parent, subs in by_parent.items():
            lines.append(_unread_line(root, parent, subs))
    return lines


def _short(path: Path, root: Path | None = None) -> str:
    if root is not None:
        return f"{root.name}/{path.relative_to(root).as_posix()}"
    return "/".join(path.parts[-2:])


def _unread_line(root: Path, parent: Path, subs: list[Path]) -> str:
    """One line for the unread run folders under ``parent``, naming the study table that
    summarises them when one exists beside it (``modes/precision`` → ``modes_precision.csv``)."""
    kinds = sorted({p.stem for s in subs for p in s.glob("*.csv") if p.stem in KINDS})
    summary = parent.parent / f"{parent.parent.name}_{parent.name}.csv"
    said = (f"; {summary.name} summarises them" if summary.is_file() else "")
    return (f"{_short(parent, root)}: {len(subs)} run folder{'s' * (len(subs) > 1)} below "
            f"({', '.join(s.name for s in subs)}) holding {', '.join(k + '.csv' for k in kinds)}"
            f" not read{said} — only a folder and its direct subfolders are read; give them "
            "with --runs to show their rows")
