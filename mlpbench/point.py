"""The sweep point: one place where a measured configuration's axes are defined.

Keys, CSV columns, the grid, ``--resume`` matching, joins (e.g. the CPU/CUDA crossover),
the schema's integer columns, progress lines and report grouping all derive from
:class:`Point`'s fields, so adding an axis is one field here (``axis("<config field>")``)
plus its values in the sweep configuration (``tests/test_identity.py`` proves it).
"""

from __future__ import annotations

import itertools
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from mlpbench.spec import MLPSpec

if TYPE_CHECKING:
    import pandas as pd


def axis(values: str, default: Any = MISSING) -> Any:
    """A point field whose values come from the sweep configuration's attribute ``values``."""
    return field(default=default, metadata={"values": values})


@dataclass(frozen=True)
class Point:
    """One grid point; all of its phases are measured together, in one process."""

    device: str = axis("devices")  # "cpu", "cuda", "cuda:1"
    #: precision: "fp32", "bf16", "bf16-autocast", "tf32" (mlpbench.problems.modes)
    dtype: str = axis("dtypes")
    framework: str = axis("frameworks")  # "torch", "keras"
    input_dim: int = axis("input_dims")  # d
    width: int = axis("widths")  # n_h
    depth: int = axis("depths")  # L hidden layers
    batch: int = axis("batches")  # samples per call
    activation: str = axis("activation", "relu")
    mode: str = axis("modes", "eager")  # "eager", "compile", "max-autotune", "cudagraphs"
    #: torch intra-op threads in force (0: not recorded, in old tables)
    threads: int = axis("thread_counts", 0)

    @property
    def key(self) -> str:
        return key_of(asdict(self))

    def spec(self) -> MLPSpec:
        return MLPSpec(self.input_dim, self.width, self.depth, activation=self.activation)

    def as_row(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        """The point as one short line (progress bars, messages)."""
        return " ".join(f"{k}={v}" for k, v in asdict(self).items())


#: the point's fields, in order: the identity of a sweep row (with ``phase``)
POINT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Point))
#: the point's fields other than the device: what a CPU and a CUDA row must share to compare
NETWORK_KEYS: tuple[str, ...] = tuple(k for k in POINT_KEYS if k != "device")
#: the default of each field that has one: what a row from a table written before the field
#: existed means (an old sweep.csv has no ``mode`` column: it was eager)
POINT_DEFAULTS: dict[str, object] = {f.name: f.default for f in fields(Point)
                                     if f.default is not MISSING}
#: field -> the sweep configuration attribute holding its values
POINT_AXES: dict[str, str] = {f.name: f.metadata["values"] for f in fields(Point)}
#: the point's whole-number fields (integer columns of every table holding points)
INT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Point) if f.type in ("int", int))


def grid_points(config: Any) -> list[Point]:
    """Every point of the product of the configuration's axis values (a scalar attribute is
    one value), in axis order."""
    values = []
    for attr in POINT_AXES.values():
        v = getattr(config, attr)
        values.append(tuple(v) if isinstance(v, tuple | list) else (v,))
    return [Point(*combo) for combo in itertools.product(*values)]


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
