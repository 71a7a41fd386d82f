import subprocess
import sys
from pathlib import Path

import pytest

import mlpbench.regress as R
from mlpbench.cli import main

TABLE = """
Benchmarks that have improved:

| Change   | Before [aaaa1111] <main>   | After [bbbb2222] <pr>   |   Ratio | Benchmark (Parameter)                                       |
|----------|----------------------------|-------------------------|---------|-------------------------------------------------------------|
| -        | 2.00±0.01ms                | 1.00±0.01ms             |    0.50 | bench_hardware.TrainStep.time_step('cpu', 64, 2, 32, 'sgd') |

Benchmarks that have stayed the same:

| Change   | Before [aaaa1111] <main>   | After [bbbb2222] <pr>   | Ratio   | Benchmark (Parameter)                                        |
|----------|----------------------------|-------------------------|---------|--------------------------------------------------------------|
|          | n/a                        | n/a                     | n/a     | bench_hardware.TrainStep.time_step('cuda', 64, 2, 32, 'sgd') |
|          | 341±3μs                    | 340±6μs                 | 0.99    | bench_hardware.TrainStep.time_step('cpu', 64, 2, 32, 'adam') |
|          | 1.00±0.3ms                 | 1.08±0.2ms              | ~1.08   | bench_optimizers.OptimizerStep.time_step('cpu', 'sgd')       |
"""

WORSE = """
Benchmarks that have got worse:

| Change   | Before [aaaa1111] <main>   | After [bbbb2222] <pr>   |   Ratio | Benchmark (Parameter)                                       |
|----------|----------------------------|-------------------------|---------|-------------------------------------------------------------|
| +        | 164±1μs                    | 294±30μs                |    1.79 | bench_hardware.TrainStep.time_step('cpu', 64, 2, 32, 'sgd') |
"""

BROKEN = """
| Change   | Before [aaaa1111]   | After [bbbb2222]   | Ratio   | Benchmark (Parameter)               |
|----------|---------------------|--------------------|---------|-------------------------------------|
| !        | 12.0±0.1ms          | failed             | n/a     | bench_newton.HessianBuild.time_vmap |
"""


def test_parse_unchanged_and_improved():
    r = R.parse_compare(TABLE)
    assert r.improved == ["bench_hardware.TrainStep.time_step('cpu', 64, 2, 32, 'sgd')"]
    assert r.unchanged == 2 and r.not_compared == 1
    assert r.exit_code == R.EXIT_OK
    assert r.verdict().startswith("OK")


def test_parse_regressed_and_failed():
    r = R.parse_compare(TABLE + WORSE)
    assert len(r.regressed) == 1 and r.exit_code == R.EXIT_REGRESSED
    assert "REGRESSED" in r.verdict()
    b = R.parse_compare(TABLE + WORSE + BROKEN)
    assert b.failed == ["bench_newton.HessianBuild.time_vmap"]
    assert b.exit_code == R.EXIT_FAILED


def _fake_asv(monkeypatch, stdout, returncode=0):
    calls = []

    def fake(args, config, env=None):
        calls.append(args)
        return subprocess.CompletedProcess(args, returncode, stdout, "")

    monkeypatch.setattr(R, "_asv", fake)
    return calls


@pytest.mark.parametrize("stdout, rc, expected", [
    (TABLE, 0, R.EXIT_OK),
    (TABLE + WORSE, 1, R.EXIT_REGRESSED),  # asv may exit 1 with a table: the table decides
    (TABLE + BROKEN, 0, R.EXIT_FAILED),
    ("· Did not find results for commit deadbeef", 1, R.EXIT_CANNOT_RUN),
])
def test_regress_exit_codes(monkeypatch, tmp_path, stdout, rc, expected):
    cfg = tmp_path / "asv.conf.json"
    cfg.write_text("{}")
    calls = _fake_asv(monkeypatch, stdout, rc)
    lines = []
    assert R.regress("A", "B", config=str(cfg), echo=lines.append) == expected
    assert calls[-1][:3] == ["compare", "--factor", "1.1"]


def test_regress_run_mode_runs_both_commits(monkeypatch, tmp_path):
    cfg = tmp_path / "asv.conf.json"
    cfg.write_text("{}")
    calls = _fake_asv(monkeypatch, TABLE)
    assert R.regress("A", "B", config=str(cfg), run=True, bench="TrainStep",
                     echo=lambda s: None) == 0
    assert calls[0][:2] == ["run", "A^!"] and calls[1][:2] == ["run", "B^!"]
    assert "-b" in calls[0]


def test_regress_bad_input(tmp_path, capsys):
    assert main(["regress", "A", "B", "--config", str(tmp_path / "missing.json")]) == 2
    assert main(["regress", "A", "B", "--factor", "0.9"]) == 2
    assert main(["regress", "A"]) == 2


def test_asv_missing_is_could_not_run(monkeypatch, tmp_path):
    cfg = tmp_path / "asv.conf.json"
    cfg.write_text("{}")

    def missing(*a, **k):
        raise FileNotFoundError("asv is not installed")

    monkeypatch.setattr(R, "_asv", missing)
    assert R.regress("A", "B", config=str(cfg), echo=lambda s: None) == R.EXIT_CANNOT_RUN


@pytest.mark.slow
def test_injected_slowdown_is_flagged_identical_code_is_not():
    """End to end, real asv runs in a throw-away clone: A/A passes, a 1.5x slower training
    step is flagged (scripts/regress_selftest.py measures rates over more runs)."""
    root = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                      capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    sys.path.insert(0, str(root / "scripts"))
    try:
        import regress_selftest
    finally:
        sys.path.pop(0)
    out = regress_selftest.run_selftest(aa=1, factors=[1.5], repeats=1, asv_factor=1.1,
                                        log=lambda s: None)
    assert out["aa"] == [R.EXIT_OK]
    assert out["slowdowns"]["1.5"] == [R.EXIT_REGRESSED]
