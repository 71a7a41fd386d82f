"""One validation layer for every number that enters mlpbench: CLI flags, optimizer
hyperparameters, environment variables and configuration. Each check returns the value or
raises :class:`~mlpbench.errors.UsageError` with one line naming it.

Parsing is strict: numbers are ASCII text (``int('１')`` would accept a full-width digit),
lists are comma-separated without empty or repeated entries (``32,,64`` and ``'32, '`` are
refused, not read as ``32,64`` and ``32``)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from mlpbench.errors import UsageError

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
_INT = re.compile(r"[+]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|nan)",
                    re.IGNORECASE)
#: torch's intra-op pool starts one OS thread per requested thread; beyond this many per
#: logical core they only add context switches (and 10,000 threads exhaust the process)
THREADS_PER_CORE = 4
T = TypeVar("T")


def _text(value: object) -> str:
    return str(value).strip()


def positive_int(name: str, value: object, *, maximum: int | None = None) -> int:
    """``value`` as a positive integer (ASCII text allowed); at most ``maximum`` when given."""
    if isinstance(value, bool):
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(value, int):
        n = value
    elif _INT.fullmatch(_text(value)):
        n = int(_text(value))
    else:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    if n <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and n > maximum:
        raise UsageError(f"{name} must be at most {maximum:,}, got {n:,}")
    return n


def number(name: str, value: object) -> float:
    """``value`` as a float, from ASCII decimal text or a number (NaN and inf pass here)."""
    if isinstance(value, bool):
        raise UsageError(f"{name} must be a number, got {value!r}")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise UsageError(f"{name} is too large, got {value!r}") from None
    if not _FLOAT.fullmatch(_text(value)):
        raise UsageError(f"{name} must be a number, got {value!r}")
    return float(_text(value))


def positive_float(name: str, value: object, *, allow_inf: bool = False,
                   maximum: float | None = None) -> float:
    """``value`` as a finite number > 0 (``inf`` too when ``allow_inf``); NaN never; at most
    ``maximum`` when given."""
    try:
        x = number(name, value)
    except UsageError:
        raise UsageError(f"{name} must be a positive number, got {value!r}") from None
    if math.isnan(x) or x <= 0 or (math.isinf(x) and not allow_inf):
        what = "a positive number" + (" or inf" if allow_inf else " (finite)")
        raise UsageError(f"{name} must be {what}, got {value!r}")
    if maximum is not None and x > maximum:
        raise UsageError(f"{name} must be at most {maximum:g}, got {value!r}")
    return x


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an integer >= 0 (ASCII text allowed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, bool) and _INT.fullmatch(_text(value)):
        return int(_text(value))
    raise UsageError(f"{name} must be a non-negative integer, got {value!r}")


def fraction(name: str, value: object) -> float:
    """``value`` in (0, 1]."""
    x = positive_float(name, value)
    if x > 1:
        raise UsageError(f"{name} must be in (0, 1], got {value!r}")
    return x


def _named(name: str) -> str:
    return f"{name}: " if name else ""


def split_list(name: str, text: str) -> tuple[str, ...]:
    """A comma-separated list: no empty entry (``32,,64``, ``'32, '``), no repeat."""
    entries = tuple(v.strip() for v in str(text).split(","))
    if not any(entries):
        raise UsageError(f"{_named(name)}empty list: {text!r}")
    if not all(entries):
        raise UsageError(f"{_named(name)}an empty entry in {text!r}")
    return no_repeats(name, entries, text)


def no_repeats(name: str, values: Sequence[T], text: object = None) -> tuple[T, ...]:
    """``values`` as a tuple, refused when an entry repeats."""
    seen: list[T] = []
    for v in values:
        if v in seen:
            shown = text if text is not None else values
            raise UsageError(f"{_named(name)}a value repeats in {shown!r} ({v!r})")
        seen.append(v)
    return tuple(values)


def parse_list(name: str, text: str, item: Callable[[str, str], T]) -> tuple[T, ...]:
    """A comma-separated list, each entry checked by ``item(name, entry)``; entries equal as
    values (``16,16.0``, ``1e-1,0.1``) are repeats too."""
    try:
        values = tuple(item(f"{name} entry".strip(), v) for v in split_list(name, text))
    except UsageError as exc:
        if str(text) in str(exc):
            raise
        raise UsageError(f"{exc} (in {text!r})") from None
    return no_repeats(name, values, text)


def max_threads() -> int:
    """The largest thread count accepted: ``THREADS_PER_CORE`` per logical core."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def threads(name: str, value: object) -> int:
    """A torch thread count: positive, at most :func:`max_threads`."""
    n = positive_int(name, value)
    if n > max_threads():
        raise UsageError(f"{name} must be at most {max_threads()} ({THREADS_PER_CORE} per "
                         f"logical core: more threads only add context switches), got {n:,}")
    return n


def env_int(name: str, default: int | None = None) -> int | None:
    """A positive integer environment variable, ``default`` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    return default if not raw else positive_int(f"environment variable {name}", raw)


def env_threads(value: str | None = None) -> int | None:
    """``$MLPBENCH_THREADS`` (or ``value``): a thread count (see :func:`threads`), ``None``
    when unset or empty."""
    raw = os.environ.get("MLPBENCH_THREADS", "") if value is None else value
    if not raw.strip():
        return None
    try:
        return threads("MLPBENCH_THREADS", raw)
    except UsageError:
        raise UsageError(f"MLPBENCH_THREADS={raw!r}: must be a positive integer, at most "
                         f"{max_threads()} ({THREADS_PER_CORE} per logical core)") from None


def env_flag(name: str, value: str | None = None) -> bool:
    """A boolean environment variable (or ``value``): 1/true/yes/on or 0/false/no/off;
    anything else is an error rather than silently off."""
    raw = os.environ.get(name, "") if value is None else value
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise UsageError(f"{name}={raw!r}: use 1/true/yes/on or 0/false/no/off")


def check_environment() -> None:
    """The one parser of mlpbench's environment, run at every entry point (the CLI, the asv
    suite): ``MLPBENCH_THREADS`` and ``MLPBENCH_FULL`` are valid or the run stops."""
    env_threads()
    env_flag("MLPBENCH_FULL")
