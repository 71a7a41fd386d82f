"""Frozen description of an MLP and the exact arithmetic derived from it.

An :class:`MLPSpec` fixes the architecture: ``depth`` hidden layers of ``width`` units on an
``input_dim``-dimensional input, followed by a linear output layer of ``output_dim`` units.
From it follow, with no model built, the parameter count, FLOPs per sample and a memory
model. Everything here is plain integer arithmetic, so it is exact at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpbench.errors import UsageError

ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid")

#: the one dtype table: mlpbench's name -> (torch attribute name, bytes per element)
DTYPES = {"fp32": ("float32", 4), "fp64": ("float64", 8), "bf16": ("bfloat16", 2),
          "fp16": ("float16", 2)}
DTYPE_BYTES = {name: size for name, (_, size) in DTYPES.items()}

#: torch tensors index with int64, so no count may pass this
MAX_COUNT = 2**63 - 1


class SpecError(UsageError):
    """An invalid specification; the message names the offending value."""


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise SpecError(f"{name} must be a positive integer, got {value}")


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a dtype name (``fp32``, ``fp64``, ``bf16``, ``fp16``)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise SpecError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}") from None


@dataclass(frozen=True)
class FlopCount:
    """Floating-point operations per sample, split by kind.

    ``matmul`` counts a multiply-add as 2 FLOPs, exactly as
    :class:`torch.utils.flop_counter.FlopCounterMode` does; ``bias`` is one add per output
    unit; ``activation`` is one operation per activated element (a convention: the real
    cost of ``tanh`` or ``gelu`` is several instructions). FlopCounterMode counts only the
    matmul term.
    """

    matmul: int
    bias: int
    activation: int

    @property
    def total(self) -> int:
        return self.matmul + self.bias + self.activation


@dataclass(frozen=True)
class MemoryModel:
    """Predicted bytes for one training configuration (see :meth:`MLPSpec.memory`)."""

    params: int
    grads: int
    activations: int
    optimizer_state: int
    hessian: int

    @property
    def training(self) -> int:
        """Parameters + gradients + saved activations + optimizer state."""
        return self.params + self.grads + self.activations + self.optimizer_state

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "grads": self.grads, "activations": self.activations,
                "optimizer_state": self.optimizer_state, "training_total": self.training,
                "hessian": self.hessian}


@dataclass(frozen=True)
class MLPSpec:
    """A fully connected network: ``depth`` hidden layers of ``width`` units.

    Parameters
    ----------
    input_dim : int
        Input dimension d.
    width : int
        Units per hidden layer n_h.
    depth : int
        Number of hidden layers L (each Linear followed by the activation).
    output_dim : int
        Units of the final Linear layer (no activation after it).
    activation : str
        One of :data:`ACTIVATIONS`.
    bias : bool
        Whether every Linear layer has a bias.
    """

    input_dim: int
    width: int
    depth: int
    output_dim: int = 1
    activation: str = "relu"
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("input_dim", "width", "depth", "output_dim"):
            _check_positive_int(name, getattr(self, name))
        if self.activation not in ACTIVATIONS:
            raise SpecError(f"unknown activation {self.activation!r}; "
                            f"choose from {', '.join(ACTIVATIONS)}")
        if not isinstance(self.bias, bool):
            raise SpecError(f"bias must be true or false, got {self.bias!r}")
        if self.num_params > MAX_COUNT:
            raise SpecError(f"network too large: {self.num_params:.3e} parameters overflow "
                            "a 64-bit count")

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """(fan_in, fan_out) of every Linear layer, input to output."""
        dims = [self.input_dim] + [self.width] * self.depth + [self.output_dim]
        return tuple(zip(dims[:-1], dims[1:], strict=True))

    @property
    def _weights(self) -> int:
        """Weight elements of all Linear layers, in closed form (O(1) at any depth)."""
        d, w, o, depth = self.input_dim, self.width, self.output_dim, self.depth
        return d * w + (depth - 1) * w * w + w * o

    @property
    def _units(self) -> int:
        """Output units of all Linear layers (the bias elements when ``bias``)."""
        return self.depth * self.width + self.output_dim

    @property
    def num_params(self) -> int:
        """Exact number of trainable parameters P (closed form, so O(1) at any depth)."""
        return self._weights + (self._units if self.bias else 0)

    @property
    def label(self) -> str:
        return f"d{self.input_dim}-w{self.width}-L{self.depth}-o{self.output_dim}-{self.activation}"

    def forward_flops(self) -> FlopCount:
        """FLOPs of one forward pass per sample."""
        bias = self._units if self.bias else 0
        return FlopCount(matmul=2 * self._weights, bias=bias,
                         activation=self.depth * self.width)

    def backward_flops(self, input_requires_grad: bool = False) -> FlopCount:
        """FLOPs of one backward pass per sample.

        Each Linear layer costs a weight-gradient matmul (2·in·out) and an input-gradient
        matmul (2·in·out); the first layer skips the latter unless ``input_requires_grad``.
        The bias gradient is a reduction over the batch (one add per output unit and
        sample); the activation derivative is one multiply per activated element.
        """
        matmul = 4 * self._weights
        if not input_requires_grad:
            matmul -= 2 * self.input_dim * self.width
        bias = self._units if self.bias else 0
        return FlopCount(matmul=matmul, bias=bias, activation=self.depth * self.width)

    def train_step_flops(self) -> int:
        """FLOPs of forward + backward per sample (optimizer update excluded: O(P) per batch)."""
        return self.forward_flops().total + self.backward_flops().total

    def activation_elements(self) -> int:
        """Elements autograd saves per sample for the backward pass.

        Every Linear saves its input. ReLU, tanh and sigmoid save their output, which is the
        next Linear's input (one tensor, shared); GELU saves its input, an extra tensor. The
        network output is kept for the loss.
        """
        per_hidden = self.width * (2 if self.activation == "gelu" else 1)
        return self.input_dim + self.depth * per_hidden + self.output_dim

    def memory(self, dtype: str = "fp32", batch: int = 1,
               state_per_param: float = 0.0) -> MemoryModel:
        """Predicted memory in bytes for training at a batch size.

        ``state_per_param`` is the optimizer's extra state in units of P elements; the
        optimizer registry knows it per optimizer (see
        :func:`mlpbench.optimizers.memory_model`). The dense Hessian is P² elements.
        """
        _check_positive_int("batch", batch)
        if not (isinstance(state_per_param, int | float) and 0 <= state_per_param < 1e6):
            raise SpecError(f"state_per_param must be a non-negative number, "
                            f"got {state_per_param!r}")
        width = dtype_bytes(dtype)
        p = self.num_params
        return MemoryModel(params=p * width, grads=p * width,
                           activations=batch * self.activation_elements() * width,
                           optimizer_state=int(state_per_param * p) * width,
                           hessian=p * p * width)


#: the 10^7-parameter network the studies extrapolate to: d=100, n_h=1000, L=10 (P = 9,111,001)
TARGET_SPEC = MLPSpec(100, 1000, 10)
