"""One validation layer for every number that enters mlpbench: CLI flags, optimizer
hyperparameters, environment variables and configuration. Each check returns the value or
raises :class:`~mlpbench.errors.UsageError` with one line naming it."""

from __future__ import annotations

import math
import os

from mlpbench.errors import UsageError

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def positive_int(name: str, value: object, *, maximum: int | None = None) -> int:
    """``value`` as a positive integer (text allowed); at most ``maximum`` when given."""
    try:
        n = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise UsageError(f"{name} must be a positive integer, got {value!r}") from None
    if isinstance(n, bool) or n <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and n > maximum:
        raise UsageError(f"{name} must be at most {maximum:,}, got {n:,}")
    return n


def positive_float(name: str, value: object, *, allow_inf: bool = False) -> float:
    """``value`` as a finite number > 0 (``inf`` too when ``allow_inf``); NaN never."""
    try:
        x = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise UsageError(f"{name} must be a positive number, got {value!r}") from None
    if math.isnan(x) or x <= 0 or (math.isinf(x) and not allow_inf):
        what = "a positive number" + (" or inf" if allow_inf else " (finite)")
        raise UsageError(f"{name} must be {what}, got {value!r}")
    return x


def fraction(name: str, value: object) -> float:
    """``value`` in (0, 1]."""
    x = positive_float(name, value)
    if x > 1:
        raise UsageError(f"{name} must be in (0, 1], got {value!r}")
    return x


def env_int(name: str, default: int | None = None) -> int | None:
    """A positive integer environment variable, ``default`` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    return default if not raw else positive_int(f"environment variable {name}", raw)


def env_flag(name: str) -> bool:
    """A boolean environment variable: 1/true/yes/on or 0/false/no/off; anything else is an
    error rather than silently off."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UsageError(f"environment variable {name} must be 1/true/yes/on or 0/false/no/off, "
                     f"got {os.environ[name]!r}")
