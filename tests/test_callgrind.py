"""Instruction counts under callgrind: deterministic, proportional to the work, per tree."""

import os

import pytest

from mlpbench.errors import UsageError
from mlpbench.measure.callgrind import Limits, count_instructions, count_many, valgrind_missing

MISSING = valgrind_missing()
FAKE = """
def spin(n):
    s = 0
    for i in range(n):
        s += i
    return s


class Fake:
    def time_spin(self):
        {body}
"""


def _tree(tmp_path, name, body):
    root = tmp_path / name
    os.makedirs(root / "benchmarks")
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "bench_fake.py").write_text(FAKE.format(body=body))
    return str(root)


def test_bad_arguments():
    with pytest.raises(UsageError):
        count_instructions(["."], "Fake.time_spin", number=0)
    with pytest.raises(UsageError):
        count_instructions([], "Fake.time_spin")


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=f"instruction counts need valgrind: {MISSING}")
def test_counts_are_deterministic_and_proportional(tmp_path):
    base = _tree(tmp_path, "base", "spin(20000)")
    more = _tree(tmp_path, "more", "spin(21000)")  # x1.05 iterations of the loop
    broken = _tree(tmp_path, "broken", "raise RuntimeError('boom')")
    absent = str(tmp_path / "absent")
    os.makedirs(os.path.join(absent, "benchmarks"))
    res = count_instructions([base, more, broken, absent, base], "Fake.time_spin", number=5,
                             warmup=1)
    assert [r["status"] for r in res] == ["ok", "ok", "failed", "absent", "ok"]
    assert "RuntimeError: boom" in res[2]["error"]
    a, b, again = res[0]["value"], res[1]["value"], res[4]["value"]
    assert abs(again - a) / a < 0.005  # the same tree later in the process
    # oracle: the loop dominates, so the count scales with its iterations
    assert 1.04 < b / a < 1.06
    assert a > 5 * 20000 * 5  # at least a few instructions per iteration, 5 calls


@pytest.mark.slow
@pytest.mark.skipif(MISSING is not None, reason=f"instruction counts need valgrind: {MISSING}")
def test_many_benchmarks_one_process_and_a_hang_is_bounded(tmp_path):
    base = _tree(tmp_path, "base", "spin(20000)")
    hang = _tree(tmp_path, "hang", "while True:\n            pass")
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    res = count_many([base, base, hang], ["Fake.time_spin", "Fake.nothing"],
                     {"Fake.time_spin": 3, "Fake.nothing": 1}, warmup=1,
                     limits=Limits(first=300, factor=2, floor=5))
    assert [r["Fake.nothing"]["status"] for r in res] == ["absent"] * 2 + ["failed"]
    assert res[0]["Fake.time_spin"]["value"] == pytest.approx(res[1]["Fake.time_spin"]["value"],
                                                            rel=0.005)
    assert res[2]["Fake.time_spin"]["status"] == "failed"
    assert "exceeded its time limit of 5 s" in res[2]["Fake.time_spin"]["error"]
    assert "valgrind stopped" in res[2]["Fake.nothing"]["error"]  # never reached
    after = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    assert not [f for f in after - before if f.startswith("vgdb-pipe")]
