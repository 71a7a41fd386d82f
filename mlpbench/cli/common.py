"""Shared argparse pieces: the parser class, value types from :mod:`mlpbench.validate`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from mlpbench import validate
from mlpbench.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _type(check, name: str):
    def convert(text: str):
        try:
            return check(name, text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name
    return convert


def positive_int(name: str = "value"):
    return _type(validate.positive_int, name)


def positive_float(name: str = "value", allow_inf: bool = False):
    return _type(lambda n, t: validate.positive_float(n, t, allow_inf=allow_inf), name)


def ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, without repeats."""
    values = tuple(validate.positive_int("list entry", v) for v in _split(text))
    return _no_repeats(values, text)


def words(text: str) -> tuple[str, ...]:
    return _no_repeats(_split(text), text)


def _split(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"empty list: {text!r}")
    return values


def _no_repeats(values: tuple, text: str) -> tuple:
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a value repeats in {text!r}")
    return values


def print_json(obj: Any) -> None:
    from mlpbench.results import dumps

    sys.stdout.write(dumps(obj) + "\n")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int("--threads"),
                   help="torch intra-op threads (default: $MLPBENCH_THREADS, else torch's)")


def threads_of(args: argparse.Namespace) -> int | None:
    return args.threads if args.threads is not None else validate.env_int("MLPBENCH_THREADS")


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
