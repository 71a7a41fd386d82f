"""Performance-regression gate for CI that can be trusted on a shared runner.

``mlpbench regress BASE HEAD`` exports both commits (``git archive``; the checkout is never
touched), starts one benchmark worker per commit in this Python environment (the pinned
one), and compares them in three tiers (see :mod:`mlpbench.regress_stats`):

* ``exact`` -- steps and gradient evaluations of seeded CPU convergence runs;
* ``insn``  -- callgrind instruction counts of a few benchmark points (1 thread);
* ``wall``  -- wall time, base and head interleaved in rounds (ABBA...), paired ratios.

BASE is the merge-base of BASE and HEAD unless ``merge_base=False``. Exit codes:

======  =====================================================================
0       no benchmark regressed
1       regressed (a tier's rule says worse)
2       bad input (empty, unknown or identical commits, a bad factor)
3       a benchmark that works on BASE fails on HEAD
4       could not run: git or a worker missing, nothing compared
======  =====================================================================
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlpbench.errors import UsageError
from mlpbench.regress_git import export_commit, resolve_commits
from mlpbench.regress_stats import (
    EXIT_CANNOT_RUN,
    Verdict,
    count_verdict,
    exact_verdict,
    exit_code,
    markdown,
    side_problem,
    wall_verdict,
)
from mlpbench.results import atomic_write, dumps

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regress_worker.py")
TIERS = ("exact", "insn", "wall")
_ADAM, _LBFGS = "('teacher', 'adam[lr=0.01,batch=32]')", "('teacher', 'lbfgs')"


@dataclass(frozen=True)
class GateConfig:
    """What the gate measures and how it decides."""

    factor: float = 1.3  # wall tier: median paired ratio above this (and CI above 1)
    insn_factor: float = 1.02  # instruction counts repeat within 0.42% here
    rounds: int = 12  # wall tier: interleaved rounds (ABBA...)
    blocks: int = 3  # wall tier: timed blocks per side and round (the fastest counts)
    insn_number: int = 20  # instrumented calls per instruction count
    tiers: tuple[str, ...] = TIERS
    wall: tuple[str, ...] = ("TrainStep.time_step('cpu', 64, 2, 32)",
                             "TrainStep.time_step('cpu', 1000, 2, 32)")
    insn: tuple[str, ...] = ("TrainStep.time_step('cpu', 64, 2, 32)",)
    exact: tuple[str, ...] = tuple(f"Convergence.track_{k}_to_target{p}"
                                   for p in (_ADAM, _LBFGS) for k in ("steps", "grad_evals"))
    merge_base: bool = True
    threads: int = 1  # torch threads in the workers (2 on a 2-vCPU runner stalls)
    clock: str = "cpu"  # wall tier clock: process CPU time ("cpu") or perf_counter ("wall")

    def __post_init__(self) -> None:
        for name in ("factor", "insn_factor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 1):
                raise UsageError(f"--{name.replace('_', '-')} must be a finite number > 1, "
                                 f"got {value}")
        if self.rounds < 3 or self.blocks < 1 or self.insn_number < 1 or self.threads < 1:
            raise UsageError("need --rounds >= 3, blocks >= 1, insn number >= 1, threads >= 1")
        if self.clock not in ("cpu", "wall"):
            raise UsageError(f"unknown clock {self.clock!r}; choose cpu or wall")
        bad = [t for t in self.tiers if t not in TIERS]
        if bad or not self.tiers:
            raise UsageError(f"unknown tier(s) {bad}; choose from {', '.join(TIERS)}")


@dataclass
class Side:
    """One commit's benchmark worker (a subprocess speaking JSON lines)."""

    name: str
    root: str
    threads: int = 1
    clock: str = "cpu"
    proc: subprocess.Popen | None = None
    error: str = ""
    log: list[str] = field(default_factory=list)

    def start(self) -> None:
        """Launch the worker (its readiness is read by :meth:`ready`)."""
        env = dict(os.environ, MLPBENCH_THREADS=str(self.threads), PYTHONHASHSEED="0",
                   OMP_NUM_THREADS=str(self.threads), MLPBENCH_FULL="0")
        env.pop("PYTHONPATH", None)
        self.errfile = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, WORKER, self.root, self.clock],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errfile, text=True, env=env, cwd=self.root)

    def ready(self) -> bool:
        return self._read() is not None

    def _read(self) -> dict | None:
        line = self.proc.stdout.readline() if self.proc else ""
        if not line:
            self.errfile.seek(0)
            tail = self.errfile.read().strip().splitlines()
            self.error = f"worker died: {tail[-1] if tail else 'no output'}"[:300]
            return None
        return json.loads(line)

    def ask(self, op: str, **kw) -> dict | None:
        if self.error or self.proc is None:
            return None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._read()
        return self._read()

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _status(side: Side, reply: dict | None, bench: str) -> dict:
    if reply is None:
        return {"status": "failed", "error": side.error}
    return reply.get(bench, {"status": "failed", "error": "no answer"})


def run_exact(sides: Sequence[Side], ids: Sequence[str]) -> list[Verdict]:
    base, head = (s.ask("track", ids=list(ids)) for s in sides)
    out = []
    for b in ids:
        sb, sh = _status(sides[0], base, b), _status(sides[1], head, b)
        out.append(side_problem("exact", b, sb, sh)
                   or exact_verdict(b, sb.get("value"), sh.get("value")))
    return out


def run_wall(sides: Sequence[Side], ids: Sequence[str], cfg: GateConfig,
             echo: Callable[[str], None]) -> list[Verdict]:
    """Interleaved rounds: even rounds base first, odd rounds head first."""
    loads = [s.ask("load", ids=list(ids)) for s in sides]
    status = {b: [_status(s, r, b) for s, r in zip(sides, loads, strict=True)] for b in ids}
    samples: dict[str, tuple[list[float], list[float]]] = {b: ([], []) for b in ids}
    for r in range(cfg.rounds):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            reply = sides[i].ask("sample", blocks=cfg.blocks)
            for b in ids:
                if status[b][i].get("status") != "ok":
                    continue
                got = _status(sides[i], reply, b)
                if got["status"] == "ok":
                    samples[b][i].append(got["seconds"])
                else:
                    status[b][i] = got
        echo(f"  wall round {r + 1}/{cfg.rounds} done")
    return [side_problem("wall", b, *status[b]) or wall_verdict(b, *samples[b], cfg.factor)
            for b in ids]


def run_insn(roots: Sequence[str], ids: Sequence[str], cfg: GateConfig,
             echo: Callable[[str], None]) -> list[Verdict]:
    from mlpbench.measure.callgrind import count_instructions, valgrind_missing

    missing = valgrind_missing()
    if missing:
        return [Verdict("insn", b, "not compared", note=missing) for b in ids]
    out = []
    for b in ids:
        echo(f"  callgrind {b}: base and head in one valgrind process")
        try:
            counts = count_instructions(roots, b, number=cfg.insn_number)
        except RuntimeError as exc:
            out.append(Verdict("insn", b, "not compared", note=str(exc)[:300]))
            continue
        out.append(side_problem("insn", b, *counts)
                   or count_verdict(b, counts[0]["value"], counts[1]["value"], cfg.insn_factor))
    return out


def compare_trees(roots: Sequence[str], cfg: GateConfig, echo: Callable[[str], None] = print
                  ) -> list[Verdict]:
    """Run the configured tiers on two source trees (base, head); return all verdicts."""
    verdicts: list[Verdict] = []
    sides = [Side(n, r, cfg.threads, cfg.clock)
             for n, r in zip(("base", "head"), roots, strict=True)]
    try:
        for s in sides:  # both import torch at the same time
            s.start()
        for s in sides:
            s.ready()
        if "exact" in cfg.tiers and cfg.exact:
            verdicts += run_exact(sides, cfg.exact)
        if "wall" in cfg.tiers and cfg.wall:
            verdicts += run_wall(sides, cfg.wall, cfg, echo)
    finally:
        for s in sides:
            s.close()
    if "insn" in cfg.tiers and cfg.insn:
        verdicts += run_insn(roots, cfg.insn, cfg, echo)
    return verdicts


def _torch_version() -> str | None:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def regress(base: str, head: str, *, config: GateConfig | None = None, repo: str = ".",
            out: str | None = None, summary: str | None = None,
            echo: Callable[[str], None] = print) -> int:
    """Compare BASE and HEAD in the configured tiers; print the table; return an exit code.

    ``out`` receives ``gate.json`` (context, verdicts) and ``summary.md``; ``summary`` (e.g.
    ``$GITHUB_STEP_SUMMARY``) gets the Markdown table appended. Bad input raises UsageError.
    """
    cfg = config or GateConfig()
    if subprocess.run(["git", "-C", repo, "rev-parse"], capture_output=True).returncode:
        raise UsageError(f"{repo!r} is not a git repository")
    b, h = resolve_commits(repo, base, head, cfg.merge_base)
    echo(f"regress: base {b[:12]} (merge-base: {cfg.merge_base}), head {h[:12]}, "
         f"tiers {','.join(cfg.tiers)}")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="mlpbench-regress-") as tmp:
        try:
            roots = [export_commit(repo, sha, os.path.join(tmp, name))
                     for name, sha in (("base", b), ("head", h))]
        except (LookupError, subprocess.CalledProcessError, OSError) as exc:
            echo(f"COULD NOT RUN: {exc}")
            return EXIT_CANNOT_RUN
        verdicts = compare_trees(roots, cfg, echo)
    code = exit_code(verdicts)
    title = (f"mlpbench regress {b[:12]}..{h[:12]}: "
             f"{['OK', 'REGRESSED', 'USAGE', 'BROKEN ON HEAD', 'COULD NOT RUN'][code]}")
    table = markdown(verdicts, title)
    echo(table)
    if summary:
        with open(summary, "a") as f:
            f.write(table)
    if out:
        os.makedirs(out, exist_ok=True)
        context = {"base": b, "head": h, "exit_code": code, "seconds": round(time.time() - t0, 1),
                   "host": platform.node(), "machine": platform.machine(),
                   "python": platform.python_version(), "torch": _torch_version(),
                   "config": asdict(cfg), "load_avg": list(os.getloadavg())}
        doc = {"context": context, "verdicts": [v.as_dict() for v in verdicts]}
        atomic_write(Path(out) / "gate.json", dumps(doc))
        atomic_write(Path(out) / "summary.md", table)
    return code
