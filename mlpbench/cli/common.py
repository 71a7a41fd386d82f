"""Shared argparse pieces: the parser class, value types from :mod:`mlpbench.validate`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from mlpbench import validate
from mlpbench.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _type(check: Callable[[str, str], Any], name: str) -> Callable[[str], Any]:
    def convert(text: str):
        try:
            return check(name, text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def positive_int(name: str = "value", maximum: int | None = None) -> Callable[[str], int]:
    """A positive integer flag (at most ``maximum``)."""
    return _type(lambda n, t: validate.positive_int(n, t, maximum=maximum), name)


def non_negative_int(name: str = "value") -> Callable[[str], int]:
    """An integer flag >= 0 (a seed, a rank)."""
    return _type(validate.non_negative_int, name)


def positive_float(name: str = "value", allow_inf: bool = False,
                   maximum: float | None = None) -> Callable[[str], float]:
    """A finite positive number flag (``inf`` too when ``allow_inf``)."""
    return _type(lambda n, t: validate.positive_float(n, t, allow_inf=allow_inf,
                                                      maximum=maximum), name)


def thread_count(name: str = "--threads") -> Callable[[str], int]:
    """A torch thread count, bounded by :func:`mlpbench.validate.max_threads`."""
    return _type(validate.threads, name)


def int_list(name: str, maximum: int | None = None) -> Callable[[str], tuple[int, ...]]:
    """A comma-separated list of positive integers, no empty or repeated entry."""
    return _type(lambda n, t: validate.parse_list(
        n, t, lambda e, v: validate.positive_int(e, v, maximum=maximum)), name)


def float_list(name: str, maximum: float | None = None) -> Callable[[str], tuple[float, ...]]:
    """A comma-separated list of finite positive numbers, no empty or repeated entry."""
    return _type(lambda n, t: validate.parse_list(
        n, t, lambda e, v: validate.positive_float(e, v, maximum=maximum)), name)


def word_list(name: str) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of words, no empty or repeated entry."""
    return _type(validate.split_list, name)


def ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, without empty entries or repeats."""
    return int_list("")(text)


def words(text: str) -> tuple[str, ...]:
    """A comma-separated list of words, without empty entries or repeats."""
    return word_list("")(text)


def thread_list(text: str) -> tuple[int, ...]:
    """A comma-separated list of thread counts (an axis of the sweep)."""
    values = ints(text)
    for v in values:
        _type(validate.threads, "--threads")(str(v))
    return values


def print_json(obj: Any) -> None:
    from mlpbench.results import dumps

    sys.stdout.write(dumps(obj) + "\n")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=thread_count(),
                   help="torch intra-op threads (default: $MLPBENCH_THREADS, else torch's; at "
                        f"most {validate.THREADS_PER_CORE} per logical core)")


def threads_of(args: argparse.Namespace) -> int | None:
    return args.threads if args.threads is not None else validate.env_threads()


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


def _retries(text: str) -> int:
    try:
        n = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--retries must be an integer, got {text!r}") from None
    if not 0 <= n <= 10:  # each retry re-measures a point after a growing back-off
        raise argparse.ArgumentTypeError(f"--retries must be from 0 to 10, got {n}")
    return n


def add_retries(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retries", type=_retries,
                   help="re-measure a point flagged as contended up to N times (default 2)")
