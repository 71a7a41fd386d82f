"""Execution modes and precisions of a sweep point: eager or compiled, fp32, bf16 or mixed.

==================  ==========================================================================
mode                what runs
==================  ==========================================================================
``eager``           the model as built, op by op
``compile``         ``torch.compile(model)`` (inductor, default mode); the optimizer step and
                    ``zero_grad`` stay eager, forward and backward are compiled graphs
``max-autotune``    ``torch.compile(model, mode="max-autotune-no-cudagraphs")``
``cudagraphs``      CUDA only: ``torch.compile(model, mode="reduce-overhead")`` (inductor
                    kernels replayed through CUDA graphs)
==================  ==========================================================================

==================  ==========================================================================
dtype               storage, arithmetic
==================  ==========================================================================
``fp32``            fp32 weights and data; on CUDA TF32 matmuls explicitly off
``tf32``            CUDA only: fp32 storage, TF32 tensor-core matmuls
``bf16``            bf16 weights, data and arithmetic
``bf16-autocast``   fp32 weights and data, matmuls under ``torch.autocast(bfloat16)``
==================  ==========================================================================

Compiled artefacts are cached on disk (inductor's FX graph cache under
``<mlpbench cache>/inductor``), so a point in a freshly spawned process reuses the kernels an
earlier point or run compiled.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch

from mlpbench.measure.peak import cache_root

MODES = ("eager", "compile", "max-autotune", "cudagraphs")
#: the ``torch.compile`` mode string of each compiled mode
COMPILE_MODES = {"compile": "default", "max-autotune": "max-autotune-no-cudagraphs",
                 "cudagraphs": "reduce-overhead"}
PRECISIONS = ("fp32", "tf32", "bf16", "bf16-autocast")
#: the dtype the weights and data are stored in
STORAGE = {"fp32": "fp32", "tf32": "fp32", "bf16": "bf16", "bf16-autocast": "fp32"}
#: the matmul peak (``mlpbench peak --mode``) a precision is compared with
PEAK_MODE = {"fp32": "fp32", "tf32": "tf32", "bf16": "bf16", "bf16-autocast": "bf16"}
#: modes and precisions that need a CUDA device
CUDA_ONLY = {"cudagraphs": "CUDA graphs need a CUDA device",
             "tf32": "TF32 is a CUDA tensor-core mode"}
#: the torch.compile backend (tests swap in ``"eager"``, dynamo without inductor, for speed)
BACKEND: object = "inductor"


def storage_dtype(precision: str) -> str:
    """The dtype name weights and data are stored in under ``precision``."""
    return STORAGE.get(precision, precision)


def peak_mode(precision: str) -> str:
    """The peak mode (``fp32``, ``tf32``, ``bf16``) a precision's throughput is compared with."""
    return PEAK_MODE.get(precision, precision)


def skip_reason(mode: str, precision: str, device: torch.device, framework: str) -> str | None:
    """Why a (mode, precision) cannot run on ``device`` with ``framework`` (``None``: it can)."""
    for what in (mode, precision):
        if what in CUDA_ONLY and device.type != "cuda":
            return f"{what}: {CUDA_ONLY[what]}"
    if framework != "torch" and (mode != "eager" or precision not in ("fp32", "bf16")):
        return f"{mode}/{precision} applies to torch models only"
    return None


def inductor_cache_dir() -> str:
    """Inductor's on-disk cache under mlpbench's cache folder, set unless the user set one."""
    path = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """Matmul settings of ``name`` on ``device`` inside the block (TF32 on CUDA); restored after."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def wrap_model(model: Any, mode: str) -> Any:
    """The model to run under ``mode``: itself for eager, else its ``torch.compile`` wrapper."""
    if mode == "eager":
        return model
    if BACKEND != "inductor":
        return torch.compile(model, backend=BACKEND)
    return torch.compile(model, mode=COMPILE_MODES[mode])


def autocast_call(fn: Callable[[], Any], precision: str,
                  device: torch.device) -> Callable[[], Any]:
    """``fn`` run under ``torch.autocast(bfloat16)`` when ``precision`` is ``bf16-autocast``."""
    if precision != "bf16-autocast":
        return fn

    def call() -> Any:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return fn()

    return call


def cache_hits() -> int:
    """FX graph cache hits so far in this process (0 where the counter is unavailable)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["inductor"]["fxgraph_cache_hit"])
    except Exception:  # noqa: BLE001 - a private counter; its absence is not an error
        return 0
