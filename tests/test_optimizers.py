import pytest
import torch

from mlpbench.errors import UsageError
from mlpbench.optimizers import REGISTRY, batch_size_of, make_optimizer, resolve
from mlpbench.optimizers.base import Objective
from mlpbench.optimizers.grammar import OptimizerId, parse_optimizer_id
from mlpbench.problems.workloads import make_workload


@pytest.mark.parametrize("text, name, params", [
    ("sgd", "sgd", ()),
    ("sgd[lr=0.01,momentum=0.9]", "sgd", (("lr", 0.01), ("momentum", 0.9))),
    ("lbfgs[line_search=none,history=5]", "lbfgs", (("line_search", "none"), ("history", 5))),
    ("sgd[batch=full]", "sgd", (("batch", "full"),)),
    ("adam[lr=1e-3]", "adam", (("lr", 1e-3),)),
    ("x[flag=true]", "x", (("flag", True),)),
])
def test_parse(text, name, params):
    oid = parse_optimizer_id(text)
    assert oid == OptimizerId(name, params)


@pytest.mark.parametrize("text", ["sgd[lr=0.01,momentum=0.9]", "adam", "lbfgs[history=5]",
                                  "sgd[batch=full]"])
def test_canonical_roundtrip(text):
    assert str(parse_optimizer_id(text)) == text


@pytest.mark.parametrize("text, needle", [
    ("sgd[lr=0.1", "malformed"), ("sgd[]", "empty"), ("sgd[lr]", "bad item"),
    ("sgd[lr=0.1,lr=0.2]", "twice"), ("Sgd", "malformed"), ("sgd[lr=@]", "bad value"),
    ("sgd[=1]", "bad item"),
])
def test_malformed(text, needle):
    with pytest.raises(UsageError, match=needle):
        parse_optimizer_id(text)


@pytest.mark.parametrize("text, needle", [
    ("nadam", "unknown optimizer"), ("sgd[beta=0.9]", "unknown hyperparameter 'beta'"),
    ("sgd[lr=-0.1]", "positive"), ("sgd[lr=0]", "positive"), ("adam[batch=0]", "batch"),
    ("gd[batch=8]", "full-batch"), ("lbfgs[line_search=armijo]", "line_search"),
    ("lbfgs[history=2.5]", "history"), ("momentum[momentum=-1]", "negative"),
    ("sgd[lr=fast]", "number"),
])
def test_invalid_hyperparameters(text, needle):
    with pytest.raises(UsageError, match=needle):
        resolve(text)


def test_batch_sizes():
    assert batch_size_of("gd") is None
    assert batch_size_of("sgd") == 32
    assert batch_size_of("sgd[batch=full]") is None
    assert batch_size_of("adam[batch=8]") == 8


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_optimizer_lowers_a_convex_loss(name):
    """One adapter contract for all: five steps on least squares lower the loss."""
    reason = REGISTRY[name].skip_reason()
    if reason:
        pytest.skip(reason)
    wl = make_workload("quadratic")
    model = wl.make_model(0)
    opt = make_optimizer(f"{name}[lr=0.05]" if "lr" in REGISTRY[name].defaults else name, model)
    before, _ = wl.losses(model)
    for _ in range(5):
        opt.step(Objective(model, wl.x_train, wl.y_train, wl.loss_fn))
    after, _ = wl.losses(model)
    assert after < before


def test_objective_counts_work():
    wl = make_workload("quadratic")
    model = wl.make_model(0)
    obj = Objective(model, wl.x_train[:10], wl.y_train[:10], wl.loss_fn)
    make_optimizer("lbfgs[max_iter=3]", model).step(obj)
    assert obj.counters.closure_calls >= 3
    assert obj.counters.samples == 10 * obj.counters.closure_calls


def test_torch_optimizer_keeps_torch_semantics():
    """Our SGD adapter reproduces torch.optim.SGD step for step."""
    wl = make_workload("teacher")
    m1, m2 = wl.make_model(0), wl.make_model(0)
    ours = make_optimizer("momentum[lr=0.01,momentum=0.9,batch=full]", m1)
    ref = torch.optim.SGD(m2.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        ours.step(Objective(m1, wl.x_train, wl.y_train, wl.loss_fn))
        ref.zero_grad()
        wl.loss_fn(m2(wl.x_train), wl.y_train).backward()
        ref.step()
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b)
