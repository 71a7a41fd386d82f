import sys

import pytest
import torch

from mlpbench.measure.memory import is_oom

PROBE = """
import json, torch
from mlpbench.measure.memory import host_peak
with host_peak() as small:
    torch.ones(10)
with host_peak() as big:
    t = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    del t
with host_peak() as after:
    torch.ones(10)
print(json.dumps([small[0], big[0], after[0]]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux clear_refs only")
def test_host_peak_sees_a_transient_allocation():
    # in a fresh process: a long-lived one (this test session) reuses pages freed by earlier
    # tests, so its RSS need not rise for a new 64 MiB (the figure is a lower bound there)
    import json
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         cwd=root, timeout=120, check=True).stdout
    small, big, after = json.loads(out.strip().splitlines()[-1])
    assert big >= 60 * 2**20
    assert small < 16 * 2**20 and after < 16 * 2**20  # the reset works between regions


def test_oom_classification():
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 10 TB"))
    assert not is_oom(RuntimeError("shape mismatch"))


@pytest.mark.gpu
def test_cuda_peak_region():
    from mlpbench.measure.memory import cuda_peak

    dev = torch.device("cuda")
    with cuda_peak(dev) as box:
        t = torch.empty(2**20, device=dev)
        del t
    assert box[0].allocated >= 4 * 2**20
