"""The gate's default sets come from the suite and the registry: every default id exists,
every phase and optimizer family with a benchmark is gated, a new optimizer needs no edit."""

import pytest

from mlpbench.gate import select
from mlpbench.measure.asv_suite import enumerate_ids, format_id, param_grid, parse_id
from mlpbench.optimizers import REGISTRY


@pytest.fixture(scope="module")
def rows():
    found, errors = enumerate_ids()
    assert not errors, errors
    return found


def test_every_named_benchmark_exists_in_the_suite(rows):
    methods = {f"{r['class']}.{r['method']}" for r in rows}
    named = [*select.PHASE_BENCHES.values(), *(b for b, _, _ in select.OPTIMIZER_BENCHES),
             select.WALL_BENCH, *select.EXACT_BENCHES]
    assert [b for b in named if b not in methods] == []


def test_default_ids_exist_and_cover_every_phase_and_family(rows):
    ids = {r["id"] for r in rows}
    covers, uncovered = select.candidates(rows)
    p = select.plan(rows, {b: 1e-4 for b in covers}, insn_max_call_s=0.005)
    assert p.insn and p.wall and p.exact
    assert set(p.insn) | set(p.wall) | set(p.exact) <= ids
    what = set(covers.values())
    assert {f"phase {ph}" for ph in select.PHASE_BENCHES} <= what
    for family in ("sgd", "momentum", "adam", "lbfgs", "newton_cg"):
        assert f"optimizer {family}" in what
    assert set(uncovered) | {w.split()[1] for w in what if w.startswith("optimizer")} == \
        set(REGISTRY)
    assert all(parse_id(b)[2][0] == "cpu" for b in p.insn)  # CPU points only


def test_slow_points_go_to_the_wall_tier(rows):
    covers, _ = select.candidates(rows)
    slow = next(b for b, w in covers.items() if w == "optimizer lbfgs")
    p = select.plan(rows, {**{b: 1e-4 for b in covers}, slow: 0.05}, insn_max_call_s=0.005)
    assert slow in p.wall and slow not in p.insn


def test_a_new_optimizer_is_gated_without_an_edit(rows, monkeypatch):
    monkeypatch.setitem(REGISTRY, "zzz_new", REGISTRY["adam"])
    extra = [{**r, "id": r["id"].replace("'adam'", "'zzz_new'"),
              "params": {**r["params"], "optimizer": "zzz_new"}}
             for r in rows if r["class"] == "OptimizerStep" and r["params"]["optimizer"] == "adam"]
    covers, uncovered = select.candidates([*rows, *extra])
    assert "optimizer zzz_new" in covers.values()
    _, uncovered_before = select.candidates(rows)
    assert "zzz_new" in uncovered_before  # no benchmark yet: reported as not gated


def test_ids_round_trip_and_the_grid_expands_as_asv_does():
    class One:
        params = ["a", "b"]

    class Two:
        params = ([1, 2], ["x"])
        param_names = ["n", "s"]

    assert param_grid(One) == (["param1"], [("a",), ("b",)])
    assert param_grid(Two) == (["n", "s"], [(1, "x"), (2, "x")])
    bench = format_id("Two", "time_t", (1, "x"))
    assert bench == "Two.time_t(1, 'x')" and parse_id(bench) == ("Two", "time_t", (1, "x"))
    assert parse_id("One.time_t('a')") == ("One", "time_t", ("a",))
    with pytest.raises(ValueError):
        parse_id("not an id")
