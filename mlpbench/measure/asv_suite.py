"""The asv suite of a source tree: its benchmark ids, enumerated as asv does, and one call of
a benchmark by id.

Standard library only, and no import of the rest of :mod:`mlpbench`: the regression gate's
worker and the callgrind runner import this module from the gate's own tree, then put the
tree under test first on ``sys.path`` and import *its* ``benchmarks`` and ``mlpbench``.

A benchmark id is ``Class.method`` or ``Class.method(p1, p2, ...)`` with the parameter values
as Python literals, e.g. ``TrainStep.time_step('cpu', 64, 2, 32)``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable
from types import ModuleType

#: method prefixes asv collects as benchmarks
PREFIXES = ("time_", "timeraw_", "track_", "peakmem_", "mem_")
_ID_RE = re.compile(r"^(\w+)\.(\w+)(\(.*\))?$")


class Absent(LookupError):
    """The benchmark does not exist in this tree (renamed, removed, or a new one)."""


def format_id(cls: str, method: str, params: tuple = ()) -> str:
    """The id of one benchmark and parameter combination."""
    return f"{cls}.{method}({', '.join(map(repr, params))})" if params else f"{cls}.{method}"


def parse_id(bench_id: str) -> tuple[str, str, tuple]:
    """``(class, method, params)`` of an id; ValueError when it is not one."""
    m = _ID_RE.match(bench_id.strip())
    if not m:
        raise ValueError(f"not a benchmark id: {bench_id!r}")
    params = ast.literal_eval(m.group(3)) if m.group(3) else ()
    if not isinstance(params, tuple):
        params = (params,)
    return m.group(1), m.group(2), params


def param_grid(cls: type) -> tuple[list[str], list[tuple]]:
    """Parameter names and every combination, as asv expands ``params`` (one list alone is
    one parameter)."""
    params = getattr(cls, "params", None)
    if not params:
        return [], [()]
    if not isinstance(params[0], (list, tuple)):
        params = [params]
    names = list(getattr(cls, "param_names", [f"param{i + 1}" for i in range(len(params))]))
    return names, list(itertools.product(*params))


def suite_modules(package: str = "benchmarks") -> tuple[list[ModuleType], dict[str, str]]:
    """Every module of the suite package (imported), and the ones that failed to import."""
    pkg = importlib.import_module(package)
    modules, errors = [], {}
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception as exc:  # a module of the suite is broken: a result, not a crash
            errors[info.name] = f"{type(exc).__name__}: {exc}"[:300]
    return modules, errors


def suite_classes(package: str = "benchmarks") -> tuple[dict[str, type], dict[str, str]]:
    """Benchmark classes by name (those defined in the suite with a benchmark method)."""
    modules, errors = suite_modules(package)
    classes = {}
    for mod in modules:
        for name, obj in inspect.getmembers(mod, inspect.isclass):
            if obj.__module__ == mod.__name__ and not name.startswith("_") and any(
                    m.startswith(PREFIXES) for m in dir(obj)):
                classes[name] = obj
    return classes, errors


def enumerate_ids(prefixes: tuple[str, ...] = ("time_", "track_"),
                  package: str = "benchmarks") -> tuple[list[dict], dict[str, str]]:
    """Every benchmark of the suite: ``{"id", "class", "method", "params": {name: value}}``,
    and the modules that failed to import."""
    classes, errors = suite_classes(package)
    rows = []
    for cname, cls in sorted(classes.items()):
        names, combos = param_grid(cls)
        for method in sorted(m for m in dir(cls) if m.startswith(prefixes)):
            rows += [{"id": format_id(cname, method, combo), "class": cname, "method": method,
                      "params": dict(zip(names, combo, strict=True))} for combo in combos]
    return rows, errors


class Loader:
    """Set-up instances of one tree's benchmarks, found by importing the suite."""

    def __init__(self, package: str = "benchmarks") -> None:
        self.package = package
        self.instances: dict[tuple, object] = {}
        self._classes: dict[str, type] | None = None
        self._errors: dict[str, str] = {}

    def find_class(self, name: str) -> type:
        if self._classes is None:
            self._classes, self._errors = suite_classes(self.package)
        if name in self._classes:
            return self._classes[name]
        if self._errors:  # the class may sit in a module that does not import
            raise ImportError("; ".join(f"{m}: {e}" for m, e in self._errors.items())[:300])
        raise Absent(f"no benchmark class {name!r} in the suite")

    def bound_call(self, bench_id: str) -> Callable[[], object]:
        """A no-argument callable running one call of the benchmark (set up once)."""
        cls_name, method, params = parse_id(bench_id)
        cls = self.find_class(cls_name)
        if not callable(getattr(cls, method, None)):
            raise Absent(f"{cls_name} has no method {method!r}")
        key = (cls_name, params)
        if key not in self.instances:
            obj = cls()
            if hasattr(obj, "setup"):
                obj.setup(*params)
            self.instances[key] = obj
        fn = getattr(self.instances[key], method)
        return (lambda: fn(*params)) if params else fn


def status_of(exc: BaseException) -> dict:
    """What an exception raised by a benchmark means: skipped, absent or failed."""
    if isinstance(exc, NotImplementedError):
        return {"status": "skipped", "reason": str(exc)[:300]}
    if isinstance(exc, Absent):
        return {"status": "absent", "reason": str(exc)[:300]}
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300],
            "trace": traceback.format_exc(limit=-3)}


#: trees put on ``sys.path`` by :func:`use_tree` (each replaces the one before)
_TREES: list[str] = []


def use_tree(root: str, drop: tuple[str, ...] = ("mlpbench", "benchmarks")) -> None:
    """Make ``root`` the only source of ``mlpbench`` and ``benchmarks``: forget those already
    imported (e.g. the gate's own, or an earlier tree's), take earlier trees off ``sys.path``
    and put ``root`` first."""
    for name in [m for m in sys.modules if m.split(".")[0] in drop]:
        del sys.modules[name]
    for old in [*_TREES, root]:
        while old in sys.path:
            sys.path.remove(old)
    _TREES[:] = [root]
    sys.path.insert(0, root)
    importlib.invalidate_caches()
