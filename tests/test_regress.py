"""The regression gate: input validation, decisions (oracles: numpy), and end to end on a
throw-away git repository holding a copy of mlpbench and a fake benchmark suite."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.gate.config import GateConfig
from mlpbench.gate.core import regress
from mlpbench.gate.git import resolve_commits
from mlpbench.gate.stats import (
    Verdict,
    block_ratios,
    count_verdict,
    exact_verdict,
    exit_code,
    markdown,
    paired_ratio,
    side_problem,
    wall_verdict,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = '''# {comment}
WORK = {work}


def spin(n):
    s = 0
    for i in range(n):
        s += i
    return s


class Fake:
    def time_spin(self):
        {body}

    def track_value(self):
        return {value}
'''
FAST = dict(tiers=("exact", "wall"), rounds=5, blocks=2, wall=("Fake.time_spin",),
            exact=("Fake.track_value",))


@pytest.mark.parametrize("factor", [math.nan, math.inf, 1.0, 0.5, -2.0, 1e308, 10.5])
def test_bad_factors_are_usage_errors(factor):
    with pytest.raises(UsageError):
        GateConfig(factor=factor)
    with pytest.raises(UsageError):
        GateConfig(insn_factor=factor)


@pytest.mark.parametrize("argv", [["regress", "", ""], ["regress", "HEAD~1", "HEAD", "--factor",
                                                          "nan"],
                                  ["regress", "HEAD~1", "HEAD", "--factor", "inf"],
                                  ["regress", "HEAD~1", "HEAD", "--factor", "1"],
                                  ["regress", "no-such-commit-xyz", "HEAD"],
                                  ["regress", "HEAD", "HEAD"],
                                  ["regress", "HEAD~1", "HEAD", "--tiers", "bogus"],
                                  ["regress", "HEAD~1", "HEAD", "--factor", "1e308"],
                                  ["regress", "HEAD~1", "HEAD", "--insn-factor", "11"],
                                  ["regress", "HEAD~1", "HEAD", "--time-floor", "nan"],
                                  ["regress", "HEAD~1", "HEAD", "--time-floor", "-1"],
                                  ["regress", "HEAD", "HEAD~1"]])
def test_cli_usage_errors_exit_2_on_stderr(argv, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("mlpbench: error:")


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(repo, msg, **fake):
    text = FAKE.format(**{"work": 1, "body": "spin(20000 * WORK)", "value": 42.0, "comment": "", **fake})
    (repo / "benchmarks" / "bench_fake.py").write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", msg)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    """A git repo: a copy of mlpbench, a fake suite; base commit on branch main."""
    r = tmp_path / "repo"
    shutil.copytree(os.path.join(ROOT, "mlpbench"), r / "mlpbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(r / "benchmarks")
    (r / "benchmarks" / "__init__.py").write_text("")
    os.makedirs(r / "scripts")
    shutil.copy(os.path.join(ROOT, "scripts", "ci_regress.sh"), r / "scripts")
    _git(tmp_path, "init", "-q", "-b", "main", str(r))
    _git(r, "config", "user.email", "t@t")
    _git(r, "config", "user.name", "t")
    _commit(r, "base")
    return r


def test_merge_base_is_used(repo):
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "feature")
    head = _commit(repo, "feature", value=43.0)
    _git(repo, "checkout", "-q", "main")
    later = _commit(repo, "main moves on", value=44.0)
    assert resolve_commits(str(repo), later, head) == (base, head)
    assert resolve_commits(str(repo), later, head, merge_base=False) == (later, head)
    with pytest.raises(UsageError, match="same commit"):
        resolve_commits(str(repo), head, head)
    with pytest.raises(UsageError, match="is an ancestor of BASE"):  # `regress main main~1`
        resolve_commits(str(repo), later, base)


def test_exact_tier_ok_and_regressed(repo, tmp_path):
    base = _git(repo, "rev-parse", "HEAD")
    aa = _commit(repo, "comment only", comment="A/A")
    cfg = GateConfig(**{**FAST, "tiers": ("exact",)})
    assert regress(base, aa, config=cfg, repo=str(repo), echo=lambda s: None) == 0
    worse = _commit(repo, "more steps", value=43.0)
    out = tmp_path / "out"
    assert regress(base, worse, config=cfg, repo=str(repo), out=str(out),
                   echo=lambda s: None) == 1
    doc = json.loads((out / "gate.json").read_text())
    assert doc["verdicts"][0]["verdict"] == "regressed" and doc["context"]["exit_code"] == 1
    table = (out / "summary.md").read_text()
    assert "| exact | `Fake.track_value` | **regressed** | **1.024** | 42 | 43 |" in table
    assert "ratio > 1.3" in table and "ratio > 1.02" in table  # the thresholds in force
    from mlpbench.results.gates import load_gates  # the report reads what the gate wrote

    frame = load_gates([out])
    assert frame[["bench", "verdict", "exit_code"]].values.tolist() == [
        ["Fake.track_value", "regressed", 1]]


def test_three_times_the_work_is_caught(repo):
    base = _git(repo, "rev-parse", "HEAD")
    slow = _commit(repo, "x3 work", work=3)
    cfg = GateConfig(**{**FAST, "tiers": ("wall",)})
    assert regress(base, slow, config=cfg, repo=str(repo), echo=lambda s: None) == 1


def test_broken_head_exits_3_through_the_script_and_keeps_the_checkout(repo, tmp_path):
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "pr")
    _commit(repo, "raises in the timed path", body="raise RuntimeError('boom')")
    env = dict(os.environ, MLPBENCH_PYTHON=sys.executable,
               MLPBENCH_REGRESS_OUT=str(tmp_path / "ci"), GITHUB_STEP_SUMMARY=str(tmp_path / "s"))
    proc = subprocess.run(["bash", str(repo / "scripts" / "ci_regress.sh"), base, "HEAD", "1.3",
                           "--tiers", "exact,wall", "--rounds", "3",
                           "--wall-bench", "Fake.time_spin"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "pr"
    assert "RuntimeError: boom" in (tmp_path / "s").read_text()
    assert _git(repo, "status", "--porcelain") == ""


def test_script_usage_and_unknown_commit(repo):
    script = str(repo / "scripts" / "ci_regress.sh")
    env = dict(os.environ, MLPBENCH_PYTHON=sys.executable)
    assert subprocess.run(["bash", script], capture_output=True, env=env).returncode == 2
    proc = subprocess.run(["bash", script, "nope", "HEAD"], capture_output=True, env=env,
                          text=True)
    assert proc.returncode == 2 and "unknown BASE commit" in proc.stderr


def test_paired_ratio_against_numpy():
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 2, 15)
    head = base * rng.uniform(1.4, 1.6, 15)
    est, low, high = paired_ratio(base, head)
    logs = np.log(head / base)
    blocks = np.exp([logs[i:i + 2].mean() for i in range(0, 15, 2)])  # oracle: numpy
    assert est == pytest.approx(np.median(blocks))
    assert 1.4 <= low <= est <= high <= 1.6
    assert paired_ratio(base, head, size=1)[0] == pytest.approx(np.median(head / base))


def test_wall_verdicts():
    rng = np.random.default_rng(1)
    base = rng.uniform(1.0, 1.1, 12)
    assert wall_verdict("b", base, base * 1.5, 1.3).verdict == "regressed"
    assert wall_verdict("b", base, base * 1.01, 1.3).verdict == "unchanged"
    assert wall_verdict("b", base, base / 1.5, 1.3).verdict == "improved"
    # a big median ratio whose interval reaches below 1 is not significant
    noisy = base * np.array([0.5, 0.5, 3.0, 3.0] * 3)  # whole ABBA cycles swing
    v = wall_verdict("b", base, noisy, 1.3)
    assert v.low < 1 and v.verdict == "unchanged"


def test_count_exact_and_exit_codes():
    assert count_verdict("b", 100, 105, 1.02).verdict == "regressed"
    assert count_verdict("b", 100, 101, 1.02).verdict == "unchanged"
    assert exact_verdict("b", 10, None).verdict == "regressed"
    assert exact_verdict("b", 10, 9).verdict == "improved"
    ok = Verdict("wall", "b", "unchanged")
    assert exit_code([ok]) == 0
    assert exit_code([ok, Verdict("insn", "c", "regressed")]) == 1
    assert exit_code([Verdict("insn", "c", "regressed"), Verdict("wall", "d", "broken")]) == 3
    assert exit_code([Verdict("wall", "d", "not compared")]) == 4
    assert exit_code([]) == 4
    broken = side_problem("wall", "b", {"status": "ok"}, {"status": "failed", "error": "E"})
    assert broken.verdict == "broken" and "E" in broken.note
    absent = side_problem("wall", "b", {"status": "ok"}, {"status": "absent"})
    assert absent.verdict == "missing" and "not declared" in absent.note
    retired = side_problem("wall", "b", {"status": "ok"}, {"status": "skipped"}, "RETIRED line 2")
    assert retired.verdict == "retired" and "RETIRED line 2" in retired.note
    assert exit_code([ok, absent]) == 3 and exit_code([ok, retired]) == 0
    assert exit_code([retired]) == 4  # nothing compared
    assert side_problem("wall", "b", {"status": "skipped"}, {"status": "absent"}).verdict == \
        "not compared"


def test_markdown_and_strict_json():
    v = Verdict("wall", "b", "regressed", 1e-3, 2e-3, 2.0, 1.5, math.nan)
    assert json.dumps(v.as_dict(), allow_nan=False)
    table = markdown([v], "title")
    assert "| wall | `b` | **regressed** | **2.000**" in table and "| 1 ms | 2 ms |" in table


def test_block_ratios_and_block_interval():
    base = np.array([1.0, 2.0, 1.0, 4.0, 1.0])
    head = base * np.array([1.0, 4.0, 2.0, 2.0, 3.0])
    # oracle: geometric means of (1, 4), (2, 2) and the lone 3
    assert np.allclose(block_ratios(base, head), [2.0, 2.0, 3.0])
    # rounds that move together (a load swing shared by consecutive rounds) are one piece of
    # evidence: the block interval is wider than the per-round one
    rng = np.random.default_rng(3)
    swing = np.repeat(rng.normal(0, 0.08, 6), 2)
    b = np.ones(12)
    h = np.exp(swing + rng.normal(0, 0.01, 12))
    _, lo1, hi1 = paired_ratio(b, h, size=1)
    _, lo2, hi2 = paired_ratio(b, h)
    assert hi2 - lo2 > hi1 - lo1
    assert lo2 <= np.median(block_ratios(b, h)) <= hi2
