import pytest
import torch
from torch import nn

from mlpbench.measure.second_order import (
    flat_loss,
    flat_params,
    gnvp,
    gradient,
    hessian_loop,
    hessian_vmap,
    hvp_fwdrev,
    hvp_revrev,
    set_flat_params,
    unflatten,
)
from mlpbench.models import build_torch
from mlpbench.problems.workloads import mse
from mlpbench.spec import MLPSpec


@pytest.fixture(params=["tanh", "gelu", "sigmoid"])
def problem(request):
    spec = MLPSpec(3, 5, 2, activation=request.param)
    model = build_torch(spec, seed=1, dtype="fp64")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(16, 1, generator=gen, dtype=torch.float64)
    f, theta = flat_loss(model, mse, x, y)
    return model, x, y, f, theta


def test_flat_roundtrip(problem):
    model, *_ , theta = problem
    assert theta.numel() == sum(p.numel() for p in model.parameters())
    parts = unflatten(model, theta)
    for (name, p) in model.named_parameters():
        assert torch.equal(parts[name], p.detach())
    set_flat_params(model, theta * 2)
    torch.testing.assert_close(flat_params(model), theta * 2)


def test_gradient_matches_autograd(problem):
    model, x, y, f, theta = problem
    model.zero_grad()
    mse(model(x), y).backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(gradient(f, theta), expected)


def test_hvp_modes_agree_with_each_other_and_finite_differences(problem):
    *_, f, theta = problem
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(2), dtype=theta.dtype)
    a, b = hvp_fwdrev(f, theta, v), hvp_revrev(f, theta, v)
    torch.testing.assert_close(a, b)
    eps = 1e-6  # central difference of the gradient, fp64
    fd = (gradient(f, theta + eps * v) - gradient(f, theta - eps * v)) / (2 * eps)
    torch.testing.assert_close(a, fd, rtol=1e-5, atol=1e-7)


def test_hessian_matches_autograd_functional(problem):
    *_, f, theta = problem
    expected = torch.autograd.functional.hessian(f, theta)
    torch.testing.assert_close(hessian_vmap(f, theta), expected)
    torch.testing.assert_close(hessian_vmap(f, theta, chunk_size=7), expected)
    torch.testing.assert_close(hessian_loop(f, theta), expected)
    torch.testing.assert_close(expected, expected.T)


def test_relu_network_hessian():
    """ReLU networks are piecewise linear: the Hessian of MSE is the Gauss-Newton matrix."""
    spec = MLPSpec(3, 4, 1, activation="relu")
    model = build_torch(spec, seed=0, dtype="fp64")
    x = torch.randn(10, 3, dtype=torch.float64)
    y = torch.randn(10, 1, dtype=torch.float64)
    f, theta = flat_loss(model, mse, x, y)
    h = hessian_vmap(f, theta)
    torch.testing.assert_close(h, torch.autograd.functional.hessian(f, theta))
    v = torch.randn(theta.shape, dtype=torch.float64)
    # the output layer couples with the residual, so only compare on a linear model:
    lin = nn.Linear(3, 1).double()
    fl, tl = flat_loss(lin, mse, x, y)
    torch.testing.assert_close(gnvp(lin, x, tl, v[:4]), hvp_fwdrev(fl, tl, v[:4]))
