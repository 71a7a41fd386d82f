"""Writing results: one folder per run, locked while written, every file replaced atomically.

Every study declares itself once (:class:`Study`: its tables and the unit it writes) and
opens its output folder with :class:`RunFolder`, the one contract: the folder is locked
(:mod:`mlpbench.results.lock`) so two processes never write one folder; tables are rewritten
atomically after every finished unit, so a kill loses at most the unit in flight; a resume
refuses a changed configuration, another mlpbench commit or results format (unless allowed,
and then recorded) and a corrupt table; metadata is strict JSON (NaN and infinities become
``null``) carrying provenance (:mod:`mlpbench.results.provenance`) and the study's times.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlpbench.errors import UsageError
from mlpbench.results import lock
from mlpbench.results.lock import LOCK_NAME  # noqa: F401 - re-exported
from mlpbench.results.provenance import provenance, same_code


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
    """Replace ``<kind>.csv`` in ``out`` atomically (refused while another process holds
    the folder's lock)."""
    lock.check_free(Path(out))
    path = Path(out) / f"{kind}.csv"
    atomic_write(path, frame.to_csv(index=False))
    return path


def write_meta(out: Path, kind: str, meta: dict[str, Any]) -> Path:
    """Replace ``<kind>.json`` in ``out`` atomically (strict JSON)."""
    path = Path(out) / f"{kind}.json"
    atomic_write(path, dumps(meta))
    return path


def prepare_out(out: str | os.PathLike, marker: str | None = None, resume: bool = False) -> Path:
    """Create ``out`` and check it is writable (a probe that writes bytes, so a full disk is
    found before any measuring); refuse to overwrite ``marker`` unless resuming."""
    if not str(out).strip():
        raise UsageError("--out must name a folder, got an empty string")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot write to --out {str(path)!r}: it is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        try:
            (path / f".write-test.{os.getpid()}").unlink()
        except OSError:
            pass
        raise _os_error("write to --out", path, exc) from None
    if marker and (path / marker).exists() and not resume:
        raise UsageError(f"{path / marker} already holds results; pass --resume to continue "
                         "it or choose another --out")
    return path


@dataclass(frozen=True)
class Study:
    """What a study writes, declared once: its main table (``kind``, also the metadata file
    ``<kind>.json`` holding its configuration), the unit written atomically as soon as it is
    finished, and every table it writes (validated on resume)."""

    kind: str
    unit: str  # "point", "run", "operation", "launch", "run group"
    tables: tuple[str, ...] = ()
    meta: str = ""  # the metadata file's stem, when it is not ``kind``

    def __post_init__(self) -> None:
        STUDIES[self.kind] = self

    @property
    def meta_kind(self) -> str:
        return self.meta or self.kind

    @property
    def all_tables(self) -> tuple[str, ...]:
        return (self.kind, *(t for t in self.tables if t != self.kind))


#: every declared study, by kind (filled as the study modules are imported)
STUDIES: dict[str, Study] = {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def upgrade_allowed() -> bool:
    """Whether a resume may continue results written by other code (``--allow-upgrade``,
    which sets ``MLPBENCH_ALLOW_UPGRADE=1``)."""
    return os.environ.get("MLPBENCH_ALLOW_UPGRADE", "").strip().lower() in ("1", "true", "yes")


class RunFolder:
    """The one contract every study writes through (use as a context manager).

    It locks the folder (a second writer is refused), refuses results already there unless
    resuming, and on ``--resume`` refuses a changed configuration, another results format or
    another mlpbench commit (unless ``allow_upgrade``, recorded in the metadata), and validates
    every table of the study before anything is measured. Each finished unit is written
    atomically (:meth:`write`); the metadata records provenance, ``started``, ``finished`` and
    ``wall_s``.

    Parameters
    ----------
    out : path
        The folder (created if needed).
    study : Study or str
        The study (or, for a study not declared, its main table's kind).
    resume : bool
        Continue the tables already there; otherwise existing results are refused.
    config : dict
        The study's configuration; with ``resume`` it must equal the stored one.
    allow_upgrade : bool, optional
        Let a resume continue results of another mlpbench commit or format (default:
        :func:`upgrade_allowed`).
    """

    def __init__(self, out: str | os.PathLike, study: Study | str, *, resume: bool = False,
                 config: dict[str, Any] | None = None,
                 allow_upgrade: bool | None = None) -> None:
        if not isinstance(study, Study) and study not in STUDIES:
            raise ValueError(f"{study!r} is not a declared Study: declare one (tables, unit) "
                             "so that the contract tests cover it")
        self.study = study if isinstance(study, Study) else STUDIES[study]
        self.kind, self.resume = self.study.kind, resume
        self.allow_upgrade = upgrade_allowed() if allow_upgrade is None else allow_upgrade
        self.path = prepare_out(out, f"{self.kind}.csv", resume)
        self.config = strict(config or {})
        self._lock: Path | None = None
        self._clock = time.perf_counter()
        self._meta: dict[str, dict[str, Any]] = {}
        self._stored: dict[str, Any] = {}

    def __enter__(self) -> RunFolder:
        self._lock = lock.acquire(self.path)
        for stray in self.path.glob(".*.tmp"):  # a killed writer's half-written file: the
            stray.unlink(missing_ok=True)  # lock is ours, so no live process is writing it
        try:
            if self.resume:
                self._check_resume()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            main = self.study.meta_kind
            if main in self._meta:
                done = exc_type is None
                self.write_meta(main, {**self._meta[main],
                                            "finished": _now() if done else None,
                                            "status": "finished" if done else "interrupted"})
        except UsageError:
            if exc_type is None:  # a failure of its own; else keep the one in flight
                raise
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None

    def _check_resume(self) -> None:
        from mlpbench.results.schema import read_meta, read_table

        meta_path = self.path / f"{self.study.meta_kind}.json"
        self._stored = read_meta(meta_path) if meta_path.exists() else {}
        stored = self._stored.get("config")
        if self.config and isinstance(stored, dict):
            _check_same_config(stored, self.config)
        why = same_code(self._stored, provenance()) if self._stored else None
        if why and not self.allow_upgrade:
            raise UsageError(f"--resume of {self.path}: its results were {why}; pass "
                             "--allow-upgrade to continue them with this code (recorded), "
                             "or use another --out")
        if why:
            self._stored.setdefault("upgrades", []).append({"at": _now(), "from": why})
        for kind in self.study.all_tables:
            if (self.path / f"{kind}.csv").exists():
                read_table(self.path / f"{kind}.csv")

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Rows already stored for ``kind`` (validated), or none when not resuming."""
        kind = kind or self.kind
        path = self.path / f"{kind}.csv"
        if not self.resume or not path.exists():
            return []
        from mlpbench.results.schema import read_table

        return read_table(path).to_dict("records")

    def write(self, kind: str, frame: pd.DataFrame | list[dict[str, Any]]) -> Path:
        """Replace table ``kind`` atomically (call after every finished unit)."""
        frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        return write_table(self.path, kind, frame)

    def write_meta(self, kind: str, meta: dict[str, Any]) -> Path:
        """Write ``<kind>.json``: ``meta`` plus the configuration, provenance and times."""
        first = self._stored.get("first_started") or self._stored.get("started")
        times = {"started": _now() if kind not in self._meta else self._meta[kind]["started"]}
        wall = round(time.perf_counter() - self._clock, 3)
        full = {**meta, **provenance(), **times, "wall_s": wall,
                "first_started": first if self.resume and first else times["started"],
                "config": self.config or meta.get("config")}
        for key in ("upgrades",):
            if self._stored.get(key):
                full[key] = self._stored[key]
        full.setdefault("finished", None)
        self._meta[kind] = full
        return write_meta(self.path, kind, full)


def _check_same_config(stored: dict[str, Any], config: dict[str, Any]) -> None:
    diff = [k for k in sorted(set(stored) | set(config))
            if json.dumps(stored.get(k), sort_keys=True, default=str)
            != json.dumps(config.get(k), sort_keys=True, default=str)]
    if diff:
        k = diff[0]
        raise UsageError(f"--resume with a different configuration: {k} was "
                         f"{stored.get(k)!r}, now {config.get(k)!r} "
                         f"({len(diff)} setting(s) differ); use another --out")

