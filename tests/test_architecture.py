"""The import graph: data flows one way (primitives → measure → optimizers → problems →
studies → analysis → report → jobs → cli). A module may import only its own layer or the
layers below it; studies import no other study; the asv suite imports only public API."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlpbench"

#: layer rank of each top-level module or subpackage of mlpbench
LAYERS = {
    "errors": 0, "units": 0, "validate": 0, "spec": 0, "fits": 0, "point": 0,
    "devices": 1, "models": 1, "results": 1,
    "measure": 2, "optimizers": 3, "problems": 4, "studies": 5, "analysis": 6,
    "report": 7, "jobs": 8, "gate": 8, "cli": 9, "__init__": 0, "__main__": 9,
}
#: modules of a layer that must not import each other (independent studies)
ISOLATED = {"studies"}
MAX_LINES = 300


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return [m for m in found if m == "mlpbench" or m.startswith("mlpbench.")]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_from_lower_layers(path):
    me = _module_name(path)
    unit = _unit(me)
    assert unit in LAYERS, f"{me}: add its layer to LAYERS"
    for target in _imports(path):
        other = _unit(target)
        if target == "mlpbench":
            continue
        assert other in LAYERS, f"{me} imports unknown unit {target}"
        assert LAYERS[other] <= LAYERS[unit], f"{me} (layer {LAYERS[unit]}) imports {target} " \
            f"(layer {LAYERS[other]})"
        if unit in ISOLATED and other == unit:
            # one study may span modules of one family: minima, minima_engine, minima_classify
            mine, theirs = me.split(".")[2], target.split(".")[2]
            assert mine.split("_")[0] == theirs.split("_")[0], \
                f"study {me} imports another study {target}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_short(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_asv_suite_imports_public_api_only():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("mlpbench"):
                for alias in node.names:
                    assert not alias.name.startswith("_"), f"{path.name}: {alias.name}"


def test_the_checker_catches_a_back_arrow(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from mlpbench.report import build_report\n")
    assert _imports(bad) == ["mlpbench.report"]
    assert LAYERS[_unit("mlpbench.report")] > LAYERS[_unit("mlpbench.studies.sweep")]
