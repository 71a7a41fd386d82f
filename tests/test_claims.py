"""Every number with a unit or a percentage in README.md and results/README.md traces to
``results/claims.csv`` (``scripts/check_claims.py``), and the check itself fails where it must."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_claims", ROOT / "scripts" / "check_claims.py")
cc = importlib.util.module_from_spec(_spec)
sys.modules["check_claims"] = cc  # dataclasses look their module up
_spec.loader.exec_module(cc)


@pytest.fixture(scope="module")
def docs():
    return {d: (ROOT / d).read_text() for d in cc.DOCS}


def test_every_published_number_traces_to_a_committed_file(docs):
    failures = cc.check(docs, cc.read_claims())
    assert not failures, "\n".join(failures)


def test_the_documents_hold_numbers_to_check(docs):
    found = [n for d, t in docs.items() for n in cc.numbers_in(d, t)]
    assert len(found) >= 90  # an extractor that silently finds nothing would pass everything
    assert {n.doc for n in found} == set(cc.DOCS)


def test_extraction_units_ranges_and_compounds():
    got = cc.numbers_in("x.md", "peak 215–225 GFLOP/s, ×1.05, 8 min 06 s, 94.2 % and 3×; "
                        "P = 9,111,001, B = 1024; 65.5 to 4,179.4 years; 2.0e-4 loss")
    assert [(n.text, n.value) for n in got] == [
        ("215 GFLOP/s", 215), ("225 GFLOP/s", 225), ("×1.05", 1.05), ("8 min 06 s", 486),
        ("94.2 %", 94.2), ("3×", 3), ("65.5 years", 65.5), ("4,179.4 years", 4179.4)]


def _claim(number, expr, doc="x.md"):
    return {"doc": doc, "number": number, "source": "test", "expr": expr, "note": ""}


def test_an_untraceable_number_fails_naming_number_and_file():
    failures = cc.check({"x.md": "took 12.3 GiB"}, [])
    assert len(failures) == 1
    assert "x.md:1" in failures[0] and "'12.3 GiB'" in failures[0]
    assert "traces to nothing" in failures[0]


def test_a_disagreeing_value_fails_and_rounding_is_half_a_digit():
    assert cc.check({"x.md": "took 12.3 GiB"}, [_claim("12.3 GiB", "12.34")]) == []
    bad = cc.check({"x.md": "took 12.3 GiB"}, [_claim("12.3 GiB", "12.36")])
    assert len(bad) == 1 and "gives 12.36" in bad[0]


def test_a_failing_expression_and_a_stale_row_fail():
    broken = cc.check({"x.md": "took 5 s"}, [_claim("5 s", "csv('no/such.csv')['x'][0]")])
    assert len(broken) == 1 and "expression failed" in broken[0]
    stale = cc.check({"x.md": "nothing here"}, [_claim("5 s", "5")])
    assert len(stale) == 1 and "stale" in stale[0]


def test_expressions_read_committed_files():
    ns = cc._namespace()
    assert eval("num('results/asv/intel-xeon-2c.default-run.log', r'rc=0 seconds=(\\d+)')",
                ns) == 486
    with pytest.raises(ValueError, match="rows match"):
        eval("row('results/runs/intel-xeon-2c/newton/newton_cost.csv', op='grad')", ns)
