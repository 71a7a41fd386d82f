"""Property-based fuzzing of the CLI contract (hypothesis): generated argument lists for
sweep, converge, minima, newton-cost, distributed and report, and corrupted result files
under ``report`` and ``sweep --resume``.

The contract, for every input: exit code 0 (or 3, a partial report) or 2; never 1 (an
internal error) and never a traceback; a refusal is exactly one stderr line starting with
``mlpbench``. Argument lists stop before measuring (the study functions of
:mod:`mlpbench.jobs` are replaced by a recorder), so an accepted list is checked as well:
what reaches the study holds no repeated entry and no non-finite or non-positive number.
The examples per test are fixed in number (60 or 20 per test)
and derandomized, without an example database, so the run is bounded and repeatable.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mlpbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
SLOW = settings(FAST, max_examples=20)

#: values that broke parsers before, plus generated numbers and text
NASTY = ["nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "0.0", "-0", "9" * 25, "\uff11",
         "1_0", "", " ", ",", "32,,64", "32, ", ",32", "8,8", "8,8.0", "0.1,1e-1", "1e-320",
         "abc", "[", "]", "=", "x[y=1]", "\u0660", "+5", "0x10", "1e3", "4.5", "\t8"]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(["1", "2", "3", "8", "16", "2,4", "0.5", "10"]),  # often accepted
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.integers(-3, 300).map(str), min_size=1, max_size=4).map(",".join),
    st.text(max_size=6),
)
OPTIMIZER = st.builds(
    lambda name, key, value: f"{name}[{key}={value}]" if key else name,
    st.sampled_from(["gd", "sgd", "adam", "lbfgs", "newton", "newton_cg", "momentum", "x"]),
    st.sampled_from(["", "lr", "batch", "history", "cg_iters", "momentum", "damping", "q"]),
    VALUES)

SWEEP = ["sweep", "--devices", "cpu", "--input-dims", "4", "--widths", "8", "--depths", "1",
         "--batches", "4", "--phases", "infer", "--budget", "0.01", "--no-isolate", "--quiet",
         "--threads", "1"]
CONVERGE = ["converge", "-W", "quadratic", "-O", "gd", "--seeds", "1", "--max-steps", "5",
            "--quiet", "--threads", "1"]
MINIMA = ["minima", "--inits", "1", "--problems", "local_minima", "--batch-sizes", "16",
          "--lrs", "0.1", "--steps", "20", "--evals", "10", "--eval-every", "10"]
FLAGS = {
    "sweep": ["--widths", "--depths", "--input-dims", "--batches", "--threads", "--budget",
              "--seed", "--devices", "--dtypes", "--phases", "--activation", "--preset",
              "--modes", "--frameworks"],
    "converge": ["--seeds", "--max-steps", "--max-seconds", "--max-grad-evals",
                 "--eval-every", "--lr-grid", "--device", "--threads", "-W"],
    "minima": ["--inits", "--problems", "--batch-sizes", "--lrs", "--steps", "--evals",
               "--eval-every", "--threads"],
    "newton-cost": ["--widths", "--batch", "--cg-iters", "--max-op-seconds", "--input-dim",
                    "--width", "--depth", "--threads"],
    "distributed": ["--world-sizes", "--widths", "--batches", "--bucket-cap-mb", "--steps",
                    "--warmup", "--timeout", "--pg-timeout", "--threads", "--scaling",
                    "--master-port", "--seed"],
}


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    for name in ("MLPBENCH_THREADS", "MLPBENCH_FULL", "MLPBENCH_RESULTS"):
        monkeypatch.delenv(name, raising=False)


def contract(argv, capsys, allowed=(0, 2)) -> int:
    """Run ``argv``; assert the exit-code and one-line contract; return the code."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err, cap.err
    event(f"exit {code}")  # shown by --hypothesis-show-statistics: both outcomes occur
    assert code in allowed, (argv, code, cap.err)
    lines = [line for line in cap.err.splitlines() if line.strip()]
    if code:
        assert len(lines) == 1 and lines[0].startswith("mlpbench"), (argv, cap.err)
    return code


def _all_valid(values) -> bool:
    """No repeated entry, every number finite and positive (recursively)."""
    values = list(values)
    if len(set(map(repr, values))) != len(values):
        return False
    for v in values:
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float) and not (math.isfinite(v) and v > 0):
            return False
        if isinstance(v, tuple | list) and not _all_valid(v):
            return False
    return True


@pytest.fixture
def recorder(monkeypatch):
    """The study functions of :mod:`mlpbench.jobs` replaced: record what reaches them."""
    from mlpbench import jobs

    seen: list[dict] = []

    def record(name):
        def fake(*args, **kwargs):
            seen.append({"job": name, "args": args, "kwargs": kwargs})
            return "recorded"
        return fake

    for name in ("sweep", "converge", "minima", "newton_cost"):
        monkeypatch.setattr(jobs, name, record(name))
    return seen


def _extra(command: str):
    return st.lists(st.tuples(st.sampled_from(FLAGS[command]), VALUES), min_size=1,
                    max_size=3).map(lambda pairs: [x for pair in pairs for x in pair])


@FAST
@given(extra=_extra("sweep"))
def test_sweep_arguments(extra, recorder, capsys, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    if contract([*SWEEP, *extra, "--out", out], capsys) == 0:
        config = recorder[-1]["args"][0]
        for field in ("widths", "depths", "input_dims", "batches", "threads", "devices",
                      "dtypes", "phases"):
            value = getattr(config, field, None)
            if isinstance(value, tuple | list):
                assert _all_valid(value), (field, value)


@FAST
@given(extra=_extra("converge"), optimizers=st.lists(OPTIMIZER, max_size=2))
def test_converge_arguments(extra, optimizers, recorder, capsys, tmp_path_factory):
    out = tmp_path_factory.mktemp("converge")
    opts = [x for o in optimizers for x in ("-O", o)]
    if contract([*CONVERGE, *opts, *extra, "--out", out], capsys) == 0:
        kw = recorder[-1]["kwargs"]
        assert _all_valid(kw["optimizers"]) and _all_valid(kw["workloads"])
        assert _all_valid(kw["lr_values"]) and kw["seeds"] == list(range(len(kw["seeds"])))
        assert kw["settings"].eval_every <= kw["budget"].max_steps


@FAST
@given(extra=_extra("minima"))
def test_minima_arguments(extra, recorder, capsys, tmp_path_factory):
    out = tmp_path_factory.mktemp("minima")
    if contract([*MINIMA, *extra, "--out", out], capsys) == 0:
        cfg = recorder[-1]["args"][1]
        for field in ("problems", "batch_sizes", "lrs"):
            assert _all_valid(getattr(cfg, field)), (field, getattr(cfg, field))
        assert cfg.eval_every <= min(cfg.steps, cfg.evals)
        assert max(cfg.batch_sizes) <= 256  # the problems' training sets


@FAST
@given(runs=st.lists(VALUES, max_size=2), out=VALUES, results=st.none() | VALUES,
       reference=st.booleans())
def test_report_arguments(runs, out, results, reference, monkeypatch, capsys,
                          tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("report"))
    results = (results or "").replace("\x00", "").strip() or None
    if results is not None:  # (unset or empty: the checkout's own, the slow full report)
        monkeypatch.setenv("MLPBENCH_RESULTS", results)
    argv = ["report", *(["--runs", *runs] if runs else []), "--out", out]
    if reference and results is not None:  # never the whole reference report: slow
        argv.append("--reference")
    elif not runs:
        argv += ["--runs", "/nonexistent"]
    contract(argv, capsys, allowed=(2,))


@SLOW
@given(extra=_extra("newton-cost"))
@example(extra=["--widths", "8,16", "--cg-iters", "20"])  # accepted: the oracle runs
def test_newton_cost_arguments(extra, recorder, capsys, tmp_path_factory):
    out = tmp_path_factory.mktemp("newton")
    code = contract(["newton-cost", "--no-target", "--quiet", *extra, "--out", out], capsys)
    assert code == 0 or extra != ["--widths", "8,16", "--cg-iters", "20"]
    if code == 0:
        cfg = recorder[-1]["args"][0]
        assert _all_valid(cfg.widths) and cfg.cg_iters <= max(s.num_params
                                                               for s in cfg.specs())


@SLOW
@given(extra=_extra("distributed"))
@example(extra=["--world-sizes", "1,2", "--bucket-cap-mb", "1,25"])  # reaches the study
def test_distributed_arguments(extra, monkeypatch, capsys, tmp_path_factory):
    import pandas as pd

    import mlpbench.studies.distributed as dist

    seen = []
    monkeypatch.setattr(dist, "run_distributed",
                        lambda config, out, **kw: seen.append(config) or pd.DataFrame())
    out = tmp_path_factory.mktemp("dist")
    contract(["distributed", "--no-collectives", "--quiet", *extra, "--out", out], capsys)
    event(f"reached the study: {bool(seen)}")
    assert seen or extra != ["--world-sizes", "1,2", "--bucket-cap-mb", "1,25"]
    for config in seen:  # reached the study: "nothing was measured" is then exit 2
        for field in ("world_sizes", "widths", "batches", "bucket_caps_mb", "scalings"):
            assert _all_valid(getattr(config, field)), (field, getattr(config, field))
        assert math.isfinite(config.launch_timeout_s) and math.isfinite(config.pg_timeout_s)


# ---- corrupted result files --------------------------------------------------------------

def _head(path: Path, lines: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


TABLES = {
    "sweep.csv": _head(ROOT / "results/runs/amd-epyc-2c/sweep/sweep.csv", 3),
    "converge.csv": _head(ROOT / "results/runs/amd-epyc-2c/converge/converge.csv", 4),
    "minima_runs.csv": _head(ROOT / "results/runs/intel-xeon-2c/minima/minima_runs.csv", 4),
}


@st.composite
def corrupted(draw, data: bytes) -> bytes:
    """``data`` truncated, with bytes flipped, inserted or a cell replaced."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "cell", "column", "header"]))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return data[:at]
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    lines = data.decode().splitlines()
    header = lines[0].split(",")
    col = draw(st.integers(0, len(header) - 1))
    if kind == "column":  # one column dropped from every line
        return "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != col)
                         for line in lines).encode() + b"\n"
    if kind == "header":
        return (data + lines[0].encode() + b"\n")
    row = draw(st.integers(1, len(lines) - 1))
    cells = lines[row].split(",")
    if col < len(cells):
        cells[col] = draw(VALUES).replace("\n", "")
    lines[row] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def no_figures(monkeypatch):
    """Sections run in full; figures are not drawn (drawing is most of a report's time and
    is covered by test_report_render.py and the partial-report test in test_hostile.py)."""
    import mlpbench.report as report

    def skip(sections):
        for section in sections:
            section.pending.clear()

    monkeypatch.setattr(report, "render_pending", skip)


@SLOW
@given(name=st.sampled_from(sorted(TABLES)), data=st.data())
def test_report_over_corrupted_tables(name, data, no_figures, capsys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    (folder / name).write_bytes(data.draw(corrupted(TABLES[name])))
    contract(["report", "--runs", folder, "--out", folder / "r.html"], capsys,
             allowed=(0, 2, 3))


@SLOW
@given(data=st.data())
def test_sweep_resume_over_a_corrupted_table(data, capsys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    header, row = TABLES["sweep.csv"].splitlines(keepends=True)[:2]
    (folder / "sweep.csv").write_bytes(data.draw(corrupted(header + row)))
    contract([*SWEEP, "--resume", "--out", folder], capsys)
