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
``number`` calls. Several source trees (e.g. base and head) and several benchmarks are counted
in one valgrind process (torch is imported once): each tree's ``mlpbench`` and ``benchmarks``
are imported afresh from its root by :mod:`mlpbench.measure.callgrind_runner`. Each
(tree, benchmark) after the first tree has a time limit derived from the first tree's time
for the same benchmark (:class:`Limits`); valgrind runs with ``--vgdb=no`` (no
``vgdb-pipe-*`` files) and is killed on every way out.
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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlpbench.errors import UsageError

SHIM_C = """#include <valgrind/callgrind.h>
void mlpb_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void mlpb_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void mlpb_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void mlpb_dump(void) { CALLGRIND_DUMP_STATS; }
void mlpb_zero(void) { CALLGRIND_ZERO_STATS; }
"""
#: the tree holding this mlpbench: the runner module is imported from it under valgrind
OWN_ROOT = str(Path(__file__).resolve().parents[2])
#: seconds between looks at the runner's progress
POLL_S = 0.2


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


@dataclass(frozen=True)
class Limits:
    """Time limits of the counts: the first tree's entries have ``first`` seconds each; a
    later tree's entry ``max(floor, factor * first tree's seconds for that benchmark)``."""

    first: float = 1800.0
    factor: float = 10.0
    floor: float = 120.0

    def of(self, tree: int, bench_id: str, elapsed: dict) -> float:
        if tree == 0 or bench_id not in elapsed:
            return self.first
        return max(self.floor, self.factor * elapsed[bench_id])


def _progress(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def _watch(proc: subprocess.Popen, report: str, limits: Limits) -> dict | None:
    """Wait for valgrind; return the (tree, id) entry that ran past its limit, if any."""
    elapsed: dict[str, float] = {}
    while proc.poll() is None:
        rows = _progress(report)
        starts = {(r["tree"], r["id"]): r["t"] for r in rows if r["event"] == "start"}
        for r in rows:
            if r["event"] == "done" and r["tree"] == 0 and r["status"] == "ok":
                elapsed[r["id"]] = r["t"] - starts[(0, r["id"])]
        if rows and rows[-1]["event"] == "start":
            last = rows[-1]
            limit = limits.of(last["tree"], last["id"], elapsed)
            if time.monotonic() - last["t"] > limit:
                proc.kill()
                proc.wait()
                return {**last, "limit": limit}
        time.sleep(POLL_S)
    return None


def _results(roots: Sequence[str], ids: Sequence[str], report: str, out: str,
             over: dict | None, stopped: str) -> list[dict[str, dict]]:
    """Per tree, per id: the status, with the count of each ok entry (dumps in order)."""
    res: list[dict[str, dict]] = [{} for _ in roots]
    for r in _progress(report):
        if r["event"] == "done":
            res[r["tree"]][r["id"]] = {k: v for k, v in r.items() if k not in ("t", "event")}
    if over is not None:
        res[over["tree"]][over["id"]] = {
            "status": "failed", "error": f"exceeded its time limit of {over['limit']:.0f} s "
            "under callgrind (killed)"}
    for tree in res:
        for b in ids:
            tree.setdefault(b, {"status": "failed", "error": stopped})
    dumps = sorted(glob.glob(f"{out}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    ok = [tree[b] for tree in res for b in ids if tree[b]["status"] == "ok"]
    if len(dumps) != len(ok):
        raise RuntimeError(f"{len(dumps)} callgrind dumps for {len(ok)} counted benchmarks")
    for r, path in zip(ok, dumps, strict=True):
        r["value"] = _totals(path)
    return res


def count_many(roots: Sequence[str], bench_ids: Sequence[str], number: dict[str, int], *,
               warmup: int = 10, limits: Limits = Limits()) -> list[dict[str, dict]]:
    """Instructions executed by ``number[id]`` warm calls of each benchmark, for each tree,
    all in one valgrind process (trees in order, benchmarks in order within a tree).

    Returns, per tree, ``{id: {"status": "ok", "value": instructions} | {"status":
    "failed" | "skipped" | "absent", ...}}``. An entry past its limit is ``failed`` (and
    valgrind is stopped: the entries after it are ``failed`` too).
    """
    missing = valgrind_missing()
    if missing:
        raise RuntimeError(missing)
    env = dict(os.environ, PYTHONHASHSEED="0", MLPBENCH_THREADS="1", OMP_NUM_THREADS="1",
               MLPBENCH_FULL="0", PYTHONPATH=OWN_ROOT)
    with tempfile.TemporaryDirectory(prefix="mlpbench-callgrind-") as tmp:
        args = {"shim": _shim(), "bench_ids": list(bench_ids), "number": dict(number),
                "warmup": warmup, "roots": [os.path.abspath(r) for r in roots],
                "report": os.path.join(tmp, "report.jsonl")}
        with open(os.path.join(tmp, "args.json"), "w") as f:
            json.dump(args, f)
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--vgdb=no", "--instr-atstart=no",
               "--collect-atstart=no", f"--callgrind-out-file={out}", sys.executable, "-P", "-m",
               "mlpbench.measure.callgrind_runner", os.path.join(tmp, "args.json")]
        with tempfile.TemporaryFile(mode="w+") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, text=True, env=env, cwd=tmp)
            try:
                over = _watch(proc, args["report"], limits)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            stopped = "not counted: valgrind stopped"
            if proc.returncode and over is None:
                log.seek(0)
                tail = (log.read().strip().splitlines() or ["no output"])[-1]
                stopped = f"valgrind exited {proc.returncode}: {tail[:300]}"
                first = {r["id"] for r in _progress(args["report"])
                         if r["event"] == "done" and r["tree"] == 0}
                if not set(bench_ids) <= first:  # the first tree itself did not finish
                    raise RuntimeError(stopped)
        return _results(roots, bench_ids, args["report"], out, over, stopped)


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
    res = count_many(roots, [bench_id], {bench_id: number}, warmup=warmup,
                     limits=Limits(first=timeout, factor=timeout, floor=timeout))
    return [tree[bench_id] for tree in res]
