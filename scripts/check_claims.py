"""Check every number with a unit or a percentage in README.md and results/README.md against
``results/claims.csv``.

A claims row names the document, the number as written there (with its unit, e.g.
``65.5 years``, ``94.2 %``, ``×10``, ``8 min 06 s``), the committed file it comes from and a
Python expression that produces it from committed files, in the number's own unit. The
expression sees:

* ``csv(path)`` (a DataFrame), ``js(path)`` (parsed JSON), ``txt(path)`` (text), all relative
  to the repository root; ``row(path, col=value, ...)``: the one row of ``csv(path)`` matching;
* ``num(path, regex)``: the first group of ``regex`` in ``txt(path)`` as a float;
* ``mod(name)``: an imported mlpbench module (for a constant defined in code);
* ``np``, ``pd``, ``math``; ``MIN``, ``HOUR``, ``DAY``, ``YEAR`` in seconds.

A number passes when its expression evaluates, within half a unit of the last digit written,
to the number written. A number with no claims row, a row whose expression fails or disagrees,
and a row whose number no longer appears in its document all fail.

To add a claim: append a row ``doc,number,source,expr,note`` to ``results/claims.csv``;
run ``.venv/bin/python scripts/check_claims.py`` (exit 0 when every number traces).
"""

from __future__ import annotations

import csv as csvlib
import importlib
import json
import math
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "results/README.md")
CLAIMS = ROOT / "results" / "claims.csv"
NUM = r"\d(?:[\d,]*\d)?(?:\.\d+)?"
UNIT = (r"%|×|ms|µs|ns|s|min|minutes?|hours?|days?|years?|B|KiB|MiB|GiB|TiB|PiB|MB|GB|TB|"
        r"GFLOP/s|TFLOP/s|GB/s|TB/s|FLOP/byte|GFLOP|FLOP")
#: a number (or a range of two) and its unit, ``×N``, or a compound ``N min NN s``
PATTERN = re.compile(
    rf"(?<![\w.^/=\-])(?:(?P<mins>\d+) min (?P<secs>\d\d) s\b"
    rf"|×\s?(?P<pre>{NUM})"
    rf"|(?P<a>{NUM})(?:\s?(?:–|to)\s?(?P<b>{NUM}))?\s?(?P<u>{UNIT})(?![\w/]))")


@dataclass(frozen=True)
class Number:
    """One number found in a document: ``text`` as the claims file writes it."""

    doc: str
    line: int
    text: str
    value: float
    decimals: int


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


def _value(s: str) -> float:
    return float(s.replace(",", ""))


def numbers_in(doc: str, text: str) -> list[Number]:
    """Every number with a unit in ``text``; a range ``A–B unit`` gives two numbers."""
    out: list[Number] = []
    for i, line in enumerate(text.splitlines(), 1):
        for m in PATTERN.finditer(line):
            if m["mins"]:
                out.append(Number(doc, i, m.group(0), int(m["mins"]) * 60 + int(m["secs"]), 0))
            elif m["pre"]:
                out.append(Number(doc, i, f"×{m['pre']}", _value(m["pre"]), _decimals(m["pre"])))
            else:
                unit = m["u"]
                sep = " " if line[m.start("u") - 1] == " " else ""
                for part in filter(None, (m["a"], m["b"])):
                    out.append(Number(doc, i, f"{part}{sep}{unit}", _value(part),
                                      _decimals(part)))
    return out


def _namespace() -> dict:
    @cache
    def txt(path: str) -> str:
        return (ROOT / path).read_text()

    @cache
    def csv(path: str) -> pd.DataFrame:
        return pd.read_csv(ROOT / path)

    def js(path: str):
        return json.loads(txt(path))

    def row(path: str, **eq) -> pd.Series:
        f = csv(path)
        for k, v in eq.items():
            f = f[f[k] == v]
        if len(f) != 1:
            raise ValueError(f"{path}: {len(f)} rows match {eq}")
        return f.iloc[0]

    def num(path: str, regex: str) -> float:
        m = re.search(regex, txt(path))
        if not m:
            raise ValueError(f"{path}: no match for {regex!r}")
        return _value(m.group(1))

    return {"csv": csv, "js": js, "txt": txt, "row": row, "num": num, "np": np, "pd": pd,
            "math": math, "mod": importlib.import_module, "MIN": 60.0, "HOUR": 3600.0,
            "DAY": 86400.0, "YEAR": 365.25 * 86400.0}


def read_claims(path: Path = CLAIMS) -> list[dict[str, str]]:
    """The claims rows (``doc, number, source, expr, note``)."""
    with open(path, newline="") as fh:
        return list(csvlib.DictReader(fh))


def check(docs: dict[str, str], claims: list[dict[str, str]]) -> list[str]:
    """Failures (one line each, naming the number and its file) of ``docs`` (name -> text)
    against ``claims``."""
    found = [n for doc, text in docs.items() for n in numbers_in(doc, text)]
    by_key = {(c["doc"], c["number"]): c for c in claims}
    ns, failures, seen = _namespace(), [], set()
    for n in found:
        c = by_key.get((n.doc, n.text))
        if c is None:
            failures.append(f"{n.doc}:{n.line}: {n.text!r} traces to nothing: add a row to "
                            f"results/claims.csv (doc,number,source,expr,note)")
            continue
        seen.add((n.doc, n.text))
        try:
            got = float(eval(c["expr"], dict(ns)))  # noqa: S307 - the committed claims file
        except Exception as err:  # noqa: BLE001 - any failure of the expression is reported
            failures.append(f"{n.doc}:{n.line}: {n.text!r}: expression failed ({err})")
            continue
        if not abs(got - n.value) <= 0.5 * 10.0 ** -n.decimals * (1 + 1e-9):
            failures.append(f"{n.doc}:{n.line}: {n.text!r} but {c['source']} gives {got:.6g}")
    for key in by_key.keys() - seen:
        if key[0] in docs:
            failures.append(f"{key[0]}: claims row {key[1]!r} matches no number there (stale)")
    return failures


def main() -> int:
    docs = {d: (ROOT / d).read_text() for d in DOCS}
    try:
        failures = check(docs, read_claims())
    except (OSError, KeyError, csvlib.Error) as err:
        print(f"check_claims: error: {err}", file=sys.stderr)
        return 2
    for f in failures:
        print(f, file=sys.stderr)
    n = sum(len(numbers_in(d, t)) for d, t in docs.items())
    print(f"{n} numbers, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
