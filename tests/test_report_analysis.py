"""The report's analysis helpers against independent oracles: curve aggregation, performance
profiles, machine comparison, Wilson intervals, table formatting."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import gmean

from mlpbench.analysis.compare import compare_wide, geomean_ratios, machine_identities
from mlpbench.analysis.curves import aggregate_curves, interpolate_seed, performance_profile
from mlpbench.report.page import column_format, html_table
from mlpbench.report.sections_opt import wilson


def test_interpolation_holds_last_value_and_is_loglinear():
    grid = np.array([0.0, 0.5, 1.0, 3.0])
    out = interpolate_seed(np.array([0.0, 1.0]), np.array([1.0, 0.01]), grid)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx(0.1)  # geometric midpoint
    assert out[3] == pytest.approx(0.01)  # stopped at the target: holds its last loss
    div = interpolate_seed(np.array([0, 1, 2.0]), np.array([1.0, 0.5, np.inf]), grid)
    assert math.isnan(div[3]) and div[1] > 0


def test_median_aggregates_every_seed_on_a_common_grid():
    # three seeds, each logged at its own x values; seed 2 stops early at the target
    rows = []
    for seed, (xs, scale) in enumerate([((0, 1, 2, 3, 4), 1.0), ((0, 1.5, 3, 4), 2.0),
                                        ((0, 0.7, 1.3), 4.0)]):
        for x in xs:
            rows.append({"workload": "w", "optimizer": "o", "seed": seed, "time_s": x,
                         "train_loss": scale * np.exp(-x)})
    traj = pd.DataFrame(rows)
    out = aggregate_curves(traj, x="time_s", n=9)
    assert len(out) == 9 and set(out["seeds"]) == {3}
    # oracle: np.median over the three seeds interpolated by hand at each grid point
    for _, r in out.iterrows():
        vals = []
        for seed in range(3):
            s = traj[traj["seed"] == seed]
            vals.append(np.exp(np.interp(r["time_s"], s["time_s"], np.log(s["train_loss"]))))
        assert r["median"] == pytest.approx(np.median(vals), rel=1e-9)
        assert r["q25"] <= r["median"] <= r["q75"]
    assert out["running"].iloc[-1] == 2  # seed 2 stopped at x = 1.3
    assert (np.diff(out["median"]) <= 1e-12).all()  # no sawtooth on decreasing curves


def test_performance_profile_by_hand():
    t = pd.DataFrame({"workload": ["a", "a", "b", "b"], "optimizer": ["x", "y", "x", "y"],
                      "time_median": [1.0, 2.0, 3.0, np.nan]})
    prof = performance_profile(t, taus=np.array([1.0, 1.9, 2.0, 10.0]))
    frac = prof.set_index(["optimizer", "tau"])["fraction"]
    assert frac[("x", 1.0)] == 1.0
    assert frac[("y", 1.9)] == 0.0 and frac[("y", 2.0)] == 0.5  # y never solves b
    assert frac[("y", 10.0)] == 0.5


def test_compare_ratios_and_geomean():
    long = pd.DataFrame({"benchmark": ["a", "b", "c", "a", "b", "c", "only"],
                         "group": ["g", "g", "h", "g", "g", "h", "g"],
                         "machine": ["m1"] * 3 + ["m2"] * 3 + ["m1"],
                         "value": [1.0, 4.0, 2.0, 0.5, 1.0, 4.0, 9.0]})
    wide, ref = compare_wide(long)
    assert ref == "m1" and "only" not in set(wide["benchmark"])
    col = "speedup m2 vs m1"
    assert list(wide.sort_values("benchmark")[col]) == [2.0, 4.0, 0.5]
    geo = geomean_ratios(wide).set_index("group")
    assert geo.loc["g", "geomean_speedup"] == pytest.approx(gmean([2.0, 4.0]))
    assert geo.loc["h", "benchmarks"] == 1


def test_repeated_points_do_not_break_the_comparison():
    long = pd.DataFrame({"benchmark": ["a"] * 4, "group": ["g"] * 4,
                         "machine": ["m1", "m1", "m2", "m2"], "value": [1.0, 3.0, 1.0, 1.0]})
    wide, _ = compare_wide(long)
    assert wide["m1"].iloc[0] == 2.0  # median of the repeats


def test_one_identity_per_machine():
    hw = {"abc": {"cpu_model": "EPYC", "logical_cores": 2, "ram_bytes": 100},
          "def": {"cpu_model": "Xeon", "logical_cores": 8, "ram_bytes": 100}}
    asv = {"box": {"cpu": "EPYC", "num_cpu": "2", "ram": "100"}}
    ids = machine_identities(hw, asv).set_index("name")["identity"]
    assert ids["abc"] == ids["asv:box"] == "box" and ids["def"] == "def"


def test_wilson_interval_closed_form():
    k, n, z = 13, 20, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(centre - half, rel=1e-6)
    assert hi == pytest.approx(centre + half, rel=1e-6)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_table_sorts_by_value_and_formats_one_way():
    frame = pd.DataFrame({"reason": ["a", "b"], "need_bytes": [129.6 * 2**40, 269.2 * 2**30],
                          "samples_per_s": [77153.26, 1825882.0]})
    html = html_table(frame)
    assert "129.6 TiB" in html and "269.2 GiB" in html
    values = [float(v) for v in re.findall(r'data-v="([0-9.e+]+)">[0-9.]+ [GT]iB', html)]
    assert values == sorted(values, reverse=True)  # raw bytes drive the sort
    assert "77,153" in html and "1,825,882" in html and "e+" not in html.split("<table")[1]
    assert "data:text/csv;charset=utf-8;base64," in html
    fmt = column_format(pd.Series([0.5, 0.000096]), "median_s")
    assert fmt(0.000096) == "0.000096" and fmt(float("nan")) == "–"


def test_hover_spots_sit_on_their_points():
    """Oracle: the PNG pixel under each spot has the marker's colour."""
    import base64
    import io

    from PIL import Image

    from mlpbench.report.style import hover, new_axes, render

    ax = new_axes((5, 3), margins=(0.9, 1.5, 0.6, 0.3))
    xs, ys = [1.0, 10.0, 100.0], [5.0, 0.5, 50.0]
    ax.plot(xs, ys, "s", color="#ff0000", ms=10)
    ax.set(xscale="log", yscale="log", xlim=(0.5, 200), ylim=(0.1, 100))
    hover(ax, xs, ys, ["a", "b", "c"])
    r = render(ax)
    img = Image.open(io.BytesIO(base64.b64decode(r.uri.split(",")[1]))).convert("RGB")
    assert [t for _, _, t in r.spots] == ["a", "b", "c"]
    for left, top, _ in r.spots:
        px = img.getpixel((int(left / 100 * img.width), int(top / 100 * img.height)))
        assert px[0] > 200 and px[1] < 60 and px[2] < 60, px
