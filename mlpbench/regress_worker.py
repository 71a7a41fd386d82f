"""Benchmark worker of the regression gate: runs one commit's asv benchmarks, warm.

Started by :mod:`mlpbench.regress` as ``python regress_worker.py ROOT [cpu|wall]`` where ROOT is an
export of one commit; it imports *that* commit's ``benchmarks`` and ``mlpbench`` (stdlib
only here, so it works against any commit) and answers JSON requests, one per line:

``{"op": "load", "ids": [...]}``     set each benchmark up and calibrate its ``number``
``{"op": "sample", "blocks": k}``    seconds per call of every loaded benchmark (min of k blocks)
``{"op": "track", "ids": [...]}``    values of ``track_*`` benchmarks (deterministic ones)
``{"op": "quit"}``

A benchmark id is asv's name, e.g. ``TrainStep.time_step('cpu', 64, 2, 32)``. Each answer
maps id -> ``{"status": "ok" | "skipped" | "failed", ...}``; a failure carries the error.
"""

import ast
import glob
import importlib
import json
import math
import os
import re
import sys
import time
import traceback

#: one timed block lasts at least this long (timer overhead and jitter well below 1%)
MIN_BLOCK_S = 0.02
#: "cpu": CPU time of this process (1 torch thread: the call's own compute; a busy neighbour
#: barely moves it); "wall": perf_counter (moves with every neighbour on a shared runner)
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
ID_RE = re.compile(r"^(\w+)\.(\w+)(\(.*\))?$")


def parse_id(bench_id):
    """``(class, method, params)`` of an id like ``Class.method('cpu', 64)``."""
    m = ID_RE.match(bench_id.strip())
    if not m:
        raise ValueError(f"not a benchmark id: {bench_id!r}")
    params = ast.literal_eval(m.group(3)) if m.group(3) else ()
    if not isinstance(params, tuple):
        params = (params,)
    return m.group(1), m.group(2), params


class Absent(LookupError):
    """The benchmark does not exist in this commit (renamed, removed or new)."""


def find_class(root, name):
    """The class ``name`` from the one ``benchmarks/*.py`` module that defines it (only that
    module is imported: starting a worker stays cheap)."""
    pattern = re.compile(rf"^class {name}\b", re.M)
    for path in sorted(glob.glob(os.path.join(root, "benchmarks", "*.py"))):
        with open(path) as f:
            if not pattern.search(f.read()):
                continue
        mod = os.path.splitext(os.path.basename(path))[0]
        cls = getattr(importlib.import_module(f"benchmarks.{mod}"), name, None)
        if isinstance(cls, type):
            return cls
    raise Absent(f"no benchmark class {name!r} in {root}/benchmarks")


class Worker:
    def __init__(self, root, clock="cpu"):
        self.root = root
        self.clock = CLOCKS[clock]
        self.instances = {}  # (class, params) -> set-up instance
        self.loaded = {}  # id -> (callable, number)

    def instance(self, cls_name, params):
        key = (cls_name, params)
        if key not in self.instances:
            obj = find_class(self.root, cls_name)()
            if hasattr(obj, "setup"):
                obj.setup(*params)
            self.instances[key] = obj
        return self.instances[key]

    def bound_call(self, bench_id):
        """A no-argument callable running one call of the benchmark."""
        cls_name, method, params = parse_id(bench_id)
        obj = self.instance(cls_name, params)
        if not hasattr(type(obj), method):
            raise Absent(f"{cls_name} has no method {method!r}")
        fn = getattr(obj, method)
        return (lambda: fn(*params)) if params else fn

    def guarded(self, bench_id, fn):
        try:
            return {"status": "ok", **fn()}
        except NotImplementedError as exc:
            return {"status": "skipped", "reason": str(exc)}
        except Absent as exc:
            return {"status": "absent", "reason": str(exc)}
        except Exception as exc:  # a broken benchmark is a result
            tb = traceback.format_exc(limit=-3)
            return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "trace": tb}

    def load(self, ids):
        def one(bench_id):
            call = self.bound_call(bench_id)
            call()  # warm-up: state, allocator
            t0 = self.clock()
            call()
            first = self.clock() - t0
            number = max(1, math.ceil(MIN_BLOCK_S / max(first, 1e-9)))
            self.loaded[bench_id] = (call, number)
            return {"number": number}

        out = {}
        for bench_id in ids:
            out[bench_id] = self.guarded(bench_id, lambda b=bench_id: one(b))
        return out

    def sample(self, blocks):
        def one(call, number):
            best = math.inf
            for _ in range(blocks):
                t0 = self.clock()
                for _ in range(number):
                    call()
                best = min(best, (self.clock() - t0) / number)
            return {"seconds": best}

        out = {}
        for bench_id, (call, number) in list(self.loaded.items()):
            out[bench_id] = self.guarded(bench_id, lambda c=call, n=number: one(c, n))
            if out[bench_id]["status"] != "ok":
                del self.loaded[bench_id]
        return out

    def track(self, ids):
        def one(bench_id):
            value = float(self.bound_call(bench_id)())
            return {"value": value if math.isfinite(value) else None}

        return {b: self.guarded(b, lambda b=b: one(b)) for b in ids}


def main(root, clock):
    sys.path[0] = root  # this commit's benchmarks and mlpbench, never the gate's
    os.chdir(root)
    import mlpbench  # noqa: F401  (fail early, before any request)

    where = os.path.dirname(os.path.abspath(mlpbench.__file__))
    if not where.startswith(os.path.abspath(root)):
        raise ImportError(f"mlpbench imported from {where}, not from {root}")
    worker = Worker(root, clock)
    proto = os.fdopen(os.dup(1), "w")  # replies only; benchmark prints go to stderr
    os.dup2(2, 1)
    print(json.dumps({"ready": True}), file=proto, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        if req["op"] == "load":
            reply = worker.load(req["ids"])
        elif req["op"] == "sample":
            reply = worker.sample(req["blocks"])
        else:
            reply = worker.track(req["ids"])
        print(json.dumps(reply), file=proto, flush=True)


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "cpu")
