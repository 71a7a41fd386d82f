"""The lock of a run folder: a file naming the writer's PID and that process's start time.

A PID alone is not an identity (PIDs are reused, and PID 1 is always alive): a lock is held
only while a process with the recorded PID *and* start time exists. A lock left by a dead
process, or by a PID now reused by another program, is reported and taken over.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psutil

from mlpbench.errors import UsageError

LOCK_NAME = ".mlpbench.lock"
#: a recorded start time matches a live process within this many seconds (psutil rounds
#: create_time differently across platforms)
START_TOLERANCE_S = 1.0


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:  # access denied: alive, start time unknown
        return float("nan")


def _recorded(lock: Path) -> tuple[int, float | None]:
    """(PID, start time) written in a lock file; (0, None) when unreadable or missing."""
    try:
        text = lock.read_text(encoding="utf-8").strip()
        info = json.loads(text) if text.startswith("{") else {"pid": int(text or 0)}
        return int(info.get("pid") or 0), info.get("started")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError):
        return 0, None


def holder(lock: Path) -> int | None:
    """The PID of the live process holding ``lock`` (``None`` when the lock is free or stale).
    A lock that is not a regular file is a :class:`UsageError`."""
    if lock.is_symlink() or (lock.exists() and not lock.is_file()):
        raise UsageError(f"{lock} is not mlpbench's lock file (a folder or another kind of "
                         "file); remove it to use this folder")
    pid, started = _recorded(lock)
    if not pid or pid == os.getpid():
        return None
    now = _start_time(pid)
    if now is None:
        return None
    if started is None:  # a lock written before start times were recorded
        try:
            name = " ".join(psutil.Process(pid).cmdline()).lower()
        except psutil.Error:
            return pid
        return pid if ("mlpbench" in name or "python" in name) else None
    if now != now or abs(now - float(started)) <= START_TOLERANCE_S:
        return pid
    return None  # the PID now belongs to another process


def acquire(folder: Path) -> Path:
    """Create the lock of ``folder`` (taking over a stale one); returns its path."""
    lock = folder / LOCK_NAME
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid = holder(lock)
            if pid:
                raise UsageError(f"{folder} is being written by another mlpbench process "
                                 f"(PID {pid}); wait for it or choose another --out") from None
            pid = _recorded(lock)[0]
            why = (f"PID {pid} is gone" if pid and _start_time(pid) is None else
                   f"PID {pid} is now another process" if pid else "it names no process")
            print(f"mlpbench: taking over a stale lock in {folder} ({why})", file=sys.stderr)
            lock.unlink(missing_ok=True)
            continue
        except IsADirectoryError:
            holder(lock)  # raises the one-line reason
            raise
        except OSError as exc:
            if lock.is_dir():
                holder(lock)
            raise UsageError(f"cannot lock {str(lock)!r}: {exc.strerror or exc}") from None
        me = {"pid": os.getpid(), "started": _start_time(os.getpid())}
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        return lock
    raise UsageError(f"cannot lock {folder}: the lock file keeps reappearing")


def check_free(folder: Path) -> None:
    """Refuse to write into ``folder`` while another live process holds its lock."""
    pid = holder(Path(folder) / LOCK_NAME)
    if pid:
        raise UsageError(f"{folder} is being written by another mlpbench process (PID {pid}); "
                         "wait for it or choose another --out")
