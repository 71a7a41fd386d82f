"""The sweep grid: its configuration, named presets, and the points it expands to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from mlpbench.devices import MEMORY_FRACTION, resolve_device
from mlpbench.errors import UsageError
from mlpbench.measure.timing import TimerConfig
from mlpbench.point import Point, grid_points
from mlpbench.problems.modes import MODES, PRECISIONS
from mlpbench.problems.phases import FRAMEWORKS, PHASES
from mlpbench.results.store import Study
from mlpbench.spec import MLPSpec

SWEEP_DTYPES = PRECISIONS
KIND = "sweep"
#: the sweep as a study of the store's contract: one row per phase, written per point
STUDY = Study(KIND, "point", (KIND,))


@dataclass(frozen=True)
class SweepConfig:
    """A sweep grid and how to measure it (every field is recorded with the results)."""

    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("fp32",)  # precisions: fp32, bf16, bf16-autocast, tf32 (CUDA)
    frameworks: tuple[str, ...] = ("torch",)
    input_dims: tuple[int, ...] = (100,)
    widths: tuple[int, ...] = (256,)
    depths: tuple[int, ...] = (2,)
    batches: tuple[int, ...] = (256,)
    phases: tuple[str, ...] = PHASES
    activation: str = "relu"
    #: torch intra-op thread counts, an axis (an int is one value); None keeps torch's default
    threads: int | tuple[int, ...] | None = None
    modes: tuple[str, ...] = ("eager",)  # eager, compile, max-autotune, cudagraphs (CUDA)
    seed: int = 0
    timer: TimerConfig = field(default_factory=lambda: TimerConfig(budget_s=0.5))
    memory_fraction: float = MEMORY_FRACTION  # a point may plan to use this share of memory
    isolate: bool = True  # fresh process per point (exact host peak RSS, crash isolation)
    #: time a matmul yardstick beside each phase (the paired fraction of peak, its interval)
    yardstick: bool = True
    retries: int = 2  # re-measurements of a point flagged as contended
    backoff_s: float = 2.0  # seconds before the first re-measurement (then 2x, 3x...)

    def __post_init__(self) -> None:
        _check_choices("device", self.devices, ("cpu", "cuda"))
        for d in self.devices:
            resolve_device(d)
        _check_choices("dtype", self.dtypes, SWEEP_DTYPES)
        _check_choices("mode", self.modes, MODES)
        _check_choices("framework", self.frameworks, FRAMEWORKS)
        _check_choices("phase", self.phases, PHASES)
        if isinstance(self.threads, int) and not isinstance(self.threads, bool):
            object.__setattr__(self, "threads", (self.threads,))
        if self.threads is not None:
            _check_ints("threads", self.threads)
        for name in ("input_dims", "widths", "depths", "batches"):
            _check_ints(name, getattr(self, name))
        MLPSpec(1, 1, 1, activation=self.activation)
        for f in fields(self):  # every list-valued setting, the point axes among them
            values = getattr(self, f.name)
            if isinstance(values, tuple) and len(set(values)) != len(values):
                raise UsageError(f"{f.name}: {', '.join(map(str, values))} repeats a value")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) \
                or not 0 <= self.retries <= 10:
            raise UsageError(f"retries must be an integer from 0 to 10, got {self.retries!r}")
        if not 0 <= self.backoff_s <= 600:  # also false for NaN
            raise UsageError(f"backoff_s must be in [0, 600] seconds, got {self.backoff_s}")
        if not 0 < self.memory_fraction <= 1:  # also false for NaN
            raise UsageError(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")

    @property
    def thread_counts(self) -> tuple[int, ...]:
        """The thread-count axis: the configured counts, else torch's current default."""
        return self.threads or (torch.get_num_threads(),)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_ints(name: str, values: object) -> None:
    if not isinstance(values, tuple | list) or not values:
        raise UsageError(f"{name}: at least one positive integer is needed, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise UsageError(f"{name}: {v!r} is not a positive integer")


def _check_choices(what: str, values: Iterable[str], allowed: tuple[str, ...]) -> None:
    values = tuple(values)
    if not values:
        raise UsageError(f"at least one {what} is needed")
    for v in values:
        base = v.split(":", 1)[0] if what == "device" else v
        if base not in allowed:
            raise UsageError(f"unknown {what} {v!r}; choose from {', '.join(allowed)}")


#: ``quick`` is a smoke test (< 2 min on 2 cores); ``default`` is the main job's grid;
#: ``full`` reaches past 10^7 parameters, including d=100, n_h=1000, L=10 (P = 9,111,001).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(devices=("cpu", "cuda"), input_dims=(100,), widths=(128, 512, 1024),
                  depths=(2, 4), batches=(256,),
                  timer=TimerConfig(budget_s=0.25, max_samples=30)),
    "default": dict(devices=("cpu", "cuda"), frameworks=("torch", "keras"),
                    input_dims=(100,), widths=(64, 256, 1000), depths=(2, 10),
                    batches=(32, 1024), timer=TimerConfig(budget_s=0.4, max_samples=50)),
    "full": dict(devices=("cpu", "cuda"), dtypes=("fp32", "bf16"), frameworks=("torch", "keras"),
                 input_dims=(10, 100, 1000), widths=(64, 256, 1000, 2048),
                 depths=(1, 4, 10), batches=(32, 256, 1024),
                 timer=TimerConfig(budget_s=1.0)),
}


def preset(name: str, **overrides: Any) -> SweepConfig:
    """A :class:`SweepConfig` from a named preset, with fields overridden."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return SweepConfig(**{**PRESETS[name], **overrides})


def grid(config: SweepConfig) -> list[Point]:
    """All points, cheapest first (by FLOPs per batch), so a cut-short sweep has the small end;
    the modes and thread counts of one network are neighbours."""
    return sorted(grid_points(config),
                  key=lambda p: (p.spec().train_step_flops() * p.batch, p.key))


def config_from_args(preset_name: str | None, **overrides: Any) -> SweepConfig:
    """A config from an optional preset plus explicit overrides (``None`` values ignored)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in fields(SweepConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise UsageError(f"unknown sweep settings: {', '.join(sorted(unknown))}")
    return preset(preset_name, **overrides) if preset_name else SweepConfig(**overrides)
