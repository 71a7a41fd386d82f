"""The state-memory model knows layer shapes: hand counts for two specs, and the tensors
the libraries actually allocate."""

import importlib.util

import pytest
import torch

from mlpbench.models import build_torch
from mlpbench.optimizers import CURVATURE, make_optimizer, memory_model, resolve
from mlpbench.optimizers.base import Objective
from mlpbench.optimizers.curvature import state_tensor_elements
from mlpbench.optimizers.state_memory import factor_cubes
from mlpbench.problems.workloads import mse
from mlpbench.spec import MLPSpec

A = MLPSpec(10, 64, 2)  # layers 10→64→64→1, P = 4,929
B = MLPSpec(3, 5, 1, output_dim=2)  # layers 3→5→2, P = 32

# hand counts (elements): Kronecker factors are counted per weight dimension n with
# 1 < n ≤ the library's size limit; SOAP/KL-Shampoo keep the statistic and its eigenbasis
# (2·n²), K-FAC the two covariances and their inverses, PSGD an upper triangle n(n+1)/2
HAND = {
    # 2P + W1 2(64²+10²) + W2 2(64²+64²) + W3 (1×64: the 1 is skipped) 2·64²
    (A, "soap"): 2 * 4929 + 8392 + 16384 + 8192,
    (A, "kl_shampoo"): 4929 + 8392 + 16384 + 8192,
    # P + W1 (2080+55) + b1 64 + W2 2·2080 + b2 64 + W3 (a vector once the 1 is dropped) 64
    # + b3 1
    (A, "psgd_kron"): 4929 + 2135 + 64 + 4160 + 64 + 64 + 1,
    # 2(10²+64²) + 2(64²+64²) + 2(64²+1²)
    (A, "kfac"): 8392 + 16384 + 8194,
    (A, "muon"): 4929, (A, "sf_adamw"): 2 * 4929,
    # 2P + W1 (5×3) 2(25+9) + W2 (2×5) 2(4+25)
    (B, "soap"): 64 + 68 + 58,
    (B, "soap[precondition_1d=true]"): 64 + 68 + 58 + 2 * 25 + 2 * 4,  # biases 5 and 2 too
    (B, "soap[max_precond_dim=4]"): 64 + 2 * 9 + 2 * 4,  # the 5s exceed the limit
    (B, "psgd_kron"): 32 + (15 + 6) + 5 + (3 + 15) + 2,
    (B, "psgd_kron[max_size_triangular=4]"): 32 + (5 + 6) + 5 + (3 + 5) + 2,
    (B, "kfac"): 2 * (9 + 25) + 2 * (25 + 4),
}


def test_parameter_counts_of_the_specs():
    assert (A.num_params, B.num_params) == (4929, 32)


@pytest.mark.parametrize("spec, name", list(HAND))
def test_state_model_equals_hand_count(spec, name):
    assert resolve(name).state_elements(spec) == HAND[spec, name]
    assert memory_model(spec, name, "fp32").optimizer_state == 4 * HAND[spec, name]
    assert memory_model(spec, name, "bf16").optimizer_state == 2 * HAND[spec, name]


def test_p_proportional_optimizers_are_the_simple_case():
    for name, units in (("sgd", 0), ("momentum", 1), ("adam", 2), ("lbfgs[history=5]", 12),
                        ("muon", 1), ("sf_adamw", 2)):
        assert resolve(name).state_elements(A) == units * A.num_params


def test_factor_cubes():
    # W1 64³+10³, W2 2·64³, W3 64³ (the 1 has no factor)
    assert factor_cubes(A, 2048) == 4 * 64 ** 3 + 10 ** 3
    assert factor_cubes(B, 4) == 3 ** 3 + 2 ** 3


def _needs(name: str) -> None:
    module = resolve(name).definition.requires
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed (the curvature extra)")


@pytest.mark.parametrize("spec", [A, B, MLPSpec(7, 33, 3, bias=False)])
@pytest.mark.parametrize("name", [*CURVATURE, "soap[precondition_1d=true]",
                                  "soap[max_precond_dim=4]",
                                  "psgd_kron[max_size_triangular=4]"])
def test_state_model_equals_allocated_tensors(spec, name):
    """The model counts exactly the floating-point state the library allocates (after
    steps that refresh the preconditioner)."""
    _needs(name)
    model = build_torch(spec, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, spec.input_dim, generator=gen)
    y = torch.randn(16, spec.output_dim, generator=gen)
    sep = "," if "[" in name else "["
    text = (name[:-1] + sep if "[" in name else name + sep) + "lr=1e-4,batch=full]"
    opt = make_optimizer(text, model)
    for _ in range(3):
        opt.step(Objective(model, x, y, mse))
    counted = state_tensor_elements(opt)
    assert counted > 0
    assert resolve(name).state_elements(spec) == counted


def test_params_lists_curvature_state_at_1e7():
    """``mlpbench params`` at the 10^7 network (d=100, n_h=1000, L=10, P = 9,111,001)."""
    from mlpbench.analysis.params import render_summary, spec_summary
    from mlpbench.spec import TARGET_SPEC

    summary = spec_summary(TARGET_SPEC, ram=2 ** 34, gpu=None)
    mem = summary["memory"]
    # SOAP: 2P + W1 (1000×100) 2(1000²+100²) + 9 hidden 2(2·1000²) + W_out (1×1000) 2·1000²
    soap = 2 * 9_111_001 + 2 * (1000 ** 2 + 100 ** 2) + 9 * 4 * 1000 ** 2 + 2 * 1000 ** 2
    assert mem["optimizer_state[soap]"]["bytes"] == 4 * soap
    # K-FAC: 2(100²+1000²) + 9·2(2·1000²) + 2(1000²+1)
    kfac = 2 * (100 ** 2 + 1000 ** 2) + 9 * 4 * 1000 ** 2 + 2 * (1000 ** 2 + 1)
    assert mem["optimizer_state[kfac]"]["bytes"] == 4 * kfac
    assert mem["optimizer_state[muon]"]["bytes"] == 4 * 9_111_001
    text = render_summary(summary)
    for name in CURVATURE:
        assert f"optimizer_state[{name}]" in text
    assert "222.2 MiB" in text  # SOAP's state
