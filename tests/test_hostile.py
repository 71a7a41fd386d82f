"""Hostile-but-realistic input to every subcommand (except ``regress``): a case table.

Each case runs ``mlpbench.cli.main`` in this process and asserts the exit code, that stderr
is at most one line (exactly one on failure), that no traceback appears anywhere, and that a
word naming the problem is in the message. Grids are tiny so the whole table runs in
seconds; signals and kill -9 are in ``test_crash_safety.py``, full disks in
``test_full_disk.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlpbench.cli import main

SWEEP = ["sweep", "--devices", "cpu", "--input-dims", "4", "--widths", "8", "--depths", "1",
         "--batches", "4", "--phases", "infer", "--budget", "0.01", "--no-isolate", "--quiet",
         "--threads", "1"]
CONVERGE = ["converge", "-W", "quadratic", "--seeds", "1", "--max-steps", "5",
            "--max-seconds", "5", "--quiet", "--threads", "1"]
NEWTON = ["newton-cost", "-d", "3", "-w", "4", "-L", "1", "--batch", "8", "--quiet",
          "--threads", "1"]
REFERENCE = Path(__file__).resolve().parents[1] / "results/runs/amd-epyc-2c/sweep/sweep.csv"
_LINES = REFERENCE.read_text().splitlines(keepends=True)
#: a real sweep table's header and first row (an ok point)
SWEEP_HEADER = _LINES[0]
SWEEP_ROW = next(line for line in _LINES[1:] if ",ok," in line)


def _with_cell(column: str, value: str) -> str:
    header = SWEEP_HEADER.strip().split(",")
    cells = SWEEP_ROW.strip().split(",")
    cells[header.index(column)] = value
    return SWEEP_HEADER + ",".join(cells) + "\n"



@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """A private peak cache (measured once per session) and no inherited settings."""
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    for name in ("MLPBENCH_THREADS", "MLPBENCH_FULL", "MLPBENCH_RESULTS"):
        monkeypatch.delenv(name, raising=False)


def run_cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def check(code, out, err, expect_code, needle=None):
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if expect_code:
        assert len(lines) == 1, err
        assert lines[0].startswith("mlpbench"), err
    else:
        assert len(lines) <= 1, err
    assert code == expect_code, err
    if needle:
        assert needle.lower() in (err if expect_code else out + err).lower(), err


# ---- setups: each writes hostile files under ``d`` and returns the argv tail -------------

def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def sweep_csv(content: str | bytes):
    def setup(d: Path):
        _write(d / "out" / "sweep.csv", content)
        return ["--resume", "--out", d / "out"]
    return setup


def sweep_json(content: str):
    def setup(d: Path):
        _write(d / "out" / "sweep.csv", SWEEP_HEADER + SWEEP_ROW)
        _write(d / "out" / "sweep.json", content)
        return ["--resume", "--out", d / "out"]
    return setup


def report_run(name: str, content: str | bytes):
    def setup(d: Path):
        _write(d / "run" / name, content)
        return ["--runs", d / "run", "--out", d / "r.html"]
    return setup


def asv(files: dict[str, str]):
    def setup(d: Path):
        for name, text in files.items():
            _write(d / "asv" / name, text)
        return ["--asv-results", d / "asv", "--out", d / "r.html"]
    return setup


def out_only(d: Path):
    return ["--out", d / "out"]


def existing(kind: str):
    def setup(d: Path):
        _write(d / "out" / f"{kind}.csv", "x\n1\n")
        return ["--out", d / "out"]
    return setup


def trajectories(cell: str):
    def setup(d: Path):
        _write(d / "out" / "converge.csv",
               "workload,optimizer,seed,status,target_loss\nquadratic,gd,0,reached,0.1\n")
        _write(d / "out" / "trajectories.csv",
               f"workload,optimizer,seed,step,time_s,train_loss\nquadratic,gd,{cell},1,0.1,1\n")
        return ["--resume", "--out", d / "out"]
    return setup


def newton_csv(cell: str):
    def setup(d: Path):
        _write(d / "out" / "newton_cost.csv",
               f"params,op,status,device,median_s\n{cell},grad,ok,cpu,0.1\n")
        return ["--resume", "--out", d / "out"]
    return setup


VALID_ASV = {"benchmarks.json": "{}", "m/machine.json": '{"machine": "m"}',
             "m/abc.json": '{"results": {}, "commit_hash": "abc"}'}

# (id, argv, setup or None, env, expected exit code, a word of the expected message)
CASES = [
    # ---- params / info / parsing
    ("params-zero-d", ["params", "-d", "0"], None, {}, 2, "input-dim"),
    ("params-nan-width", ["params", "-w", "nan"], None, {}, 2, "width"),
    ("params-float-depth", ["params", "-L", "1e3"], None, {}, 2, "1e3"),
    ("params-huge-depth", ["params", "-d", "10", "-w", "10", "-L", "100000000"], None, {}, 0,
     None),
    ("params-dtype", ["params", "--dtype", "int8"], None, {}, 2, "int8"),
    ("params-lbfgs-0", ["params", "--lbfgs-history", "0"], None, {}, 2, "lbfgs"),
    ("params-output-neg", ["params", "--output-dim", "-3"], None, {}, 2, "output-dim"),
    ("params-activation", ["params", "--activation", "swish"], None, {}, 2, "swish"),
    ("no-command", [], None, {}, 2, "command"),
    ("unknown-command", ["frobnicate"], None, {}, 2, "frobnicate"),
    ("unknown-flag", ["params", "--frob"], None, {}, 2, "frob"),
    ("info-ok", ["info", "--json"], None, {}, 0, "cpu_model"),
    # ---- peak
    ("peak-cuda", ["peak", "--device", "cuda"], None, {}, 2, "cuda"),
    ("peak-xpu", ["peak", "--device", "xpu"], None, {}, 2, "xpu"),
    ("peak-mode", ["peak", "--mode", "int8"], None, {}, 2, "int8"),
    ("peak-threads-0", ["peak", "--threads", "0"], None, {}, 2, "threads"),
    ("peak-env-threads-neg", ["peak"], None, {"MLPBENCH_THREADS": "-1"}, 2, "MLPBENCH_THREADS"),
    # ---- sweep: flags
    ("sweep-dup-widths", SWEEP + ["--widths", "32,32"], out_only, {}, 2, "repeats"),
    ("sweep-dup-devices", SWEEP + ["--devices", "cpu,cpu"], out_only, {}, 2, "repeats"),
    ("sweep-budget-nan", SWEEP + ["--budget", "nan"], out_only, {}, 2, "budget"),
    ("sweep-budget-inf", SWEEP + ["--budget", "inf"], out_only, {}, 2, "budget"),
    ("sweep-budget-neg", SWEEP + ["--budget", "-1"], out_only, {}, 2, "budget"),
    ("sweep-empty-list", SWEEP + ["--widths", ","], out_only, {}, 2, "empty"),
    ("sweep-zero-width", SWEEP + ["--widths", "0"], out_only, {}, 2, "0"),
    ("sweep-phase", SWEEP + ["--phases", "dance"], out_only, {}, 2, "dance"),
    ("sweep-dtype", SWEEP + ["--dtypes", "int8"], out_only, {}, 2, "int8"),
    ("sweep-activation", SWEEP + ["--activation", "swish"], out_only, {}, 2, "swish"),
    ("sweep-preset", SWEEP + ["--preset", "huge"], out_only, {}, 2, "huge"),
    ("sweep-seed", SWEEP + ["--seed", "abc"], out_only, {}, 2, "seed"),
    ("sweep-device", SWEEP + ["--devices", "tpu"], out_only, {}, 2, "tpu"),
    ("sweep-out-empty", SWEEP + ["--out", ""], None, {}, 2, "--out"),
    ("sweep-out-is-file", SWEEP, lambda d: (_write(d / "f", "x"), ["--out", d / "f"])[1], {}, 2,
     "cannot"),
    ("sweep-env-threads-0", SWEEP[:-2], out_only, {"MLPBENCH_THREADS": "0"}, 2,
     "MLPBENCH_THREADS"),
    ("sweep-exists", SWEEP, existing("sweep"), {}, 2, "--resume"),
    # ---- sweep: every point skipped is a result, not a crash
    ("sweep-all-cuda", SWEEP + ["--devices", "cuda"], out_only, {}, 0, "skipped"),
    ("sweep-all-over-memory", SWEEP + ["--depths", "10000000", "--widths", "4096"], out_only,
     {}, 0, "skipped"),
    # ---- sweep --resume over corrupt files
    ("resume-binary", SWEEP, sweep_csv(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), {}, 2, "sweep.csv"),
    ("resume-utf16", SWEEP, sweep_csv((SWEEP_HEADER + SWEEP_ROW).encode("utf-16")), {}, 2,
     "sweep.csv"),
    ("resume-wrong-header", SWEEP, sweep_csv("a,b,c\n1,2,3\n"), {}, 2, "missing columns"),
    ("resume-dup-header", SWEEP, sweep_csv(SWEEP_HEADER + SWEEP_ROW + SWEEP_HEADER), {}, 2,
     "header"),
    ("resume-bad-number", SWEEP, sweep_csv(_with_cell("median_s", "abc")),
     {}, 2, "median_s"),
    ("resume-torn-line", SWEEP, sweep_csv(SWEEP_HEADER + SWEEP_ROW + SWEEP_ROW[:30]), {}, 2,
     "row 3"),
    ("resume-empty-key", SWEEP, sweep_csv(_with_cell("width", "")), {}, 2, "width"),
    ("resume-float-key", SWEEP, sweep_csv(_with_cell("batch", "4.5")), {}, 2, "batch"),
    ("resume-other-grid", SWEEP, sweep_json('{"config": {"widths": [999]}}'), {}, 2,
     "different configuration"),
    ("resume-meta-list", SWEEP, sweep_json("[1, 2]"), {}, 2, "sweep.json"),
    ("resume-meta-null", SWEEP, sweep_json("null"), {}, 2, "sweep.json"),
    ("resume-meta-garbage", SWEEP, sweep_json("{nope"), {}, 2, "sweep.json"),
    # ---- converge
    ("converge-adam-lr-nan", CONVERGE + ["-O", "adam[lr=nan]"], out_only, {}, 2, "lr"),
    ("converge-lbfgs-lr-nan", CONVERGE + ["-O", "lbfgs[lr=nan]"], out_only, {}, 2, "lr"),
    ("converge-rmsprop-lr-nan", CONVERGE + ["-O", "rmsprop[lr=nan]"], out_only, {}, 2, "lr"),
    ("converge-sgd-lr-inf", CONVERGE + ["-O", "sgd[lr=1e400]"], out_only, {}, 2, "lr"),
    ("converge-momentum-nan", CONVERGE + ["-O", "momentum[momentum=nan]"], out_only, {}, 2,
     "momentum"),
    ("converge-newton-damping-nan", CONVERGE + ["-O", "newton[damping=nan]"], out_only, {}, 2,
     "damping"),
    ("converge-lr-abc", CONVERGE + ["-O", "sgd[lr=abc]"], out_only, {}, 2, "abc"),
    ("converge-grammar", CONVERGE + ["-O", "sgd[lr=0.1"], out_only, {}, 2, "sgd"),
    ("converge-unknown-opt", CONVERGE + ["-O", "sgdd"], out_only, {}, 2, "sgdd"),
    ("converge-dup-opt", CONVERGE + ["-O", "gd", "-O", "gd"], out_only, {}, 2, "twice"),
    ("converge-workload", CONVERGE + ["-W", "nope"], out_only, {}, 2, "nope"),
    ("converge-max-seconds-nan", CONVERGE + ["--max-seconds", "nan"], out_only, {}, 2,
     "max-seconds"),
    ("converge-max-evals-nan", CONVERGE + ["--max-grad-evals", "nan"], out_only, {}, 2,
     "max-grad-evals"),
    ("converge-seeds-0", CONVERGE + ["--seeds", "0"], out_only, {}, 2, "seeds"),
    ("converge-lr-grid-order", CONVERGE + ["--lr-grid", "1:0.1:3"], out_only, {}, 2, "grid"),
    ("converge-lr-grid-text", CONVERGE + ["--lr-grid", "abc"], out_only, {}, 2, "lr-grid"),
    ("converge-lr-grid-nan", CONVERGE + ["--lr-grid", "1e-3:nan:3"], out_only, {}, 2, "grid"),
    ("converge-cuda", CONVERGE + ["--device", "cuda"], out_only, {}, 2, "cuda"),
    ("converge-exists", CONVERGE + ["-O", "gd"], existing("converge"), {}, 2, "--resume"),
    ("converge-traj-bad-cell", CONVERGE + ["-O", "gd"], trajectories("zero"), {}, 2,
     "trajectories"),
    ("converge-empty-seed", CONVERGE + ["-O", "gd"], trajectories(""), {}, 2, "seed"),
    ("converge-lr-overflow-diverges", CONVERGE + ["-O", "gd", "-O", "adam[lr=1e39]"], out_only,
     {}, 0, "adam[lr="),
    # ---- newton-cost
    ("newton-max-op-nan", NEWTON + ["--max-op-seconds", "nan"], out_only, {}, 2,
     "max-op-seconds"),
    ("newton-partial-net", ["newton-cost", "-d", "3", "--quiet"], out_only, {}, 2, "--width"),
    ("newton-dup-widths", ["newton-cost", "--widths", "8,8", "--quiet"], out_only, {}, 2,
     "repeats"),
    ("newton-batch-0", NEWTON + ["--batch", "0"], out_only, {}, 2, "batch"),
    ("newton-cuda", NEWTON + ["--device", "cuda"], out_only, {}, 2, "cuda"),
    ("newton-method", NEWTON + ["--method", "magic"], out_only, {}, 2, "magic"),
    ("newton-refuse-target", ["newton-cost", "-d", "100", "-w", "1000", "-L", "10",
                              "--method", "newton", "--quiet"], out_only, {}, 2, "newton"),
    ("newton-resume-bad-cell", NEWTON, newton_csv("many"), {}, 2, "newton_cost.csv"),
    ("newton-exists", NEWTON, existing("newton_cost"), {}, 2, "--resume"),
    # ---- report
    ("report-no-run-dir", ["report", "--runs", "/nonexistent/run"], None, {}, 2, "nonexistent"),
    ("report-empty-run-dir", ["report"], lambda d: ["--runs", d, "--out", d / "r.html"], {}, 2,
     "no mlpbench results"),
    ("report-no-asv-dir", ["report", "--asv-results", "/nonexistent/asv"], None, {}, 2,
     "nonexistent"),
    ("report-median-abc", ["report"], report_run("sweep.csv", _with_cell("median_s", "abc")), {}, 2, "median_s"),
    ("report-nul-bytes", ["report"], report_run("sweep.csv", SWEEP_HEADER.encode() + b"\x00" * 8),
     {}, 2, "NUL"),
    ("report-torn-csv", ["report"], report_run("sweep.csv", SWEEP_HEADER + SWEEP_ROW + SWEEP_ROW[:30]),
     {}, 2, "row 3"),
    ("report-wrong-header", ["report"], report_run("sweep.csv", "a,b\n1,2\n"), {}, 2,
     "missing columns"),
    ("report-meta-list", ["report"], lambda d: (
        report_run("sweep.json", "[]")(d), report_run("sweep.csv", SWEEP_HEADER + SWEEP_ROW)(d)
    )[1], {}, 2, "sweep.json"),
    ("report-converge-bad-seed", ["report"], report_run(
        "converge.csv", "workload,optimizer,seed,status,target_loss\nteacher,gd,x,ok,0.1\n"),
     {}, 2, "seed"),
    ("report-newton-bad-params", ["report"], report_run(
        "newton_cost.csv", "params,op,status,device\n[],grad,ok,cpu\n"), {}, 2, "params"),
    ("report-asv-benchmarks-list", ["report"], asv({**VALID_ASV, "benchmarks.json": "[]"}), {},
     2, "benchmarks.json"),
    ("report-asv-machine-null", ["report"], asv({**VALID_ASV, "m/machine.json": "null"}), {}, 2,
     "machine.json"),
    ("report-asv-result-list", ["report"], asv({**VALID_ASV, "m/abc.json": "[1]"}), {}, 2,
     "abc.json"),
    ("report-asv-results-wrong", ["report"], asv({**VALID_ASV, "m/abc.json": json.dumps(
        {"results": {"b.x": 5}, "result_columns": ["result"]})}), {}, 2, "abc.json"),
    ("report-asv-no-machine", ["report"], asv({"benchmarks.json": "{}"}), {}, 2,
     "no asv results"),
    ("report-out-empty", ["report", "--out", ""], lambda d: (
        report_run("sweep.csv", SWEEP_HEADER + SWEEP_ROW)(d)[:2]), {}, 2, "cannot write"),
    # ---- run
    ("run-preset", ["run", "--preset", "huge"], out_only, {}, 2, "huge"),
    ("run-threads-0", ["run", "--threads", "0"], out_only, {}, 2, "threads"),
    ("run-env-threads", ["run"], out_only, {"MLPBENCH_THREADS": "-1"}, 2, "MLPBENCH_THREADS"),
    ("run-out-empty", ["run", "--preset", "quick", "--out", "", "--quiet"], None, {}, 2, "--out"),
]


MINIMA = ["minima", "--inits", "1", "--problems", "local_minima", "--batch-sizes", "16",
          "--lrs", "0.1", "--steps", "20", "--evals", "10", "--eval-every", "10", "--threads",
          "1"]
DIST = ["distributed", "--world-sizes", "1", "--no-collectives", "--quiet", "--steps", "2",
        "--warmup", "0"]
#: every subcommand that measures, with a tiny valid grid (for the classes applied to all)
MEASURING = {"peak": ["peak"], "sweep": SWEEP[:-2], "converge": CONVERGE[:-2],
             "newton-cost": NEWTON[:-2], "minima": MINIMA[:-2], "distributed": DIST,
             "run": ["run", "--preset", "quick", "--quiet"]}
FULL_WIDTH_ONE = "\uff11"  # '１': int() and float() accept it, mlpbench does not

# classes of issue "reliability, round two": each class, in every subcommand it applies to
CASES += [
    # ---- repeated list entries (also equal as values: 16,16.0 and 0.1,1e-1)
    ("peak-dup-mode", ["peak", "--mode", "fp32", "--mode", "fp32"], None, {}, 2, "repeats"),
    ("sweep-dup-batches", SWEEP + ["--batches", "4,4"], out_only, {}, 2, "repeats"),
    ("sweep-dup-threads", SWEEP[:-2] + ["--threads", "1,1"], out_only, {}, 2, "repeats"),
    ("sweep-dup-dtypes", SWEEP + ["--dtypes", "fp32,fp32"], out_only, {}, 2, "repeats"),
    ("newton-dup-widths-2", ["newton-cost", "--widths", "4,8,4", "--quiet"], out_only, {}, 2,
     "repeats"),
    ("minima-dup-problems", MINIMA + ["--problems", "local_minima,local_minima"], out_only, {},
     2, "repeats"),
    ("minima-dup-batch", MINIMA + ["--batch-sizes", "16,16"], out_only, {}, 2, "repeats"),
    ("minima-dup-lrs", MINIMA + ["--lrs", "0.1,0.1"], out_only, {}, 2, "repeats"),
    ("minima-dup-lrs-value", MINIMA + ["--lrs", "0.1,1e-1"], out_only, {}, 2, "repeats"),
    ("dist-dup-world", DIST + ["--world-sizes", "1,1"], out_only, {}, 2, "repeats"),
    ("dist-dup-bucket", DIST + ["--bucket-cap-mb", "25,25.0"], out_only, {}, 2, "repeats"),
    ("dist-dup-widths", DIST + ["--widths", "8,8"], out_only, {}, 2, "repeats"),
    ("dist-dup-scaling", DIST + ["--scaling", "weak,weak"], out_only, {}, 2, "repeats"),
    # ---- nan, inf and huge values
    ("minima-lrs-nan", MINIMA + ["--lrs", "nan"], out_only, {}, 2, "lrs"),
    ("minima-lrs-inf", MINIMA + ["--lrs", "inf"], out_only, {}, 2, "lrs"),
    ("minima-lrs-overflow", MINIMA + ["--lrs", "1e400"], out_only, {}, 2, "lrs"),
    ("minima-lrs-neg", MINIMA + ["--lrs", "-0.1"], out_only, {}, 2, "lrs"),
    ("minima-inits-huge", MINIMA + ["--inits", "9" * 20], out_only, {}, 2, "inits"),
    ("minima-steps-huge", MINIMA + ["--steps", "9" * 30], out_only, {}, 2, "steps"),
    ("dist-bucket-inf", DIST + ["--bucket-cap-mb", "inf"], out_only, {}, 2, "bucket-cap-mb"),
    ("dist-bucket-nan", DIST + ["--bucket-cap-mb", "nan"], out_only, {}, 2, "bucket-cap-mb"),
    ("dist-bucket-huge", DIST + ["--bucket-cap-mb", "1e300"], out_only, {}, 2,
     "bucket-cap-mb"),
    ("dist-timeout-nan", DIST + ["--timeout", "nan"], out_only, {}, 2, "timeout"),
    ("dist-timeout-inf", DIST + ["--timeout", "inf"], out_only, {}, 2, "timeout"),
    ("dist-timeout-huge", DIST + ["--timeout", "1e300"], out_only, {}, 2, "timeout"),
    ("dist-pg-timeout-nan", DIST + ["--pg-timeout", "nan"], out_only, {}, 2, "pg-timeout"),
    ("dist-pg-timeout-inf", DIST + ["--pg-timeout", "inf"], out_only, {}, 2, "pg-timeout"),
    ("dist-steps-neg", DIST + ["--steps", "-1"], out_only, {}, 2, "steps"),
    ("dist-port-huge", DIST + ["--master-port", "70000"], out_only, {}, 2, "master-port"),
    ("sweep-budget-overflow", SWEEP + ["--budget", "1e400"], out_only, {}, 2, "budget"),
    ("converge-max-seconds-inf", CONVERGE + ["--max-seconds", "inf"], out_only, {}, 2,
     "max-seconds"),
    ("converge-seeds-huge", CONVERGE + ["--seeds", "9" * 20], out_only, {}, 2, "seeds"),
    ("converge-lr-grid-huge-n", CONVERGE + ["--lr-grid", "1e-3:1:99999999"], out_only, {}, 2,
     "lr-grid"),
    ("newton-max-op-inf", NEWTON + ["--max-op-seconds", "inf"], out_only, {}, 2,
     "max-op-seconds"),
    # ---- lenient parsing: empty entries, trailing commas, full-width digits, underscores
    ("sweep-empty-entry", SWEEP + ["--widths", "32,,64"], out_only, {}, 2, "empty entry"),
    ("sweep-trailing-comma", SWEEP + ["--widths", "32, "], out_only, {}, 2, "empty entry"),
    ("sweep-full-width", SWEEP + ["--widths", FULL_WIDTH_ONE], out_only, {}, 2, "widths"),
    ("sweep-underscore", SWEEP + ["--widths", "1_0"], out_only, {}, 2, "widths"),
    ("sweep-seed-full-width", SWEEP + ["--seed", FULL_WIDTH_ONE], out_only, {}, 2, "seed"),
    ("converge-full-width-lr", CONVERGE + ["-O", f"adam[lr={FULL_WIDTH_ONE}]"], out_only, {},
     2, "ascii"),
    ("converge-full-width-seeds", CONVERGE + ["--seeds", FULL_WIDTH_ONE], out_only, {}, 2,
     "seeds"),
    ("newton-trailing-comma", ["newton-cost", "--widths", "8,", "--quiet"], out_only, {}, 2,
     "empty entry"),
    ("minima-empty-entry", MINIMA + ["--batch-sizes", "16,,32"], out_only, {}, 2,
     "empty entry"),
    ("minima-trailing-comma", MINIMA + ["--lrs", "0.1, "], out_only, {}, 2, "empty entry"),
    ("minima-full-width", MINIMA + ["--inits", FULL_WIDTH_ONE], out_only, {}, 2, "inits"),
    ("dist-empty-entry", DIST + ["--world-sizes", "1,,2"], out_only, {}, 2, "empty entry"),
    ("dist-full-width", DIST + ["--widths", FULL_WIDTH_ONE], out_only, {}, 2, "widths"),
    ("params-full-width", ["params", "-d", FULL_WIDTH_ONE], None, {}, 2, "input-dim"),
    # ---- work that would never end (or exhaust memory), refused before it starts
    ("minima-eval-every", MINIMA + ["--eval-every", "100000"], out_only, {}, 2, "eval-every"),
    ("minima-inits-memory", MINIMA + ["--inits", "99999999999999"], out_only, {}, 2, "memory"),
    ("converge-eval-every", CONVERGE + ["--eval-every", "100000"], out_only, {}, 2,
     "eval-every"),
    ("converge-lbfgs-history", CONVERGE + ["-O", "lbfgs[history=1000000000]"], out_only, {},
     2, "memory"),
    ("converge-teacher-lbfgs-history", CONVERGE + ["-W", "teacher", "-O",
                                                   "lbfgs[history=1000000000]"], out_only,
     {}, 2, "memory"),
    ("converge-cg-iters", CONVERGE + ["-O", "newton_cg[cg_iters=1000000000]"], out_only, {},
     2, "cg_iters"),
    ("newton-cg-iters", ["newton-cost", "--cg-iters", "1000000000", "--method", "newton_cg",
                         "--max-op-seconds", "1", "--quiet"], out_only, {}, 2, "cg-iters"),
    ("newton-cg-iters-one-net", NEWTON + ["--cg-iters", "100"], out_only, {}, 2, "cg-iters"),
    ("newton-batch-memory", NEWTON + ["--batch", "99999999999999"], out_only, {}, 2, "batch"),
    ("dist-world-huge", DIST + ["--world-sizes", "100000"], out_only, {}, 2, "world-sizes"),
    # ---- a batch larger than the data
    ("minima-batch-over-data", MINIMA + ["--batch-sizes", "100000"], out_only, {}, 2,
     "training samples"),
    ("converge-batch-over-data", CONVERGE + ["-O", "sgd[batch=100000000]"], out_only, {}, 2,
     "training samples"),
    ("converge-adam-batch-over-data", CONVERGE + ["-O", "adam[batch=257]"], out_only, {}, 2,
     "training samples"),
    # ---- MLPBENCH_RESULTS pointing nowhere: no silent fallback
    ("results-env-missing", ["report", "--reference", "-o", "r.html"], None,
     {"MLPBENCH_RESULTS": "/nonexistent/results"}, 2, "MLPBENCH_RESULTS"),
    ("results-env-file", ["report", "--reference", "-o", "r.html"], None,
     {"MLPBENCH_RESULTS": "/dev/null"}, 2, "MLPBENCH_RESULTS"),
    ("results-env-no-runs", ["report", "--reference", "-o", "r.html"], None,
     {"MLPBENCH_RESULTS": "/"}, 2, "MLPBENCH_RESULTS"),
    # ---- run checks its outputs before measuring
    ("run-report-impossible", ["run", "--preset", "quick", "--quiet", "--report",
                               "/proc/nope.html"], out_only, {}, 2, "--report"),
    ("run-report-is-folder", ["run", "--preset", "quick", "--quiet"], lambda d: (
        (d / "page").mkdir(), ["--report", d / "page", "--out", d / "out"])[1], {}, 2,
     "folder"),
    ("run-out-is-file", ["run", "--preset", "quick", "--quiet"], lambda d: (
        _write(d / "f", "x"), ["--out", d / "f", "--report", d / "r.html"])[1], {}, 2,
     "--out"),
    ("run-resume-report-impossible", ["run", "--preset", "quick", "--quiet", "--resume",
                                      "--report", "/proc/nope.html"], out_only, {}, 2,
     "--report"),
]
# ---- one environment parser at every entry point; thread counts bounded everywhere


def _out_of(name: str):
    return out_only if name in MEASURING and name != "peak" else None


CASES += [(f"{name}-env-threads-abc", argv, _out_of(name),
           {"MLPBENCH_THREADS": "abc"}, 2, "MLPBENCH_THREADS")
          for name, argv in {**MEASURING, "info": ["info"], "params": ["params"],
                             "report": ["report", "--runs", "x"]}.items()]
CASES += [(f"{name}-env-full-maybe", argv, _out_of(name),
           {"MLPBENCH_FULL": "maybe"}, 2, "MLPBENCH_FULL")
          for name, argv in {**MEASURING, "info": ["info"]}.items()]
CASES += [(f"{name}-threads-10000", argv + ["--threads", "10000"],
           _out_of(name), {}, 2, "threads")
          for name, argv in MEASURING.items()]
CASES += [(f"{name}-env-threads-10000", argv, _out_of(name),
           {"MLPBENCH_THREADS": "10000"}, 2, "MLPBENCH_THREADS")
          for name, argv in MEASURING.items() if name in ("peak", "converge", "newton-cost",
                                                           "run")]


@pytest.mark.parametrize("argv, setup, env, code, needle",
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_case(argv, setup, env, code, needle, tmp_path, monkeypatch, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    tail = setup(tmp_path) if setup else []
    monkeypatch.chdir(tmp_path)
    check(*run_cli(list(argv) + list(tail), capsys), code, needle)
    if code == 2 and setup is out_only:  # refused up front: nothing measured or stored
        assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_enough_cases():
    assert len(CASES) >= 180
    assert len({c[0] for c in CASES}) == len(CASES)  # ids are unique


def test_all_skipped_sweep_reports(tmp_path, capsys):
    """A sweep whose every point was skipped is stored and rendered, not refused."""
    out = tmp_path / "s"
    check(*run_cli(SWEEP + ["--devices", "cuda", "--out", out], capsys), 0, "skipped")
    check(*run_cli(["report", "--runs", out, "--out", tmp_path / "r.html"], capsys), 0)
    assert (tmp_path / "r.html").stat().st_size > 0


def test_diverged_run_is_stored_as_json_strict(tmp_path, capsys):
    """An overflowing learning rate is a diverged run; stored metadata stays strict JSON."""
    out = tmp_path / "c"
    check(*run_cli(CONVERGE + ["-O", "sgd[lr=1e39]", "--out", out], capsys), 0)
    text = (out / "converge.csv").read_text()
    assert "diverged" in text
    meta = (out / "converge.json").read_text()
    json.loads(meta, parse_constant=lambda c: pytest.fail(f"non-standard JSON token {c}"))


def test_resume_keeps_integer_keys(tmp_path, capsys):
    """Integer key columns stay integers after a resume, and no point is re-measured."""
    out = tmp_path / "s"
    argv = SWEEP + ["--widths", "8,16", "--out", out]
    check(*run_cli(argv, capsys), 0)
    first = (out / "sweep.csv").read_text().splitlines()
    check(*run_cli(argv + ["--resume"], capsys), 0)
    second = (out / "sweep.csv").read_text().splitlines()
    assert second == first
    header = first[0].split(",")
    for line in first[1:]:
        cells = dict(zip(header, line.split(","), strict=False))
        for col in ("input_dim", "width", "depth", "batch", "params"):
            assert cells[col].isdigit(), (col, cells[col])


def test_env_flag_rejects_unknown_words(monkeypatch):
    from mlpbench.errors import UsageError
    from mlpbench.validate import env_flag

    for word, value in (("true", True), ("ON", True), ("0", False), ("", False)):
        monkeypatch.setenv("MLPBENCH_FULL", word)
        assert env_flag("MLPBENCH_FULL") is value
    monkeypatch.setenv("MLPBENCH_FULL", "maybe")
    with pytest.raises(UsageError, match="MLPBENCH_FULL"):
        env_flag("MLPBENCH_FULL")


def test_cli_honours_env_threads(tmp_path, monkeypatch, capsys):
    """``MLPBENCH_THREADS`` is the thread count of a run that gives no ``--threads``."""
    monkeypatch.setenv("MLPBENCH_THREADS", "1")
    out = tmp_path / "s"
    check(*run_cli(SWEEP[:-2] + ["--out", out], capsys), 0)
    stored = json.loads((out / "sweep.json").read_text())
    assert stored["config"]["threads"] in (1, [1])  # a thread-count axis since --threads 1,2


def _fake_peak(device="cpu", mode="fp32", **kw):
    from mlpbench.measure.peak import PeakResult

    return PeakResult(device=device, mode=mode, gflops=12.5, size=512, threads=1, torch="x",
                      machine_id="m")


def _current_key() -> str:
    from mlpbench.devices import describe_hardware
    from mlpbench.measure import peak

    return peak._key("cpu", "fp32", 1, describe_hardware()["machine_id"])  # --threads 1


@pytest.mark.parametrize("content", ["[]", "null", "3", "{nope", "\x00\x01", '{"k": [1]}',
                                     "KEY_LIST", "KEY_MISSING_FIELD", "KEY_NAN"])
def test_peak_cache_wrong_shape_is_remeasured(content, tmp_path, monkeypatch, capsys):
    """A wrongly shaped peak cache (or entry) is ignored and rewritten, never a traceback."""
    from mlpbench.measure import peak

    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(peak, "measure_peak", _fake_peak)
    good = {k: v for k, v in vars(_fake_peak()).items()}
    content = {"KEY_LIST": json.dumps({_current_key(): [1, 2]}),
               "KEY_MISSING_FIELD": json.dumps({_current_key(): {"gflops": 3.0}}),
               "KEY_NAN": json.dumps({_current_key(): {**good, "gflops": "NaN"}}),
               }.get(content, content)
    (tmp_path / "peak.json").write_text(content)
    check(*run_cli(["peak", "--threads", "1", "--json"], capsys), 0, "12.5")
    stored = json.loads((tmp_path / "peak.json").read_text())
    assert isinstance(stored, dict) and any(v["gflops"] == 12.5 for v in stored.values())


def test_crashing_optimizer_is_a_failed_run(tmp_path, monkeypatch, capsys):
    """An optimizer raising a non-numeric error is one ``failed`` row; the other runs stand."""
    from mlpbench.studies import convergence

    real = convergence.run

    def run(workload, optimizer, **kw):
        if optimizer.startswith("sgd"):
            raise RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED\nmore detail")
        return real(workload, optimizer, **kw)

    monkeypatch.setattr(convergence, "run", run)
    out = tmp_path / "c"
    check(*run_cli(CONVERGE + ["-O", "gd", "-O", "sgd", "--out", out], capsys), 0)
    from mlpbench.results import read_table

    table = read_table(out / "converge.csv").set_index("optimizer")
    assert table.loc["gd", "status"] != "failed"
    assert table.loc["sgd", "status"] == "failed"
    assert table.loc["sgd", "reason"] == "RuntimeError: CUBLAS_STATUS_EXECUTION_FAILED"


def test_unexpected_error_is_one_line(monkeypatch, capsys):
    """A bug is one line and exit 1 (the traceback only with MLPBENCH_DEBUG=1)."""
    from mlpbench import jobs

    def boom(*a, **k):
        raise KeyError("median_s")

    monkeypatch.setattr(jobs, "params_summary", boom)
    code, out, err = run_cli(["params"], capsys)
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "internal error: KeyError" in err
    monkeypatch.setenv("MLPBENCH_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["params"])


# ---- round two: partial reports, the cache folder, CG time limits, warnings ----------------

def _failing_section(data):
    raise KeyError("params")


def test_partial_report_exits_3_and_shows_the_failure(tmp_path, monkeypatch, capsys):
    """A section that cannot be drawn: the page is written with the failure on it, exit 3
    with one stderr line; ``--allow-partial`` makes it exit 0 with one warning line."""
    from mlpbench.report import sections

    _write(tmp_path / "run" / "sweep.csv", SWEEP_HEADER + SWEEP_ROW)
    monkeypatch.setattr(sections, "SECTIONS", [*sections.SECTIONS, _failing_section])
    monkeypatch.setattr("mlpbench.report.SECTIONS", sections.SECTIONS)
    page = tmp_path / "r.html"
    argv = ["report", "--runs", tmp_path / "run", "--out", page]
    check(*run_cli(argv, capsys), 3, "--allow-partial")
    assert "could not be drawn" in page.read_text() and "KeyError" in page.read_text()
    page.unlink()
    code, out, err = run_cli(argv + ["--allow-partial"], capsys)
    check(code, out, err, 0, "warning")
    assert page.exists() and "failing" in err


def test_complete_report_exits_0(tmp_path, capsys):
    """The exit code is not 3 by construction: a clean page exits 0, stderr empty."""
    _write(tmp_path / "run" / "sweep.csv", SWEEP_HEADER + SWEEP_ROW)
    code, out, err = run_cli(["report", "--runs", tmp_path / "run", "--out",
                              tmp_path / "r.html"], capsys)
    assert code == 0 and not err.strip(), err


@pytest.mark.parametrize("argv", [["peak", "--threads", "1"], SWEEP + ["--out", "s"]],
                         ids=["peak", "sweep"])
def test_cache_that_is_a_file_is_one_line(argv, tmp_path, monkeypatch, capsys):
    _write(tmp_path / "cache", "not a folder")
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    check(*run_cli(argv, capsys), 2, "MLPBENCH_CACHE")
    assert "corrupt" not in capsys.readouterr().err


def test_newton_cg_stops_inside_its_loop_at_the_time_limit():
    """``op_time_limit`` stops a CG solve of a billion iterations at once; without a limit
    the same solve runs its iterations (the check is not always raising)."""
    import torch

    from mlpbench.measure.second_order import OpTimeLimit, op_time_limit
    from mlpbench.optimizers.base import Counters
    from mlpbench.optimizers.newton import NewtonCG

    model = torch.nn.Linear(3, 1)
    a = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    f = lambda theta: 0.5 * theta @ a @ theta  # noqa: E731 - a quadratic, H = a
    theta, g = torch.zeros(2), torch.tensor([1.0, 1.0])
    cg = NewtonCG(model, cg_iters=10**9, damping=0.0, exact_iters=True)
    with op_time_limit(1e-6), pytest.raises(OpTimeLimit, match="of 1,000,000,000"):
        cg.solve(f, theta, g, Counters())
    cg = NewtonCG(model, cg_iters=2, damping=0.0)
    with op_time_limit(60.0):
        p = cg.solve(f, theta, g, Counters())
    assert torch.allclose(p, -torch.linalg.solve(a, g))


def test_newton_cost_cg_over_the_limit_is_a_failed_row(tmp_path, capsys):
    """``--max-op-seconds`` is checked inside CG: an over-limit step is a row with its
    reason, the command exits 0."""
    from mlpbench.results import read_table

    out = tmp_path / "n"
    check(*run_cli(NEWTON + ["--method", "newton_cg", "--cg-iters", "20",
                             "--max-op-seconds", "1e-9", "--out", out], capsys), 0)
    rows = read_table(out / "newton_cost.csv").set_index("op")
    assert rows.loc["newton_cg_step", "status"] == "failed"
    assert "limit" in rows.loc["newton_cg_step", "reason"]


def test_warnings_are_silenced_or_one_line(monkeypatch, capsys):
    """A RuntimeWarning (overflow in a value) is silenced; any other warning is one line."""
    import warnings

    from mlpbench import jobs

    real = jobs.params_summary

    def noisy(*a, **k):
        warnings.warn("overflow encountered\nsecond line", RuntimeWarning, stacklevel=1)
        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        return real(*a, **k)

    monkeypatch.setattr(jobs, "params_summary", noisy)
    code, out, err = run_cli(["params"], capsys)
    assert code == 0 and "9,111,001" in out
    assert err.strip() == "mlpbench: warning: UserWarning: first line", err


def test_diverged_minima_run_is_a_result(tmp_path, capsys):
    out = tmp_path / "m"
    code, stdout, err = run_cli(MINIMA + ["--lrs", "1e300", "--out", out], capsys)
    assert code == 0 and "Traceback" not in stdout + err, err
    assert all(line.endswith("new rows") for line in err.strip().splitlines()), err  # progress
    runs = pd.read_csv(out / "minima_runs.csv")
    assert "diverged" in set(runs["run_status"]) and set(runs["cls"]) <= {"unresolved",
                                                                            "diverged"}


def test_run_with_a_partial_report_exits_3(tmp_path, monkeypatch, capsys):
    """``run`` ends with the report: a part that cannot be drawn makes it exit 3 too (the
    sweep replaced by one stored row; the page is still written)."""
    from mlpbench import jobs
    from mlpbench.report import sections

    def one_row(config, out, **kw):
        _write(Path(out) / "sweep.csv", SWEEP_HEADER + SWEEP_ROW)
        return "swept"

    monkeypatch.setattr(jobs, "sweep", one_row)
    monkeypatch.setattr("mlpbench.report.SECTIONS", [*sections.SECTIONS, _failing_section])
    argv = ["run", "--preset", "quick", "--quiet", "--out", tmp_path / "main", "--report",
            tmp_path / "r.html"]
    check(*run_cli(argv, capsys), 3, "could not be drawn")
    assert (tmp_path / "r.html").exists()
    check(*run_cli(argv + ["--resume", "--allow-partial"], capsys), 0, "warning")
