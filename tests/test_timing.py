import pytest
import torch
import torch.utils.benchmark as tb

from mlpbench.measure.timing import Measurement, TimerConfig, measure


class FakeClock:
    """A clock that advances only when the measured function says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_statistics_with_fake_clock():
    clock = FakeClock()
    durations = iter([0.1, 0.1, 0.1] + [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] * 10)
    calls = []

    def fn():
        calls.append(1)
        clock.now += next(durations)

    cfg = TimerConfig(warmup=2, min_samples=5, max_samples=9, budget_s=100, min_block_s=0)
    m = measure(fn, config=cfg, clock=clock)
    # warm-up (2 calls) is untimed; then 9 samples of one call each
    assert len(calls) == 2 + 9
    assert m.times == pytest.approx((0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8))
    assert m.median == pytest.approx(0.4)
    assert m.iqr == pytest.approx(0.6 - 0.2)
    assert m.n == 9 and m.number == 1
    assert m.warnings and "noisy" in m.warnings[0]


def test_budget_stops_sampling():
    clock = FakeClock()

    def fn():
        clock.now += 0.3

    m = measure(fn, config=TimerConfig(warmup=0, min_samples=3, max_samples=100, budget_s=1.0,
                                       min_block_s=0), clock=clock)
    # 0.3 s per sample: after 4 samples 1.2 s >= budget, and min_samples is met
    assert m.n == 4
    assert not m.warnings


def test_blocks_group_fast_calls():
    clock = FakeClock()

    def fn():
        clock.now += 1e-4

    m = measure(fn, config=TimerConfig(warmup=0, min_samples=5, max_samples=5, budget_s=10,
                                       min_block_s=0.01), clock=clock)
    assert m.number == 100
    assert m.median == pytest.approx(1e-4)
    assert m.n == 5


def test_setup_is_untimed_and_precedes_each_call():
    clock = FakeClock()
    order = []

    def setup():
        order.append("s")
        clock.now += 5.0  # expensive, but not timed

    def fn():
        order.append("f")
        clock.now += 0.01

    m = measure(fn, setup=setup, config=TimerConfig(warmup=1, min_samples=3, max_samples=3,
                                                    budget_s=10, min_block_s=1), clock=clock)
    assert m.median == pytest.approx(0.01)
    assert m.number == 1
    assert order[:4] == ["s", "f", "s", "f"]


def test_precision_target_stops_early():
    clock = FakeClock()

    def fn():
        clock.now += 0.01

    m = measure(fn, config=TimerConfig(warmup=0, min_samples=5, max_samples=50, budget_s=100,
                                       min_block_s=0, target_rel_iqr=0.05), clock=clock)
    assert m.n == 5


def test_invalid_config_and_empty_measurement():
    with pytest.raises(ValueError):
        TimerConfig(min_samples=10, max_samples=5)
    with pytest.raises(ValueError):
        Measurement(times=())


def test_agrees_with_torch_benchmark_timer():
    """Same work, same thread count: our median near Timer.blocked_autorange's (generous
    margin: this is a correctness check of the scheme, the 3% target lives in
    scripts/bench_harness.py)."""
    a = torch.randn(256, 256)
    threads = torch.get_num_threads()
    ours = measure(lambda: a @ a, config=TimerConfig(budget_s=0.3)).median
    ref = tb.Timer("a @ a", globals={"a": a}, num_threads=threads).blocked_autorange(
        min_run_time=0.3).median
    assert 0.5 < ours / ref < 2.0
