"""The sweep point: one place where a measured configuration's axes are defined.

Keys, CSV columns, ``--resume`` matching, joins (e.g. the CPU/CUDA crossover) and report
grouping all derive from :class:`Point`'s fields, so adding an axis is one field here plus
its values in the sweep configuration.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import TYPE_CHECKING

from mlpbench.spec import MLPSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Point:
    """One grid point; all of its phases are measured together, in one process."""

    device: str  # "cpu", "cuda", "cuda:1"
    dtype: str  # precision: "fp32", "bf16", "bf16-autocast", "tf32" (mlpbench.problems.modes)
    framework: str  # "torch", "keras"
    input_dim: int  # d
    width: int  # n_h
    depth: int  # L hidden layers
    batch: int  # samples per call
    activation: str = "relu"
    mode: str = "eager"  # "eager", "compile", "max-autotune", "cudagraphs"
    threads: int = 0  # torch intra-op threads in force (0: not recorded, in old tables)

    @property
    def key(self) -> str:
        return key_of(asdict(self))

    def spec(self) -> MLPSpec:
        return MLPSpec(self.input_dim, self.width, self.depth, activation=self.activation)

    def as_row(self) -> dict:
        return asdict(self)


#: the point's fields, in order: the identity of a sweep row (with ``phase``)
POINT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Point))
#: the point's fields other than the device: what a CPU and a CUDA row must share to compare
NETWORK_KEYS: tuple[str, ...] = tuple(k for k in POINT_KEYS if k != "device")
#: the default of each field that has one: what a row from a table written before the field
#: existed means (an old sweep.csv has no ``mode`` column: it was eager)
POINT_DEFAULTS: dict[str, object] = {f.name: f.default for f in fields(Point)
                                     if f.default is not MISSING}


def key_of(row: dict) -> str:
    """The point key of a result row (or a dict of point fields), as stable text."""
    parts = []
    for k in POINT_KEYS:
        v = row.get(k, POINT_DEFAULTS.get(k))
        if v is None or (isinstance(v, float) and v != v):  # an empty cell of an old table
            v = POINT_DEFAULTS.get(k)
        parts.append(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return "|".join(parts)


def with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every defaulted point column present and filled (a copy when changed):
    a table from before the ``mode`` axis reads as eager."""
    missing = {k: v for k, v in POINT_DEFAULTS.items()
               if k not in frame or frame[k].isna().any()}
    if not missing:
        return frame
    frame = frame.copy()
    for k, v in missing.items():
        frame[k] = frame[k].fillna(v) if k in frame else v
    return frame
