"""Forward, backward and training-step time over device x input_dim x width x depth."""

from mlpbench.measure.peak import get_peak
from mlpbench.measure.timing import TimerConfig, measure
from mlpbench.problems.modes import inductor_cache_dir, skip_reason
from mlpbench.problems.phases import make_bench, phase_callable, phase_flops, predicted_bytes
from mlpbench.spec import MLPSpec

from .common import (
    DEVICES,
    REPEAT,
    WARMUP,
    Skip,
    cached_state,
    device_or_skip,
    set_threads_from_env,
    skip_if_heavy,
    skip_if_too_big,
    synced,
)

WIDTHS = [64, 1000, 4096]
DEPTHS = [2, 10]


def _prepare(device_name, d, width, depth, batch, phases):
    device = device_or_skip(device_name)
    spec = MLPSpec(d, width, depth)
    for ph in phases:
        skip_if_too_big(predicted_bytes(spec, ph, "fp32", batch), device)
        skip_if_heavy(phase_flops(spec, ph) * batch, f"{ph} point")
    bench = make_bench(spec, batch=batch, device=device)
    return spec, device, bench


@cached_state
def _forward_calls(device, input_dim, width, depth):
    _, dev, bench = _prepare(device, input_dim, width, depth, ForwardBackward.batch,
                             ("forward", "backward"))
    backward, fwd_setup = phase_callable(bench, "backward")

    def forward_backward():
        fwd_setup()
        backward()

    calls = {"infer": phase_callable(bench, "infer")[0],
             "forward": phase_callable(bench, "forward")[0],
             "forward_backward": forward_backward}
    return {k: synced(fn, dev) for k, fn in calls.items()}


@cached_state
def _train_step(device, width, depth, batch):
    phase = "train_sgd"
    _, dev, bench = _prepare(device, 100, width, depth, batch, (phase,))
    step = synced(phase_callable(bench, phase)[0], dev)
    step()  # allocator, optimizer state
    return step


class ForwardBackward:
    """Inference forward, forward with graph, and forward + backward, at batch 256.

    asv has no untimed per-call setup, so the backward is timed with its forward; the sweep
    (``mlpbench sweep``) times the backward alone. State is built once per process
    (``common.cached_state``): every timed call is warm.
    """

    params = (DEVICES, [10, 100], WIDTHS, DEPTHS)
    param_names = ["device", "input_dim", "width", "depth"]
    repeat = REPEAT
    warmup_time = WARMUP
    timeout = 600
    batch = 256

    def time_infer(self, *args):
        _forward_calls(*args)["infer"]()

    def time_forward(self, *args):
        _forward_calls(*args)["forward"]()

    def time_forward_backward(self, *args):
        _forward_calls(*args)["forward_backward"]()


class TrainStep:
    """zero_grad + forward + MSE + backward + SGD step, at input_dim 100 (other optimizers:
    ``bench_optimizers.OptimizerStep``). Warm calls: the model is built once per process."""

    params = (DEVICES, WIDTHS, DEPTHS, [32, 1024])
    param_names = ["device", "width", "depth", "batch"]
    repeat = REPEAT
    warmup_time = WARMUP
    timeout = 600

    def time_step(self, *args):
        _train_step(*args)()

    def peakmem_step(self, *args):
        _train_step(*args)()


@cached_state
def _mode_call(device, mode, width, phase):
    dev = device_or_skip(device)
    reason = skip_reason(mode, "fp32", dev, "torch")
    if reason:
        raise Skip(reason)
    inductor_cache_dir()  # compiled kernels cached on disk between processes and runs
    spec = MLPSpec(100, width, 2)
    skip_if_too_big(predicted_bytes(spec, phase, "fp32", ModeStep.batch), dev)
    bench = make_bench(spec, batch=ModeStep.batch, device=dev, mode=mode)
    call = synced(phase_callable(bench, phase)[0], dev)
    call()  # compiles in a compiled mode (asv's warm-up); every timed call is warm
    return call


class ModeStep:
    """Inference and the SGD training step per execution mode (``eager``; ``compile``:
    ``torch.compile``, inductor; ``cudagraphs``: CUDA only, skipped elsewhere), d=100, L=2,
    batch 256. The one-off compile falls in the first call, before timing; its cost is in
    the sweep's ``compile_s`` (``mlpbench sweep --modes eager,compile``)."""

    params = (DEVICES, ["eager", "compile", "cudagraphs"], [64, 1000], ["infer", "train_sgd"])
    param_names = ["device", "mode", "width", "phase"]
    repeat = REPEAT
    warmup_time = WARMUP
    timeout = 900
    batch = 256

    def time_call(self, *args):
        _mode_call(*args)()


class Throughput:
    """Training-step throughput (SGD, batch 1024) against the device's measured matmul peak."""

    params = (DEVICES, WIDTHS, DEPTHS)
    param_names = ["device", "width", "depth"]
    timeout = 600
    batch = 1024

    def setup(self, device, width, depth):
        set_threads_from_env()
        self.spec, self.device, self.bench = _prepare(device, 100, width, depth, self.batch,
                                                      ("train_sgd",))
        self.m = measure(synced(phase_callable(self.bench, "train_sgd")[0], self.device),
                         device=self.device, config=TimerConfig(budget_s=1.0))
        self.gflops = phase_flops(self.spec, "train_sgd") * self.batch / self.m.median / 1e9

    def track_samples_per_s(self, *args):
        return self.batch / self.m.median

    track_samples_per_s.unit = "samples/s"

    def track_gflops(self, *args):
        return self.gflops

    track_gflops.unit = "GFLOP/s"

    def track_peak_fraction(self, *args):
        return self.gflops / get_peak(self.device.type, "fp32").gflops

    track_peak_fraction.unit = "fraction of measured fp32 matmul peak"


class CudaMemory:
    """CUDA peak allocated / reserved bytes of one Adam training step (batch 1024)."""

    params = (["cuda"], WIDTHS, DEPTHS)
    param_names = ["device", "width", "depth"]
    timeout = 600

    def setup(self, device, width, depth):
        import torch

        from mlpbench.measure.memory import cuda_peak

        set_threads_from_env()
        self.spec, self.device, self.bench = _prepare(device, 100, width, depth, 1024,
                                                      ("train_adam",))
        step = phase_callable(self.bench, "train_adam")[0]
        step()
        torch.cuda.synchronize(self.device)
        with cuda_peak(self.device) as box:
            step()
        self.peak = box[0]

    def track_peak_allocated(self, *args):
        return self.peak.allocated

    track_peak_allocated.unit = "bytes"

    def track_peak_reserved(self, *args):
        return self.peak.reserved

    track_peak_reserved.unit = "bytes"
