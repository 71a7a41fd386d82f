import sys

import pytest
import torch

from mlpbench.measure.memory import host_peak, is_oom


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux clear_refs only")
def test_host_peak_sees_a_transient_allocation():
    with host_peak() as small:
        torch.ones(10)
    with host_peak() as big:
        t = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del t
    assert big[0] >= 60 * 2**20
    assert small[0] < 16 * 2**20  # the reset works: the earlier 64 MiB is not counted


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
