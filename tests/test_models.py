import numpy as np
import pytest
import torch

from mlpbench.models import build_keras, build_torch, copy_torch_weights_to_keras, torch_dtype
from mlpbench.spec import ACTIVATIONS, MLPSpec, SpecError

from .test_spec import random_specs

keras = pytest.importorskip("keras")


@pytest.mark.parametrize("spec", random_specs(20, seed=2), ids=lambda s: s.label)
def test_keras_param_count(spec):
    assert build_keras(spec).count_params() == spec.num_params


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_keras_and_torch_agree(activation):
    spec = MLPSpec(7, 16, 3, output_dim=2, activation=activation)
    tmodel = build_torch(spec, seed=3)
    kmodel = build_keras(spec)
    copy_torch_weights_to_keras(tmodel, kmodel)
    x = torch.randn(32, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = tmodel(x).numpy()
    got = np.asarray(kmodel(x.numpy()).detach().cpu())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_same_seed_same_weights():
    spec = MLPSpec(4, 5, 2)
    a, b, c = build_torch(spec, seed=1), build_torch(spec, seed=1), build_torch(spec, seed=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_build_does_not_touch_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    build_torch(MLPSpec(4, 5, 2), seed=9)
    assert torch.equal(torch.rand(1), before)


def test_dtype_and_unknown_dtype():
    assert build_torch(MLPSpec(2, 3, 1), dtype="bf16")[0].weight.dtype == torch.bfloat16
    with pytest.raises(SpecError, match="int8"):
        torch_dtype("int8")
