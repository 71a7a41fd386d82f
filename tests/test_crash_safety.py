"""Crash safety of every study, from outside: kill -9, SIGTERM and Ctrl-C mid-run, then
``--resume``; two writers on one ``--out``; a stale lock left by a dead process.

Each study runs as a real ``python -m mlpbench.cli`` subprocess on a tiny grid; a kill comes
once its main table holds at least one row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlpbench.cli import main
from mlpbench.results import read_table
from mlpbench.results.store import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--threads", "1", "--quiet"]
#: study -> (argv without --out, main table, key columns of one item, number of items)
STUDIES = {
    "sweep": (["sweep", "--devices", "cpu", "--input-dims", "8", "--widths", "8,16,24",
               "--depths", "1", "--batches", "8", "--phases", "infer,forward", "--budget", "0.2",
               "--no-isolate"], "sweep", ["width", "phase"], 6),
    "converge": (["converge", "-W", "quadratic", "-O", "gd", "-O", "sgd", "--seeds", "2",
                  "--max-steps", "100000", "--max-seconds", "0.3"], "converge",
                 ["optimizer", "seed"], 4),
    "newton-cost": (["newton-cost", "--widths", "4,8,12", "--no-target", "--method",
                     "first_order", "--batch", "8"], "newton_cost", ["params", "op"], None),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "MLPBENCH_CACHE": str(cache), "PYTHONPATH": str(ROOT)}


def start(argv, out: Path, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlpbench.cli", *argv, *COMMON, "--out",
                             str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_rows(proc: subprocess.Popen, table: Path, n: int = 1, timeout: float = 120) -> None:
    """Wait until ``table`` holds ``n`` data rows while ``proc`` still runs."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if table.exists() and len(table.read_text().strip().splitlines()) > n:
            if proc.poll() is None:
                return
        if proc.poll() is not None:
            pytest.fail(f"the study ended (rc {proc.returncode}) before it could be killed: "
                        f"{proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{table} got no {n} rows within {timeout} s")


def finish(argv, out: Path, capsys, *extra: str) -> tuple[int, str]:
    """Run a study to its end in this process (no interpreter start-up)."""
    capsys.readouterr()
    code = main([*argv, *COMMON, "--out", str(out), *extra])
    return code, capsys.readouterr().err


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("study", list(STUDIES))
def test_kill9_then_resume_loses_only_the_item_in_flight(study, tmp_path, env, capsys,
                                                        monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", env["MLPBENCH_CACHE"])
    argv, kind, keys, total = STUDIES[study]
    out = tmp_path / "out"
    proc = start(argv, out, env)
    wait_rows(proc, out / f"{kind}.csv")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_table(out / f"{kind}.csv")
    assert len(before) >= 1
    assert (out / LOCK_NAME).exists()  # a dead writer's lock stays behind ...

    code, err = finish(argv, out, capsys, "--resume")
    assert code == 0, err
    assert "stale lock" in one_line(err)  # ... and is taken over, with a message
    after = read_table(out / f"{kind}.csv")
    assert not after.duplicated(keys).any()
    if total:
        assert len(after) == total
    kept = after.astype(str).merge(before.astype(str), on=list(before.columns))
    assert len(kept) == len(before), "rows finished before the kill were changed or lost"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    assert not (out / LOCK_NAME).exists()
    if study == "converge":  # every stored run has its trajectory, exactly once
        traj = read_table(out / "trajectories.csv")
        runs = traj.groupby(["optimizer", "seed"])["step"]
        assert set(runs.groups) == set(zip(after["optimizer"], after["seed"], strict=True))
        assert not traj.duplicated(["optimizer", "seed", "step"]).any()


@pytest.mark.slow
@pytest.mark.parametrize("study, sig, code", [("sweep", signal.SIGTERM, 143),
                                              ("newton-cost", signal.SIGTERM, 143),
                                              ("converge", signal.SIGINT, 130)])
def test_signal_exits_with_a_message_and_consistent_files(study, sig, code, tmp_path, env,
                                                          capsys, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", env["MLPBENCH_CACHE"])
    argv, kind, keys, total = STUDIES[study]
    out = tmp_path / "out"
    proc = start(argv, out, env)
    wait_rows(proc, out / f"{kind}.csv")
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "--resume" in one_line(stderr)
    table = read_table(out / f"{kind}.csv")
    assert len(table) >= 1 and not table.duplicated(keys).any()
    assert not (out / LOCK_NAME).exists()
    assert not list(out.glob(".*.tmp"))
    resumed, err = finish(argv, out, capsys, "--resume")
    assert resumed == 0 and not err.strip(), err
    after = read_table(out / f"{kind}.csv")
    assert not after.duplicated(keys).any() and (total is None or len(after) == total)
    assert len(after.astype(str).merge(table.astype(str), on=list(table.columns))) == len(table)


@pytest.mark.slow
def test_two_sweeps_into_one_folder(tmp_path, env, capsys, monkeypatch):
    """The second of two concurrent writers is refused (exit 2, one line); the first's rows
    all survive."""
    monkeypatch.setenv("MLPBENCH_CACHE", env["MLPBENCH_CACHE"])
    argv, kind, keys, total = STUDIES["sweep"]
    out = tmp_path / "out"
    first = start(argv, out, env)
    wait_rows(first, out / f"{kind}.csv")
    code, err = finish(argv, out, capsys, "--resume")
    running = first.poll() is None
    assert code == 2, err
    assert "being written by another" in one_line(err)
    assert running, "the first sweep ended before the second tried"
    assert first.wait(timeout=300) == 0, first.stderr.read()
    table = read_table(out / f"{kind}.csv")
    assert len(table) == total and not table.duplicated(keys).any()


def _live_pid() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


TINY = {"sweep": ["sweep", "--devices", "cpu", "--input-dims", "4", "--widths", "8", "--depths",
                  "1", "--batches", "4", "--phases", "infer", "--budget", "0.01", "--no-isolate"],
        "converge": ["converge", "-W", "quadratic", "-O", "gd", "--seeds", "1", "--max-steps",
                     "5"],
        "newton-cost": ["newton-cost", "-d", "3", "-w", "4", "-L", "1", "--method",
                        "first_order", "--batch", "8"]}


@pytest.mark.parametrize("study", list(TINY))
def test_locked_folder_is_refused(study, tmp_path, capsys, env, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", env["MLPBENCH_CACHE"])
    holder = _live_pid()
    try:
        (tmp_path / LOCK_NAME).write_text(str(holder.pid))
        code = main([*TINY[study], *COMMON, "--out", str(tmp_path)])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2
    assert f"PID {holder.pid}" in one_line(err)
    assert (tmp_path / LOCK_NAME).read_text() == str(holder.pid)  # not taken from its owner


@pytest.mark.parametrize("study", list(TINY))
def test_stale_lock_is_taken_over(study, tmp_path, capsys, env, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", env["MLPBENCH_CACHE"])
    pid = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(str(pid))
    code = main([*TINY[study], *COMMON, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"PID {pid} is gone" in one_line(err)
    assert not (tmp_path / LOCK_NAME).exists()
    kind = STUDIES[study][1]
    assert len(pd.read_csv(tmp_path / f"{kind}.csv")) >= 1
