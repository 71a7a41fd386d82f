"""The sweep point: one place where a measured configuration's axes are defined.

Keys, CSV columns, ``--resume`` matching, joins (e.g. the CPU/CUDA crossover) and report
grouping all derive from :class:`Point`'s fields, so adding an axis is one field here plus
its values in the sweep configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from mlpbench.spec import MLPSpec


@dataclass(frozen=True)
class Point:
    """One grid point; all of its phases are measured together, in one process."""

    device: str  # "cpu", "cuda", "cuda:1"
    dtype: str  # "fp32", "bf16"
    framework: str  # "torch", "keras"
    input_dim: int  # d
    width: int  # n_h
    depth: int  # L hidden layers
    batch: int  # samples per call
    activation: str = "relu"

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


def key_of(row: dict) -> str:
    """The point key of a result row (or a dict of point fields), as stable text."""
    parts = []
    for k in POINT_KEYS:
        v = row.get(k, "relu" if k == "activation" else None)
        parts.append(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return "|".join(parts)
