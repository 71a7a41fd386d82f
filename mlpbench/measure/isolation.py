"""Run a measurement in a fresh process, so that its peak memory is its own and a crash
(the kernel's OOM killer, a library abort) is a result, not the end of the study."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

#: what a worker's death is recorded as (the usual cause on a host: out of memory)
WORKER_DIED = "worker process died (killed, likely out of host memory)"


def _die_with_parent() -> None:
    """Worker initializer: ask Linux to SIGKILL this worker when its parent dies
    (``PR_SET_PDEATHSIG``), so a kill -9 of the study leaves no orphaned worker."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        pass


class Isolated:
    """Calls ``fn(*args)`` in a freshly spawned process each time (or in this one when
    ``isolate`` is false). A dead worker or an exception comes back as ``on_error(reason)``.
    """

    def __init__(self, isolate: bool = True) -> None:
        self.isolate = isolate
        self.pool: ProcessPoolExecutor | None = None

    def run(self, fn: Callable[..., Any], *args: Any,
            on_error: Callable[[str], Any]) -> Any:
        if not self.isolate:
            return fn(*args)
        if self.pool is None:
            # max_tasks_per_child (Python >= 3.11): one task per process, a fresh one each time
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                            max_tasks_per_child=1,
                                            initializer=_die_with_parent)
        try:
            return self.pool.submit(fn, *args).result()
        except BrokenProcessPool:
            self.close()
            return on_error(WORKER_DIED)
        except Exception as exc:  # noqa: BLE001 - the study goes on; the error is recorded
            return on_error(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
