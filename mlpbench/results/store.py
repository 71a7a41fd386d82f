"""Writing results: one folder per run, locked while written, every file replaced atomically.

A study opens its output folder with :class:`RunFolder`. The folder is locked (a lock file
holding the writer's PID) so two processes never write one folder; a lock left by a dead
process is detected, reported and taken over. Tables are rewritten atomically after every
finished item, so a kill loses at most the item in flight. Metadata is strict JSON (NaN and
infinities become ``null``). A resumed run whose configuration differs from the stored one is
refused with the difference named.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError

LOCK_NAME = ".mlpbench.lock"


def _os_error(what: str, path: Path, exc: OSError) -> UsageError:
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
    return UsageError(f"cannot {what} {str(path)!r}: {reason}")


def strict(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (JSON has no NaN/Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return strict(obj.item())
    return obj


def dumps(obj: Any) -> str:
    """Strict JSON text (no NaN/Infinity tokens)."""
    return json.dumps(strict(obj), indent=2, default=str, allow_nan=False)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file and a rename; on failure nothing is left
    behind and the previous file is intact. OS errors become one-line :class:`UsageError`."""
    path = Path(path)
    if not path.name or not str(path).strip() or path.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: it names a folder, not a file")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:  # a full disk, or a signal between write and rename
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _os_error("write", path, exc) from None
        raise


def write_table(out: Path, kind: str, frame: pd.DataFrame) -> Path:
    path = Path(out) / f"{kind}.csv"
    atomic_write(path, frame.to_csv(index=False))
    return path


def write_meta(out: Path, kind: str, meta: dict[str, Any]) -> Path:
    path = Path(out) / f"{kind}.json"
    atomic_write(path, dumps(meta))
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_out(out: str | os.PathLike, marker: str | None = None, resume: bool = False) -> Path:
    """Create ``out`` and check it is writable; refuse to overwrite ``marker`` unless resuming."""
    if not str(out).strip():
        raise UsageError("--out must name a folder, got an empty string")
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise _os_error("write to --out", path, exc) from None
    if marker and (path / marker).exists() and not resume:
        raise UsageError(f"{path / marker} already holds results; pass --resume to continue "
                         "it or choose another --out")
    return path


class RunFolder:
    """A locked output folder for one study (use as a context manager).

    Parameters
    ----------
    out : path
        The folder (created if needed).
    kind : str
        The study's main table (``sweep``, ``converge``, ``newton_cost``...).
    resume : bool
        Continue the tables already there; otherwise existing results are refused.
    config : dict
        The study's configuration; with ``resume`` it must equal the stored one.
    """

    def __init__(self, out: str | os.PathLike, kind: str, *, resume: bool = False,
                 config: dict[str, Any] | None = None) -> None:
        self.kind, self.resume = kind, resume
        self.path = prepare_out(out, f"{kind}.csv", resume)
        self.config = strict(config or {})
        self._locked = False

    def __enter__(self) -> RunFolder:
        self._lock()
        try:
            if self.resume:
                self._check_config()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._unlock()

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _pid_alive(pid) and pid != os.getpid():
                    raise UsageError(f"{self.path} is being written by another mlpbench "
                                     f"process (PID {pid}); wait for it or choose another "
                                     "--out") from None
                print(f"mlpbench: taking over a stale lock in {self.path} (PID {pid} is gone)",
                      file=sys.stderr)
                lock.unlink(missing_ok=True)
                continue
            except OSError as exc:
                raise _os_error("lock", lock, exc) from None
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self._locked = True
            return
        raise UsageError(f"cannot lock {self.path}: the lock file keeps reappearing")

    def _unlock(self) -> None:
        if self._locked:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
            self._locked = False

    def _check_config(self) -> None:
        meta_path = self.path / f"{self.kind}.json"
        if not meta_path.exists() or not self.config:
            return
        from mlpbench.results.schema import read_meta

        stored = read_meta(meta_path).get("config")
        if not isinstance(stored, dict):
            return
        diff = [k for k in sorted(set(stored) | set(self.config))
                if json.dumps(stored.get(k), sort_keys=True, default=str)
                != json.dumps(self.config.get(k), sort_keys=True, default=str)]
        if diff:
            k = diff[0]
            raise UsageError(f"--resume with a different configuration: {k} was "
                             f"{stored.get(k)!r}, now {self.config.get(k)!r} "
                             f"({len(diff)} setting(s) differ); use another --out")

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Rows already stored for ``kind`` (validated), or none when not resuming."""
        kind = kind or self.kind
        path = self.path / f"{kind}.csv"
        if not self.resume or not path.exists():
            return []
        from mlpbench.results.schema import read_table

        return read_table(path).to_dict("records")

    def write(self, kind: str, frame: pd.DataFrame | list[dict[str, Any]]) -> Path:
        frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        return write_table(self.path, kind, frame)

    def write_meta(self, kind: str, meta: dict[str, Any]) -> Path:
        return write_meta(self.path, kind, {**meta, "config": self.config or meta.get("config")})
