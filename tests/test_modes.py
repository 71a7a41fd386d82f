"""Execution modes, precisions, thread axis, bandwidth, roofline and their figures."""

import math

import matplotlib.axes
import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mlpbench.problems.modes as modes
from mlpbench.analysis.modes import compile_speedup, precision_speedup, thread_scaling
from mlpbench.analysis.roofline import (
    intensity,
    memory_bound_below_width,
    phase_bytes,
    phase_matmul_flops,
    ridge,
    roofline_table,
)
from mlpbench.cli import main
from mlpbench.measure.bandwidth import get_bandwidth, measure_bandwidth
from mlpbench.measure.timing import TimerConfig
from mlpbench.models import build_torch
from mlpbench.point import Point, key_of, with_defaults
from mlpbench.problems.phases import make_bench, phase_callable
from mlpbench.report import fig_modes
from mlpbench.spec import MLPSpec
from mlpbench.studies.sweep import SweepConfig, grid, run_sweep

FAST = TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01, min_block_s=0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    import mlpbench.measure.peak as peak

    monkeypatch.setattr(peak, "CPU_SIZES", (64,))
    monkeypatch.setattr(modes, "BACKEND", "eager")  # dynamo without inductor: seconds, not 30


def tiny(**kw):
    base = dict(devices=("cpu",), input_dims=(4,), widths=(8,), depths=(1,), batches=(4,),
                timer=FAST, isolate=False, phases=("infer", "train_sgd"))
    return SweepConfig(**{**base, **kw})


def test_point_keys_default_old_rows_to_eager():
    old = {"device": "cpu", "dtype": "fp32", "framework": "torch", "input_dim": 4, "width": 8,
           "depth": 1, "batch": 4, "threads": 2}
    assert key_of(old) == Point("cpu", "fp32", "torch", 4, 8, 1, 4, threads=2).key
    frame = with_defaults(pd.DataFrame([old]))
    assert frame.loc[0, "mode"] == "eager" and frame.loc[0, "activation"] == "relu"


def test_grid_crosses_modes_and_threads():
    points = grid(tiny(modes=("eager", "compile"), threads=(1, 2)))
    assert {(p.mode, p.threads) for p in points} == {(m, t) for m in ("eager", "compile")
                                                     for t in (1, 2)}
    assert tiny(threads=3).threads == (3,)


def test_compiled_sweep_matches_eager_and_records_first_call(tmp_path):
    frame = run_sweep(tiny(modes=("eager", "compile")), tmp_path / "o", progress=False)
    assert set(frame["status"]) == {"ok"} and set(frame["mode"]) == {"eager", "compile"}
    assert (frame["first_call_s"] > 0).all()
    comp = frame[frame["mode"] == "compile"]
    assert (comp["compile_s"] >= 0).all()
    assert frame[frame["mode"] == "eager"]["compile_s"].isna().all()
    on_disk = pd.read_csv(tmp_path / "o" / "sweep.csv")
    assert "mode" in on_disk.columns
    speed = compile_speedup(frame)
    assert len(speed) == 2 and set(speed["mode"]) == {"compile"}


def test_compiled_forward_equals_eager():
    spec = MLPSpec(4, 8, 2)
    eager = make_bench(spec, batch=5, device=torch.device("cpu"))
    comp = make_bench(spec, batch=5, device=torch.device("cpu"), mode="compile")
    fe, _ = phase_callable(eager, "infer")
    fc, _ = phase_callable(comp, "infer")
    torch.testing.assert_close(fc(), fe())


def test_compile_failure_is_a_failed_row(tmp_path, monkeypatch):
    def broken(gm, inputs):
        raise RuntimeError("boom in the backend")

    monkeypatch.setattr(modes, "BACKEND", broken)
    frame = run_sweep(tiny(modes=("compile",), phases=("infer",)), tmp_path / "f",
                      progress=False)
    row = frame.iloc[0]
    assert row["status"] == "failed" and "boom in the backend" in row["reason"]
    assert "\n" not in row["reason"]


def test_cuda_only_modes_skip_on_cpu(tmp_path):
    frame = run_sweep(tiny(modes=("cudagraphs",), dtypes=("fp32", "tf32")), tmp_path / "c",
                      progress=False)
    assert set(frame["status"]) == {"skipped"}
    assert frame["reason"].str.contains("CUDA").all()


def test_bf16_autocast_keeps_fp32_weights_and_runs_bf16_matmuls():
    bench = make_bench(MLPSpec(4, 8, 1), batch=3, device=torch.device("cpu"),
                       dtype="bf16-autocast")
    assert all(p.dtype == torch.float32 for p in bench.model.parameters())
    fn, _ = phase_callable(bench, "infer")
    assert fn().dtype == torch.bfloat16
    train, _ = phase_callable(bench, "train_sgd")
    assert train().dtype == torch.float32 and torch.isfinite(train())


def test_precision_and_thread_analysis_on_synthetic_rows():
    base = dict(device="cpu", framework="torch", input_dim=4, width=8, depth=1, batch=4,
                activation="relu", params=49, status="ok", phase="infer")
    rows = [dict(base, dtype="fp32", mode="eager", threads=1, median_s=1.0),
            dict(base, dtype="fp32", mode="eager", threads=2, median_s=0.625),
            dict(base, dtype="bf16", mode="eager", threads=1, median_s=2.0),
            dict(base, dtype="fp32", mode="compile", threads=1, median_s=0.5),
            dict(base, dtype="fp32", mode="compile", threads=1, median_s=0.5, status="failed")]
    frame = pd.DataFrame(rows)
    prec = precision_speedup(frame)
    assert prec.set_index("dtype").loc["bf16", "speedup"] == pytest.approx(0.5)
    comp = compile_speedup(frame)
    assert len(comp) == 1 and comp.iloc[0]["speedup"] == pytest.approx(2.0)
    thr = thread_scaling(frame[frame["dtype"] == "fp32"])
    two = thr[(thr["threads"] == 2)].iloc[0]
    assert two["speedup"] == pytest.approx(1.6) and two["efficiency"] == pytest.approx(0.8)
    assert thr[(thr["threads"] == 1) & (thr["mode"] == "eager")].iloc[0]["efficiency"] == 1
    old = frame.drop(columns=["mode"]).iloc[:3]
    assert compile_speedup(old).empty  # a table from before the mode axis: all eager


def _traffic_oracle(spec, batch):
    """Parameter and Linear input+output element counts from a real model's forward hooks."""
    model = build_torch(spec)
    acts = []
    hooks = [m.register_forward_hook(lambda m, i, o: acts.append(i[0].numel() + o.numel()))
             for m in model if isinstance(m, torch.nn.Linear)]
    model(torch.randn(batch, spec.input_dim))
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in model.parameters()), sum(acts)


@pytest.mark.parametrize("d, w, L, batch", [(3, 7, 1, 5), (10, 32, 3, 16)])
def test_roofline_bytes_and_flops_against_a_real_model(d, w, L, batch):
    spec = MLPSpec(d, w, L)
    params, acts = _traffic_oracle(spec, batch)
    assert phase_bytes(spec, "infer", batch) == 4 * (params + acts)
    assert phase_bytes(spec, "backward", batch, "bf16") == 2 * 2 * (params + acts)
    assert phase_bytes(spec, "train_adam", batch) - phase_bytes(spec, "train_sgd", batch) \
        == 4 * 4 * params
    with FlopCounterMode(display=False) as counter:
        build_torch(spec)(torch.randn(batch, d))
    assert phase_matmul_flops(spec, "infer", batch) == counter.get_total_flops()


def test_memory_bound_width_is_the_ridge_crossing():
    peak, bw = 100.0, 10.0  # ridge at 10 FLOP/byte
    w = memory_bound_below_width("infer", 100, 2, 256, peak, bw)
    assert intensity(MLPSpec(100, int(w), 2), "infer", 256) >= ridge(peak, bw)
    assert intensity(MLPSpec(100, int(w) - 1, 2), "infer", 256) < ridge(peak, bw)
    assert math.isnan(memory_bound_below_width("infer", 100, 2, 1, 1e6, 1.0, max_width=4096))


def test_roofline_table_classifies_rows():
    rows = pd.DataFrame([dict(status="ok", input_dim=100, width=w, depth=2, batch=256,
                              phase="infer", dtype="fp32", gflops=1.0, peak_gflops=100.0)
                         for w in (4, 4096)])
    table = roofline_table(rows, bandwidth_gbs=10.0)
    assert list(table["bound"]) == ["memory", "compute"]
    assert (table["attainable_gflops"] <= 100.0).all()


def test_bandwidth_measured_and_cached(monkeypatch):
    r = measure_bandwidth("cpu", elements=2**16, config=FAST)
    assert r.copy_gbs > 0 and r.triad_gbs > 0 and r.array_bytes == 4 * 2**16
    import mlpbench.measure.bandwidth as bw

    monkeypatch.setattr(bw, "measure_bandwidth", lambda dev: r)
    first = get_bandwidth("cpu")
    monkeypatch.setattr(bw, "measure_bandwidth", lambda dev: pytest.fail("not cached"))
    assert get_bandwidth("cpu") == first


@pytest.mark.parametrize("argv, needle", [
    (["sweep", "--modes", "turbo"], "turbo"),
    (["sweep", "--threads", "0"], "--threads"),
    (["sweep", "--dtypes", "fp8"], "fp8"),
    (["peak", "--mode", "tf32"], "tf32"),
])
def test_bad_mode_input_is_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_sweep_cli_modes_column(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["sweep", "--devices", "cpu", "--input-dims", "4", "--widths", "8",
                 "--depths", "1", "--batches", "4", "--budget", "0.01", "--no-isolate",
                 "--quiet", "--phases", "infer", "--modes", "eager,cudagraphs",
                 "--threads", "1", "--out", str(out)]) == 0
    disk = pd.read_csv(out / "sweep.csv")
    assert dict(zip(disk["mode"], disk["status"], strict=True)) == {
        "eager": "ok", "cudagraphs": "skipped"}
    assert set(disk["threads"]) == {1}


def test_figures_return_axes():
    base = dict(phase="infer", mode="compile", dtype="bf16", params=1000, speedup=1.2,
                speedup_min=0.9, speedup_max=1.4, threads=2, efficiency=0.6,
                efficiency_min=0.5, efficiency_max=0.7, intensity=3.0, gflops=5.0, reps=3,
                base_median_s=1.2e-3, median_s=1e-3, series="d=4, L=1, B=4", batch=4,
                bound="memory", roof_fraction=0.5)
    data = pd.DataFrame([base, {**base, "params": 10_000, "intensity": 30.0}])
    for axes in (fig_modes.speedup_panels(data), fig_modes.thread_efficiency(data),
                 fig_modes.precision_bars(data),
                 fig_modes.roofline(data, peak_gflops=50.0, bandwidth_gbs=5.0)):
        ax = axes if isinstance(axes, matplotlib.axes.Axes) else axes[0]
        assert isinstance(ax, matplotlib.axes.Axes) and ax.get_ylabel()
        assert ax.figure._hover  # every point has a tooltip
        ax.figure.clf()
