import json
import math

import pandas as pd
import pytest
import torch

from mlpbench.analysis.crossover import crossover
from mlpbench.analysis.summaries import sweep_text
from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.measure.timing import TimerConfig
from mlpbench.problems.phases import predicted_bytes
from mlpbench.spec import MLPSpec
from mlpbench.studies.sweep import (
    PRESETS,
    SweepConfig,
    grid,
    precheck,
    preset,
    run_sweep,
)

FAST = TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01, min_block_s=0)


def tiny(**kw):
    base = dict(devices=("cpu",), input_dims=(4,), widths=(8, 16), depths=(1,), batches=(4,),
                timer=FAST, isolate=False, retries=0)
    return SweepConfig(**{**base, **kw})


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    import mlpbench.measure.peak as peak

    monkeypatch.setattr(peak, "CPU_SIZES", (64,))


def test_sweep_rows_and_files(tmp_path):
    frame = run_sweep(tiny(), tmp_path / "out", progress=False)
    assert len(frame) == 2 * 5
    assert set(frame["status"]) == {"ok"}
    assert (frame["median_s"] > 0).all()
    assert (frame["samples_per_s"] == 4 / frame["median_s"]).all()
    for col in ("machine_id", "torch", "threads", "seed", "dtype", "peak_fraction",
                "predicted_bytes", "host_peak_rss"):
        assert col in frame.columns
    spec = MLPSpec(4, 16, 1)
    row = frame[(frame["width"] == 16) & (frame["phase"] == "train_sgd")].iloc[0]
    assert row["params"] == spec.num_params
    assert row["gflops"] == pytest.approx(
        4 * (spec.forward_flops().matmul + spec.backward_flops().matmul) / row["median_s"] / 1e9)
    meta = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert meta["hardware"]["machine_id"] == row["machine_id"]
    assert meta["config"]["widths"] == [8, 16]
    disk = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert len(disk) == len(frame)


def test_refuses_to_overwrite_and_resume_skips(tmp_path):
    out = tmp_path / "out"
    run_sweep(tiny(widths=(8,)), out, progress=False)
    with pytest.raises(UsageError, match="--resume"):
        run_sweep(tiny(widths=(8,)), out, progress=False)
    before = pd.read_csv(out / "sweep.csv")
    with pytest.raises(UsageError, match="different configuration: widths"):
        run_sweep(tiny(widths=(8, 16)), out, resume=True, progress=False)
    frame = run_sweep(tiny(widths=(8,)), out, resume=True, progress=False)
    assert len(frame) == 5  # nothing re-measured, nothing duplicated
    pd.testing.assert_series_equal(frame["median_s"], before["median_s"], check_names=False)


def test_cuda_points_skipped_without_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    frame = run_sweep(tiny(devices=("cpu", "cuda"), widths=(8,)), tmp_path / "o", progress=False)
    cuda = frame[frame["device"] == "cuda"]
    assert len(cuda) == 5 and set(cuda["status"]) == {"skipped"}
    assert cuda["reason"].str.contains("no CUDA").all()


def test_memory_precheck_skips_without_attempting(tmp_path):
    cfg = tiny(input_dims=(100,), widths=(1000,), depths=(10,), batches=(1024,),
               memory_fraction=1e-6)
    reason = precheck(grid(cfg)[0], cfg)
    assert "would need" in reason and "memory model" in reason
    frame = run_sweep(cfg, tmp_path / "o", progress=False)
    assert set(frame["status"]) == {"skipped"}


def test_isolated_point_records_host_peak(tmp_path):
    cfg = tiny(widths=(8,), isolate=True, phases=("infer",))
    frame = run_sweep(cfg, tmp_path / "o", progress=False)
    row = frame.iloc[0]
    assert row["status"] == "ok"
    assert row["host_peak_rss"] >= row["host_baseline_rss"] > 0


def test_keras_framework_phases(tmp_path):
    pytest.importorskip("keras")
    frame = run_sweep(tiny(widths=(8,), frameworks=("keras",)), tmp_path / "o", progress=False)
    status = dict(zip(frame["phase"], frame["status"], strict=True))
    assert status == {"infer": "ok", "forward": "skipped", "backward": "skipped",
                      "train_sgd": "ok", "train_adam": "ok"}


def test_grid_order_and_presets():
    cfg = tiny(widths=(64, 8, 32))
    assert [p.width for p in grid(cfg)] == [8, 32, 64]
    full = preset("full")
    sizes = {MLPSpec(d, w, L).num_params for d in full.input_dims for w in full.widths
             for L in full.depths}
    assert 9_111_001 in sizes and max(sizes) >= 10**7
    assert set(PRESETS) == {"quick", "default", "full"}


def test_predicted_bytes_grows_with_optimizer_state():
    spec = MLPSpec(10, 10, 2)
    assert predicted_bytes(spec, "train_adam", "fp32", 8) > predicted_bytes(
        spec, "train_sgd", "fp32", 8) > predicted_bytes(spec, "infer", "fp32", 8)


def test_crossover_from_synthetic_frame():
    rows = []
    for params, cpu_t, gpu_t in [(100, 1e-5, 5e-5), (1000, 1e-4, 6e-5), (10000, 1e-3, 7e-5)]:
        for dev, t in (("cpu", cpu_t), ("cuda", gpu_t)):
            rows.append(dict(device=dev, phase="infer", dtype="fp32", framework="torch",
                             input_dim=1, width=params, depth=1, batch=8, params=params,
                             status="ok", median_s=t))
    out = crossover(pd.DataFrame(rows))
    assert out.iloc[0]["crossover_params"] == 1000
    never = crossover(pd.DataFrame([{**r, "median_s": 1.0} if r["device"] == "cuda" else r
                                    for r in rows]))
    assert math.isnan(never.iloc[0]["crossover_params"])
    # a lower CUDA median inside the spreads is no win: it is counted as undecided
    noisy = [{**r, "iqr_s": r["median_s"]} for r in rows]
    out = crossover(pd.DataFrame(noisy))
    assert out.iloc[0]["crossover_params"] == 10000 and out.iloc[0]["undecided"] == 1


@pytest.mark.parametrize("argv, needle", [
    (["sweep", "--devices", "tpu"], "tpu"),
    (["sweep", "--widths", "8,x"], "8,x"),
    (["sweep", "--widths", "0"], "widths"),
    (["sweep", "--dtypes", "fp64"], "fp64"),
    (["sweep", "--phases", "sleep"], "sleep"),
    (["sweep", "--preset", "huge"], "huge"),
    (["sweep", "--budget", "-1"], "budget"),
    (["sweep", "--out", "/proc/nope/out"], "cannot write"),
])
def test_sweep_bad_input(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_sweep_cli_small(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["sweep", "--devices", "cpu", "--input-dims", "4", "--widths", "8",
                 "--depths", "1", "--batches", "4", "--budget", "0.01", "--no-isolate",
                 "--quiet", "--out", str(out)]) == 0
    assert "rows: ok 5" in capsys.readouterr().out
    assert (out / "sweep.csv").exists()


@pytest.mark.gpu
def test_cuda_sweep_point(tmp_path):
    frame = run_sweep(tiny(devices=("cuda",), widths=(64,)), tmp_path / "g", progress=False)
    assert set(frame["status"]) == {"ok"}
    assert (frame["cuda_peak_allocated"] > 0).all()
    assert (frame["cuda_peak_reserved"] >= frame["cuda_peak_allocated"]).all()


def test_bf16_sweep_uses_its_own_peak(tmp_path):
    frame = run_sweep(tiny(widths=(8,), dtypes=("bf16",), phases=("infer", "train_sgd")),
                      tmp_path / "b", progress=False)
    assert set(frame["status"]) == {"ok"} and set(frame["dtype"]) == {"bf16"}
    meta = json.loads((tmp_path / "b" / "sweep.json").read_text())
    # the reference peak is the cached bf16 one; the divisor is a bf16 yardstick timed beside
    assert frame["peak_ref_gflops"].iloc[0] == pytest.approx(meta["peaks_gflops"]["cpu"]["bf16"])
    # FAST caps the samples at 3, so at most 3 rounds (else at least MIN_ROUNDS)
    assert (frame["peak_gflops"] > 0).all() and (frame["peak_rounds"] == 3).all()


def test_old_sweep_table_without_mode_loads_as_eager(tmp_path):
    from mlpbench.results import load_runs

    frame = run_sweep(tiny(widths=(8,), phases=("infer",)), tmp_path / "old", progress=False)
    path = tmp_path / "old" / "sweep.csv"
    pd.read_csv(path).drop(columns=["mode"]).to_csv(path, index=False)  # a pre-mode table
    old = load_runs([tmp_path / "old"])["sweep"]
    assert set(old["mode"]) == {"eager"}  # the reader fills the axis with its default
    old = old.drop(columns="mode")  # analysis copes with a frame that lacks it, too
    rows = old.assign(device="cuda", median_s=old["median_s"] / 2)
    both = pd.concat([old, rows], ignore_index=True)
    cross = crossover(both)
    assert list(cross["mode"]) == ["eager"] and cross.iloc[0]["crossover_params"] == \
        frame.iloc[0]["params"]
    assert "CUDA beats CPU for infer (fp32, torch, B=4, eager)" in sweep_text(both)
