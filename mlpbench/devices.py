"""Resolve devices, synchronize them, and describe the hardware a result was measured on."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import torch

from mlpbench.errors import UsageError

DEVICES = ("cpu", "cuda")


class DeviceError(UsageError):
    """An unknown or unusable device name."""


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda`` (``cuda:N`` too) as a :class:`torch.device`; unknown names raise."""
    base = name.split(":", 1)[0]
    if base not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose from {', '.join(DEVICES)}")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"invalid device {name!r}: {exc}") from None


def device_skip_reason(device: torch.device) -> str | None:
    """Why a device cannot run here (``None`` when it can)."""
    if device.type == "cuda" and not cuda_available():
        return "no CUDA GPU available"
    return None


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_memory_bytes(device: torch.device) -> int:
    """Total memory of the device: host RAM for CPU, GPU memory for CUDA."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return psutil.virtual_memory().total


#: share of a device's memory one measurement may plan to use (the rest: OS, allocator, caches)
MEMORY_FRACTION = 0.8


def usable_memory_bytes(device: torch.device, fraction: float = MEMORY_FRACTION) -> int:
    """The memory budget a measurement plans against: ``fraction`` of the device's total."""
    return int(device_memory_bytes(device) * fraction)


def available_memory_bytes(device: torch.device) -> int:
    """Memory a new allocation can use now: available RAM or free GPU memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    return psutil.virtual_memory().available


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build_setting(config: str, key: str) -> str | None:
    match = re.search(rf"{key}=([^,\s]+)", config)
    return match.group(1) if match else None


def describe_cpu() -> dict[str, Any]:
    config = torch.__config__.show()
    return {
        "cpu_model": _cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "torch_threads": torch.get_num_threads(),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "blas": _build_setting(config, "BLAS_INFO"),
        "lapack": _build_setting(config, "LAPACK_INFO"),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def describe_cuda() -> list[dict[str, Any]]:
    """One dict per visible GPU; empty without CUDA."""
    if not cuda_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        prop = torch.cuda.get_device_properties(i)
        gpus.append({
            "index": i,
            "name": prop.name,
            "memory_bytes": prop.total_memory,
            "compute_capability": f"{prop.major}.{prop.minor}",
            "multiprocessors": prop.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "driver": _driver_version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        })
    return gpus


def _driver_version() -> str | None:
    try:
        import pynvml  # optional; nvidia-ml-py

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # noqa: BLE001 - the driver version is informative only
        pass
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as f:
            match = re.search(r"Kernel Module\s+([\d.]+)", f.read())
            return match.group(1) if match else None
    except OSError:
        return None


def describe_hardware() -> dict[str, Any]:
    """The hardware description recorded with every result.

    Keys: everything :func:`describe_cpu` returns, ``gpus`` (a list of
    :func:`describe_cuda` dicts), ``hostname`` and ``machine_id`` (a short hash of the
    stable hardware fields, used to group results by machine).
    """
    info = describe_cpu()
    info["gpus"] = describe_cuda()
    info["hostname"] = platform.node()
    info["machine_id"] = machine_id(info)
    return info


def machine_id(info: dict[str, Any]) -> str:
    """A short, stable identifier of a machine from its hardware description."""
    stable = {k: info.get(k) for k in ("cpu_model", "logical_cores", "ram_bytes")}
    stable["gpus"] = [g.get("name") for g in info.get("gpus", [])]
    stable["hostname"] = info.get("hostname", platform.node())
    digest = hashlib.sha1(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    return digest[:10]


@contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Use ``n`` torch intra-op threads inside the block (``None``: keep the current count);
    yields the count in force and restores the previous one (and ``OMP_NUM_THREADS``) after."""
    previous, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise DeviceError(f"threads must be a positive integer, got {n!r}")
        torch.set_num_threads(n)
        os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp
