"""The optimizer identifier grammar, one everywhere (CLI, asv params, report legends).

::

    identifier := name | name "[" key "=" value ("," key "=" value)* "]"
    name, key  := [a-z][a-z0-9_]*
    value      := a number (1e-3, 0.9, 10), true/false, or a word (strong_wolfe, full)

The canonical string lists keys in the order given; ``str(parse(s)) == s`` for a canonical
``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlpbench.errors import UsageError

Value = float | int | bool | str

_ID = re.compile(r"^([a-z][a-z0-9_]*)(?:\[(.*)\])?$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class OptimizerId:
    """A parsed identifier: a name and its explicit hyperparameters."""

    name: str
    params: tuple[tuple[str, Value], ...] = ()

    def __str__(self) -> str:
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={_format(v)}" for k, v in self.params)
        return f"{self.name}[{inner}]"

    def as_dict(self) -> dict[str, Value]:
        return dict(self.params)

    def with_params(self, **updates: Value) -> OptimizerId:
        merged = dict(self.params)
        merged.update(updates)
        return OptimizerId(self.name, tuple(merged.items()))


def _format(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _parse_value(text: str) -> Value:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if not _KEY.match(text):
        raise UsageError(f"bad value {text!r}: expected a number, true/false or a word")
    return text


def parse_optimizer_id(text: str) -> OptimizerId:
    """Parse ``name[key=value,...]``; a malformed string raises :class:`UsageError`."""
    match = _ID.match(text.strip())
    if not match:
        raise UsageError(f"malformed optimizer {text!r}: expected name[key=value,...]")
    name, inner = match.group(1), match.group(2)
    params: list[tuple[str, Value]] = []
    if inner is not None:
        if not inner.strip():
            raise UsageError(f"malformed optimizer {text!r}: empty brackets")
        for item in inner.split(","):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not _KEY.match(key) or not value:
                raise UsageError(f"malformed optimizer {text!r}: bad item {item!r} "
                                 "(expected key=value)")
            if key in dict(params):
                raise UsageError(f"malformed optimizer {text!r}: {key!r} given twice")
            params.append((key, _parse_value(value)))
    return OptimizerId(name, tuple(params))
