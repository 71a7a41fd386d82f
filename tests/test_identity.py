"""One identity: a sweep axis is one field on ``Point`` plus its values in ``SweepConfig``.

:func:`test_a_new_axis_needs_no_other_edit` copies the package, adds an integer axis
(``replica``) exactly as the README says — one line in ``point.py``, one in
``sweep_config.py`` — and shows, in a fresh interpreter, that the grid, the CSV columns,
the schema's integer check, ``--resume`` matching and the report's grouping all follow.
Also here: old-format results load through migration, unknown formats are refused, and a
report over two runs of one machine with different torch versions keeps them apart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlpbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

PROBE = r'''
import json, sys
import pandas as pd
from mlpbench.errors import UsageError
from mlpbench.measure.timing import TimerConfig
from mlpbench.point import INT_KEYS, POINT_KEYS
from mlpbench.report.sections_hw import _medians
from mlpbench.results import SCHEMAS, load_runs, read_table
from mlpbench.studies.sweep import SweepConfig, grid, run_sweep

out = sys.argv[1]
cfg = SweepConfig(devices=("cpu",), input_dims=(4,), widths=(8,), depths=(1,), batches=(4,),
                  phases=("infer",), replicas=(1, 2), threads=1, isolate=False,
                  timer=TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01))
points = grid(cfg)
first = run_sweep(cfg, out, progress=False)
path = f"{out}/sweep.csv"
table = pd.read_csv(path)
table[table["replica"] == 1].to_csv(path, index=False)  # lose replica 2's row
again = run_sweep(cfg, out, resume=True, progress=False)
ok = load_runs([out])["sweep"]
bad = ok.assign(replica=1.5)
bad.to_csv(f"{out}/bad.csv", index=False)
try:
    read_table(f"{out}/bad.csv", kind="sweep")
    refused = ""
except UsageError as exc:
    refused = str(exc)
print(json.dumps({
    "keys": list(POINT_KEYS), "int_keys": list(INT_KEYS),
    "numeric": sorted(SCHEMAS["sweep"][1]),
    "grid": [p.replica for p in points], "distinct_keys": len({p.key for p in points}),
    "columns": list(first.columns), "rows_first": len(first), "rows_again": len(again),
    "replicas_again": sorted(set(again["replica"])),
    "medians": len(_medians(ok[ok["status"] == "ok"])), "refused": refused,
}))
'''


def _add_axis(pkg: Path) -> None:
    for name, anchor, line in [
        ("point.py", '    threads: int = axis("thread_counts", 0)\n',
         '    replica: int = axis("replicas", 1)\n'),
        ("studies/sweep_config.py", '    modes: tuple[str, ...] = ("eager",)',
         '    replicas: tuple[int, ...] = (1,)\n'),
    ]:
        path = pkg / "mlpbench" / name
        text = path.read_text()
        assert text.count(anchor) == 1, f"{name}: the anchor line moved"
        i = text.index(anchor)
        j = text.index("\n", i) + 1
        path.write_text(text[:j] + line + text[j:])


@pytest.mark.slow
def test_a_new_axis_needs_no_other_edit(tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "mlpbench", pkg / "mlpbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    _add_axis(pkg)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pkg), "HOME": str(tmp_path),
           "MLPBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "replica" in got["keys"] and "replica" in got["int_keys"]
    assert "replica" in got["numeric"]  # the schema's integer check covers it
    assert sorted(got["grid"]) == [1, 2] and got["distinct_keys"] == 2
    assert "replica" in got["columns"] and got["rows_first"] == 2
    assert got["rows_again"] == 2 and got["replicas_again"] == [1, 2]  # resume: the lost one
    assert got["medians"] == 2  # the report does not take a median across the axis
    assert "replica" in got["refused"] and "whole number" in got["refused"]


def test_format_1_results_load_through_migration():
    from mlpbench.results import load_runs, read_meta

    folder = FIXTURES / "format1" / "sweep"
    assert "format_version" not in json.loads((folder / "sweep.json").read_text())
    meta = read_meta(folder / "sweep.json")
    assert meta["migrated_from"] == 1 and meta["commit"] is None
    frame = load_runs([folder])["sweep"]
    assert set(frame["mode"]) == {"eager"} and set(frame["format"]) == {"1"}
    assert (frame["threads"] == 0).all()  # not recorded then: the field's default


def test_unknown_format_is_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "format1" / "sweep", folder)
    meta = json.loads((folder / "sweep.json").read_text())
    (folder / "sweep.json").write_text(json.dumps({**meta, "format_version": 7}))
    capsys.readouterr()
    code = main(["report", "--runs", str(folder), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "results format 7" in err[0], err


def test_two_torch_versions_of_one_machine_are_not_merged(tmp_path):
    from mlpbench.report.page import load_data
    from mlpbench.report.sections_hw import _medians

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(FIXTURES / "format1" / "sweep", a)
    shutil.copytree(FIXTURES / "format1" / "sweep", b)
    frame = pd.read_csv(b / "sweep.csv")
    frame.assign(torch="2.12.0+cpu", median_s=frame["median_s"] * 3).to_csv(
        b / "sweep.csv", index=False)
    data = load_data(None, [str(a), str(b)])
    sweep = data.runs["sweep"]
    assert sweep["machine_id"].nunique() == 2
    assert any("torch 2.12.0+cpu" in m for m in sweep["machine_id"])
    assert any("differ in torch" in n for n in data.load_notes)
    ok = sweep[sweep["status"] == "ok"]
    med = _medians(ok)
    first = med.iloc[0]
    one = med[(med[["width", "depth", "batch", "phase"]] == first[
        ["width", "depth", "batch", "phase"]]).all(axis=1)]
    assert len(one) == 2  # one row per torch version, never their median
    for mid in sweep["machine_id"].unique():
        assert mid in data.hardware
