"""The matmul peak: measurement, matrix-unit detection, and a cache that survives bad files."""

import json
import time

import pytest

import mlpbench.measure.peak as peak
from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.measure.peak import PeakResult, cpu_flags, get_peak, matrix_units, measure_peak
from mlpbench.measure.timing import TimerConfig

FAST = TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01, min_block_s=0)
FAKE = PeakResult(device="cpu", mode="fp32", gflops=12.5, size=64, threads=1, torch="x",
                  machine_id="m", units="AVX2", measured_at=time.time())


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(peak, "CPU_SIZES", (32, 64))


def test_measured_peak_is_a_positive_rate_with_units():
    r = measure_peak("cpu", "fp32", config=FAST)
    assert r.gflops > 0 and r.size in (32, 64) and r.units
    assert r.measured_at > 0 and r.spread >= 0 and r.load1 >= 0
    assert measure_peak("cpu", "bf16", config=FAST).mode == "bf16"
    with pytest.raises(UsageError, match="tf32"):
        measure_peak("cpu", "tf32")


@pytest.mark.parametrize("content", ["[1, 2]", "null", "{broken", '"text"', "7"])
def test_wrong_shaped_cache_is_empty_in_one_line(content, capsys, monkeypatch):
    path = peak.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: FAKE)
    assert get_peak("cpu", "fp32") == FAKE
    err = capsys.readouterr().err
    assert "corrupt cache" in err and len(err.strip().splitlines()) == 1
    assert isinstance(json.loads(path.read_text()), dict)  # rewritten as an object


@pytest.mark.parametrize("entry", [None, [1], "x", {"gflops": 1.0}, {"bogus": 1}])
def test_wrong_shaped_entry_is_measured_again(entry, monkeypatch):
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: FAKE)
    first = get_peak("cpu", "fp32")
    path = peak.cache_path()
    cache = json.loads(path.read_text())
    (key,) = cache
    path.write_text(json.dumps({key: entry}))
    calls = []
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: calls.append(1) or FAKE)
    assert get_peak("cpu", "fp32") == first and calls == [1]


def test_cached_entry_is_reused_and_old_entries_without_units_load(monkeypatch):
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: FAKE)
    get_peak("cpu", "fp32")
    path = peak.cache_path()
    cache = json.loads(path.read_text())
    (key,) = cache
    old = {k: v for k, v in cache[key].items() if k != "units"}  # before units existed
    # (entries written before measurement times were recorded are re-measured:
    # tests/test_contention.py)
    path.write_text(json.dumps({key: old}))
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: pytest.fail("not cached"))
    assert get_peak("cpu", "fp32").gflops == FAKE.gflops


def test_matrix_units_from_cpu_flags(tmp_path):
    assert matrix_units("cpu", "bf16", {"amx_bf16", "avx512_bf16"}) == "AMX-BF16"
    assert matrix_units("cpu", "bf16", {"avx512_bf16"}) == "AVX512-BF16"
    assert "no bf16" in matrix_units("cpu", "bf16", {"avx2"})
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_tile\n\nflags\t: other\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "amx_tile"}
    assert cpu_flags(str(tmp_path / "missing")) == set()


def test_peak_cli_prints_units_and_bandwidth(capsys, monkeypatch):
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: FAKE)
    import mlpbench.measure.bandwidth as bw

    monkeypatch.setattr(bw, "CPU_ELEMENTS", 2**14)
    assert main(["peak", "--bandwidth", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "12.5 GFLOP/s" in out and "AVX2" in out and "triad" in out


def test_physical_ceiling_from_flags_and_clock(monkeypatch):
    """cores x FLOP/cycle x clock, with the assumptions named; None where not computable."""
    bound, how = peak.ceiling("cpu", "fp32", 1, flags={"sse2", "avx", "avx2"}, clock_ghz=3.0)
    assert bound == pytest.approx(1 * 32 * 3.0) and "avx2" in how and "upper bound" in how
    bf, _ = peak.ceiling("cpu", "bf16", 1, flags={"avx512f", "avx512_bf16"}, clock_ghz=2.0)
    assert bf == pytest.approx(128 * 2.0)
    plain, _ = peak.ceiling("cpu", "bf16", 1, flags={"avx512f"}, clock_ghz=2.0)
    assert plain == pytest.approx(64 * 2.0)  # no bf16 unit: converted to fp32
    cores = len(__import__("os").sched_getaffinity(0))
    many, _ = peak.ceiling("cpu", "fp32", 10_000, flags={"avx2"}, clock_ghz=1.0)
    assert many == pytest.approx(cores * 32)  # never more cores than the process may use
    assert peak.ceiling("cpu", "fp32", 1, flags=set(), clock_ghz=3.0)[0] is None
    assert peak.ceiling("cuda", "fp32", 1)[0] is None
    monkeypatch.setattr(peak, "cpu_clock_ghz", lambda: None)
    assert peak.ceiling("cpu", "fp32", 1, flags={"avx2"})[0] is None


def test_peak_cli_says_when_and_under_what_load(capsys, monkeypatch):
    old = PeakResult(**{**FAKE.__dict__, "measured_at": time.time() - 3 * 86400, "load1": 3.7,
                        "spread": 0.25})
    monkeypatch.setattr(peak, "measure_peak", lambda dev, mode: old)
    assert main(["peak", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "3.0 days ago" in out and "load 3.7" in out and "spread 25%" in out
    assert "physical ceiling" in out
