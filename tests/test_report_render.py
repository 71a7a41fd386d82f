"""Every combination of inputs renders (or exits 2 with one line), and each page works in
headless Chromium: images decode, no script errors, summary card present, tables sortable."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from mlpbench.cli import main
from mlpbench.jobs import reference_results
from mlpbench.report import build_report

ROOT = Path(__file__).resolve().parents[1] / "results"
RUNS = ROOT / "runs" / "amd-epyc-2c"
NEWTON = ROOT / "runs" / "intel-xeon-2c" / "newton"  # the corrected study (another machine)
ASV = ROOT / "asv"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not (RUNS / "sweep" / "sweep.csv").exists(),
                                reason="committed reference results not present")


def _second_machine(tmp: Path) -> tuple[Path, Path]:
    """A copy of the sweep and Newton runs, and of the asv results, as another machine."""
    other = tmp / "other"
    for kind, source in (("sweep", RUNS / "sweep"), ("newton", NEWTON)):
        shutil.copytree(source, other / kind)
        for csv in (other / kind).glob("*.csv"):
            frame = pd.read_csv(csv)
            if "machine_id" in frame:
                frame["machine_id"] = "second-box"
            if "median_s" in frame:
                frame["median_s"] = frame["median_s"] * 1.5
            frame.to_csv(csv, index=False)
        for meta in (other / kind).glob("*.json"):
            data = json.loads(meta.read_text())
            if isinstance(data.get("hardware"), dict):
                data["hardware"].update(machine_id="second-box", cpu_model="Other CPU",
                                        ram_bytes=64 * 2**30)
            meta.write_text(json.dumps(data))
    asv = tmp / "asv"
    shutil.copytree(ASV, asv)
    box = asv / "second-box"
    shutil.copytree(ASV / "amd-epyc-2c", box)
    (box / "machine.json").write_text(json.dumps(
        {"machine": "second-box", "cpu": "Other CPU", "num_cpu": "8", "ram": str(64 * 2**30),
         "arch": "x86_64", "version": 1}))
    for path in list(box.glob("*.json")):
        if path.name != "machine.json":
            data = json.loads(path.read_text())
            for res in data["results"].values():
                res[0] = [v * 0.5 if isinstance(v, float) else v for v in res[0]] \
                    if isinstance(res[0], list) else res[0]
            path.write_text(json.dumps(data))
            later = dict(data, commit_hash="f" * 40, date=data["date"] + 86_400_000)
            for res in later["results"].values():  # a second commit: asv history
                res[0] = [v * 1.25 if isinstance(v, float) else v for v in res[0]] \
                    if isinstance(res[0], list) else res[0]
            (box / f"ffffffff-{path.name.split('-', 1)[1]}").write_text(json.dumps(later))
    return other, asv


def _check_page(html: str) -> None:
    assert "could not be drawn" not in html
    assert 'id="summary-card"' in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing to fetch
    assert "/work/" not in html and str(ROOT) not in html  # no filesystem paths


def _browser(page: Path, tmp: Path) -> str:
    """The page's <body> tag after load in headless Chromium."""
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}",
                          "--virtual-time-budget=8000", "--enable-logging=stderr", "--v=0",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    return re.search(r"<body[^>]*>", dom.stdout).group(0)


def _browser_checks(page: Path, tmp: Path) -> None:
    html = page.read_text()
    n_images = html.count("<img ")
    n_tables = html.count("class='data sortable'")
    body = _browser(page, tmp)
    assert f'data-images="{n_images}"' in body, body
    assert 'data-broken-images="0"' in body, body
    assert 'data-js-errors="0"' in body, body
    assert 'data-summary="1"' in body, body
    assert f'data-sortable-tables="{n_tables}"' in body and n_tables > 0, body


@pytest.mark.slow
def test_committed_results(tmp_path):
    asv, runs = reference_results()
    assert str(RUNS / "sweep") in runs and str(NEWTON) in runs
    page = build_report(asv, runs, tmp_path / "ref.html")
    html = page.read_text()
    _check_page(html)
    for needle in ("Summary", "fraction of peak", "Newton wall", "EXTRAPOLATED",
                   "fastest optimizer", "Wilson", "test loss", "Performance profile",
                   "Bytes to train", "are one machine", "9,111,001", "torch.compile",
                   "Parallel efficiency", "Roofline", "Verdicts of the gate"):
        assert needle in html, needle
    for key in ("modes", "regressions", "minima", "distributed"):
        section = html.split(f'id="{key}"')[1].split("</section>")[0]
        assert "<img " in section or "<table" in section, key
    if CHROMIUM:
        _browser_checks(page, tmp_path)


@pytest.mark.slow
def test_two_machines_with_asv(tmp_path):
    other, asv = _second_machine(tmp_path)
    page = build_report(asv, [str(RUNS / "sweep"), str(NEWTON), str(other / "sweep"),
                              str(other / "newton")], tmp_path / "two.html")
    html = page.read_text()
    _check_page(html)
    section = html.split('id="compare"')[1].split("</section>")[0]
    assert "second-box" in section and "speedup" in section
    assert "Only one machine" not in section
    # the geometric-mean chart: drawn in the browser from the pairs' JSON
    assert "id='ratio-chart'" in section and "id='pairs-data'" in section
    assert html.count("<details class='machine'>") >= 2  # one collapsed block per machine
    history = html.split('id="regressions"')[1].split("</section>")[0]
    assert "History of the" in history and "<img " in history and "ffffffff" in history
    if CHROMIUM:
        _browser_checks(page, tmp_path)


def test_sweep_only_and_repeated_points(tmp_path):
    """The same folder twice and a second run of the same machine (the non-unique index that
    crashed the Keras table) render, with repeats reduced to their median."""
    again = tmp_path / "again"
    shutil.copytree(RUNS / "sweep", again)
    page = build_report(None, [str(RUNS / "sweep"), str(RUNS / "sweep"), str(again)],
                        tmp_path / "sweep.html")
    html = page.read_text()
    _check_page(html)
    assert "Keras (torch backend) over plain PyTorch" in html
    assert "No convergence data" in html and "No Newton cost data" in html
    if CHROMIUM:
        _browser_checks(page, tmp_path)


def test_empty_folder_exits_2_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--runs", str(empty), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds no mlpbench results" in err
    assert not (tmp_path / "x.html").exists()
