import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mlpbench.errors import UsageError
from mlpbench.models import build_torch
from mlpbench.optimizers import memory_model
from mlpbench.spec import ACTIVATIONS, MLPSpec, SpecError


def random_specs(n, seed=0):
    rng = random.Random(seed)
    return [MLPSpec(rng.randint(1, 40), rng.randint(1, 60), rng.randint(1, 5),
                    rng.randint(1, 4), rng.choice(ACTIVATIONS), bias=rng.random() < 0.8)
            for _ in range(n)]


def test_ten_million_network_count():
    spec = MLPSpec(100, 1000, 10)
    assert spec.num_params == 9_111_001
    assert spec.memory("fp32").hessian == 4 * 9_111_001**2
    assert spec.memory("fp32").hessian / 2**40 == pytest.approx(302.0, abs=0.05)


@pytest.mark.parametrize("spec", random_specs(25), ids=lambda s: s.label)
def test_param_count_matches_torch(spec):
    model = build_torch(spec)
    assert spec.num_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("spec", random_specs(20, seed=1), ids=lambda s: s.label)
def test_flops_match_flop_counter(spec):
    batch = 7
    model = build_torch(spec)
    x = torch.randn(batch, spec.input_dim)
    with FlopCounterMode(display=False) as fwd_counter:
        out = model(x)
    assert fwd_counter.get_total_flops() == batch * spec.forward_flops().matmul
    with FlopCounterMode(display=False) as bwd_counter:
        out.sum().backward()
    assert bwd_counter.get_total_flops() == batch * spec.backward_flops().matmul


def test_backward_with_input_grad_counts_first_layer():
    spec = MLPSpec(5, 8, 2)
    model = build_torch(spec)
    x = torch.randn(3, 5, requires_grad=True)
    out = model(x)
    with FlopCounterMode(display=False) as counter:
        out.sum().backward()
    assert counter.get_total_flops() == 3 * spec.backward_flops(input_requires_grad=True).matmul


def test_flop_terms_not_counted_by_flop_counter():
    spec = MLPSpec(3, 4, 2, bias=True)
    fwd = spec.forward_flops()
    assert fwd.bias == 4 + 4 + 1
    assert fwd.activation == 8
    assert fwd.total == fwd.matmul + fwd.bias + fwd.activation
    assert MLPSpec(3, 4, 2, bias=False).forward_flops().bias == 0


def test_memory_model_terms():
    spec = MLPSpec(10, 20, 3)
    p = spec.num_params
    m = memory_model(spec, "adam", "fp32", batch=8)
    assert m.params == m.grads == 4 * p
    assert m.optimizer_state == 8 * p
    assert m.activations == 8 * (10 + 3 * 20 + 1) * 4
    assert memory_model(spec, "sgd", "bf16", 8).optimizer_state == 0
    assert memory_model(spec, "lbfgs[history=5]").optimizer_state == 4 * 12 * p
    assert memory_model(spec, "momentum").optimizer_state == 4 * p
    gelu = MLPSpec(10, 20, 3, activation="gelu")
    assert gelu.memory("fp32", 1).activations == (10 + 3 * 40 + 1) * 4


def test_saved_activation_model_matches_autograd():
    """The activation model counts what autograd actually saves (saved-tensor hooks)."""
    for act in ACTIVATIONS:
        spec = MLPSpec(6, 9, 3, activation=act)
        model = build_torch(spec)
        x = torch.randn(4, 6)
        saved = {}

        def pack(t, saved=saved):
            if t.dim() == 2 and t.shape[0] == 4:  # activations, not weights
                saved[t.data_ptr()] = t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        expected = spec.activation_elements() - spec.output_dim
        assert sum(saved.values()) == 4 * expected, act
        assert out.shape == (4, 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_dim=0, width=3, depth=1), "input_dim"),
    (dict(input_dim=3, width=-1, depth=1), "width"),
    (dict(input_dim=3, width=3, depth=0), "depth"),
    (dict(input_dim=3.5, width=3, depth=1), "input_dim"),
    (dict(input_dim=True, width=3, depth=1), "input_dim"),
    (dict(input_dim=3, width=3, depth=1, activation="swish"), "swish"),
    (dict(input_dim=10**12, width=10**12, depth=3), "too large"),
])
def test_bad_specs_rejected(kwargs, match):
    with pytest.raises(SpecError, match=match):
        MLPSpec(**kwargs)


def test_bad_memory_arguments():
    spec = MLPSpec(3, 3, 1)
    with pytest.raises(SpecError, match="float8"):
        spec.memory("float8")
    with pytest.raises(UsageError, match="rmsprop2"):
        memory_model(spec, "rmsprop2")
    with pytest.raises(SpecError, match="batch"):
        spec.memory("fp32", batch=0)


def test_closed_forms_agree_with_layer_sums_and_are_constant_time():
    import time

    for spec in (MLPSpec(7, 5, 1), MLPSpec(3, 9, 4, output_dim=2, bias=False),
                 MLPSpec(100, 1000, 10)):
        shapes = spec.layer_shapes
        assert spec.num_params == sum(i * o + (o if spec.bias else 0) for i, o in shapes)
        assert spec.forward_flops().matmul == sum(2 * i * o for i, o in shapes)
    start = time.perf_counter()
    huge = MLPSpec(10, 10, 100_000_000)
    assert huge.num_params == 10 * 10 + (10**8 - 1) * 100 + 10 + 10**9 + 1
    huge.memory("fp32", 1024)
    assert time.perf_counter() - start < 1.0  # O(1): depth 10^8 used to take minutes
