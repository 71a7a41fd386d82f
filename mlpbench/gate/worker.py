"""Benchmark worker of the regression gate: runs one tree's asv benchmarks, warm.

Started by :mod:`mlpbench.gate.side` as ``python -m mlpbench.gate.worker ROOT CLOCK FD``:
this module comes from the gate's tree (BASE), the benchmarks and the library it runs from
ROOT (an export of one commit). Standard library only (plus
:mod:`mlpbench.measure.asv_suite`, itself standard library only), so it works against any
commit.

Protocol: requests are JSON lines on stdin; every reply is one JSON line on the dedicated file
descriptor FD, never on stdout (the code under test may print: stdout and stderr go to a log)::

    {"op": "list"}                           every time_/track_ benchmark of the suite
    {"op": "load", "id": ID}                 set up, warm up, calibrate ``number``; seconds/call
    {"op": "sample", "id": ID, "blocks": k}  seconds per call (the fastest of k blocks)
    {"op": "track", "id": ID}                the value of a track_ benchmark
    {"op": "quit"}

Every reply carries ``"protocol": PROTOCOL`` and ``"v": VERSION``; the first one is
``{"ready": true}``. A benchmark's answer is ``{"status": "ok" | "skipped" | "absent" |
"failed", ...}``.
"""

import json
import math
import os
import sys
import time

from mlpbench.measure import asv_suite

PROTOCOL, VERSION = "mlpbench-gate-worker", 1
#: one timed block lasts at least this long (timer overhead and jitter well below 1%)
MIN_BLOCK_S = 0.02
#: "cpu": CPU time of this process (1 torch thread: the call's own compute; a busy neighbour
#: barely moves it); "wall": perf_counter (moves with every neighbour on a shared runner)
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


class Worker:
    """One tree's benchmarks, each set up once and kept warm."""

    def __init__(self, clock: str = "cpu") -> None:
        self.clock = CLOCKS[clock]
        self.loader = asv_suite.Loader()
        self.loaded = {}  # id -> (callable, number)

    def guarded(self, fn) -> dict:
        try:
            return {"status": "ok", **fn()}
        except Exception as exc:  # a broken benchmark is a result
            return asv_suite.status_of(exc)

    def list(self) -> dict:
        rows, errors = asv_suite.enumerate_ids()
        return {"status": "ok", "benchmarks": rows, "import_errors": errors}

    def load(self, bench_id: str) -> dict:
        def one():
            call = self.loader.bound_call(bench_id)
            call()  # warm-up: state, allocator
            t0 = self.clock()
            call()
            first = self.clock() - t0
            number = max(1, math.ceil(MIN_BLOCK_S / max(first, 1e-9)))
            self.loaded[bench_id] = (call, number)
            return {"number": number, "seconds": first}

        return self.guarded(one)

    def sample(self, bench_id: str, blocks: int) -> dict:
        def one():
            call, number = self.loaded[bench_id]
            best = math.inf
            for _ in range(blocks):
                t0 = self.clock()
                for _ in range(number):
                    call()
                best = min(best, (self.clock() - t0) / number)
            return {"seconds": best}

        if bench_id not in self.loaded:
            return {"status": "failed", "error": f"{bench_id} was not loaded"}
        return self.guarded(one)

    def track(self, bench_id: str) -> dict:
        def one():
            value = float(self.loader.bound_call(bench_id)())
            return {"value": value if math.isfinite(value) else None}

        return self.guarded(one)

    def answer(self, req: dict) -> dict:
        op = req.get("op")
        if op == "list":
            return self.list()
        if op == "load":
            return self.load(req["id"])
        if op == "sample":
            return self.sample(req["id"], int(req["blocks"]))
        if op == "track":
            return self.track(req["id"])
        return {"status": "failed", "error": f"unknown op {op!r}"}


def _import_tree(root: str) -> None:
    """Forget the gate's own mlpbench and path entries; import ROOT's mlpbench."""
    for entry in os.environ.pop("PYTHONPATH", "").split(os.pathsep):
        while entry and entry in sys.path:
            sys.path.remove(entry)
    asv_suite.use_tree(root)
    os.chdir(root)
    import mlpbench  # fail early, before any request

    where = os.path.dirname(os.path.abspath(mlpbench.__file__))
    if not where.startswith(os.path.abspath(root)):
        raise ImportError(f"mlpbench imported from {where}, not from {root}")


def main(root: str, clock: str, fd: int) -> None:
    proto = os.fdopen(fd, "w")

    def send(reply: dict) -> None:
        proto.write(json.dumps({"protocol": PROTOCOL, "v": VERSION, **reply}) + "\n")
        proto.flush()

    os.dup2(2, 1)  # anything printed on stdout (the code under test) goes to the log
    _import_tree(root)
    worker = Worker(clock)
    send({"ready": True})
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        send(worker.answer(req))


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
