"""The structured-curvature entries drive their libraries unchanged: each registry entry
takes the same steps as the library's own optimizer (or operator) driven by hand."""

import importlib.util

import pytest
import torch

from mlpbench.errors import UsageError
from mlpbench.optimizers import CURVATURE, REGISTRY, make_optimizer, memory_model, resolve
from mlpbench.optimizers.base import Objective
from mlpbench.problems.workloads import make_workload
from mlpbench.spec import TARGET_SPEC


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed (the curvature extra)")


def _problem():
    wl = make_workload("teacher")
    return wl, wl.x_train[:64], wl.y_train[:64]


def _closure(model, x, y, loss_fn):
    def closure():
        for p in model.parameters():
            p.grad = None
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    return closure


def _ours(name: str, steps: int, params: str = ""):
    wl, x, y = _problem()
    model = wl.make_model(0)
    torch.manual_seed(0)
    opt = make_optimizer(f"{name}[batch=full{params}]", model)
    losses = [float(opt.step(Objective(model, x, y, wl.loss_fn))) for _ in range(steps)]
    return model, losses


def _assert_same(m1, m2) -> None:
    moved = False
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    wl = make_workload("teacher")
    for a, b in zip(m1.parameters(), wl.make_model(0).parameters(), strict=True):
        moved |= not torch.equal(a, b)
    assert moved, "the optimizer did not move the parameters"


@pytest.mark.parametrize("name, cls", [("soap", "SOAP"), ("kl_shampoo", "KLShampoo"),
                                       ("muon", "Muon"), ("psgd_kron", "PSGDKron")])
def test_heavyball_entry_equals_heavyball_defaults(name, cls):
    """Our entry at its defaults == heavyball's class at *its* defaults (eager), step for
    step: the defaults written in the registry are the library's."""
    _need("heavyball")
    import heavyball
    import heavyball.utils as hu

    steps = 5  # crosses SOAP's preconditioner refresh (every 2nd step)
    ours, losses = _ours(name, steps)
    wl, x, y = _problem()
    ref_model = wl.make_model(0)
    torch.manual_seed(0)
    ref = getattr(heavyball, cls)(ref_model.parameters())
    before, hu.compile_mode = hu.compile_mode, None
    try:
        ref_losses = [float(ref.step(_closure(ref_model, x, y, wl.loss_fn)))
                      for _ in range(steps)]
    finally:
        hu.compile_mode = before
    assert losses == ref_losses
    _assert_same(ours, ref_model)


@pytest.mark.parametrize("name, cls, params, kwargs", [
    ("soap", "SOAP", ",lr=0.01,precondition_frequency=3,max_precond_dim=16",
     {"lr": 0.01, "precondition_frequency": 3, "max_precond_dim": 16}),
    ("psgd_kron", "PSGDKron", ",lr=0.01,max_size_triangular=8",
     {"lr": 0.01, "max_size_triangular": 8}),
])
def test_heavyball_entry_passes_its_hyperparameters(name, cls, params, kwargs):
    """Non-default values reach the library: ours == heavyball given the same values, and
    != heavyball at its defaults."""
    _need("heavyball")
    import heavyball
    import heavyball.utils as hu

    ours, losses = _ours(name, 5, params)
    runs = []
    for kw in (kwargs, {}):
        wl, x, y = _problem()
        model = wl.make_model(0)
        torch.manual_seed(0)
        ref = getattr(heavyball, cls)(model.parameters(), **kw)
        before, hu.compile_mode = hu.compile_mode, None
        try:
            runs.append([float(ref.step(_closure(model, x, y, wl.loss_fn))) for _ in range(5)])
        finally:
            hu.compile_mode = before
    assert losses == runs[0]
    assert losses != runs[1]


def test_heavyball_compile_flag_restores_library_mode():
    _need("heavyball")
    import heavyball.utils as hu

    from mlpbench.optimizers.curvature import heavyball_compile

    before = hu.compile_mode
    with heavyball_compile(False):
        assert hu.compile_mode is None
    with heavyball_compile(True):
        assert hu.compile_mode == "max-autotune-no-cudagraphs"
    assert hu.compile_mode == before


def test_schedule_free_equals_library_driven_by_hand():
    _need("schedulefree")
    import schedulefree

    steps = 6
    ours, losses = _ours("sf_adamw", steps)
    wl, x, y = _problem()
    model = wl.make_model(0)
    ref = schedulefree.AdamWScheduleFree(model.parameters())  # its defaults
    ref.eval()
    ref_losses = []
    for _ in range(steps):
        ref.train()
        ref_losses.append(float(_closure(model, x, y, wl.loss_fn)()))
        ref.step()
        ref.eval()  # the averaged iterate x is what gets evaluated
    assert losses == ref_losses
    _assert_same(ours, model)


def test_kfac_equals_curvlinops_driven_by_hand():
    """12 steps cross one factor rebuild (update_every=10): θ ← θ − lr·(F̂+λI)⁻¹g."""
    _need("curvlinops")
    from curvlinops import KFACInverseLinearOperator, KFACLinearOperator

    steps, hp = 12, resolve("kfac").hp
    ours, losses = _ours("kfac", steps)
    wl, x, y = _problem()
    model = wl.make_model(0)
    params = list(model.parameters())
    ref_losses = []
    for k in range(steps):
        loss = _closure(model, x, y, wl.loss_fn)()
        ref_losses.append(float(loss))
        if k % hp["update_every"] == 0:
            op = KFACLinearOperator(model, torch.nn.MSELoss(), params, [(x, y)],
                                    check_deterministic=False)
            inv = KFACInverseLinearOperator(op, damping=hp["damping"],
                                            use_heuristic_damping=True)
        direction = inv @ [p.grad.detach() for p in params]
        with torch.no_grad():
            for p, d in zip(params, direction, strict=True):
                p.sub_(hp["lr"] * d)
    assert losses == ref_losses
    _assert_same(ours, model)


def test_kfac_counts_its_factor_passes():
    _need("curvlinops")
    wl, x, y = _problem()
    model = wl.make_model(0)
    opt = make_optimizer("kfac[batch=full,update_every=2]", model)
    obj = Objective(model, x, y, wl.loss_fn)
    for _ in range(4):
        opt.step(obj)
    # 4 gradients + 2 factor rebuilds, each a forward and a backward pass on the batch
    assert obj.counters.closure_calls == 6
    assert opt.updates == 2


def test_kfac_divergence_is_a_result():
    """A step size that blows up ends in a non-finite loss, never a failed Cholesky."""
    _need("curvlinops")
    wl, x, y = _problem()
    model = wl.make_model(0)
    opt = make_optimizer("kfac[batch=full,lr=1000,damping=0.0001]", model)
    losses = [float(opt.step(Objective(model, x, y, wl.loss_fn))) for _ in range(30)]
    assert not all(torch.isfinite(torch.tensor(losses)))


def test_missing_extra_skips_with_reason(monkeypatch):
    """Without the library: resolving and the memory model work, building says why not."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "heavyball" else real(name, *a))
    assert "curvature extra" in REGISTRY["soap"].skip_reason()
    assert memory_model(TARGET_SPEC, "soap").optimizer_state > 0
    wl = make_workload("quadratic")
    with pytest.raises(UsageError, match="heavyball.*curvature extra"):
        make_optimizer("soap", wl.make_model(0))


@pytest.mark.parametrize("text, needle", [
    ("soap[compile=yes]", "compile"), ("soap[compile=1]", "compile"),
    ("soap[precondition_frequency=0]", "positive integer"),
    ("kfac[update_every=2.5]", "positive integer"), ("muon[batch=0]", "batch"),
    ("psgd_kron[beta=0.9]", "unknown hyperparameter"), ("sf_adamw[lr=0]", "positive"),
])
def test_curvature_grammar_rejects_bad_values(text, needle):
    with pytest.raises(UsageError, match=needle):
        resolve(text)


def test_every_curvature_entry_is_registered_with_a_label():
    for name in CURVATURE:
        d = REGISTRY[name]
        assert d.label and d.requires and "batch" in d.defaults
        assert str(resolve(f"{name}[batch=full]")) == f"{name}[batch=full]"


def test_kfac_uses_the_workloads_loss():
    """MSE as a function becomes nn.MSELoss, cross-entropy passes through, others refused."""
    from mlpbench.optimizers.curvature import curvlinops_loss

    wl, x, y = _problem()
    model = wl.make_model(0)
    assert isinstance(curvlinops_loss(Objective(model, x, y, wl.loss_fn)), torch.nn.MSELoss)
    mix = make_workload("mixture")
    ce = curvlinops_loss(Objective(mix.make_model(0), mix.x_train, mix.y_train, mix.loss_fn))
    assert ce is mix.loss_fn and isinstance(ce, torch.nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="K-FAC supports"):
        curvlinops_loss(Objective(model, x, y, lambda a, b: (a - b).abs().mean()))
    with pytest.raises(ValueError, match="K-FAC supports"):
        curvlinops_loss(Objective(model, x, y, torch.nn.L1Loss()))


@pytest.mark.parametrize("workload", ["teacher", "mixture", "local_minima"])
def test_kfac_runs_on_every_race_workload(workload):
    _need("curvlinops")
    from mlpbench.problems.runner import Budget, run

    result = run(make_workload(workload), "kfac", seed=0, budget=Budget(max_steps=15))
    assert result.status in ("target", "budget"), result


def test_asv_optimizer_step_has_the_family_and_skips_without_it(monkeypatch):
    from benchmarks import bench_optimizers

    assert set(CURVATURE) <= set(bench_optimizers.OptimizerStep.params[1])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "heavyball" else real(name, *a))
    bench_optimizers._optimizer_step.cache_clear()
    try:
        with pytest.raises(NotImplementedError, match="curvature extra"):
            bench_optimizers.OptimizerStep().time_step("cpu", "muon")
    finally:
        bench_optimizers._optimizer_step.cache_clear()


def test_asv_optimizer_step_runs_a_curvature_step():
    _need("heavyball")
    from benchmarks import bench_optimizers

    bench_optimizers.OptimizerStep().time_step("cpu", "muon")
