import pytest
import torch

from mlpbench.analysis.newton import analyse, newton_wall
from mlpbench.cli import main
from mlpbench.errors import UsageError
from mlpbench.measure.second_order import flat_params, set_flat_params
from mlpbench.measure.timing import TimerConfig
from mlpbench.models import build_torch
from mlpbench.optimizers import make_optimizer
from mlpbench.optimizers.base import Objective
from mlpbench.optimizers.newton import Newton, NewtonCG, check_newton_fits, newton_bytes
from mlpbench.problems.workloads import make_workload
from mlpbench.spec import MLPSpec
from mlpbench.studies.newton_cost import (
    CostConfig,
    predicted_op_bytes,
    refuse_newton,
    run_cost_study,
)
from mlpbench.units import format_bytes


def _lstsq_minimizer(wl):
    x = torch.cat([wl.x_train, torch.ones(wl.n_train, 1)], 1).double()
    return torch.linalg.solve(x.T @ x, x.T @ wl.y_train.double()).squeeze(1)


@pytest.mark.parametrize("line_search", ["armijo", "none"])
def test_newton_one_step_lands_on_quadratic_minimizer(line_search):
    wl = make_workload("quadratic")
    model = wl.make_model(0).double()
    wl.x_train, wl.y_train = wl.x_train.double(), wl.y_train.double()
    opt = make_optimizer(f"newton[damping=0,line_search={line_search}]", model)
    opt.step(Objective(model, wl.x_train, wl.y_train, wl.loss_fn))
    torch.testing.assert_close(flat_params(model), _lstsq_minimizer(wl), rtol=1e-8, atol=1e-8)


def test_newton_cg_converges_on_quadratic():
    wl = make_workload("quadratic")
    model = wl.make_model(0).double()
    wl.x_train, wl.y_train = wl.x_train.double(), wl.y_train.double()
    opt = NewtonCG(model, cg_iters=50, damping=0.0, cg_tol=1e-12)
    obj = Objective(model, wl.x_train, wl.y_train, wl.loss_fn)
    opt.step(obj)
    torch.testing.assert_close(flat_params(model), _lstsq_minimizer(wl), rtol=1e-6, atol=1e-6)
    assert obj.counters.hvps == opt.last_cg_iters <= 11  # CG: at most P+1 iterations


def test_newton_damping_grows_on_indefinite_hessian():
    opt = Newton(build_torch(MLPSpec(1, 1, 1)), damping=1e-6, line_search=False)
    h = torch.diag(torch.tensor([2.0, -1.0]))
    g = torch.tensor([1.0, 1.0])
    p = opt.direction(h, g)
    assert opt.last_damping > 1.0  # had to exceed |λ_min| = 1 to factor
    torch.testing.assert_close((h + opt.last_damping * torch.eye(2)) @ p, -g)


def test_newton_refused_up_front_when_hessian_cannot_fit(monkeypatch):
    import mlpbench.optimizers.newton as newton

    monkeypatch.setattr(newton, "available_memory_bytes", lambda device: 10_000)
    with pytest.raises(UsageError, match="dense Hessian"):
        check_newton_fits(build_torch(MLPSpec(10, 10, 1)))
    need = format_bytes(newton_bytes(9_111_001))
    with pytest.raises(UsageError, match=need.replace(".", r"\.")):
        refuse_newton(MLPSpec(100, 1000, 10))


def test_newton_slower_than_gradient_step_at_p2000():
    """Physical, generous: a Newton step at P~2000 costs far more than a gradient step."""
    import time

    spec = MLPSpec(10, 38, 2)  # P = 1,939
    wl = make_workload("teacher")
    x, y = torch.randn(64, 10), torch.randn(64, 1)
    m1, m2 = build_torch(spec), build_torch(spec)
    newton, sgd = make_optimizer("newton[line_search=none]", m1), make_optimizer("gd", m2)
    newton.step(Objective(m1, x, y, wl.loss_fn))  # warm-up
    t0 = time.perf_counter()
    newton.step(Objective(m1, x, y, wl.loss_fn))
    t1 = time.perf_counter()
    for _ in range(10):
        sgd.step(Objective(m2, x, y, wl.loss_fn))
    t2 = time.perf_counter()
    assert (t1 - t0) > 2 * (t2 - t1) / 10


def test_set_flat_params_is_inverse():
    m = build_torch(MLPSpec(2, 3, 1))
    theta = torch.arange(sum(p.numel() for p in m.parameters()), dtype=torch.float32)
    set_flat_params(m, theta)
    assert torch.equal(flat_params(m), theta)


def test_cost_study_small_grid():
    cfg = CostConfig(widths=(4, 8, 16), include_target=False, batch=8,
                     timer=TimerConfig(warmup=1, min_samples=2, max_samples=3, budget_s=0.01))
    frame = run_cost_study(cfg, progress=False)
    assert set(frame["status"]) == {"ok"}
    assert len(frame) == 3 * 9
    out = analyse(frame)
    assert set(out["fits"]["op"]) >= {"hessian", "solve", "grad"}
    assert out["wall"]["measured_max_params"] == MLPSpec(10, 16, 2).num_params
    assert out["extrapolation"]["params"] == 9_111_001
    assert out["extrapolation"]["newton_bytes"] == newton_bytes(9_111_001)
    assert {"hvp_fwdrev/grad", "hvp_revrev/grad"} <= set(out["ratios"].columns)
    # the wall comes from the measuring machine's budget stored in every row
    usable = int(frame["usable_bytes"].iloc[0])
    assert out["wall"]["usable_bytes"] == usable
    assert out["wall"]["predicted_params"] == newton_wall(usable)
    usable = newton_bytes(1000)
    assert analyse(frame.assign(usable_bytes=usable))["wall"]["predicted_params"] == 1000


def test_newton_wall_is_the_largest_fitting_p():
    for usable in (newton_bytes(1), newton_bytes(999) + 7, 19 * 2**30):
        p = newton_wall(usable)
        assert newton_bytes(p) <= usable < newton_bytes(p + 1)


def test_cost_study_skips_by_memory_model():
    cfg = CostConfig(widths=(8,), include_target=True, batch=8, memory_fraction=0.5,
                     timer=TimerConfig(warmup=0, min_samples=1, max_samples=1, budget_s=0.01))
    frame = run_cost_study(cfg, progress=False)
    big = frame[frame["params"] == 9_111_001].set_index("op")
    for op in ("hessian", "solve", "newton_step"):
        assert big.loc[op, "status"] == "skipped"
        assert "memory model" in big.loc[op, "reason"]
    assert big.loc["newton_step", "predicted_bytes"] == predicted_op_bytes(
        MLPSpec(100, 1000, 10), "newton_step", 8)


def test_newton_cost_cli_bad_input(tmp_path, capsys):
    assert main(["newton-cost", "--widths", "0", "--out", str(tmp_path / "n")]) == 2
    assert "widths" in capsys.readouterr().err
    assert main(["converge", "-W", "teacher", "-O", "newton[damping=-1]", "--out",
                 str(tmp_path / "c")]) == 2
