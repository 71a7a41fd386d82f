"""Instruction counts of a benchmark under valgrind's callgrind: a deterministic cost.

Wall time on a shared CI runner swings by tens of percent; the number of instructions a
single-threaded call executes does not (PyTorch keeps such benchmarks with
``torch.utils.benchmark.Timer.collect_callgrind``; CodSpeed gates on them).

``Timer.collect_callgrind`` instruments the whole process from the start, so importing torch
under it took ~7 minutes of a loaded 2-vCPU VM for 20 training steps. :func:`count_instructions`
does the same measurement more cheaply: valgrind starts with instrumentation off
(``--instr-atstart=no``), Python imports and warms up at valgrind's plain speed, then a tiny
C shim issues ``CALLGRIND_START_INSTRUMENTATION`` / ``CALLGRIND_TOGGLE_COLLECT`` /
``CALLGRIND_DUMP_STATS`` (the client requests ``collect_callgrind`` uses) around exactly
``number`` calls. Several source trees (e.g. base and head) are counted in one valgrind
process: each tree's ``mlpbench`` and ``benchmarks`` are imported afresh from its root.
One torch thread (``MLPBENCH_THREADS=1``, ``OMP_NUM_THREADS=1``), ``PYTHONHASHSEED=0``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from mlpbench.errors import UsageError

WORKER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "regress_worker.py")
SHIM_C = """#include <valgrind/callgrind.h>
void mlpb_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void mlpb_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void mlpb_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void mlpb_dump(void) { CALLGRIND_DUMP_STATS; }
void mlpb_zero(void) { CALLGRIND_ZERO_STATS; }
"""
RUNNER = r'''
import ctypes, importlib, importlib.util, json, sys, traceback
args = json.load(open(sys.argv[1]))
shim = ctypes.CDLL(args["shim"])
spec = importlib.util.spec_from_file_location("_mlpbench_regress_worker", args["worker"])
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)
report = []
sys.path.insert(0, "")
for root in args["roots"]:
    for name in [m for m in sys.modules if m.split(".")[0] in ("mlpbench", "benchmarks")]:
        del sys.modules[name]
    sys.path[0] = root
    importlib.invalidate_caches()
    collecting = False
    try:
        call = worker.Worker(root).bound_call(args["bench_id"])
        for _ in range(args["warmup"]):
            call()
        shim.mlpb_start()
        shim.mlpb_zero()
        shim.mlpb_toggle()
        collecting = True
        for _ in range(args["number"]):
            call()
        shim.mlpb_toggle()
        collecting = False
        shim.mlpb_dump()
        shim.mlpb_stop()
        report.append({"status": "ok"})
    except Exception as exc:
        if collecting:
            shim.mlpb_toggle()
        shim.mlpb_stop()
        status = ("absent" if isinstance(exc, worker.Absent) else
                  "skipped" if isinstance(exc, NotImplementedError) else "failed")
        report.append({"status": status, "error": f"{type(exc).__name__}: {exc}"[:300],
                       "trace": traceback.format_exc(limit=-3)})
json.dump(report, open(args["report"], "w"))
'''


def valgrind_missing() -> str | None:
    """Why instruction counts cannot be collected here, or None when they can."""
    if shutil.which("valgrind") is None:
        return "valgrind not found (apt-get install -y valgrind)"
    if not os.path.exists("/usr/include/valgrind/callgrind.h"):
        return "valgrind headers not found (/usr/include/valgrind/callgrind.h)"
    if shutil.which("cc") is None:
        return "no C compiler (cc) for the callgrind client-request shim"
    return None


def _shim() -> str:
    """Compile (once per user and source) the shim that issues callgrind client requests."""
    tag = hashlib.sha1(SHIM_C.encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"mlpbench-callgrind-{os.getuid()}-{tag}.so")
    if not os.path.exists(path):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "shim.c")
            with open(src, "w") as f:
                f.write(SHIM_C)
            subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", f"{path}.tmp", src],
                           check=True, capture_output=True)
            os.replace(f"{path}.tmp", path)
    return path


def _totals(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def count_instructions(roots: Sequence[str], bench_id: str, *, number: int = 20,
                       warmup: int = 10, timeout: float = 1800) -> list[dict]:
    """Instructions executed by ``number`` warm calls of a benchmark, for each source tree.

    Parameters
    ----------
    roots : sequence of str
        Source trees (checkouts or exports of commits) holding ``benchmarks/`` and
        ``mlpbench/``; each tree's own code runs. All are counted in one valgrind process.
    bench_id : str
        asv name of a timed benchmark, e.g. ``"TrainStep.time_step('cpu', 64, 2, 32)"``.
    number : int
        Calls inside the instrumented region.
    warmup : int
        Calls before it (model state, allocator, lazy initialisation).
    timeout : float
        Seconds before valgrind is stopped.

    Returns
    -------
    list of dict
        Per tree: ``{"status": "ok", "value": instructions}`` or ``{"status": "failed",
        "error": ...}``.

    Raises
    ------
    UsageError
        Bad ``number``/``warmup`` or no tree.
    RuntimeError
        valgrind missing, or the valgrind process itself failed.
    """
    if number < 1 or warmup < 0 or not roots:
        raise UsageError(f"number={number}, warmup={warmup}, {len(roots)} trees: "
                         "need number >= 1, warmup >= 0 and a tree")
    missing = valgrind_missing()
    if missing:
        raise RuntimeError(missing)
    env = dict(os.environ, PYTHONHASHSEED="0", MLPBENCH_THREADS="1", OMP_NUM_THREADS="1",
               MLPBENCH_FULL="0")
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="mlpbench-callgrind-") as tmp:
        args = {"shim": _shim(), "worker": WORKER, "bench_id": bench_id, "number": number,
                "warmup": warmup, "roots": [os.path.abspath(r) for r in roots],
                "report": os.path.join(tmp, "report.json")}
        with open(os.path.join(tmp, "args.json"), "w") as f:
            json.dump(args, f)
        with open(os.path.join(tmp, "runner.py"), "w") as f:
            f.write(RUNNER)
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, os.path.join(tmp, "runner.py"),
               os.path.join(tmp, "args.json")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp,
                              timeout=timeout, check=False)
        if proc.returncode or not os.path.exists(args["report"]):
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"valgrind exited {proc.returncode}: {tail[:300]}")
        with open(args["report"]) as f:
            report = json.load(f)
        dumps = sorted(glob.glob(f"{out}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        ok = [r for r in report if r["status"] == "ok"]
        if len(dumps) != len(ok):
            raise RuntimeError(f"{len(dumps)} callgrind dumps for {len(ok)} counted trees")
        for r, path in zip(ok, dumps, strict=True):
            r["value"] = _totals(path)
    return report
