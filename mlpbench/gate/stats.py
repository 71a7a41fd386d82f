"""Decisions of the regression gate: one verdict per benchmark and tier, the exit code.

Three tiers, each with its own rule:

``wall``   CPU (or wall) time, base and head measured in the same job, interleaved in
           ABBA rounds; the ratios head/base are paired, grouped per ABBA cycle (a block),
           their median is the estimate and a bootstrap over blocks
           (``scipy.stats.bootstrap``, BCa) gives its confidence interval.
           Regressed when the median exceeds the factor AND the interval lies above 1.
``insn``   callgrind instruction counts (deterministic): regressed above a small factor.
``exact``  seeded CPU convergence (steps, gradient evaluations to target): any change is
           reported; more is a regression, missing the target where base reached it too.

A benchmark that BASE runs and HEAD fails, lacks or skips is ``broken`` / ``missing`` (exit 3)
unless HEAD declares it in ``benchmarks/RETIRED`` (then ``retired``): deleting or skipping a
benchmark never turns the gate green on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

EXIT_OK, EXIT_REGRESSED, EXIT_USAGE, EXIT_BROKEN, EXIT_CANNOT_RUN = 0, 1, 2, 3, 4
#: verdicts that mean "both sides measured and compared"
COMPARED = ("regressed", "improved", "unchanged")


@dataclass(frozen=True)
class Verdict:
    """One benchmark in one tier: both sides' values, the ratio and what it means."""

    tier: str
    bench: str
    verdict: str  # regressed | improved | unchanged | broken | missing | retired | not compared
    base: float | None = None
    head: float | None = None
    ratio: float | None = None
    low: float | None = None  # confidence interval of the ratio (wall tier)
    high: float | None = None
    note: str = ""

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


#: verdicts that fail the gate with exit 3: BASE ran the benchmark, HEAD did not
BROKEN = ("broken", "missing")


def side_problem(tier: str, bench: str, base_status: dict, head_status: dict,
                 retired: str | None = None) -> Verdict | None:
    """The verdict when a side did not produce a value (None when both did).

    ``retired`` is HEAD's declaration that the benchmark was retired on purpose (where it
    was declared), or None.
    """
    b, h = base_status.get("status"), head_status.get("status")
    if b == "ok" and h == "ok":
        return None
    if b == "ok" and h in ("absent", "skipped", None):
        what = "skipped" if h == "skipped" else "absent"
        reason = f"{what} on HEAD {head_status.get('reason', '')}".strip()
        if retired:
            return Verdict(tier, bench, "retired", note=f"{reason}; declared in {retired}"[:300])
        return Verdict(tier, bench, "missing", note=f"{reason}; not declared in "
                       "benchmarks/RETIRED"[:300])
    if b == "ok":
        return Verdict(tier, bench, "broken", note=f"HEAD: {head_status.get('error', '')}"[:300])
    why = {"skipped": "skipped", "failed": "fails", None: "absent", "ok": "ok"}
    note = f"base {why.get(b, b)}, head {why.get(h, h)}"
    reason = head_status.get("reason") or base_status.get("reason") or ""
    return Verdict(tier, bench, "not compared", note=f"{note} {reason}".strip()[:300])


#: rounds per resampled block: one ABBA cycle (base first, then head first) -- the unit in
#: which a linear drift of the load cancels, and within which rounds are not independent
ROUNDS_PER_BLOCK = 2


def block_ratios(base: Sequence[float], head: Sequence[float],
                 size: int = ROUNDS_PER_BLOCK) -> np.ndarray:
    """Per block of ``size`` consecutive rounds: the geometric mean of its ratios head/base
    (a last, shorter block counts as one)."""
    logs = np.log(np.asarray(head, dtype=float) / np.asarray(base, dtype=float))
    return np.exp([logs[i:i + size].mean() for i in range(0, len(logs), size)])


def paired_ratio(base: Sequence[float], head: Sequence[float], *, confidence: float = 0.95,
                 seed: int = 0, size: int = ROUNDS_PER_BLOCK) -> tuple[float, float, float]:
    """Median paired ratio head/base and its confidence interval, resampling whole blocks.

    Rounds are grouped into blocks of ``size`` (ABBA cycles) and the block ratios are
    bootstrapped (``scipy.stats.bootstrap``, BCa), so rounds that share a load swing are
    never counted as independent evidence. ``size=1`` is the per-round bootstrap.
    """
    blocks = block_ratios(base, head, size)
    est = float(np.median(blocks))
    if len(blocks) < 3 or np.ptp(blocks) == 0:
        return est, float(blocks.min()), float(blocks.max())
    res = stats.bootstrap((blocks,), np.median, confidence_level=confidence,
                          n_resamples=4000, method="BCa", random_state=seed)
    low, high = res.confidence_interval.low, res.confidence_interval.high
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa degenerate: widest honest CI
        low, high = float(blocks.min()), float(blocks.max())
    return est, float(min(low, est)), float(max(high, est))


def wall_verdict(bench: str, base: Sequence[float], head: Sequence[float],
                 factor: float) -> Verdict:
    """Paired decision over interleaved rounds (seconds per call on each side)."""
    est, low, high = paired_ratio(base, head)
    if est > factor and low > 1:
        verdict = "regressed"
    elif est < 1 / factor and high < 1:
        verdict = "improved"
    else:
        verdict = "unchanged"
    return Verdict("wall", bench, verdict, float(np.median(base)), float(np.median(head)),
                   est, low, high, note=f"{len(base)} rounds, "
                   f"{math.ceil(len(base) / ROUNDS_PER_BLOCK)} ABBA blocks")


def count_verdict(bench: str, base: float, head: float, factor: float) -> Verdict:
    """Instruction counts: deterministic, so the ratio itself decides."""
    ratio = head / base
    verdict = ("regressed" if ratio > factor else "improved" if ratio < 1 / factor
               else "unchanged")
    return Verdict("insn", bench, verdict, float(base), float(head), ratio)


def exact_verdict(bench: str, base: float | None, head: float | None) -> Verdict:
    """Seeded CPU convergence values (None: target missed): compared exactly."""
    if base is None and head is None:
        return Verdict("exact", bench, "not compared", note="target missed on both sides")
    if head is None:
        return Verdict("exact", bench, "regressed", base, None, note="HEAD misses the target")
    if base is None:
        return Verdict("exact", bench, "improved", None, head, note="base missed the target")
    ratio = head / base if base else None
    verdict = "regressed" if head > base else "improved" if head < base else "unchanged"
    return Verdict("exact", bench, verdict, base, head, ratio)


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """3 broken or missing on HEAD, else 1 regressed, else 0 -- or 4 when nothing was
    compared."""
    kinds = {v.verdict for v in verdicts}
    if kinds & set(BROKEN):
        return EXIT_BROKEN
    if not kinds & set(COMPARED):
        return EXIT_CANNOT_RUN
    return EXIT_REGRESSED if "regressed" in kinds else EXIT_OK


def _fmt(v: float | None, tier: str) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    if tier == "wall":
        return f"{v * 1e3:.4g} ms"
    return f"{v:,.0f}"


def markdown(verdicts: Sequence[Verdict], title: str, rules: Sequence[str] = (),
             notes: Sequence[str] = ()) -> str:
    """The verdict table as GitHub-flavoured Markdown (step summary / PR comment).

    The paired ratio head/base and its interval lead (it is what decides); the per-side
    medians follow as context (they need not divide to the paired ratio). ``rules`` are
    the thresholds in force, ``notes`` further lines (e.g. what declared a retirement).
    """
    lines = [f"### {title}", "", *[f"- {r}" for r in rules], *[f"- {n}" for n in notes]]
    lines += ["", "| tier | benchmark | verdict | head/base (95% CI) | base | head |",
              "|---|---|---|---:|---:|---:|"]
    for v in verdicts:
        ratio = "—" if v.ratio is None else f"**{v.ratio:.3f}**"
        if v.low is not None and v.high is not None:
            ratio += f" ({v.low:.3f}–{v.high:.3f})"
        verdict = f"**{v.verdict}**" if v.verdict in ("regressed", *BROKEN) else v.verdict
        note = f" {v.note}" if v.note else ""
        lines.append(f"| {v.tier} | `{v.bench}` | {verdict}{note} | {ratio} | "
                     f"{_fmt(v.base, v.tier)} | {_fmt(v.head, v.tier)} |")
    return "\n".join(lines) + "\n"
