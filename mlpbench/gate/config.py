"""What the gate measures and how it decides (one frozen dataclass), and HEAD's declaration of
retired benchmarks (``benchmarks/RETIRED``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from mlpbench.errors import UsageError

TIERS = ("exact", "insn", "wall")
#: a factor above this could never fire on a real slowdown: x10 is already a broken benchmark
MAX_FACTOR = 10.0
RETIRED = os.path.join("benchmarks", "RETIRED")


@dataclass(frozen=True)
class GateConfig:
    """What the gate measures and how it decides. ``None`` benchmark sets: derived from BASE's
    suite and the optimizer registry (:mod:`mlpbench.gate.select`)."""

    factor: float = 1.3  # wall tier: median paired ratio above this (and CI above 1)
    insn_factor: float = 1.02  # instruction counts repeat within 0.42% here
    rounds: int = 12  # wall tier: interleaved rounds (ABBA...)
    blocks: int = 3  # wall tier: timed blocks per side and round (the fastest counts)
    insn_number: int = 20  # instrumented calls per instruction count
    insn_warmup: int = 3  # calls before the count (state, allocator, lazy initialisation)
    #: a point whose call takes longer on BASE goes to the wall tier (callgrind: ~50-100x)
    insn_max_call_s: float = 0.005
    tiers: tuple[str, ...] = TIERS
    wall: tuple[str, ...] | None = None
    insn: tuple[str, ...] | None = None
    exact: tuple[str, ...] | None = None
    merge_base: bool = True
    threads: int = 1  # torch threads in the workers (2 on a 2-vCPU runner stalls)
    clock: str = "cpu"  # wall tier clock: process CPU time ("cpu") or perf_counter ("wall")
    #: HEAD's limit per request: max(time_floor, time_factor x BASE's time for the same one)
    time_factor: float = 10.0
    time_floor: float = 60.0
    base_limit: float = 1800.0  # BASE's limit per request (its hang is "could not run")

    def __post_init__(self) -> None:
        for name in ("factor", "insn_factor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and 1 < value <= MAX_FACTOR):
                raise UsageError(f"--{name.replace('_', '-')} must be a number in (1, "
                                 f"{MAX_FACTOR:g}] (above, the tier could never fire), got "
                                 f"{value}")
        if self.rounds < 3 or self.blocks < 1 or self.insn_number < 1 or self.threads < 1:
            raise UsageError("need --rounds >= 3, blocks >= 1, insn number >= 1, threads >= 1")
        if not (0 < self.time_floor <= self.base_limit and self.time_factor >= 1):
            raise UsageError("need 0 < time floor <= base limit and time factor >= 1")
        if self.clock not in ("cpu", "wall"):
            raise UsageError(f"unknown clock {self.clock!r}; choose cpu or wall")
        bad = [t for t in self.tiers if t not in TIERS]
        if bad or not self.tiers:
            raise UsageError(f"unknown tier(s) {bad}; choose from {', '.join(TIERS)}")

    def rules(self) -> list[str]:
        """The thresholds in force, one line each (printed with every verdict table)."""
        return [f"wall: regressed when the paired median ratio > {self.factor:g} and its 95% "
                "interval lies above 1",
                f"insn: regressed when the instruction-count ratio > {self.insn_factor:g}",
                "exact: any change of a seeded convergence counter is reported; more is worse",
                f"HEAD time limit per benchmark: max({self.time_floor:g} s, "
                f"{self.time_factor:g} x BASE's time)"]


def read_retired(root: str) -> dict[str, str]:
    """``{entry: where}`` of ``benchmarks/RETIRED`` in a tree: one id, ``Class.method`` or
    ``Class`` per line, ``#`` comments."""
    path = os.path.join(root, RETIRED)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [ln.split("#", 1)[0].strip() for ln in f]
    return {e: f"{RETIRED} line {i}" for i, e in enumerate(lines, 1) if e}


def retired_by(bench_id: str, retired: dict[str, str]) -> str | None:
    """Where ``bench_id`` is declared retired (an exact id, its method or its class)."""
    for entry, where in retired.items():
        if bench_id == entry or bench_id.startswith((f"{entry}.", f"{entry}(")):
            return where
    return None
