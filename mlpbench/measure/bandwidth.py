"""The device's measured memory bandwidth: STREAM-like copy and triad kernels in torch.

``copy`` is ``a[:] = b`` (2 arrays moved), ``triad`` is ``a = b + s*c`` (3 arrays moved);
bytes count reads and writes once each, as STREAM does (write-allocate traffic not counted).
Arrays are sized far beyond the last-level cache so the rate is the memory's, not a cache's.
Results are cached per machine, device, thread count and torch version, like the peak.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from mlpbench.devices import describe_hardware
from mlpbench.measure.peak import cache_root, read_cache, write_cache
from mlpbench.measure.timing import TimerConfig, measure

#: elements per array: 2^25 fp32 = 128 MiB on CPU (several times any L3 here), 2^28 on CUDA
CPU_ELEMENTS = 2**25
CUDA_ELEMENTS = 2**28
#: the triad's scalar (any non-trivial value; STREAM uses 3)
SCALAR = 3.0


@dataclass(frozen=True)
class BandwidthResult:
    device: str
    copy_gbs: float  # GB/s (10^9 bytes) of the copy kernel
    triad_gbs: float  # GB/s of the triad kernel
    array_bytes: int  # bytes per array
    threads: int
    torch: str
    machine_id: str

    @property
    def gbs(self) -> float:
        """The bandwidth a roofline uses: the better of the two kernels."""
        return max(self.copy_gbs, self.triad_gbs)


def cache_path():
    return cache_root() / "bandwidth.json"


def measure_bandwidth(device: str = "cpu", *, elements: int | None = None,
                      config: TimerConfig = TimerConfig(budget_s=0.5)) -> BandwidthResult:
    """Measure copy and triad bandwidth of ``device`` in GB/s."""
    dev = torch.device(device)
    n = elements or (CUDA_ELEMENTS if dev.type == "cuda" else CPU_ELEMENTS)
    a = torch.zeros(n, device=dev)
    b = torch.rand(n, generator=torch.Generator().manual_seed(0)).to(dev)
    c = torch.rand(n, generator=torch.Generator().manual_seed(1)).to(dev)
    size = n * a.element_size()
    copy = measure(lambda: a.copy_(b), device=dev, config=config, label="copy")
    triad = measure(lambda: torch.add(b, c, alpha=SCALAR, out=a), device=dev, config=config,
                    label="triad")
    return BandwidthResult(device=dev.type, copy_gbs=2 * size / copy.median / 1e9,
                           triad_gbs=3 * size / triad.median / 1e9, array_bytes=size,
                           threads=torch.get_num_threads(), torch=torch.__version__,
                           machine_id=describe_hardware()["machine_id"])


def get_bandwidth(device: str = "cpu", *, refresh: bool = False) -> BandwidthResult:
    """The cached bandwidth for this machine and thread count, measured when missing."""
    dev = torch.device(device).type
    machine = describe_hardware()["machine_id"]
    key = f"{machine}|{dev}|{torch.get_num_threads()}|{torch.__version__}"
    path = cache_path()
    cache = read_cache(path)
    raw = cache.get(key)
    if not refresh and isinstance(raw, dict):
        try:
            return BandwidthResult(**raw)
        except TypeError:
            pass  # wrong-shaped entry: measure again
    result = measure_bandwidth(dev)
    cache[key] = asdict(result)
    write_cache(path, cache)
    return result
