"""The long polish of undecided minima end points, the complete paired table, and the
committed minima results re-derived from it. Oracles: torch autograd (loss and gradient),
scipy's L-BFGS-B polish, the teacher (a known global minimum)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlpbench.analysis.minima_stats import paired_all, summary_table
from mlpbench.measure.second_order import flat_loss
from mlpbench.problems.minima_workloads import CLASSES, make_minima_workload
from mlpbench.studies.minima_classify import DISPLACEMENT_TOL, classify, end_point_class
from mlpbench.studies.minima_engine import layer_shapes
from mlpbench.studies.minima_resolve import loss_grad_np, resolve_many

MINIMA = Path(__file__).resolve().parents[1] / "results" / "runs" / "intel-xeon-2c" / "minima"


@pytest.mark.parametrize("problem", ["local_minima", "minima_deep"])
def test_numpy_loss_and_gradient_match_autograd(problem):
    w = make_minima_workload(problem)
    shapes = layer_shapes(w.make_model(0))
    x, y = w.x_train.double(), w.y_train.double()
    f, theta = flat_loss(w.make_model(3).double(), w.loss_fn, x, y)
    for t in (theta.detach(), torch.zeros_like(theta), theta.detach() * 3):  # zeros: ReLU'(0)
        t = t.clone().requires_grad_(True)
        val = f(t)
        (g,) = torch.autograd.grad(val, t)
        loss, g_np = loss_grad_np(t.detach().numpy(), x.numpy(), y.numpy(), shapes)
        assert loss == pytest.approx(float(val.detach()), rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(g_np, g.numpy(), rtol=1e-10, atol=1e-14)


def test_resolve_many_decides_perturbed_teacher_and_measures_displacement_from_the_run():
    from tests.test_minima import teacher_as_student

    w = make_minima_workload("local_minima")
    shapes = layer_shapes(w.make_model(0))
    teacher = torch.cat([p.detach().reshape(-1) for p in teacher_as_student(w).parameters()])
    gen = torch.Generator().manual_seed(2)
    near = (teacher + 1e-2 * torch.randn(teacher.shape, generator=gen)).double().numpy()
    far = w.make_model(5)
    far = torch.cat([p.detach().reshape(-1) for p in far.parameters()]).double().numpy()
    got = resolve_many(w, np.stack([near, far]), shapes, lbfgs_iter=3000, lm_iter=100)
    assert end_point_class(got[0]) == "global" and got[0].displacement < DISPLACEMENT_TOL
    assert end_point_class(got[1]) != "unresolved"  # an init far from any point is decided
    expect = np.linalg.norm(got[1].theta - far) / max(1.0, np.linalg.norm(far))
    assert got[1].displacement == pytest.approx(expect)
    assert classify(got[1], "budget") == "still_descending"  # it moved far: not arrived


def test_paired_all_has_every_outcome_of_both_columns():
    rows = []
    for opt, batch in (("gd[lr=0.1]", 256), ("sgd[lr=0.1,batch=16]", 16)):
        for s, (c, e) in enumerate([("kink", "kink"), ("still_descending", "spurious"),
                                    ("global", "global")]):
            rows.append({"problem": "p", "budget": "steps", "lr": 0.1, "optimizer": opt,
                         "batch": batch, "seed": s if opt.startswith("gd") else (s + 1) % 3,
                         "cls": c, "end_point": e})
    t = paired_all(pd.DataFrame(rows))
    assert set(zip(t["column"], t["outcome"], strict=True)) == {
        ("cls", "kink"), ("cls", "still_descending"), ("cls", "global"),
        ("end_point", "kink"), ("end_point", "spurious"), ("end_point", "global")}


@pytest.fixture(scope="module")
def committed():
    return {n: pd.read_csv(MINIMA / f"{n}.csv") for n in
            ("minima_runs", "minima_summary", "minima_paired")}


def test_committed_end_points_are_decided(committed):
    runs = committed["minima_runs"]
    assert len(runs) == 2400
    long = runs[runs["polish"] != "levenberg-marquardt 30"]
    # exactly the short polish's undecided end points were polished further
    assert (long["end_point_short"] == "unresolved").all()
    assert len(long) == (runs["end_point_short"] == "unresolved").sum() > 0
    # one degenerate point stays undecided (SUMMARY.md: a dead unit, a singular Hessian)
    left = runs[runs["end_point"] == "unresolved"]
    assert len(left) == 1 and (left["cls"] == "still_descending").all()
    # the 5%-of-norm rule still decides the run class
    moved = (runs["displacement"] > DISPLACEMENT_TOL) & (runs["run_status"] != "target") \
        & (runs["run_status"] != "diverged")
    assert ((runs["cls"] == "still_descending") == moved).all()


def test_committed_tables_are_re_derived_from_the_runs(committed):
    runs = committed["minima_runs"]
    pd.testing.assert_frame_equal(summary_table(runs).reset_index(drop=True),
                                  committed["minima_summary"], check_dtype=False)
    paired = paired_all(runs).reset_index(drop=True)
    pd.testing.assert_frame_equal(paired, committed["minima_paired"], check_dtype=False)
    deep = paired[paired["problem"] == "minima_deep"]
    for column in ("cls", "end_point"):
        present = {c for c in CLASSES if (runs[runs["problem"] == "minima_deep"][column]
                                          == c).any()}
        assert present <= set(deep[deep["column"] == column]["outcome"])
    assert {"kink", "still_descending", "dead_relu"} <= set(deep["outcome"])
