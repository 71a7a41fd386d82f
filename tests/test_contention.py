"""Measurements that defend themselves: the paired fraction of peak, contention evidence and
its verdict, the peak cache that re-measures a poisoned entry, and summaries that never call
a flagged row "best". Deterministic: an injected clock, injected evidence."""

from __future__ import annotations

import json
import math
import time

import pandas as pd
import pytest

import mlpbench.measure.peak as peak
from mlpbench.analysis.summaries import clean_rows, sweep_text
from mlpbench.measure.contention import THRESHOLDS, Evidence, Probe, machine_busy, reasons
from mlpbench.measure.timing import MIN_ROUNDS, TimerConfig, measure_interleaved
from mlpbench.measure.yardstick import paired_fraction

CFG = TimerConfig(warmup=1, min_samples=5, max_samples=60, budget_s=0.5, min_block_s=0.01)
WORK_S, REF_S = 0.004, 0.010  # seconds per call on the quiet fake machine
WORK_FLOPS, REF_FLOPS = 4e8, 2e9  # quiet: work 100 GFLOP/s, yardstick 200 -> fraction 0.5


class FakeMachine:
    """A clock advanced by the calls themselves; ``slow(call_index) -> factor`` per kind."""

    def __init__(self, work_slow=lambda i: 1.0, ref_slow=lambda i: 1.0):
        self.t, self.i = 0.0, {"work": 0, "ref": 0}
        self.work_slow, self.ref_slow = work_slow, ref_slow

    def clock(self) -> float:
        return self.t

    def work(self) -> None:
        self.t += WORK_S * self.work_slow(self.i["work"])
        self.i["work"] += 1

    def ref(self) -> None:
        self.t += REF_S * self.ref_slow(self.i["ref"])
        self.i["ref"] += 1


def paired(machine: FakeMachine) -> dict:
    m = measure_interleaved(machine.work, machine.ref, config=CFG, clock=machine.clock)
    assert len(m.rounds) >= MIN_ROUNDS
    return paired_fraction(m, WORK_FLOPS, REF_FLOPS)


def test_quiet_machine_fraction_is_the_true_ratio():
    out = paired(FakeMachine())
    assert out["peak_fraction"] == pytest.approx(0.5)
    assert out["peak_gflops"] == pytest.approx(200.0)
    assert out["peak_spread"] == pytest.approx(0.0)


def test_slowing_both_together_leaves_the_paired_ratio_unchanged():
    # every other round (work and yardstick alike) runs 3x slower: contention hitting both
    block = [0]

    def slow(_i):
        return 3.0 if (block[0] // 1) % 2 else 1.0

    machine = FakeMachine()
    real_ref = machine.ref

    def ref():  # each yardstick call starts a round: alternate quiet and slow rounds
        block[0] += 1
        real_ref()

    machine.ref, machine.work_slow, machine.ref_slow = ref, slow, slow
    out = paired(machine)
    assert out["peak_fraction"] == pytest.approx(0.5)  # per-round ratios all 0.5
    assert out["peak_fraction_lo"] == pytest.approx(0.5)
    assert out["peak_spread"] > THRESHOLDS["peak_spread"][0]  # ... yet the change is seen
    assert "peak spread" in reasons(None, 1, peak_spread=out["peak_spread"])


def test_a_yardstick_slowed_alone_is_flagged_as_impossible():
    out = paired(FakeMachine(ref_slow=lambda i: 4.0))  # yardstick contended, work not
    assert out["peak_fraction"] == pytest.approx(2.0)
    assert out["peak_fraction_lo"] > 1.0
    verdict = reasons(None, 1, peak_fraction_lo=out["peak_fraction_lo"])
    assert "interval above 1" in verdict


def test_work_slowed_alone_lowers_the_fraction_and_spreads_it():
    out = paired(FakeMachine(work_slow=lambda i: 2.0 if i % 7 < 3 else 1.0))
    assert out["peak_fraction"] < 0.5
    assert out["peak_fraction_lo"] <= out["peak_fraction"] <= out["peak_fraction_hi"]


def _ev(**kw) -> Evidence:
    base = dict(load1=0.5, cpu_share=0.99, main_cpu_share=0.99, ctx_switches_per_s=2.0,
                steal_fraction=0.0, wall_s=1.0)
    return Evidence(**{**base, **kw})


def test_clean_evidence_has_no_reasons():
    assert reasons(_ev(), 2, cores=2) == ""


@pytest.mark.parametrize("kw, needle", [
    ({"main_cpu_share": 0.61}, "main_cpu_share 0.61 < 0.90"),
    ({"ctx_switches_per_s": 400.0}, "ctx_switches 400/s"),
    ({"steal_fraction": 0.2}, "steal 20%"),
])
def test_each_signal_is_a_reason(kw, needle):
    assert needle in reasons(_ev(**kw), 2, cores=2)


def test_several_reasons_are_all_named():
    verdict = reasons(_ev(main_cpu_share=0.61, ctx_switches_per_s=140.0), 2, cores=2)
    assert verdict == "main_cpu_share 0.61 < 0.90; ctx_switches 140/s > 50/s"


def test_a_lagging_load_alone_is_no_verdict():
    # the 1-minute average stays high after other work stopped: recorded, not a flag
    assert reasons(_ev(load1=3.7), 2, cores=2) == ""


def test_low_process_share_of_small_work_alone_is_not_a_flag():
    # a 2-thread point whose ops are too small to use both threads on a quiet machine
    assert reasons(_ev(cpu_share=0.5), 2, cores=2) == ""


def test_probe_measures_a_busy_main_thread():
    with Probe(1) as p:
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            pass
    assert p.evidence.main_cpu_share > 0.5 and p.evidence.wall_s >= 0.2
    with Probe(1) as p:
        time.sleep(0.2)  # off-CPU: what a descheduled thread looks like to the probe
    assert p.evidence.main_cpu_share < 0.5
    assert "main_cpu_share" in reasons(p.evidence, 1)


def test_busy_machine_line(monkeypatch):
    import mlpbench.measure.contention as c

    monkeypatch.setattr(c, "_load1", lambda: 3.7)
    line = machine_busy(2, cores=2)
    assert "load 3.7 on 2 cores" in line and "--retries" in line
    monkeypatch.setattr(c, "_load1", lambda: 0.3)
    assert machine_busy(2, cores=2) == ""


FAKE = peak.PeakResult(device="cpu", mode="fp32", gflops=85.4, size=64, threads=1,
                       torch="x", machine_id="m", units="AVX2", measured_at=time.time(),
                       load1=3.5, spread=0.05)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: calls.append(1) or FAKE)
    return calls


def test_poisoned_cached_peak_is_measured_again(cache):
    import torch

    from mlpbench.devices import threads

    with threads(1):
        assert peak.get_peak("cpu", "fp32").gflops == 85.4 and cache == [1]
        # a later quiet run's interleaved yardstick: 215 GFLOP/s, far beyond 85.4 + spread
        note = peak.note_observed("cpu", "fp32", torch.get_num_threads(), 215.0)
        assert "85.4" in note and "dropped" in note
        peak.get_peak("cpu", "fp32")
    assert cache == [1, 1]


def test_a_cached_peak_within_its_spread_is_kept(cache):
    from mlpbench.devices import threads

    with threads(1):
        peak.get_peak("cpu", "fp32")
        assert peak.note_observed("cpu", "fp32", 1, 85.4 * 1.08) == ""
        peak.get_peak("cpu", "fp32")
    assert cache == [1]


def test_old_or_undated_cached_peak_is_measured_again(cache, monkeypatch):
    from mlpbench.devices import threads

    with threads(1):
        peak.get_peak("cpu", "fp32")
        path = peak.cache_path()
        data = json.loads(path.read_text())
        (key,) = data
        data[key]["measured_at"] = time.time() - 30 * 86400  # a month old
        path.write_text(json.dumps(data))
        peak.get_peak("cpu", "fp32")
        assert cache == [1, 1]
        data[key].pop("measured_at")  # written before times were recorded
        path.write_text(json.dumps(data))
        peak.get_peak("cpu", "fp32")
        assert cache == [1, 1, 1]
        monkeypatch.setenv("MLPBENCH_PEAK_MAX_AGE_DAYS", "60")
        data = json.loads(path.read_text())
        data[key]["measured_at"] = time.time() - 30 * 86400
        path.write_text(json.dumps(data))
        peak.get_peak("cpu", "fp32")
        assert cache == [1, 1, 1]


def _rows() -> pd.DataFrame:
    base = dict(status="ok", device="cpu", framework="torch", batch=32, samples_per_s=1.0,
                gflops=10.0, reason="")
    return pd.DataFrame([
        {**base, "phase": "infer", "params": 100, "peak_fraction": 1.5,
         "peak_fraction_lo": 1.2, "peak_fraction_hi": 1.8,
         "contention": "peak_fraction interval above 1 (lo 1.20)"},
        {**base, "phase": "infer", "params": 200, "peak_fraction": 0.6,
         "peak_fraction_lo": 0.55, "peak_fraction_hi": 0.65, "contention": ""},
        {**base, "phase": "train_sgd", "params": 300, "peak_fraction": 0.9,
         "peak_fraction_lo": 0.8, "peak_fraction_hi": 1.0, "contention": "load 3.7 > 2 cores"},
    ])


def test_summary_never_names_a_flagged_row_best():
    text = sweep_text(_rows())
    assert "2 of 3 measured rows were taken on a busy machine" in text
    assert "P=200" in text and "60%" in text
    assert "150%" not in text and "P=100" not in text and "P=300" not in text
    assert len(clean_rows(_rows())) == 1


def test_summary_with_no_clean_row_states_no_fraction():
    rows = _rows().assign(contention="load 9.0 > 2 cores")
    text = sweep_text(rows)
    assert "no clean row" in text and "%" not in text.split("no clean row")[1]
    assert not any(math.isnan(v) for v in rows["peak_fraction"])
