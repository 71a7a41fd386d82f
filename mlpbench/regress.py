"""Performance-regression check for CI, around ``asv``.

``asv compare`` exits 0 even when benchmarks got worse, and ``asv continuous`` uses one
exit code for a regression and for an unknown commit. :func:`regress` runs (optionally)
and compares two commits, reads asv's table, and returns one of the distinct exit codes:

======  =====================================================================
code    meaning
======  =====================================================================
0       no benchmark got significantly worse
1       regressed: at least one benchmark slower by more than the factor
2       bad input (usage error, as everywhere in mlpbench)
3       a benchmark that worked on BASE fails on HEAD
4       could not run: asv missing, unknown commit, no results to compare
======  =====================================================================
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

EXIT_OK, EXIT_REGRESSED, EXIT_USAGE, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2, 3, 4

MARKS = set("+-!*x")


@dataclass
class Comparison:
    """What ``asv compare`` reported, row by row."""

    regressed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    improved: list[str] = field(default_factory=list)
    unchanged: int = 0  # compared, no significant change
    not_compared: int = 0  # skipped or missing on a side (n/a), or different versions
    ratios: dict[str, float] = field(default_factory=dict)  # after/before, where comparable

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_REGRESSED if self.regressed else EXIT_OK

    def verdict(self) -> str:
        if self.failed:
            return f"FAILED: {len(self.failed)} benchmark(s) broke: {', '.join(self.failed[:5])}"
        if self.regressed:
            return (f"REGRESSED: {len(self.regressed)} benchmark(s) slower: "
                    f"{', '.join(self.regressed[:5])}")
        return (f"OK: no significant regression ({len(self.improved)} improved, "
                f"{self.unchanged} unchanged)")


def _cells(line: str) -> list[str] | None:
    """The five cells of a compare row (``| mark | before | after | ratio | name |``)."""
    if line.startswith("|"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
    else:  # tabulate's plain style: the mark is the first column, possibly blank
        parts = line.split()
        cells = parts if parts and parts[0] in MARKS else ["", *parts]
    if len(cells) != 5 or cells[0] == "Change" or re.fullmatch(r"[-:]{2,}", cells[0]):
        return None  # not a row, the header, or the |----| separator
    return cells


def parse_compare(text: str) -> Comparison:
    """Classify the rows of ``asv compare`` output."""
    out = Comparison()
    for line in text.splitlines():
        cells = _cells(line)
        if cells is None or "(" not in cells[4] and "." not in cells[4]:
            continue
        mark, before, after, name = cells[0], cells[1], cells[2], cells[4]
        try:
            out.ratios[name] = float(cells[3].lstrip("~").strip())
        except ValueError:
            pass
        if mark == "+":
            out.regressed.append(name)
        elif mark == "!":
            out.failed.append(name)
        elif mark in ("-", "*"):
            out.improved.append(name)
        elif mark == "x" or "n/a" in (before, after) or "failed" in (before, after):
            out.not_compared += 1
        else:
            out.unchanged += 1
    return out


def _asv(args: Sequence[str], config: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("asv") or os.path.join(os.path.dirname(sys.executable), "asv")
    if not os.path.exists(exe):
        raise FileNotFoundError("asv is not installed (pip install asv)")
    return subprocess.run([exe, "--config", config, *args], capture_output=True, text=True,
                          env=env, check=False)


def regress(base: str, head: str, *, factor: float = 1.1, bench: str | None = None,
            machine: str | None = None, config: str = "asv.conf.json", run: bool = False,
            quick: bool = False, echo=print, details: dict | None = None) -> int:
    """Compare BASE and HEAD (running them first with ``run=True``); return an exit code.

    ``run=True`` uses ``asv run`` in asv's own virtualenv mode for each commit
    (``BASE^!``); in an existing environment run the benchmarks per checkout with
    ``asv run --python=same --set-commit-hash`` and compare with ``run=False``.
    ``details``, when given, receives the parsed :class:`Comparison`.
    """
    if factor <= 1:
        echo(f"mlpbench: error: --factor must be > 1, got {factor}")
        return EXIT_USAGE
    if not os.path.exists(config):
        echo(f"mlpbench: error: asv config {config!r} not found")
        return EXIT_USAGE
    common = ["--machine", machine] if machine else []
    try:
        if run:
            for commit in (base, head):
                args = ["run", f"{commit}^!", "--skip-existing-successful", *common]
                args += (["-b", bench] if bench else []) + (["--quick"] if quick else [])
                proc = _asv(args, config)
                if proc.returncode != 0:
                    echo(proc.stdout[-4000:] + proc.stderr[-4000:])
                    echo(f"COULD NOT RUN: asv run {commit} exited {proc.returncode}")
                    return EXIT_CANNOT_RUN
        proc = _asv(["compare", "--factor", str(factor), "--split", *common, base, head],
                    config)
    except FileNotFoundError as exc:
        echo(f"COULD NOT RUN: {exc}")
        return EXIT_CANNOT_RUN
    echo(proc.stdout.rstrip())
    # asv compare's exit status is not a verdict (it can exit 1 with a table printed):
    # the table decides; without one, asv could not compare
    if "Benchmark (Parameter)" not in proc.stdout:
        echo(proc.stderr.strip()[-2000:])
        echo(f"COULD NOT RUN: asv compare exited {proc.returncode} without a comparison")
        return EXIT_CANNOT_RUN
    result = parse_compare(proc.stdout)
    if details is not None:
        details["comparison"] = result
    if not (result.regressed or result.failed or result.improved or result.unchanged):
        echo("COULD NOT RUN: no benchmark results in common for the two commits")
        return EXIT_CANNOT_RUN
    echo(result.verdict())
    return result.exit_code
