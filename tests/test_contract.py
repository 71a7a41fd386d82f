"""The store's one contract, held by every study command: a live writer's lock refuses a
second writer, a stale one (dead PID, or a PID now another process) is taken over, a
resume refuses a changed configuration, another mlpbench commit (unless --allow-upgrade,
then recorded) and a corrupt table, and every metadata file carries provenance and times.

A study added to :data:`mlpbench.results.STUDIES` without a case here fails
:func:`test_every_declared_study_is_tested`.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import mlpbench.studies
from mlpbench.cli import main
from mlpbench.results import FORMAT_VERSION, STUDIES
from mlpbench.results.lock import LOCK_NAME

T1 = ["--threads", "1"]
DIST = ["distributed", "--world-sizes", "1", "--input-dims", "4", "--depths", "1",
        "--batches", "8", "--steps", "3", "--warmup", "1", "--quiet", "--no-collectives", *T1]
#: command -> (argv without --out, study kind, (setting, value) that changes the config)
CASES = {
    "sweep": (["sweep", "--devices", "cpu", "--input-dims", "8", "--widths", "8", "--depths",
               "1", "--batches", "8", "--phases", "infer", "--budget", "0.1", "--no-isolate",
               "--retries", "0", "--quiet", *T1], "sweep", ("--batches", "16")),
    "converge": (["converge", "-W", "quadratic", "-O", "gd", "--seeds", "1", "--max-steps",
                  "50", "--max-seconds", "0.2", "--quiet", *T1], "converge",
                 ("--max-steps", "60")),
    "newton-cost": (["newton-cost", "--widths", "4", "--no-target", "--method", "first_order",
                     "--batch", "8", "--quiet", *T1], "newton_cost", ("--batch", "16")),
    "minima": (["minima", "--problems", "local_minima", "--inits", "1", "--batch-sizes", "64",
                "--lrs", "0.1", "--steps", "40", "--evals", "20", "--eval-every", "20", *T1],
               "minima_runs", ("--steps", "80")),
    "distributed": ([*DIST, "--widths", "8"], "distributed", ("--widths", "16")),
    "curvature-cost": (["curvature-cost", "--widths", "8", "--no-target", "--methods",
                        "sgd,adam", "--batch", "8", "--quiet", *T1], "curvature_cost",
                       ("--batch", "16")),
}


def _with(argv: list[str], flag: str, value: str) -> list[str]:
    i = argv.index(flag)
    return [*argv[:i + 1], value, *argv[i + 2:]]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("MLPBENCH_ALLOW_UPGRADE", raising=False)


def run(argv: list[str], out: Path, capsys, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([*argv, "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def refused(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and all(w in lines[0] for w in words), err


def meta_path(out: Path, kind: str) -> Path:
    return out / f"{STUDIES[kind].meta_kind}.json"


def test_every_declared_study_is_tested():
    for mod in pkgutil.iter_modules(mlpbench.studies.__path__):
        importlib.import_module(f"mlpbench.studies.{mod.name}")
    assert set(STUDIES) == {kind for _, kind, _ in CASES.values()}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(CASES))
def test_resume_contract(command, tmp_path, capsys):
    argv, kind, (flag, value) = CASES[command]
    out = tmp_path / "out"
    code, err = run(argv, out, capsys)
    assert code == 0, err
    meta = json.loads(meta_path(out, kind).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["mlpbench"]
    assert "commit" in meta and "dirty" in meta
    assert meta["status"] == "finished" and meta["started"] <= meta["finished"]
    assert meta["wall_s"] > 0
    # without --resume the results are not overwritten
    refused(*run(argv, out, capsys), "--resume")
    # a changed configuration is refused, naming the setting
    refused(*run(_with(argv, flag, value), out, capsys, "--resume"), "different configuration")
    # results of another commit: refused, then continued with --allow-upgrade (recorded)
    meta["commit"] = "0" * 40
    meta_path(out, kind).write_text(json.dumps(meta))
    refused(*run(argv, out, capsys, "--resume"), "--allow-upgrade")
    code, err = run(argv, out, capsys, "--resume", "--allow-upgrade")
    assert code == 0, err
    upgraded = json.loads(meta_path(out, kind).read_text())
    assert upgraded["upgrades"] and "0000000" in upgraded["upgrades"][0]["from"]
    assert upgraded["first_started"] == meta["started"]
    # an unknown results format is refused
    meta_path(out, kind).write_text(json.dumps({**upgraded, "format_version": 99}))
    refused(*run(argv, out, capsys, "--resume"), "format 99")
    meta_path(out, kind).write_text(json.dumps(upgraded))
    # a corrupt main table is refused before anything is measured
    (out / f"{kind}.csv").write_bytes(b"\xff\xfe\x00garbage\n")
    refused(*run(argv, out, capsys, "--resume"), "corrupt")
    assert not (out / LOCK_NAME).exists()


@pytest.fixture()
def live_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.2)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("command", list(CASES))
def test_lock(command, tmp_path, capsys, live_process):
    argv, kind, _ = CASES[command]
    out = tmp_path / "out"
    out.mkdir()
    started = psutil.Process(live_process.pid).create_time()
    lock = out / LOCK_NAME
    lock.write_text(json.dumps({"pid": live_process.pid, "started": started}))
    refused(*run(argv, out, capsys), "being written by another", str(live_process.pid))
    assert not (out / f"{kind}.csv").exists()
    # the same PID with another start time is a reused PID: the lock is stale
    lock.write_text(json.dumps({"pid": live_process.pid, "started": started - 3600}))
    code, err = run(argv, out, capsys)
    assert code == 0, err
    assert "stale lock" in err and "now another process" in err
    assert not lock.exists() and (out / f"{kind}.csv").exists()


@pytest.mark.parametrize("command", ["sweep", "minima"])
def test_lock_that_is_a_folder(command, tmp_path, capsys):
    argv, _, _ = CASES[command]
    (tmp_path / LOCK_NAME).mkdir()
    refused(*run(argv, tmp_path, capsys), "not mlpbench's lock file")


def test_pid_1_alive_but_not_the_writer(tmp_path, capsys):
    argv, kind, _ = CASES["sweep"]
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "started": 12345.0}))
    code, err = run(argv, tmp_path, capsys)
    assert code == 0, err
    assert (tmp_path / f"{kind}.csv").exists()


def test_fifo_table_is_refused_not_read(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "sweep.csv")
    capsys.readouterr()
    code = main(["report", "--runs", str(tmp_path), "-o", str(tmp_path / "r.html")])
    refused(code, capsys.readouterr().err, "not a regular file")
