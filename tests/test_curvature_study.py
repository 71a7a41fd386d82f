"""The curvature cost study: its rows, its variants, and the analysis read from them."""

import importlib.util

import pandas as pd
import pytest

from mlpbench.analysis.curvature import (
    extrapolation,
    flop_model,
    headline,
    memory_check,
    render_costs,
    step_costs,
)
from mlpbench.errors import UsageError
from mlpbench.optimizers import resolve
from mlpbench.spec import TARGET_SPEC
from mlpbench.studies.curvature import (
    NEVER,
    CurvatureConfig,
    optimizer_text,
    run_curvature_study,
)


def _row(p, method, variant, t, **kw):
    state = kw.pop("state", 0)
    return {"params": p, "method": method, "variant": variant, "compiled": False,
            "status": "ok", "median_s": t, "factor_cubes": kw.pop("cubes", 0),
            "state_model_bytes": state, "state_counted_bytes": state,
            "training_model_bytes": 4 * p * 3, "rss_peak_bytes": 4.0 * p, **kw}


def test_amortised_cost_and_multiples_from_a_known_table():
    """(t_update + (k−1) t_cheap)/k at k=2 (SOAP), k=10 (K-FAC); ×SGD and ×Adam at that P."""
    rows = [_row(100, "sgd", "step", 1.0), _row(100, "adam", "step", 2.0),
            _row(100, "soap", "update", 9.0, cubes=1000), _row(100, "soap", "cheap", 3.0),
            _row(100, "kfac", "update", 21.0), _row(100, "kfac", "cheap", 1.0),
            _row(100, "soap", "update", 99.0, status="failed", median_s=None)]
    c = step_costs(rows).set_index(["method", "regime"])
    assert c.loc[("soap", "k=2"), "step_s"] == pytest.approx((9 + 3) / 2)
    assert c.loc[("soap", "k=2"), "x_sgd"] == pytest.approx(6.0)
    assert c.loc[("soap", "k=2"), "x_adam"] == pytest.approx(3.0)
    assert c.loc[("kfac", "k=10"), "step_s"] == pytest.approx((21 + 9 * 1) / 10)
    assert c.loc[("adam", "every step"), "x_sgd"] == pytest.approx(2.0)
    f = flop_model(step_costs(rows)).set_index("method")
    assert f.loc["soap", "ns_per_cube"] == pytest.approx((9 - 3) / 1000 * 1e9)
    assert "soap" in render_costs(step_costs(rows))


def test_psgd_is_reported_in_both_regimes():
    rows = [_row(100, "adam", "step", 1.0), _row(100, "psgd_kron", "update", 4.0),
            _row(100, "psgd_kron", "cheap", 1.0)]
    c = step_costs(rows)
    psgd = c[c["method"] == "psgd_kron"].sort_values("k")["step_s"].tolist()
    assert psgd == pytest.approx([4.0, (4 + (1 / 0.03 - 1)) * 0.03])


def test_empty_and_all_failed_tables_give_nothing():
    assert step_costs([]).empty
    assert step_costs([_row(1, "sgd", "step", None, status="oom")]).empty
    assert memory_check([]).empty


def test_memory_check_ratios():
    big = 2 ** 26  # P whose modelled memory passes the RSS threshold
    m = memory_check([_row(big, "soap", "update", 1.0, state=8 * big),
                      _row(10, "sgd", "step", 1.0)]).set_index("params")
    assert m.loc[big, "state_ratio"] == 1.0
    assert m.loc[big, "rss_ratio"] == pytest.approx(4.0 * big / (4 * big * 3 - 4 * big))
    assert bool(m.loc[big, "checked"]) and not bool(m.loc[10, "checked"])


def test_extrapolation_labels_fits_and_models():
    p = [1000, 4000, 16000, 64000]
    rows = [r for q in p for r in (_row(q, "adam", "step", q * 1e-6),
                                   _row(q, "sgd", "step", q * 5e-7))]
    e = extrapolation(step_costs(rows), ("adam", "soap"))
    at = e[(e["params"] == TARGET_SPEC.num_params) & (e["method"] == "adam")].iloc[0]
    assert at["kind"].startswith("EXTRAPOLATION") and at["seconds"] == pytest.approx(9.111001)
    soap = e[e["method"] == "soap"]
    assert (soap["kind"] == "memory model").all() and soap["seconds"].isna().all()
    # 4096- and 8192-wide dimensions exceed max_precond_dim=2048: SOAP keeps Adam's 2·P and
    # only the first layer's input-side factor pair, 2·100²
    wide = soap[soap["params"] > TARGET_SPEC.num_params]
    assert (wide["state_bytes"] == 4 * (2 * wide["params"] + 2 * 100 ** 2)).all()
    assert headline(step_costs(rows)) is None  # nothing measured at 10^7


def test_variant_identifiers_force_the_preconditioner():
    assert resolve(optimizer_text("soap", "update", False)).hp["precondition_frequency"] == 1
    assert resolve(optimizer_text("soap", "cheap", False)).hp["precondition_frequency"] == NEVER
    assert resolve(optimizer_text("psgd_kron", "cheap", True)).hp["update_probability"] == 0
    assert resolve(optimizer_text("psgd_kron", "cheap", True)).hp["compile"] is True
    assert resolve(optimizer_text("sgd", "step", False)).batch_size is None


@pytest.mark.parametrize("bad", [{"widths": (0,)}, {"methods": ("nadam",)}, {"batch": 0}])
def test_config_refuses_bad_values(bad):
    with pytest.raises(UsageError):
        CurvatureConfig(**bad)


def test_study_measures_a_tiny_grid(tmp_path):
    """Rows for every variant; the allocated state equals the model (the oracle); without
    the library a point is skipped with the reason, not failed."""
    cfg = CurvatureConfig(widths=(8,), include_target=False, methods=("sgd", "soap", "kfac"))
    df = run_curvature_study(cfg, tmp_path / "c", progress=False)
    assert (tmp_path / "c" / "curvature_cost.csv").is_file()
    assert set(zip(df["method"], df["variant"], strict=True)) == {
        ("sgd", "step"), ("soap", "update"), ("soap", "cheap"), ("kfac", "update"),
        ("kfac", "cheap")}
    for r in df.itertuples():
        lib = resolve(r.optimizer).definition.requires
        if lib and importlib.util.find_spec(lib) is None:
            assert r.status == "skipped" and "curvature extra" in r.reason
            continue
        assert r.status == "ok" and r.median_s > 0, r
        assert r.state_counted_bytes == r.state_model_bytes, r
    again = run_curvature_study(cfg, tmp_path / "c", resume=True, progress=False)
    assert len(again) == len(df)  # resumed: nothing re-measured or duplicated
    assert isinstance(again, pd.DataFrame)


def test_spread_over_repeated_runs():
    from mlpbench.analysis.curvature import spread

    rows = [_row(100, "adam", "step", t) for t in (1.0, 3.0, 2.0)]
    rows.append(_row(100, "adam", "step", 50.0, status="failed"))
    s = spread(rows).iloc[0]
    assert (s["median_s"], s["min_s"], s["max_s"], s["runs"]) == (2.0, 1.0, 3.0, 3)


def test_step_costs_keep_one_thread_count():
    rows = [_row(100, "sgd", "step", 1.0, threads=2), _row(100, "adam", "step", 2.0, threads=2),
            _row(100, "adam", "step", 9.0, threads=1)]
    c = step_costs(rows).set_index("method")
    assert c.loc["adam", "step_s"] == 2.0


@pytest.mark.parametrize("argv, needle", [
    (["--methods", "nadam"], "unknown method"), (["--widths", "0"], "--widths"),
    (["--batch", "-1"], "--batch"), (["--methods", "sgd,sgd"], "methods"),
])
def test_cli_refuses_bad_input_with_one_line(argv, needle, tmp_path, capsys):
    from mlpbench.cli import main

    assert main(["curvature-cost", *argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "curvature_cost.csv").exists()
