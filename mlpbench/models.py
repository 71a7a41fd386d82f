"""Build networks from an :class:`~mlpbench.spec.MLPSpec`: PyTorch and Keras 3 (torch backend)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from mlpbench.spec import DTYPES, MLPSpec, SpecError

TORCH_DTYPES = {name: getattr(torch, attr) for name, (attr, _) in DTYPES.items()}

_TORCH_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for a dtype name such as ``fp32``."""
    try:
        return TORCH_DTYPES[name]
    except KeyError:
        raise SpecError(f"unknown dtype {name!r}; choose from {', '.join(TORCH_DTYPES)}") from None


def build_torch(spec: MLPSpec, *, seed: int = 0, dtype: str = "fp32",
                device: str | torch.device = "cpu") -> nn.Sequential:
    """A ``nn.Sequential`` of Linear/activation layers matching ``spec``.

    Weights use PyTorch's default Linear initialisation drawn from a generator seeded with
    ``seed``, so the same seed gives the same network on every run.
    """
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for k, (fan_in, fan_out) in enumerate(spec.layer_shapes):
            layers.append(nn.Linear(fan_in, fan_out, bias=spec.bias))
            if k < spec.depth:
                layers.append(_TORCH_ACTIVATIONS[spec.activation]())
    return nn.Sequential(*layers).to(device=device, dtype=torch_dtype(dtype))


def _import_keras() -> Any:
    """Import Keras 3 on its torch backend (the backend must be chosen before import)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as exc:
        raise SpecError("the keras framework needs Keras 3: pip install 'mlpbench[keras]'") from exc
    if keras.backend.backend() != "torch":
        raise SpecError(f"Keras runs on the {keras.backend.backend()!r} backend; "
                        "set KERAS_BACKEND=torch before starting")
    return keras


def build_keras(spec: MLPSpec, *, seed: int = 0, dtype: str = "fp32") -> Any:
    """A Keras 3 ``Sequential`` with the same layers as :func:`build_torch`."""
    keras = _import_keras()
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((spec.input_dim,), dtype=_keras_dtype(dtype))]
    for k, (_, fan_out) in enumerate(spec.layer_shapes):
        act = spec.activation if k < spec.depth else None
        layers.append(keras.layers.Dense(fan_out, activation=act, use_bias=spec.bias,
                                         dtype=_keras_dtype(dtype)))
    return keras.Sequential(layers)


def _keras_dtype(name: str) -> str:
    torch_dtype(name)  # validates the name
    return {"fp32": "float32", "fp64": "float64", "bf16": "bfloat16", "fp16": "float16"}[name]


def copy_torch_weights_to_keras(torch_model: nn.Sequential, keras_model: Any) -> None:
    """Load a PyTorch model's weights into the equivalent Keras model.

    Keras stores a Dense kernel as (in, out); PyTorch stores Linear weight as (out, in).
    """
    linears = [m for m in torch_model if isinstance(m, nn.Linear)]
    dense = [layer for layer in keras_model.layers if layer.weights]
    if len(linears) != len(dense):
        raise ValueError(f"{len(linears)} Linear layers but {len(dense)} Dense layers")
    for lin, layer in zip(linears, dense, strict=True):
        weights = [lin.weight.detach().cpu().T.numpy()]
        if lin.bias is not None:
            weights.append(lin.bias.detach().cpu().numpy())
        layer.set_weights(weights)
