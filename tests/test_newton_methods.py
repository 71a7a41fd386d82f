"""Oracles for the Newton studies' defects (issue #11): exact CG iteration counts, frozen
timed problems, carried Levenberg–Marquardt damping, forward-evaluation counts and the
quadratic workload's target."""

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse.linalg
import torch
from torch import nn

from mlpbench.measure.second_order import flat_loss, flat_params, hessian_vmap
from mlpbench.measure.timing import TimerConfig
from mlpbench.models import build_torch
from mlpbench.optimizers.base import Counters, Objective
from mlpbench.optimizers.newton import Newton, NewtonCG
from mlpbench.problems.runner import Budget, run
from mlpbench.problems.workloads import make_workload, mse
from mlpbench.spec import MLPSpec
from mlpbench.studies.newton_cost import CostConfig, operation_callable, run_cost_study


def _least_squares(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    torch.manual_seed(seed)
    return nn.Linear(6, 1).double(), x, y


@pytest.mark.parametrize("k", [1, 3, 5])
def test_cg_runs_exactly_k_iterations_like_scipy(k):
    """On a fixed SPD system, k CG iterations from 0 give scipy's k-th CG iterate."""
    model, x, y = _least_squares()
    f, theta = flat_loss(model, mse, x, y)
    g = torch.func.grad(f)(theta)
    cg = NewtonCG(model, cg_iters=k, damping=1e-3, cg_tol=0.0, exact_iters=True)
    counters = Counters()
    p = cg.solve(f, theta, g, counters)
    assert cg.last_cg_iters == counters.hvps == k
    a = (hessian_vmap(f, theta) + 1e-3 * torch.eye(theta.numel(), dtype=theta.dtype)).numpy()
    ref, _ = scipy.sparse.linalg.cg(a, -g.numpy(), x0=np.zeros(theta.numel()), rtol=0.0,
                                    atol=0.0, maxiter=k)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-8, atol=1e-12)


def test_cost_study_newton_cg_rows_run_the_configured_iterations():
    """Old code: 0-4 iterations (negative curvature, early stop) and no record of it."""
    cfg = CostConfig(widths=(8, 16), include_target=False, batch=8, cg_iters=7,
                     operations=("newton_cg_step",),
                     timer=TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01))
    frame = run_cost_study(cfg, progress=False)
    assert (frame["cg_iters_run"] == 7).all()


@pytest.mark.parametrize("op", ["newton_step", "newton_cg_step", "sgd_step", "adam_step"])
def test_timed_steps_see_the_same_problem_every_call(op):
    spec = MLPSpec(10, 6, 2)
    model = build_torch(spec, seed=0)
    x, y = torch.randn(16, 10), torch.randn(16, 1)
    theta0 = flat_params(model).clone()
    cfg = CostConfig(widths=(6,), include_target=False, batch=16)
    timed = operation_callable(op, spec, model, x, y, cfg, {})
    losses = []
    for _ in range(3):
        timed.setup()
        torch.testing.assert_close(flat_params(model), theta0, rtol=0, atol=0)
        losses.append(float(timed.fn()))
    assert not torch.equal(flat_params(model), theta0)  # the step did move the model ...
    assert losses[0] == losses[1] == losses[2]  # ... but every call started from θ0


def _logistic():
    gen = torch.Generator().manual_seed(0)
    n, d = 200, 5
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    noise = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    y = torch.where(x.sum(1, keepdim=True) + noise > 0, 1.0, -1.0)
    xa, ya = np.hstack([x.numpy(), np.ones((n, 1))]), y.numpy().ravel()

    def fun(w):
        return np.mean(np.logaddexp(0, -ya * (xa @ w)))

    def jac(w):
        return -(xa.T @ (ya / (1 + np.exp(ya * (xa @ w))))) / n

    def hess(w):
        s = 1 / (1 + np.exp(ya * (xa @ w)))
        return (xa.T * (s * (1 - s))) @ xa / n

    w = scipy.optimize.minimize(fun, np.zeros(d + 1), jac=jac, hess=hess,
                                method="trust-exact", options={"gtol": 1e-8}).x
    for _ in range(3):  # polish with plain numpy Newton steps (strictly convex)
        w = w - np.linalg.solve(hess(w), jac(w))
    return x, y, w


def test_newton_converges_quadratically_on_a_strictly_convex_problem():
    """Carried LM damping shrinks to 0 near a strict minimum: e_{k+1} <= C e_k². The old
    damping restarted at 1e-4 every step, so convergence stayed linear at ~1e-4/μ."""
    x, y, w_star = _logistic()
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    opt = Newton(model, damping=1e-4)
    obj = Objective(model, x, y, lambda out, t: nn.functional.softplus(-t * out).mean())
    errors = []
    for _ in range(20):
        errors.append(float(np.linalg.norm(flat_params(model).numpy() - w_star)))
        if errors[-1] < 1e-11:
            break
        opt.step(obj)
    assert errors[-1] < 1e-11
    pairs = [(a, b) for a, b in zip(errors, errors[1:], strict=False) if 1e-9 < a < 0.1]
    assert pairs
    assert all(b <= 2.0 * a * a for a, b in pairs), errors


def test_lm_damping_grows_after_poor_steps_and_shrinks_after_good_ones():
    opt = Newton(build_torch(MLPSpec(1, 1, 1)), damping=1e-2, line_search=False)
    opt.update_damping(0.9)
    assert opt.damping == pytest.approx(1e-3)
    opt.update_damping(0.1)
    opt.update_damping(float("nan"))
    assert opt.damping == pytest.approx(1e-1)
    opt.update_damping(0.5)  # neither good nor poor: unchanged
    assert opt.damping == pytest.approx(1e-1)


class _CountingLoss:
    """A loss that counts the calls made without autograd (forward-only evaluations)."""

    def __init__(self):
        self.forward_only = 0

    def __call__(self, out, target):
        if not torch.is_grad_enabled():
            self.forward_only += 1
        return mse(out, target)


@pytest.mark.parametrize("make", [
    lambda m: Newton(m, line_search=True), lambda m: Newton(m, line_search=False),
    lambda m: NewtonCG(m, cg_iters=5, line_search=True)])
def test_forward_evaluations_are_all_counted(make):
    model = build_torch(MLPSpec(3, 4, 1), seed=0)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    loss = _CountingLoss()
    obj = Objective(model, x, y, loss)
    opt = make(model)
    for _ in range(4):
        opt.step(obj)
    assert obj.counters.forward_evals == loss.forward_only > 4
    assert obj.counters.forward_samples == 32 * loss.forward_only


def test_runner_reports_forward_and_hessian_work():
    res = run(make_workload("quadratic"), "newton", budget=Budget(max_steps=3))
    assert res.hessians == res.steps and res.hessian_evals == res.steps
    assert res.forward_calls >= 2 * res.steps  # f(θ) and at least one line-search trial
    assert set(res.trajectory.columns) >= {"forward_evals", "hessian_evals", "hvp_evals"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_target_is_relative_to_the_runs_own_initial_loss(seed):
    wl = make_workload("quadratic")
    design = np.hstack([wl.x_train.numpy(), np.ones((wl.n_train, 1))]).astype(np.float64)
    _, residual, *_ = np.linalg.lstsq(design, wl.y_train.numpy().astype(np.float64), rcond=None)
    best = float(residual[0]) / wl.n_train
    model = wl.make_model(seed)
    with torch.no_grad():
        start = float(((model(wl.x_train) - wl.y_train) ** 2).mean())
    res = run(wl, "gd[lr=0.01]", seed=seed, budget=Budget(max_steps=1))
    assert res.target_loss == pytest.approx(best + 0.01 * (start - best), rel=1e-5)
    old = best + 0.01 * (float((wl.y_train**2).mean()) - best)  # the old, data-only target
    assert abs(res.target_loss - old) > 1e-4 * old
