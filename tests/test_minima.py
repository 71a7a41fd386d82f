"""Minima study: classification of end points, the batched engine and polish, statistics,
resumability and the CLI. Oracles: the teacher itself (a known global minimum), scipy
(least_squares, L-BFGS-B), central differences, the closed-form Wilson interval and exact
binomial McNemar values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import least_squares

from mlpbench.analysis.minima_stats import mcnemar_exact, paired_table, wilson
from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.measure.second_order import flat_loss, set_flat_params
from mlpbench.models import build_torch
from mlpbench.problems.minima_workloads import make_minima_workload
from mlpbench.problems.runner import Budget, RunSettings, run
from mlpbench.studies import minima as study
from mlpbench.studies.minima_classify import (
    GLOBAL_LOSS,
    classify,
    curvature,
    end_point_class,
    flat_of,
    polish,
    polish_many,
)
from mlpbench.studies.minima_engine import forward, layer_shapes, train_many

SETTINGS = RunSettings(eval_every=50, patience=40, stall_tol=1e-4)


@pytest.fixture(scope="module")
def work():
    torch.set_num_threads(1)
    return make_minima_workload("local_minima")


def teacher_as_student(w):
    """The teacher with the target normalisation folded into its output layer: an exact
    global minimum of the student's loss (the oracle for 'global')."""
    teacher = build_torch(w.spec, seed=20_000)  # local_minima's teacher for data seed 0
    x = torch.randn(512, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = teacher(x)
        mean, std = raw.mean(), raw.std()
        teacher[-1].weight /= std
        teacher[-1].bias.sub_(mean).div_(std)
    return teacher


@pytest.mark.slow  # fp64 polish / a 3,000-step run: ~15 s on a busy VM
def test_teacher_is_global_and_perturbed_teacher_polishes_back(work):
    t = teacher_as_student(work)
    assert work.losses(t)[0] < 1e-10
    with torch.no_grad():
        for p in t.parameters():
            p.add_(1e-2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    p = polish(work, t)
    assert p.loss < GLOBAL_LOSS and p.grad_norm < 1e-6 and p.displacement < 0.05
    assert classify(p, "budget") == "global"


@pytest.fixture(scope="module")
def spurious_run(work):
    """GD seed 4 from the runner: 3,000 steps, then heading to the known spurious point."""
    box = {}
    orig = work.make_model

    def capture(seed):
        box["m"] = orig(seed)
        return box["m"]

    res = run(dataclasses.replace(work, make_model=capture), "gd[lr=0.1]", seed=4,
              budget=Budget(max_steps=3000, max_seconds=1e9), settings=SETTINGS)
    return res, box["m"], polish(work, box["m"])


@pytest.mark.slow  # fp64 polish / a 3,000-step run: ~15 s on a busy VM
def test_known_spurious_minimum(work, spurious_run):
    res, model, p = spurious_run
    assert res.status == "budget" and res.final_loss > 1e-3
    # the polished point: stationary, loss far above 0, no negative curvature
    assert end_point_class(p) == "spurious"
    assert 2e-4 < p.loss < 3e-4 and p.grad_norm < 1e-6
    # the run itself had not arrived (the polish moved it by > 5% of its norm) ...
    assert classify(p, res.status) == "still_descending"
    # ... but a run that sits there is 'spurious'
    set_flat_params(model, torch.tensor(p.theta, dtype=torch.float32))
    again = polish(work, model)
    assert classify(again, "converged") == "spurious"
    assert again.loss == pytest.approx(p.loss, rel=1e-6)


@pytest.mark.slow  # fp64 polish / a 3,000-step run: ~15 s on a busy VM
def test_spurious_point_agrees_with_scipy_least_squares(work, spurious_run):
    """An independent minimiser (MINPACK Levenberg–Marquardt on the residuals, gradient by
    central differences) started at the polished point stays at the same loss."""
    _, model, p = spurious_run
    shapes = layer_shapes(model)
    x, y = work.x_train.double(), work.y_train.double().reshape(-1)

    def resid(v):
        return (forward(torch.from_numpy(v), x, shapes).reshape(-1) - y).numpy()

    ls = least_squares(resid, p.theta, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert np.mean(ls.fun ** 2) == pytest.approx(p.loss, rel=1e-6)


@pytest.mark.slow  # fp64 polish / a 3,000-step run: ~15 s on a busy VM
def test_curvature_matches_central_differences(work, spurious_run):
    _, model, p = spurious_run
    m64 = model.double()
    f, _ = flat_loss(m64, work.loss_fn, work.x_train.double(), work.y_train.double())
    theta = torch.from_numpy(p.theta)
    g = torch.func.grad(f)
    h, eps = [], 1e-5
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = eps
        h.append((g(theta + e) - g(theta - e)) / (2 * eps))
    fd = torch.stack(h).numpy()
    ev = np.linalg.eigvalsh(0.5 * (fd + fd.T))
    lo, hi = curvature(f, theta)
    assert lo == pytest.approx(ev[0], abs=1e-5) and hi == pytest.approx(ev[-1], rel=1e-4)
    model.float()


@pytest.mark.slow  # fp64 polish / a 3,000-step run: ~15 s on a busy VM
def test_batched_polish_agrees_with_scipy_polish(work, spurious_run):
    _, model, p = spurious_run
    t = teacher_as_student(work)
    with torch.no_grad():
        for q in t.parameters():
            q.add_(1e-2 * torch.randn(q.shape, generator=torch.Generator().manual_seed(2)))
    starts = np.stack([flat_of(t), p.theta + 1e-4])
    lm = polish_many(work, starts, layer_shapes(model), max_iter=60)
    assert lm[0].loss < GLOBAL_LOSS and end_point_class(lm[0]) == "global"
    assert lm[1].loss == pytest.approx(p.loss, rel=1e-6)
    assert end_point_class(lm[1]) == "spurious"


@pytest.mark.parametrize(("batch", "opt"), [(None, "gd[lr=0.2]"), (16, "sgd[lr=0.2,batch=16]")])
def test_engine_matches_runner(work, batch, opt):
    snaps = train_many(work, [0, 1], [0.2, 0.2], batch, [200, 400], SETTINGS)
    for seed in (0, 1):
        for j, lim in enumerate((200, 400)):
            r = run(work, opt, seed=seed, budget=Budget(max_steps=lim, max_seconds=1e9),
                    settings=SETTINGS)
            s = snaps[seed][j]
            assert (s.status, s.steps) == (r.status, r.steps)
            assert s.loss == pytest.approx(r.final_loss, rel=1e-3)


def test_engine_limits_must_be_evaluation_steps(work):
    with pytest.raises(ValueError):
        train_many(work, [0], [0.1], None, [75], SETTINGS)


def test_wilson_matches_closed_form():
    z = 1.959963984540054
    for k, n in [(0, 20), (13, 20), (7, 100), (100, 100)]:
        c = (k + z * z / 2) / (n + z * z)
        h = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
        assert wilson(k, n) == pytest.approx((c - h, c + h), abs=1e-9)


def test_mcnemar_exact_values():
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)


def test_paired_table_counts_discordant_pairs():
    rows = [("gd[lr=0.1]", 256, s, c) for s, c in enumerate(["global", "global", "spurious"])]
    rows += [("sgd[lr=0.1,batch=8]", 8, s, c)
             for s, c in enumerate(["global", "spurious", "global"])]
    df = pd.DataFrame(rows, columns=["optimizer", "batch", "seed", "cls"]).assign(
        problem="p", budget="steps", lr=0.1)
    t = paired_table(df).iloc[0]
    assert (t.pairs, t.gd_hits, t.sgd_hits, t.sgd_only, t.gd_only) == (3, 2, 2, 1, 1)


def test_budgets_for_regimes():
    cfg = study.MinimaConfig(steps=8000, evals=2000, eval_every=100)
    assert study.budgets_for(None, 256, cfg) == {"steps": 8000, "evals": 2000}
    assert study.budgets_for(16, 256, cfg) == {"steps": 8000, "evals": 32000}


def test_study_is_resumable(tmp_path, monkeypatch):
    cfg = study.MinimaConfig(problems=("local_minima",), inits=2, batch_sizes=(64,),
                             lrs=(0.1,), steps=200, evals=100, eval_every=50, polish_iter=3)
    first = study.run_study(tmp_path, cfg)
    assert len(first) == len(study.all_keys(cfg)) == 2 * 2 * 2
    # a lost row is recomputed; finished rows are not re-run
    kept = first.iloc[1:]
    kept.to_csv(tmp_path / study.RUNS, index=False)
    calls = []
    real = study.train_many
    monkeypatch.setattr(study, "train_many", lambda w, seeds, *a, **k: (
        calls.append(list(seeds)), real(w, seeds, *a, **k))[1])
    again = study.run_study(tmp_path, cfg, resume=True)
    assert calls == [[int(first.iloc[0]["seed"])]]
    assert len(again) == len(first)
    calls.clear()
    from mlpbench import jobs

    jobs.minima(tmp_path, cfg, resume=True)
    assert calls == []
    for name in (study.SUMMARY, study.PAIRED, study.META):
        assert (tmp_path / name).exists()


@pytest.mark.parametrize("argv", [["minima", "--lrs", "abc"],
                                  ["minima", "--problems", "nope"],
                                  ["minima", "--inits", "0"]])
def test_cli_bad_input_exits_2(argv, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2


def test_cli_refuses_existing_results_without_resume(tmp_path):
    (tmp_path / study.RUNS).write_text("problem,optimizer,budget,seed\n")
    assert main(["minima", "--out", str(tmp_path), "--inits", "1"]) == 2


def test_figure_has_one_bar_per_method_and_lr():
    from mlpbench.report.fig_minima import minima_fractions

    rows = [{"problem": "p", "budget": "steps", "lr": lr, "batch": b, "runs": 10,
             "frac_global": 0.5, "global_lo": 0.2, "global_hi": 0.8}
            for lr in (0.1, 0.2) for b in (256, 16, 64)]
    ax = minima_fractions(pd.DataFrame(rows))
    assert len(ax.patches) >= 6 and ax.get_ylim() == (0, 1)
    with pytest.raises(UsageError):
        minima_fractions(pd.DataFrame(rows), cls="nope")


def test_kink_class_for_points_pinned_on_a_relu_boundary():
    from mlpbench.studies.minima_classify import KINK_TOL, Polished

    base = dict(theta=np.zeros(3), loss=1e-3, grad_norm=1e-3, lambda_min=-1e-3,
                lambda_max=1.0, displacement=0.0, dead_units=0, iterations=1)
    assert end_point_class(Polished(**base, min_abs_preact=KINK_TOL / 10)) == "kink"
    assert end_point_class(Polished(**base, min_abs_preact=1e-2)) == "unresolved"


@pytest.mark.slow  # fp64 polish / a 3,000-step run: ~15 s on a busy VM
def test_runner_check_agrees_with_study_rows(tmp_path):
    cfg = study.MinimaConfig(problems=("local_minima",), inits=2, batch_sizes=(64,),
                             lrs=(0.2,), steps=300, evals=100, eval_every=50, polish_iter=10)
    rows = study.run_study(tmp_path, cfg)
    check = study.runner_check("local_minima", "sgd[lr=0.2,batch=64]", [0, 1], "steps", cfg)
    mine = rows[(rows.optimizer == "sgd[lr=0.2,batch=64]") & (rows.budget == "steps")]
    mine = mine.sort_values("seed").reset_index(drop=True)
    assert list(check.run_status) == list(mine.run_status)
    assert list(check.steps) == list(mine.steps)
    assert np.allclose(check.run_loss, mine.run_loss, rtol=1e-3)
