"""The program :mod:`mlpbench.measure.callgrind` runs under valgrind:
``python -m mlpbench.measure.callgrind_runner ARGS.json``.

For each source tree, then each benchmark id: import the tree's ``benchmarks`` and
``mlpbench`` afresh (:func:`mlpbench.measure.asv_suite.use_tree`), warm the call up, then
count exactly ``number`` calls between callgrind client requests (a tiny C shim) and dump the
counters. Progress goes to the report file as JSON lines, one ``start`` and one ``done`` per
(tree, benchmark), so the parent can bound each one's time and knows which dump is whose.
Standard library only (plus asv_suite): the trees' own code is what runs.
"""

import ctypes
import json
import os
import sys
import time

from mlpbench.measure import asv_suite


def _count(shim, call, warmup: int, number: int) -> None:
    for _ in range(warmup):
        call()
    shim.mlpb_start()
    shim.mlpb_zero()
    shim.mlpb_toggle()
    try:
        for _ in range(number):
            call()
    except BaseException:
        shim.mlpb_toggle()
        shim.mlpb_stop()
        raise
    shim.mlpb_toggle()
    shim.mlpb_dump()
    shim.mlpb_stop()


def main(path: str) -> None:
    with open(path) as f:
        args = json.load(f)
    for entry in os.environ.pop("PYTHONPATH", "").split(os.pathsep):
        while entry and entry in sys.path:
            sys.path.remove(entry)
    shim = ctypes.CDLL(args["shim"])
    with open(args["report"], "a") as report:
        def emit(**row) -> None:
            report.write(json.dumps({"t": time.monotonic(), **row}) + "\n")
            report.flush()

        for tree, root in enumerate(args["roots"]):
            asv_suite.use_tree(root)
            loader = asv_suite.Loader()
            for bench_id in args["bench_ids"]:
                emit(event="start", tree=tree, id=bench_id)
                try:
                    _count(shim, loader.bound_call(bench_id), args["warmup"],
                           args["number"][bench_id])
                    status = {"status": "ok"}
                except Exception as exc:  # a broken benchmark is a result
                    status = asv_suite.status_of(exc)
                emit(event="done", tree=tree, id=bench_id, **status)


if __name__ == "__main__":
    main(sys.argv[1])
