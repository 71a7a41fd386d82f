"""Power-law fits of time against P (least squares in log–log), and their predictions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: how many of the largest measured points a fit uses (the asymptotic regime)
FIT_POINTS = 4


def fit_power_law(points: Sequence[tuple[int, float]], n: int = FIT_POINTS):
    """Least-squares power law on the ``n`` largest points: ``(exponent, intercept, r², n)``,
    or ``None`` with fewer than two points."""
    from scipy import stats  # imported here: it costs asv's spawned benchmarks 0.5 s

    pts = sorted(points)[-n:]
    if len(pts) < 2 or len({p for p, _ in pts}) < 2:
        return None
    res = stats.linregress(np.log([p for p, _ in pts]), np.log([t for _, t in pts]))
    return res.slope, res.intercept, res.rvalue**2, len(pts)


def predict(fit, p: int) -> float:
    """The fitted law's time at ``p`` parameters."""
    return float(math.exp(fit[1] + fit[0] * math.log(p)))
