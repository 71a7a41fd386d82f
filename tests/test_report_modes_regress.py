"""The report's execution-mode and regression views: comparisons summarised over runs
(checked against hand-computed medians), asv history across commits, gate verdicts."""

import json
import math

import pandas as pd
import pytest

from mlpbench.analysis.headline import modes_facts
from mlpbench.analysis.modes import over_runs
from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.report import build_report
from mlpbench.report.sections_regress import history, latest_changes
from mlpbench.results import load_gates

BASE = dict(machine_id="box", device="cpu", framework="torch", dtype="fp32", input_dim=4,
            width=8, depth=1, batch=4, activation="relu", threads=1, params=49,
            phase="infer", status="ok")


def _sweep(times: dict[tuple[str, int], tuple[float, float]]) -> pd.DataFrame:
    """Rows of runs ``run_dir`` = rep: (params, rep) -> (eager s, compile s)."""
    rows = []
    for (run, params), (eager, comp) in times.items():
        for mode, t in (("eager", eager), ("compile", comp)):
            rows.append(dict(BASE, params=params, width=params, mode=mode, median_s=t,
                             run_dir=run, compile_s=0.1 if mode == "compile" else math.nan))
    return pd.DataFrame(rows)


def test_over_runs_is_the_median_of_within_run_ratios():
    # per-run speedups at P=10: 2.0, 4.0, 1.0 -> median 2, min 1, max 4
    frame = _sweep({("r1", 10): (2.0, 1.0), ("r2", 10): (2.0, 0.5), ("r3", 10): (3.0, 3.0),
                    ("r1", 20): (1.0, 2.0)})
    table = over_runs(frame, "compile").set_index("params")
    assert table.loc[10, "reps"] == 3 and table.loc[20, "reps"] == 1
    assert table.loc[10, "speedup"] == pytest.approx(2.0)
    assert (table.loc[10, "speedup_min"], table.loc[10, "speedup_max"]) == (1.0, 4.0)
    assert table.loc[10, "speedup_first"] == pytest.approx(2.0)  # r1's
    assert table.loc[20, "speedup"] == pytest.approx(0.5)
    # a second machine is compared with itself only
    other = frame.assign(machine_id="other", median_s=frame["median_s"] * 3)
    both = over_runs(pd.concat([frame, other]), "compile")
    assert set(both["machine_id"]) == {"box", "other"}
    assert both.groupby("machine_id")["speedup"].median().nunique() == 1
    facts = modes_facts({"sweep": frame})
    text = " ".join(f["fact"] for f in facts)
    assert "0.50× to 2.00× over 2 sizes" in text
    # P=10 was not faster in every run (min 1.0) and P=20 slower: never faster in all runs
    assert "at no size faster than eager in all 3 runs" in text


def _asv(tmp, commits):
    root = tmp / "asv"
    (root / "box").mkdir(parents=True)
    (root / "box" / "machine.json").write_text(json.dumps({"machine": "box", "version": 1}))
    (root / "benchmarks.json").write_text(json.dumps({
        "B.time_a": {"param_names": [], "unit": "seconds", "type": "time"},
        "B.time_b": {"param_names": ["n"], "unit": "seconds", "type": "time"},
        "version": 2}))
    for i, (commit, a, b) in enumerate(commits):
        (root / "box" / f"{commit[:8]}-env.json").write_text(json.dumps({
            "commit_hash": commit, "date": 1_700_000_000_000 + i * 86_400_000,
            "env_name": "env", "python": "3.11", "result_columns": ["result", "params"],
            "results": {"B.time_a": [a, []], "B.time_b": [b, [["1", "2"]]]}, "version": 2}))
    return root


def test_history_orders_commits_by_date_and_ratios_to_previous(tmp_path):
    root = _asv(tmp_path, [("aaaa" * 10, 1.0, [1.0, 2.0]), ("bbbb" * 10, 1.5, [1.0, None]),
                           ("cccc" * 10, 3.0, [2.0, 2.0])])
    from mlpbench.results import load_asv

    frame, _ = load_asv(root)
    hist = history(frame)
    a = hist[hist["benchmark"] == "B.time_a"]
    assert list(a["commit"].str[:4]) == ["aaaa", "bbbb", "cccc"]
    assert list(a["rel"]) == [1.0, 1.5, 3.0]
    changes = latest_changes(hist).set_index(["benchmark", "params"])
    assert changes.loc[("B.time_a", ""), "latest/previous"] == pytest.approx(2.0)
    assert changes.loc[("B.time_b", "1"), "latest/previous"] == pytest.approx(2.0)
    # n=2 failed at the middle commit: its previous ok value is the first commit's
    assert changes.loc[("B.time_b", "2"), "latest/previous"] == pytest.approx(1.0)
    assert changes.loc[("B.time_b", "2"), "commits"] == 2


def _gate(folder, exit_code=1, verdict="regressed"):
    folder.mkdir(parents=True)
    (folder / "gate.json").write_text(json.dumps({
        "context": {"base": "1" * 40, "head": "2" * 40, "exit_code": exit_code,
                    "seconds": 12.5, "host": "vm", "load_avg": [0.5, 0.4, 0.3]},
        "verdicts": [{"tier": "wall", "bench": "T.time_step('cpu', 64, 2, 32)",
                      "verdict": verdict, "base": 1e-3, "head": 1.5e-3, "ratio": 1.5,
                      "low": 1.4, "high": 1.6, "note": "12 rounds"}]}))
    return folder


def test_gate_and_history_render_in_the_report(tmp_path):
    gate = _gate(tmp_path / "gate")
    asv = _asv(tmp_path, [("aaaa" * 10, 1.0, [1.0, 2.0]), ("bbbb" * 10, 1.2, [1.0, 2.0])])
    html = build_report(asv, [str(gate)], tmp_path / "r.html").read_text()
    section = html.split('id="regressions"')[1].split("</section>")[0]
    assert "REGRESSED (exit 1)" in section and "T.time_step" in section
    assert "<img " in section and "B.time_a" in section  # history figure and table
    frame = load_gates([gate])
    assert frame.loc[0, "ratio"] == 1.5 and frame.loc[0, "head_commit"] == "2" * 10


def test_malformed_gate_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "gate.json").write_text(json.dumps({"context": {}, "verdicts": [{"x": 1}]}))
    with pytest.raises(UsageError, match="malformed gate file"):
        load_gates([bad])
    assert main(["report", "--runs", str(bad), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "malformed gate file" in err


def test_modes_section_from_a_sweep_with_two_modes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    frame = _sweep({("r", 10): (2.0, 1.0), ("r", 100): (2.0, 4.0)}).drop(columns="run_dir")
    frame = frame.assign(gflops=1 / frame["median_s"], peak_fraction=0.1 / frame["median_s"],
                         peak_gflops=10.0, iqr_s=0.0, samples_per_s=1.0)
    frame.to_csv(run / "sweep.csv", index=False)
    html = build_report(None, [str(run)], tmp_path / "m.html").read_text()
    section = html.split('id="modes"')[1].split("</section>")[0]
    assert "torch.compile (inductor) over eager" in section and "<img " in section
    assert "could not be drawn" not in html
    card = html.split('id="summary"')[1].split("</section>")[0]  # the card and its details
    assert "torch.compile" in card and "compile, fp32, 1 thread" in card


def test_render_keeps_chosen_log_ticks_and_labels_plain_ones():
    import matplotlib.pyplot as plt

    from mlpbench.report.style import render, si_tick

    fig, (a, b) = plt.subplots(1, 2)
    a.plot([1, 64], [1, 2])
    a.set_xscale("log")
    a.set_xticks([1, 2, 8, 64], ["1", "2", "8", "64"])  # chosen ticks survive rendering
    b.plot([1e3, 1e7], [0.5, 1.5])
    b.set(xscale="log", yscale="log")
    render(fig)
    assert list(a.get_xticks()) == [1, 2, 8, 64]
    assert [t.get_text() for t in a.get_xticklabels()] == ["1", "2", "8", "64"]
    assert [si_tick(v) for v in (1e3, 1e7, 0.5, 2e9)] == ["1k", "10M", "0.5", "2G"]
    assert {0.5, 1.0} <= set(b.get_yticks())  # under two decades: 1-2-5 steps labelled
