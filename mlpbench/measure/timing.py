"""Measuring: warm-up, blocked repeats, device synchronization. Statistics live on
:class:`Measurement`; presentation lives elsewhere.

The scheme follows ``torch.utils.benchmark.Timer.blocked_autorange``: calls are grouped into
blocks long enough that timer overhead is negligible, and each block yields one sample of
the per-call time. On CUDA the device is synchronized before the clock starts and before it
stops, so a sample covers the kernels, not just their launch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mlpbench.devices import synchronize

#: IQR/median above this makes a measurement noisy (torch.utils.benchmark uses the same 10%)
NOISY_REL_IQR = 0.10


@dataclass(frozen=True)
class TimerConfig:
    """How long and how often to measure one callable."""

    warmup: int = 2  # untimed calls first: allocator, caches, lazy init, cuBLAS handles
    min_samples: int = 5  # never fewer samples than this (Mann-Whitney needs >= 6 per side in asv)
    max_samples: int = 100  # hard cap on samples
    budget_s: float = 1.0  # stop taking samples after this much timed time (once min_samples)
    min_block_s: float = 0.01  # one sample lasts at least this: perf_counter overhead < 0.01%
    target_rel_iqr: float | None = None  # stop early when IQR/median falls below this

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_samples < 1 or self.max_samples < self.min_samples:
            raise ValueError(f"invalid timer configuration {self}")
        if self.budget_s <= 0 or self.min_block_s < 0:
            raise ValueError(f"invalid timer configuration {self}")


@dataclass(frozen=True)
class Measurement:
    """Per-call times of one callable, one entry per sample (block time / ``number``)."""

    times: tuple[float, ...]
    number: int = 1  # calls per sample
    label: str = ""
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.times:
            raise ValueError("a measurement needs at least one sample")
        if not self.warnings and self.n >= 4 and self.rel_iqr > NOISY_REL_IQR:
            object.__setattr__(self, "warnings", (
                f"noisy: IQR/median = {self.rel_iqr:.0%} > {NOISY_REL_IQR:.0%}",))

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def mean(self) -> float:
        return float(np.mean(self.times))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.times, [25, 75])
        return float(q3 - q1)

    @property
    def rel_iqr(self) -> float:
        return self.iqr / self.median if self.median > 0 else math.inf

    def as_dict(self) -> dict[str, object]:
        return {"median_s": self.median, "mean_s": self.mean, "iqr_s": self.iqr,
                "n_samples": self.n, "calls_per_sample": self.number,
                "warnings": "; ".join(self.warnings)}


def _block(fn: Callable[[], object], number: int, setup: Callable[[], object] | None,
           dev: torch.device, clock: Callable[[], float]) -> float:
    """Per-call seconds of ``number`` calls of ``fn`` timed as one block (``setup`` first, off
    the clock; the device synchronized before the clock starts and before it stops)."""
    if setup is not None:
        setup()
    synchronize(dev)
    start = clock()
    for _ in range(number):
        fn()
    synchronize(dev)
    return (clock() - start) / number


def measure(fn: Callable[[], object], *, device: torch.device | str = "cpu",
            config: TimerConfig = TimerConfig(), setup: Callable[[], object] | None = None,
            label: str = "", clock: Callable[[], float] = time.perf_counter) -> Measurement:
    """Time ``fn`` after a warm-up; return a :class:`Measurement` of per-call seconds.

    Parameters
    ----------
    fn
        The work to time.
    device
        Synchronized before each sample's clock starts and before it stops.
    config
        Warm-up, sample counts and time budget.
    setup
        Untimed work before every call (e.g. the forward pass before a timed backward).
        With a setup each sample is a single call.
    clock
        Seconds as float; injectable for tests.
    """
    dev = torch.device(device)
    for _ in range(config.warmup):
        if setup is not None:
            setup()
        fn()
    synchronize(dev)

    def sample(number: int) -> float:
        return _block(fn, number, setup, dev, clock) * number

    first = sample(1)
    number = 1
    if setup is None and 0 < first < config.min_block_s:
        number = min(10**6, math.ceil(config.min_block_s / first))
    times: list[float] = [] if number > 1 else [first]
    spent = first
    while len(times) < config.max_samples:
        if len(times) >= config.min_samples:
            if spent >= config.budget_s:
                break
            if config.target_rel_iqr is not None and len(times) >= 4:
                q1, q3 = np.percentile(times, [25, 75])
                if (q3 - q1) / np.median(times) < config.target_rel_iqr:
                    break
        elapsed = sample(number)
        spent += elapsed
        times.append(elapsed / number)
    return Measurement(times=tuple(times), number=number, label=label)


def time_once(fn: Callable[[], object], *, setup: Callable[[], object] | None = None,
              device: torch.device | str = "cpu", include_setup: bool = False,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds of one call of ``fn`` (device synchronized around it): a cold first call, or
    one sample of an operation too slow to repeat. ``setup`` runs first, on the clock only
    with ``include_setup`` (a compiled forward compiles there)."""
    dev = torch.device(device)
    synchronize(dev)
    if setup is not None and not include_setup:
        setup()
        synchronize(dev)
    start = clock()
    if setup is not None and include_setup:
        setup()
    fn()
    synchronize(dev)
    return clock() - start


@dataclass(frozen=True)
class Interleaved:
    """A measurement taken in rounds alternating with a reference (the matmul yardstick):
    each round is one reference block then ``per_round`` samples of the work, so both see the
    same machine. ``rounds`` pairs (work seconds per call, reference seconds per call)."""

    work: Measurement
    reference: tuple[float, ...]  # per-call seconds of the reference, one per round
    rounds: tuple[tuple[float, float], ...]  # (median work s/call, reference s/call)


#: rounds of an interleaved measurement: enough for a bootstrap interval of their ratios
MIN_ROUNDS = 5
#: share of a round's time the reference may take (the overhead of pairing)
REFERENCE_SHARE = 0.2
#: a reference block lasts at least this long (several calls of a small product): one call
#: of ~0.3 ms carries its dispatch and thread wake-up, which the work's long blocks amortise
REFERENCE_BLOCK_S = 0.005


def measure_interleaved(fn: Callable[[], object], reference: Callable[[], object], *,
                        device: torch.device | str = "cpu", config: TimerConfig = TimerConfig(),
                        setup: Callable[[], object] | None = None, label: str = "",
                        clock: Callable[[], float] = time.perf_counter) -> Interleaved:
    """Time ``fn`` as :func:`measure` does, in at least :data:`MIN_ROUNDS` rounds, each led
    by one timed block of ``reference`` (at least :data:`REFERENCE_BLOCK_S`) taking about
    :data:`REFERENCE_SHARE` of the round. The reference blocks count against
    ``config.budget_s``, so pairing costs no more timed time than :func:`measure` (the work
    gets about 1 - :data:`REFERENCE_SHARE` of it), only the fixed per-point cost of choosing
    the yardstick."""
    dev = torch.device(device)
    for _ in range(config.warmup):
        reference()
    synchronize(dev)

    def block(f: Callable[[], object], number: int, pre: Callable[[], object] | None) -> float:
        return _block(f, number, pre, dev, clock)

    ref_number = max(1, math.ceil(REFERENCE_BLOCK_S / max(block(reference, 1, None), 1e-9)))
    ref_t = block(reference, ref_number, None) * ref_number
    first = measure(fn, device=dev, config=TimerConfig(
        warmup=config.warmup, min_samples=1, max_samples=1, budget_s=config.budget_s,
        min_block_s=config.min_block_s), setup=setup, clock=clock)
    number = first.number
    sample_t = max(first.median * number, 1e-9)
    per_round = max(1, min(math.ceil(ref_t / (REFERENCE_SHARE * sample_t)),
                           max(1, config.max_samples // MIN_ROUNDS)))
    times: list[float] = []
    refs: list[float] = []
    rounds: list[tuple[float, float]] = []
    spent = 0.0
    while len(times) < config.max_samples:
        if len(rounds) >= MIN_ROUNDS and len(times) >= config.min_samples \
                and spent >= config.budget_s:
            break
        r = block(reference, ref_number, None)
        got = [block(fn, number, setup) for _ in range(per_round)]
        spent += sum(got) * number + r * ref_number  # the yardstick spends the same budget
        times += got
        refs.append(r)
        rounds.append((float(np.median(got)), r))
    return Interleaved(Measurement(times=tuple(times), number=number, label=label),
                       tuple(refs), tuple(rounds))
