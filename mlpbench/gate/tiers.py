"""The gate's three tiers over a pair of workers (base, head), each request time-bounded.

BASE answers first wherever the order allows; HEAD's limit for a request is derived from
BASE's time for the same request (:class:`mlpbench.gate.config.GateConfig`). A HEAD that runs
past it is killed and the benchmark is ``broken`` (exit 3) with the limit named; its worker
is restarted for the next benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from mlpbench.gate.config import GateConfig, retired_by
from mlpbench.gate.side import Side
from mlpbench.gate.stats import Verdict, count_verdict, exact_verdict, side_problem, wall_verdict

Echo = Callable[[str], None]


class Pair:
    """Base and head workers with the time limits of the gate."""

    def __init__(self, sides: Sequence[Side], cfg: GateConfig, retired: dict[str, str]) -> None:
        self.sides, self.cfg, self.retired = list(sides), cfg, retired
        self.base_s: dict[tuple, float] = {}

    def start(self) -> None:
        for s in self.sides:
            s.start(self.cfg.base_limit)

    def limit(self, i: int, key: tuple) -> float:
        if i == 0 or key not in self.base_s:
            return self.cfg.base_limit
        return max(self.cfg.time_floor, self.cfg.time_factor * self.base_s[key])

    def ask(self, i: int, op: str, bench: str, **kw) -> dict:
        """One side's status for one benchmark (restarting a worker that died before)."""
        side, key = self.sides[i], (op, bench)
        if side.error:
            side.start(self.cfg.base_limit)
        t0 = time.monotonic()
        reply = side.ask(op, self.limit(i, key), id=bench, **kw)
        if i == 0:
            self.base_s[key] = time.monotonic() - t0
        if reply is None:
            return {"status": "failed", "error": side.error}
        return reply

    def problem(self, tier: str, bench: str, base: dict, head: dict) -> Verdict | None:
        return side_problem(tier, bench, base, head, retired_by(bench, self.retired))


def run_exact(pair: Pair, ids: Sequence[str]) -> list[Verdict]:
    out = []
    for b in ids:
        sb, sh = pair.ask(0, "track", b), pair.ask(1, "track", b)
        out.append(pair.problem("exact", b, sb, sh)
                   or exact_verdict(b, sb.get("value"), sh.get("value")))
    return out


def _wall_one(pair: Pair, b: str, cfg: GateConfig) -> Verdict:
    """Interleaved rounds of one benchmark: even rounds base first, odd rounds head first."""
    status = [pair.ask(i, "load", b) for i in (0, 1)]
    samples: tuple[list[float], list[float]] = ([], [])
    for r in range(cfg.rounds):
        if any(s.get("status") != "ok" for s in status):
            break
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            got = pair.ask(i, "sample", b, blocks=cfg.blocks)
            if got.get("status") == "ok":
                samples[i].append(got["seconds"])
            else:
                status[i] = got
    return pair.problem("wall", b, *status) or wall_verdict(b, *samples, cfg.factor)


def run_wall(pair: Pair, ids: Sequence[str], cfg: GateConfig, echo: Echo) -> list[Verdict]:
    out = []
    for b in ids:
        out.append(_wall_one(pair, b, cfg))
        echo(f"  wall {b}: {out[-1].verdict}")
    return out


def insn_numbers(call_seconds: dict[str, float | None], cfg: GateConfig) -> dict[str, int]:
    """Calls per count: ``insn_number``, fewer for a slower call (BASE's seconds per call)."""
    budget = cfg.insn_number * cfg.insn_max_call_s / 5  # a call of max_call_s/5 gets them all
    return {b: max(1, min(cfg.insn_number, int(budget / s) if s else cfg.insn_number))
            for b, s in call_seconds.items()}


def run_insn(roots: Sequence[str], ids: Sequence[str], number: dict[str, int], cfg: GateConfig,
             retired: dict[str, str], echo: Echo) -> list[Verdict]:
    from mlpbench.measure.callgrind import Limits, count_many, valgrind_missing

    missing = valgrind_missing()
    if missing or not ids:
        return [Verdict("insn", b, "not compared", note=missing or "") for b in ids]
    echo(f"  callgrind: {len(ids)} benchmarks, base then head, in one valgrind process")
    limits = Limits(first=cfg.base_limit, factor=cfg.time_factor, floor=cfg.time_floor)
    try:
        base, head = count_many(roots, ids, {b: number.get(b, cfg.insn_number) for b in ids},
                                warmup=cfg.insn_warmup, limits=limits)
    except RuntimeError as exc:  # BASE itself could not be counted
        return [Verdict("insn", b, "not compared", note=str(exc)[:300]) for b in ids]
    out = []
    for b in ids:
        sb, sh = base[b], head[b]
        out.append(side_problem("insn", b, sb, sh, retired_by(b, retired))
                   or count_verdict(b, sb["value"], sh["value"], cfg.insn_factor))
    return out
