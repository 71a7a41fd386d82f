"""What a spec costs: the data behind ``mlpbench params``, as a dict and as text (pure:
the machine's memory is passed in)."""

from __future__ import annotations

from typing import Any

from mlpbench.optimizers import CURVATURE, memory_model
from mlpbench.spec import MLPSpec
from mlpbench.units import format_bytes

#: the optimizers whose training memory ``mlpbench params`` lists: the P-proportional ones,
#: then the structured-curvature family at its default hyperparameters (the state a closed
#: form of the layer shapes; listed whether or not the curvature extra is installed)
_OPTIMIZERS = ("sgd", "momentum", "adam", "lbfgs", *CURVATURE)


def spec_summary(spec: MLPSpec, *, ram: int, gpu: int | None, dtype: str = "fp32",
                 batch: int = 1, lbfgs_history: int = 10) -> dict[str, Any]:
    """Parameter count, FLOPs per sample and the memory table for ``spec``.

    Each memory item says whether it fits in ``ram`` bytes and, when ``gpu`` is given, in
    GPU memory. Optimizer state comes from the optimizer registry: units of P for the
    P-proportional optimizers, Kronecker factors per layer for SOAP, KL-Shampoo, PSGD-Kron
    and K-FAC (:mod:`mlpbench.optimizers.state_memory`).
    """
    fwd, bwd = spec.forward_flops(), spec.backward_flops()
    items: dict[str, int] = {}
    for opt in _OPTIMIZERS:
        oid = f"lbfgs[history={lbfgs_history}]" if opt == "lbfgs" else opt
        mem = memory_model(spec, oid, dtype, batch)
        items.setdefault("params", mem.params)
        items.setdefault("grads", mem.grads)
        items.setdefault("activations", mem.activations)
        items[f"optimizer_state[{opt}]"] = mem.optimizer_state
        items[f"training_total[{opt}]"] = mem.training
    items["hessian_dense"] = spec.memory(dtype, batch).hessian
    memory = {name: {"bytes": b, "fits_ram": b <= ram,
                     "fits_gpu": None if gpu is None else b <= gpu}
              for name, b in items.items()}
    return {
        "spec": {"input_dim": spec.input_dim, "width": spec.width, "depth": spec.depth,
                 "output_dim": spec.output_dim, "activation": spec.activation,
                 "bias": spec.bias},
        "num_params": spec.num_params,
        "dtype": dtype, "batch": batch, "lbfgs_history": lbfgs_history,
        "flops_per_sample": {
            "forward": {"matmul": fwd.matmul, "bias": fwd.bias, "activation": fwd.activation,
                        "total": fwd.total},
            "backward": {"matmul": bwd.matmul, "bias": bwd.bias,
                         "activation": bwd.activation, "total": bwd.total},
        },
        "ram_bytes": ram, "gpu_memory_bytes": gpu,
        "memory": memory,
    }


def render_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :func:`spec_summary`."""
    s, f = summary["spec"], summary["flops_per_sample"]
    lines = [
        f"MLP d={s['input_dim']} width={s['width']} depth={s['depth']} "
        f"out={s['output_dim']} {s['activation']} bias={s['bias']}",
        f"parameters          {summary['num_params']:,}",
        f"forward FLOPs/sample  {f['forward']['total']:,} (matmul {f['forward']['matmul']:,}, "
        f"bias {f['forward']['bias']:,}, activation {f['forward']['activation']:,})",
        f"backward FLOPs/sample {f['backward']['total']:,} (matmul {f['backward']['matmul']:,}, "
        f"bias {f['backward']['bias']:,}, activation {f['backward']['activation']:,})",
        "",
        f"memory ({summary['dtype']}, batch {summary['batch']}, "
        f"L-BFGS history {summary['lbfgs_history']}); "
        f"RAM {format_bytes(summary['ram_bytes'])}"
        + (f", GPU {format_bytes(summary['gpu_memory_bytes'])}"
           if summary["gpu_memory_bytes"] else ", no GPU"),
    ]
    for name, item in summary["memory"].items():
        fits = "fits RAM" if item["fits_ram"] else "EXCEEDS RAM"
        if item["fits_gpu"] is not None:
            fits += ", fits GPU" if item["fits_gpu"] else ", EXCEEDS GPU"
        lines.append(f"  {name:<30} {format_bytes(item['bytes']):>12}  {fits}")
    return "\n".join(lines)
