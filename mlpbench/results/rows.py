"""Row-per-unit studies through the store's contract, in one place."""

from __future__ import annotations

import os
from typing import Any

from mlpbench.results.store import RunFolder, Study


def run_rows(out: str | os.PathLike | None, study: Study, config: dict[str, Any],
             produce: Any, *, resume: bool = False,
             meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A row-per-unit study run through the contract: ``produce(stored_rows, save)`` returns
    every row and calls ``save(rows)`` after each finished unit. Without ``out`` it runs in
    memory (nothing stored, nothing resumed)."""
    if out is None:
        return produce([], lambda rows: None)
    with RunFolder(out, study, resume=resume, config=config) as folder:
        folder.write_meta(study.meta_kind, meta or {})
        return produce(folder.rows(), lambda rows: folder.write(study.kind, rows))
