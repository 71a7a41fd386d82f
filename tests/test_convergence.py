import math

import pandas as pd
import pytest
import torch

from mlpbench.analysis.convergence import aggregate, lr_summary
from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.problems.runner import Budget, RunSettings, run
from mlpbench.problems.workloads import WORKLOADS, make_workload
from mlpbench.studies.convergence import lr_grid, lr_jobs, run_jobs, run_many


def test_gd_matches_closed_form_iterates():
    """GD on least squares: θ_k = θ* + (I - ηH)^k (θ_0 - θ*), H = 2/n X̃ᵀX̃."""
    wl = make_workload("quadratic")
    eta, k = 0.05, 25
    model = wl.make_model(3)
    x = torch.cat([wl.x_train, torch.ones(wl.n_train, 1)], 1).double()
    y = wl.y_train.double()
    theta0 = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]).double()
    h = 2 / wl.n_train * x.T @ x
    star = torch.linalg.solve(x.T @ x, x.T @ y).squeeze(1)
    step = torch.eye(len(theta0), dtype=torch.float64) - eta * h
    expected = star + torch.linalg.matrix_power(step, k) @ (theta0 - star)

    res = run(wl, f"gd[lr={eta}]", seed=3, budget=Budget(max_steps=k),
              settings=RunSettings(eval_every=k))
    assert res.steps == k
    # re-run to get the parameters (run() trains a fresh model from the same seed)
    model = wl.make_model(3)
    from mlpbench.optimizers import make_optimizer
    from mlpbench.optimizers.base import Objective
    opt = make_optimizer(f"gd[lr={eta}]", model)
    for _ in range(k):
        opt.step(Objective(model, wl.x_train, wl.y_train, wl.loss_fn))
    got = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]).double()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    loss_expected = float(((x @ expected - y.squeeze(1)) ** 2).mean())
    assert res.final_loss == pytest.approx(loss_expected, rel=1e-4)


def test_same_seed_same_trajectory():
    wl = make_workload("teacher")
    a = run(wl, "sgd[lr=0.05,batch=16]", seed=7, budget=Budget(max_steps=30))
    b = run(wl, "sgd[lr=0.05,batch=16]", seed=7, budget=Budget(max_steps=30))
    c = run(wl, "sgd[lr=0.05,batch=16]", seed=8, budget=Budget(max_steps=30))
    pd.testing.assert_series_equal(a.trajectory["train_loss"], b.trajectory["train_loss"])
    assert not a.trajectory["train_loss"].equals(c.trajectory["train_loss"])


def test_large_lr_is_diverged_not_a_crash():
    res = run(make_workload("quadratic"), "gd[lr=100]", budget=Budget(max_steps=50))
    assert res.status == "diverged"
    assert math.isnan(res.steps_to_target)


def test_target_status_and_counters():
    wl = make_workload("quadratic")
    res = run(wl, "lbfgs", budget=Budget(max_steps=100))
    assert res.status == "target"
    assert res.final_loss <= wl.target_loss
    assert res.steps_to_target == res.steps
    assert res.grad_evals >= res.steps  # at least one full gradient per L-BFGS step
    traj = res.trajectory
    assert traj["time_s"].is_monotonic_increasing
    assert traj["step"].iloc[0] == 0


def test_minibatch_grad_evals_are_fractional():
    wl = make_workload("teacher")
    res = run(wl, "sgd[batch=32]", budget=Budget(max_steps=16),
              settings=RunSettings(eval_every=16))
    assert res.grad_evals == pytest.approx(16 * 32 / wl.n_train)


def test_budget_and_stall_statuses():
    wl = make_workload("teacher")
    assert run(wl, "sgd[lr=1e-5]", budget=Budget(max_steps=5)).status == "budget"
    stalled = run(wl, "sgd[lr=1e-12]", budget=Budget(max_steps=500),
                  settings=RunSettings(patience=20, stall_tol=1e-3))
    assert stalled.status == "converged"


@pytest.mark.parametrize("name", WORKLOADS)
def test_workloads_are_seeded_and_reachable(name):
    a, b = make_workload(name, seed=1), make_workload(name, seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    res = run(a, "adam[lr=0.01,batch=full]" if name != "quadratic" else "lbfgs",
              budget=Budget(max_steps=3000))
    assert res.final_loss < res.trajectory["train_loss"].iloc[0]


def test_aggregate_median_over_seeds():
    summary, traj = run_many(["quadratic"], ["lbfgs", "gd[lr=100]"], range(3),
                             budget=Budget(max_steps=50))
    agg = aggregate(summary).set_index("optimizer")
    assert agg.loc["lbfgs", "reached"] == 3 and agg.loc["lbfgs", "success_rate"] == 1
    assert agg.loc["gd[lr=100]", "diverged"] == 3
    assert agg.loc["lbfgs", "steps_median"] == summary[summary.optimizer == "lbfgs"][
        "steps_to_target"].median()
    assert set(traj["optimizer"]) == {"lbfgs", "gd[lr=100]"}


def test_lr_sensitivity_picks_a_working_lr():
    runs, _ = run_jobs(lr_jobs("quadratic", ["gd"], lr_grid(1e-3, 10, 5), range(2)),
                       budget=Budget(max_steps=300))
    _, best = lr_summary(runs)
    assert set(runs["lr"].round(6)) == {round(v, 6) for v in lr_grid(1e-3, 10, 5)}
    row = best.iloc[0]
    assert row["base"] == "gd" and row["success"] == 1
    assert runs[(runs["lr"] == 10)]["status"].eq("diverged").all()


def test_lr_grid_validation():
    assert lr_grid(1e-3, 1e-1, 3) == pytest.approx([1e-3, 1e-2, 1e-1])
    with pytest.raises(UsageError):
        lr_grid(1, 0.1, 3)
    with pytest.raises(UsageError):
        Budget(max_steps=-1)


@pytest.mark.parametrize("argv, needle", [
    (["converge", "-O", "nadam"], "nadam"),
    (["converge", "-O", "sgd[lr=0.1"], "malformed"),
    (["converge", "-O", "sgd[tau=1]"], "tau"),
    (["converge", "-O", "sgd[lr=-1]"], "positive"),
    (["converge", "--max-steps", "-5"], "max-steps"),
    (["converge", "-W", "mnist"], "mnist"),
    (["converge", "--lr-grid", "1:2"], "LO:HI:N"),
    (["converge", "--seeds", "0"], "seeds"),
    (["converge", "--device", "tpu"], "tpu"),
])
def test_converge_bad_input(tmp_path, capsys, argv, needle):
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_converge_cli_writes_store(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["converge", "-W", "quadratic", "-O", "lbfgs", "-O", "gd[lr=0.1]", "--seeds",
                 "2", "--max-steps", "100", "--out", str(out), "--quiet"]) == 0
    for name in ("converge.csv", "trajectories.csv", "converge.json"):
        assert (out / name).exists()
    assert "lbfgs" in capsys.readouterr().out
    with pytest.raises(UsageError, match="already"):
        from mlpbench.results import prepare_out
        prepare_out(out, "converge.csv")
