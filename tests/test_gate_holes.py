"""The gate's holes, closed: each case end to end through ``scripts/ci_regress.sh`` on a
throw-away repository (a copy of mlpbench and a fake suite), its exit code asserted."""

import os
import subprocess
import sys

import pytest

from mlpbench.gate import side
from mlpbench.gate.config import GateConfig, read_retired, retired_by
from mlpbench.gate.core import regress
from tests.test_regress import FAKE, _commit, _git, repo  # noqa: F401 - the fixture

ARGS = ["--tiers", "exact,wall", "--rounds", "3", "--wall-bench", "Fake.time_spin",
        "--exact-bench", "Fake.track_value"]


def _gate(repo, tmp_path, *extra, args=ARGS):  # noqa: F811
    base = _git(repo, "rev-parse", "main")
    env = dict(os.environ, MLPBENCH_PYTHON=sys.executable,
               MLPBENCH_REGRESS_OUT=str(tmp_path / "ci"), GITHUB_STEP_SUMMARY=str(tmp_path / "s"))
    proc = subprocess.run(["bash", str(repo / "scripts" / "ci_regress.sh"), base, "HEAD", "1.3",
                           *args, *extra], capture_output=True, text=True, env=env,
                          check=False, timeout=300)
    summary = (tmp_path / "s").read_text() if (tmp_path / "s").exists() else ""
    return proc, summary


def _head(repo, msg, text=None, **fake):  # noqa: F811
    _git(repo, "checkout", "-q", "-B", "pr", "main")
    if text is not None:
        (repo / "benchmarks" / "bench_fake.py").write_text(text)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", msg)
    else:
        _commit(repo, msg, **fake)


def test_deleted_benchmark_fails_the_gate(repo, tmp_path):  # noqa: F811
    _head(repo, "rename the class", FAKE.format(work=1, body="spin(20000)", value=42.0,
                                                 comment="").replace("class Fake", "class Renamed"))
    proc, summary = _gate(repo, tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "BROKEN ON HEAD" in summary
    for bench in ("Fake.time_spin", "Fake.track_value"):
        assert f"| `{bench}` | **missing** absent on HEAD" in summary
    assert "not declared in benchmarks/RETIRED" in summary
    assert "retired benchmarks: none used (0 entries" in summary


def test_declared_retirement_is_accepted_and_named(repo, tmp_path):  # noqa: F811
    text = FAKE.format(work=1, body="spin(20000)", value=42.0, comment="")
    _head(repo, "retire track_value", text.split("    def track_value")[0])
    (repo / "benchmarks" / "RETIRED").write_text("# retired on purpose\nFake.track_value\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "declare it")
    proc, summary = _gate(repo, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| `Fake.track_value` | retired absent on HEAD" in summary
    assert "retired benchmarks: declared in benchmarks/RETIRED line 2" in summary


def test_skipped_on_head_fails_the_gate(repo, tmp_path):  # noqa: F811
    _head(repo, "skip it", body="raise NotImplementedError('too heavy today')")
    proc, summary = _gate(repo, tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "| `Fake.time_spin` | **missing** skipped on HEAD too heavy today" in summary


def test_hanging_head_is_stopped_and_named(repo, tmp_path):  # noqa: F811
    _head(repo, "loops forever", body="while True:\n            pass")
    proc, summary = _gate(repo, tmp_path, "--time-floor", "3")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "| `Fake.time_spin` | **broken** HEAD: load Fake.time_spin: exceeded its time " \
           "limit of 3 s" in summary
    assert "| `Fake.track_value` | unchanged" in summary  # the next benchmark still ran


def test_printing_library_on_head_is_not_a_reply(repo, tmp_path):  # noqa: F811
    init = repo / "mlpbench" / "__init__.py"
    _git(repo, "checkout", "-q", "-B", "pr", "main")
    init.write_text('print(\'{"ready": true}\')\nprint("hello from HEAD")\n' + init.read_text())
    _commit(repo, "prints on import", body="print('noise'); spin(20000)")
    proc, summary = _gate(repo, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| `Fake.track_value` | unchanged" in summary and "internal error" not in proc.stdout


@pytest.mark.parametrize("where", ["out", "summary", "file"])
def test_unwritable_outputs_are_refused_before_measuring(repo, tmp_path, where):  # noqa: F811
    _head(repo, "a/a", comment="A/A")
    (tmp_path / "afile").write_text("x")
    extra = {"out": ["--out", "/proc/nope"], "summary": ["--summary", "/proc/nope/x.md"],
             "file": ["--out", str(tmp_path / "afile")]}[where]
    proc, _ = _gate(repo, tmp_path, *extra)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("mlpbench: error: --")
    assert "regress: base" not in proc.stdout  # refused before any worker started


def test_protocol_mismatch_is_an_internal_error_never_1(repo, monkeypatch):  # noqa: F811
    base = _git(repo, "rev-parse", "HEAD")
    head = _commit(repo, "a/a", comment="A/A")
    monkeypatch.setattr(side, "VERSION", 99)
    lines = []
    cfg = GateConfig(tiers=("exact",), exact=("Fake.track_value",))
    assert regress(base, head, config=cfg, repo=str(repo), echo=lines.append) == 4
    assert any("internal error of the gate: ProtocolError" in s for s in lines)


def test_script_turns_an_unexplained_exit_1_into_4(repo, tmp_path):  # noqa: F811
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, MLPBENCH_PYTHON=str(fake), MLPBENCH_REGRESS_OUT=str(tmp_path / "o"))
    proc = subprocess.run(["bash", str(repo / "scripts" / "ci_regress.sh"), "main", "HEAD"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 4 and "not a regression" in proc.stderr


def test_retired_entries_match_id_method_or_class(tmp_path):
    os.makedirs(tmp_path / "benchmarks")
    (tmp_path / "benchmarks" / "RETIRED").write_text("A.time_x  # gone\n\nB\n# C\n")
    retired = read_retired(str(tmp_path))
    assert retired == {"A.time_x": "benchmarks/RETIRED line 1", "B": "benchmarks/RETIRED line 3"}
    assert retired_by("A.time_x('cpu', 1)", retired) == "benchmarks/RETIRED line 1"
    assert retired_by("B.track_y", retired) == "benchmarks/RETIRED line 3"
    assert retired_by("A.time_xy", retired) is None and retired_by("Bee.t", retired) is None
    assert read_retired(str(tmp_path / "nowhere")) == {}


def test_the_gate_judges_from_its_own_tree_not_from_head(repo, tmp_path):  # noqa: F811
    """A HEAD that rewrites the gate to always pass, and deletes a benchmark, is still judged
    by the gate of the tree the script runs from (the merge-base's export in CI)."""
    gate = tmp_path / "gate"
    subprocess.run(["git", "-C", str(repo), "archive", "-o", str(tmp_path / "g.tar"), "main"],
                   check=True)
    os.makedirs(gate)
    subprocess.run(["tar", "-x", "-C", str(gate), "-f", str(tmp_path / "g.tar")], check=True)
    _git(repo, "checkout", "-q", "-B", "pr", "main")
    stats = repo / "mlpbench" / "gate" / "stats.py"
    stats.write_text(stats.read_text() + "\n\ndef exit_code(verdicts):\n    return 0\n")
    text = FAKE.format(work=1, body="spin(20000)", value=42.0, comment="")
    (repo / "benchmarks" / "bench_fake.py").write_text(text.split("    def track_value")[0])
    _git(repo, "commit", "-qam", "a gate that always passes, a benchmark gone")
    env = dict(os.environ, MLPBENCH_PYTHON=sys.executable, MLPBENCH_REGRESS_REPO=str(repo),
               MLPBENCH_REGRESS_OUT=str(tmp_path / "ci"))
    proc = subprocess.run(["bash", str(gate / "scripts" / "ci_regress.sh"), "main", "HEAD",
                           *ARGS], capture_output=True, text=True, env=env, check=False,
                          timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "| `Fake.track_value` | **missing**" in proc.stdout
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "pr"


def test_sigterm_mid_run_says_no_verdict(repo, tmp_path):  # noqa: F811
    import signal
    import time

    _head(repo, "loops forever", body="while True:\n            pass")
    proc = subprocess.Popen([sys.executable, "-u", "-m", "mlpbench.cli", "regress", "main", "HEAD",
                             "--repo", str(repo), *ARGS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("regress: base")  # measuring has begun
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "terminated; no verdict" in err and "--resume" not in err
