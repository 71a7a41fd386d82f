import pytest
import torch

from mlpbench.devices import (
    DeviceError,
    describe_hardware,
    device_skip_reason,
    machine_id,
    resolve_device,
    threads,
)


def test_describe_hardware_fields():
    info = describe_hardware()
    for key in ("cpu_model", "physical_cores", "logical_cores", "torch_threads", "ram_bytes",
                "os", "python", "torch", "blas", "gpus", "machine_id"):
        assert key in info
    assert info["torch"] == torch.__version__
    assert info["ram_bytes"] > 0
    assert len(info["gpus"]) == torch.cuda.device_count()
    assert machine_id(info) == info["machine_id"]


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(DeviceError, match="tpu"):
        resolve_device("tpu")


def test_cuda_skip_reason_without_gpu():
    reason = device_skip_reason(torch.device("cuda"))
    assert (reason is None) == torch.cuda.is_available()
    assert device_skip_reason(torch.device("cpu")) is None


def test_threads_context_restores_previous_count():
    old = torch.get_num_threads()
    with threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == old
    with threads(None) as n:
        assert n == old
    for bad in (0, -1, True, 1.5):
        with pytest.raises(DeviceError), threads(bad):
            pass
    assert torch.get_num_threads() == old


@pytest.mark.gpu
def test_gpu_description():
    gpu = describe_hardware()["gpus"][0]
    assert gpu["memory_bytes"] > 0 and gpu["name"]
    assert gpu["cuda"] == torch.version.cuda
