"""``mlpbench regress BASE HEAD``: the performance-regression gate for CI.

Both commits are exported (``git archive``; the checkout is never touched). One benchmark
worker per commit runs in this Python environment; the worker module, the statistics and
the decision come from the tree this module belongs to (in CI: the merge-base, see
``.github/workflows/benchmarks.yml``), the benchmarks and the library under test from each
export. Three tiers (:mod:`mlpbench.gate.stats`):

* ``exact`` -- steps and gradient evaluations of seeded CPU convergence runs;
* ``insn``  -- callgrind instruction counts (1 thread) of every phase and optimizer;
* ``wall``  -- CPU time, base and head interleaved in rounds (ABBA...), paired ratios.

Default benchmark sets are derived from BASE's suite (:mod:`mlpbench.gate.select`). BASE is
the merge-base of BASE and HEAD unless ``merge_base=False``. Exit codes:

======  =====================================================================
0       no benchmark regressed
1       regressed (a tier's rule says worse)
2       bad input (empty or unknown commits, no merge-base, nothing to compare,
        a bad factor, an output path that cannot be written) -- before measuring
3       a benchmark BASE runs fails, hangs past its limit, or is absent or
        skipped on HEAD without a ``benchmarks/RETIRED`` declaration
4       could not run: git or a worker missing, nothing compared, an internal
        error of the gate
======  =====================================================================
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from mlpbench.errors import UsageError
from mlpbench.gate import select
from mlpbench.gate.config import GateConfig, read_retired
from mlpbench.gate.git import export_commit, resolve_commits
from mlpbench.gate.side import Side
from mlpbench.gate.stats import EXIT_CANNOT_RUN, Verdict, exit_code, markdown
from mlpbench.gate.tiers import Pair, insn_numbers, run_exact, run_insn, run_wall
from mlpbench.results import atomic_write, dumps

TITLES = ("OK", "REGRESSED", "USAGE", "BROKEN ON HEAD", "COULD NOT RUN")


def probe_outputs(out: str | None, summary: str | None) -> None:
    """Fail now (UsageError, exit 2) when an output cannot be written, not after measuring."""
    if out:
        if os.path.exists(out) and not os.path.isdir(out):
            raise UsageError(f"--out {out!r} exists and is not a folder")
        try:
            os.makedirs(out, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
                pass
        except OSError as exc:
            raise UsageError(f"--out {out!r} cannot be written: {exc.strerror or exc}") from None
    if summary:
        if os.path.isdir(summary):
            raise UsageError(f"--summary {summary!r} is a folder")
        try:
            with open(summary, "a"):
                pass
        except OSError as exc:
            raise UsageError(f"--summary {summary!r} cannot be written: "
                             f"{exc.strerror or exc}") from None


def _plan(pair: Pair, cfg: GateConfig, echo: Callable[[str], None]
          ) -> tuple[GateConfig, dict[str, float | None], list[str]]:
    """Fill the sets left ``None`` from BASE's suite; BASE's seconds per call of each."""
    notes: list[str] = []
    listing = pair.sides[0].ask("list", cfg.base_limit)
    if listing is None or listing.get("status") != "ok":
        raise LookupError(f"BASE's suite could not be listed: {pair.sides[0].error}")
    rows = listing["benchmarks"]
    covers, uncovered = select.candidates(rows)
    todo = list(covers) if cfg.insn is None else list(cfg.insn)
    if "insn" not in cfg.tiers and cfg.wall is not None:
        todo = []  # BASE's call times only split the candidates between insn and wall
    seconds = {b: pair.ask(0, "load", b).get("seconds") for b in todo}
    for b in todo:  # the same history in both workers (set-ups, allocator): no side bias
        pair.ask(1, "load", b)
    p = select.plan(rows, seconds, cfg.insn_max_call_s)
    cfg = replace(cfg, insn=cfg.insn if cfg.insn is not None else p.insn,
                  wall=cfg.wall if cfg.wall is not None else p.wall,
                  exact=cfg.exact if cfg.exact is not None else p.exact)
    given = [t for t in ("insn", "wall", "exact") if getattr(pair.cfg, t) is not None]
    if given:
        notes.append(f"benchmark sets given on the command line: {', '.join(given)}")
    if len(given) < 3:
        notes.append(f"derived from BASE's suite: {', '.join(sorted(set(covers.values())))}")
    if uncovered:
        notes.append(f"optimizers of the registry no benchmark exercises (not gated): "
                     f"{', '.join(uncovered)}")
    echo(f"  plan: insn {len(cfg.insn)}, wall {len(cfg.wall)}, exact {len(cfg.exact)}")
    return cfg, seconds, notes


def compare_trees(roots: list[str], cfg: GateConfig, echo: Callable[[str], None] = print
                  ) -> tuple[list[Verdict], list[str]]:
    """Run the configured tiers on two source trees (base, head): verdicts and notes."""
    retired = read_retired(roots[1])
    pair = Pair([Side(n, r, cfg.threads, cfg.clock)
                 for n, r in zip(("base", "head"), roots, strict=True)], cfg, retired)
    verdicts: list[Verdict] = []
    try:
        pair.start()
        cfg, seconds, notes = _plan(pair, cfg, echo)
        if "exact" in cfg.tiers:
            verdicts += run_exact(pair, cfg.exact)
        if "wall" in cfg.tiers:
            verdicts += run_wall(pair, cfg.wall, cfg, echo)
    finally:
        for s in pair.sides:
            s.close()
    if "insn" in cfg.tiers:
        verdicts += run_insn(roots, cfg.insn, insn_numbers(seconds, cfg), cfg, retired, echo)
    used = sorted({v.note.rsplit("declared in ", 1)[-1] for v in verdicts
                   if v.verdict == "retired"})
    notes.append(f"retired benchmarks: declared in {', '.join(used)}" if used else
                 f"retired benchmarks: none used ({len(retired)} entries in HEAD's "
                 "benchmarks/RETIRED)")
    return verdicts, notes


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
    ``$GITHUB_STEP_SUMMARY``) gets the Markdown table appended. Bad input (including an
    output that cannot be written) raises UsageError before anything is measured.
    """
    cfg = config or GateConfig()
    if subprocess.run(["git", "-C", repo, "rev-parse"], capture_output=True).returncode:
        raise UsageError(f"{repo!r} is not a git repository")
    b, h = resolve_commits(repo, base, head, cfg.merge_base)
    probe_outputs(out, summary)
    echo(f"regress: base {b[:12]} (merge-base: {cfg.merge_base}), head {h[:12]}, "
         f"tiers {','.join(cfg.tiers)}")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="mlpbench-regress-") as tmp:
        try:
            roots = [export_commit(repo, sha, os.path.join(tmp, name))
                     for name, sha in (("base", b), ("head", h))]
            verdicts, notes = compare_trees(roots, cfg, echo)
        except (LookupError, subprocess.CalledProcessError, OSError) as exc:
            echo(f"COULD NOT RUN: {exc}")
            return EXIT_CANNOT_RUN
        except Exception as exc:  # noqa: BLE001 - the gate's own fault: never exit 1
            echo(f"COULD NOT RUN: internal error of the gate: {type(exc).__name__}: {exc}")
            return EXIT_CANNOT_RUN
    code = exit_code(verdicts)
    table = markdown(verdicts, f"mlpbench regress {b[:12]}..{h[:12]}: {TITLES[code]}",
                     cfg.rules(), notes)
    echo(table)
    if summary:
        with open(summary, "a") as f:
            f.write(table)
    if out:
        context = {"base": b, "head": h, "exit_code": code, "seconds": round(time.time() - t0, 1),
                   "host": platform.node(), "machine": platform.machine(),
                   "python": platform.python_version(), "torch": _torch_version(),
                   "config": asdict(cfg), "notes": notes, "load_avg": list(os.getloadavg())}
        doc = {"context": context, "verdicts": [v.as_dict() for v in verdicts]}
        atomic_write(Path(out) / "gate.json", dumps(doc))
        atomic_write(Path(out) / "summary.md", table)
    return code
