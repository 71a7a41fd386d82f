import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from mlpbench.cli import main
from mlpbench.jobs import newton_cost
from mlpbench.measure.timing import TimerConfig
from mlpbench.problems.runner import Budget
from mlpbench.report import build_report
from mlpbench.results import load_asv
from mlpbench.studies.convergence import converge_to_dir
from mlpbench.studies.newton_cost import CostConfig
from mlpbench.studies.sweep import SweepConfig, run_sweep

FAST = TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01, min_block_s=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        import mlpbench.measure.peak as peak

        mp.setattr(peak, "CPU_SIZES", (64,))
        mp.setenv("MLPBENCH_CACHE", str(root / "cache"))
        _make_runs(root)
    return root


def _make_runs(root):
    run_sweep(SweepConfig(devices=("cpu", "cuda"), input_dims=(4,), widths=(8, 32),
                          depths=(1,), batches=(4,), timer=FAST, isolate=False),
              root / "sweep", progress=False)
    converge_to_dir(root / "converge", workloads=["quadratic"], optimizers=["gd", "lbfgs"],
                    seeds=[0, 1], budget=Budget(max_steps=50), lr_values=[0.01, 0.1],
                    progress=False)
    # a tiny per-operation limit: the largest width's operations are skipped by their fit
    newton_cost(CostConfig(widths=(4, 8, 12, 16), include_target=False, batch=8, timer=FAST,
                           max_op_seconds=1e-9), root / "newton", progress=False)


def _images(html):
    return re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)


def test_full_report(runs, tmp_path):
    out = build_report(None, [str(runs / "sweep"), str(runs / "converge"),
                              str(runs / "newton")], tmp_path / "r.html")
    html = out.read_text()
    for title in ("Machines measured", "Throughput", "Memory", "Optimizers",
                  "Newton vs first order", "Skipped and failed"):
        assert title in html
    images = _images(html)
    assert len(images) >= 6
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "no CUDA GPU available" in html  # skipped points listed with their reason
    assert "s limit" in html  # Newton-cost skips (by fitted time) listed too
    assert "EXTRAPOLATED to P = 9,111,001" in html  # the extrapolation table, labelled
    assert "http://" not in html.replace("http://www.w3.org", "")  # self-contained


def test_partial_report_says_what_is_missing(runs, tmp_path):
    html = build_report(None, [str(runs / "converge")], tmp_path / "p.html").read_text()
    assert "No hardware sweep data" in html
    assert "No Newton cost data" in html
    assert "Time to target" in html


def test_report_from_asv_results(tmp_path):
    m = tmp_path / "asv" / "box"
    m.mkdir(parents=True)
    (m / "machine.json").write_text(json.dumps({"machine": "box", "cpu": "X", "num_cpu": "2",
                                                "ram": "1GB", "arch": "x86_64",
                                                "version": 1}))
    (tmp_path / "asv" / "benchmarks.json").write_text(json.dumps({
        "bench_hardware.TrainStep.time_step": {
            "param_names": ["device", "width", "depth", "batch", "optimizer"],
            "unit": "seconds", "type": "time"}, "version": 2}))
    (m / "abc-env.json").write_text(json.dumps({
        "commit_hash": "abc", "env_name": "env", "date": 1, "python": "3.11", "version": 2,
        "result_columns": ["result", "params"],
        "results": {"bench_hardware.TrainStep.time_step": [
            [0.01, float("nan"), None],
            [["'cpu'"], ["64"], ["2"], ["32", "1024", "64"], ["'sgd'"]]]}}).replace(
                "NaN", "NaN"))
    frame, machines = load_asv(tmp_path / "asv")
    assert list(frame["status"]) == ["ok", "skipped", "failed"]
    assert frame.iloc[0]["device"] == "cpu" and machines["box"]["cpu"] == "X"
    html = build_report(tmp_path / "asv", [], tmp_path / "a.html").read_text()
    asv_section = html.split('id="asv"')[1].split("</section>")[0]
    assert "box" in asv_section and "skipped" in asv_section and "skipped in setup" in html
    assert "could not be drawn" not in html and 'id="summary-card"' in html


@pytest.mark.parametrize("setup, needle", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "holds no mlpbench results"),
    (lambda d: (d.mkdir(), (d / "sweep.csv").write_bytes(b"\x00\x01,\n\x00")), "sweep"),
])
def test_bad_input_exit_2(tmp_path, capsys, setup, needle):
    d = tmp_path / "in"
    setup(d)
    assert main(["report", "--runs", str(d), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_no_input_exit_2(capsys):
    assert main(["report"]) == 2
    assert "nothing to report" in capsys.readouterr().err


def test_empty_tables_exit_2(tmp_path, capsys):
    d = tmp_path / "e"
    d.mkdir()
    pd.DataFrame(columns=["a"]).to_csv(d / "sweep.csv", index=False)
    assert main(["report", "--runs", str(d), "-o", str(tmp_path / "x.html")]) == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(Debian package 'chromium'; .ci/run installs it)")
def test_report_in_real_browser(runs, tmp_path):
    page = build_report(None, [str(runs / "sweep"), str(runs / "converge"),
                               str(runs / "newton")], tmp_path / "b.html")
    n_images = len(_images(page.read_text()))
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert f'data-images="{n_images}"' in body, body
    assert 'data-broken-images="0"' in body, body
    assert 'data-js-errors="0"' in body and 'data-summary="1"' in body, body
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120,
                   check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    artifacts = Path(__file__).resolve().parents[1] / "build"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / "report-screenshot.png")


def test_machine_vs_machine_section(runs, tmp_path):
    other = tmp_path / "other-machine"
    other.mkdir()
    frame = pd.read_csv(runs / "sweep" / "sweep.csv")
    frame.assign(machine_id="second-box", median_s=frame["median_s"] * 2).to_csv(
        other / "sweep.csv", index=False)
    html = build_report(None, [str(runs / "sweep"), str(other)], tmp_path / "m.html").read_text()
    section = html.split('id="compare"')[1].split("</section>")[0]
    assert "Only one machine" not in section
    assert "second-box" in section and "Seconds per machine" in section
    pairs = json.loads(section.split("id='pairs-data'>")[1].split("</script>")[0])
    # every time doubled: the second box runs at exactly half the speed, over every benchmark
    half = [p for p in pairs if p["m"] == "second-box" and p["r"] != "second-box"]
    assert len(half) == 1 and half[0]["g"] == pytest.approx(0.5)
    assert half[0]["n"] == (frame["status"] == "ok").sum() > 0  # every point is shared
    assert 'id="ref-select"' in section or "id='ref-select'" in section


def test_three_machines_pairwise_ratios_and_heatmap(runs, tmp_path):
    frame = pd.read_csv(runs / "sweep" / "sweep.csv")
    dirs = []
    for name, scale in (("box-1", 1.0), ("box-2", 2.0), ("box-4", 4.0)):
        (tmp_path / name).mkdir()
        frame.assign(machine_id=name, median_s=frame["median_s"] * scale).to_csv(
            tmp_path / name / "sweep.csv", index=False)
        dirs.append(str(tmp_path / name))
    html = build_report(None, dirs, tmp_path / "m.html").read_text()
    section = html.split('id="compare"')[1].split("</section>")[0]
    pairs = {(p["m"], p["r"]): p["g"] for p in
             json.loads(section.split("id='pairs-data'>")[1].split("</script>")[0])}
    # seconds ×1, ×2, ×4: every ordered pair's ratio is the inverse ratio of the scales
    for (a, sa), (b, sb) in [((a, sa), (b, sb)) for a, sa in (("box-1", 1), ("box-2", 2),
                                                              ("box-4", 4))
                             for b, sb in (("box-1", 1), ("box-2", 2), ("box-4", 4))]:
        assert pairs[(a, b)] == pytest.approx(sb / sa)
    assert "id='t-machine-heatmap'" in section and "id='t-machine-pairs'" in section
    assert section.count("<option") == 3
    card = html.split('id="summary-card"')[1].split("</ul>")[0]
    assert "fastest of 3 machines: box-1" in card and "slowest: box-4" in card
    assert "0.25×" in card
