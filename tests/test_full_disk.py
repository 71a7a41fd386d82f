"""A full disk under every writer: one line, exit 2, no stray temporary file, the outputs
written before the disk filled intact (and ``--resume`` continuing once there is space).

ENOSPC is injected at ``os.fsync`` after ``n`` successful writes (every results file goes
through :func:`mlpbench.results.atomic_write`, which syncs before its rename); one test
also fills a real 64 KiB tmpfs where mounting one is allowed.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from mlpbench.cli import main
from mlpbench.results import read_table

COMMON = ["--threads", "1", "--quiet"]
SWEEP = ["sweep", "--devices", "cpu", "--input-dims", "4", "--widths", "8,16,24", "--depths",
         "1", "--batches", "4", "--phases", "infer", "--budget", "0.01", "--no-isolate"]
CONVERGE = ["converge", "-W", "quadratic", "-O", "gd", "-O", "sgd", "--seeds", "1",
            "--max-steps", "5"]
NEWTON = ["newton-cost", "--widths", "4,8", "--no-target", "--method", "first_order",
          "--batch", "8"]
NO_SPACE = "No space left on device"


@pytest.fixture(scope="module")
def peak_cache(tmp_path_factory):
    """A peak cache measured once, before any disk fills (a failed cache write is a warning
    line of its own, see the last test)."""
    from mlpbench.devices import threads
    from mlpbench.measure.peak import get_peak

    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("MLPBENCH_CACHE")
    os.environ["MLPBENCH_CACHE"] = str(path)
    try:
        with threads(1):
            get_peak("cpu", "fp32")
    finally:
        os.environ.pop("MLPBENCH_CACHE") if old is None else os.environ.update(
            MLPBENCH_CACHE=old)
    return str(path)


@pytest.fixture(autouse=True)
def _cache(peak_cache, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", peak_cache)


def disk_full_after(monkeypatch, n: int) -> None:
    """Every ``os.fsync`` after the first ``n`` fails with ENOSPC."""
    real, calls = os.fsync, [0]

    def fsync(fd):
        calls[0] += 1
        if calls[0] > n:
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    return code, cap.err


def one_line_no_space(code: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and NO_SPACE in lines[0] and lines[0].startswith("mlpbench"), err


def no_temp_files(*folders: Path) -> None:
    for folder in folders:
        stray = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
        assert not stray, stray


@pytest.mark.parametrize("argv, kind, writes, rows", [
    (SWEEP, "sweep", 0, 0),  # the very first write (--out's write probe, before measuring)
    # the probe, metadata and one point written, the second point's write fails
    (SWEEP, "sweep", 3, 1),
    (CONVERGE, "converge", 0, 0),
    (CONVERGE, "converge", 4, 1),  # probe, metadata, one run (trajectory + row), then full
    (NEWTON, "newton_cost", 0, 0),
    (NEWTON, "newton_cost", 3, 1),
], ids=["sweep-first", "sweep-mid", "converge-first", "converge-mid", "newton-first",
        "newton-mid"])
def test_study_on_a_full_disk(argv, kind, writes, rows, tmp_path, monkeypatch, capsys):
    out, fsync_real = tmp_path / "out", os.fsync
    disk_full_after(monkeypatch, writes)
    one_line_no_space(*cli([*argv, *COMMON, "--out", out], capsys))
    no_temp_files(out)
    assert not (out / ".mlpbench.lock").exists()
    table = out / f"{kind}.csv"
    if rows:
        stored = read_table(table)
        assert len(stored) == rows
    else:
        assert not table.exists()
    monkeypatch.setattr(os, "fsync", fsync_real)  # space again: --resume finishes the rest
    code, err = cli([*argv, *COMMON, "--out", out, "--resume"], capsys)
    assert code == 0, err
    final = read_table(table)
    if rows:
        kept = final.astype(str).merge(stored.astype(str), on=list(stored.columns))
        assert len(kept) == len(stored)  # every stored row, unchanged


def test_report_on_a_full_disk_keeps_the_old_page(tmp_path, monkeypatch, capsys):
    out = tmp_path / "s"
    assert cli([*SWEEP, *COMMON, "--out", out], capsys)[0] == 0
    page = tmp_path / "report.html"
    page.write_text("old page")
    disk_full_after(monkeypatch, 0)
    one_line_no_space(*cli(["report", "--runs", out, "--out", page], capsys))
    assert page.read_text() == "old page"
    no_temp_files(tmp_path)


def test_run_on_a_full_disk(tmp_path, monkeypatch, capsys):
    """``mlpbench run``: its first write fails; nothing half-written is left."""
    disk_full_after(monkeypatch, 0)
    one_line_no_space(*cli(["run", "--preset", "quick", "--out", tmp_path / "main",
                            "--report", tmp_path / "r.html", *COMMON], capsys))
    no_temp_files(tmp_path)
    assert not (tmp_path / "r.html").exists()


def test_peak_cache_on_a_full_disk_is_a_warning(tmp_path, monkeypatch, capsys):
    """The measured peak stands (exit 0); the cache is left as it was, with one warning."""
    from mlpbench.measure import peak

    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path))
    (tmp_path / "peak.json").write_text("{}")
    monkeypatch.setattr(peak, "measure_peak", lambda device, mode: peak.PeakResult(
        device, mode, 12.5, 512, 1, "x", "m"))
    disk_full_after(monkeypatch, 0)
    code, err = cli(["peak", "--threads", "1"], capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and NO_SPACE in lines[0], err
    assert (tmp_path / "peak.json").read_text() == "{}"
    no_temp_files(tmp_path)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB tmpfs (root and mount permission needed; skipped otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True, timeout=10)


def test_sweep_fills_a_real_tiny_disk(tiny_disk, capsys):
    """Fill the disk but for a few bytes, then sweep into it: one line, exit 2, nothing left
    behind but what fits."""
    ballast = tiny_disk / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 1024)
        except OSError:
            pass
    code, err = cli([*SWEEP, *COMMON, "--out", tiny_disk / "out"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and NO_SPACE in lines[0], err
    no_temp_files(tiny_disk)


def test_run_probes_its_outputs_before_measuring(tmp_path, monkeypatch, capsys):
    """``mlpbench run`` writes (and syncs) real bytes to its output folders before the sweep
    starts: on a full disk nothing is measured (a 0-byte probe would pass)."""
    from mlpbench import jobs

    def no_sweep(*a, **k):
        raise AssertionError("measured on a full disk")

    monkeypatch.setattr(jobs, "sweep", no_sweep)
    disk_full_after(monkeypatch, 0)
    one_line_no_space(*cli(["run", "--preset", "quick", "--out", tmp_path / "main",
                            "--report", tmp_path / "r.html", *COMMON], capsys))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # the probe is gone too
