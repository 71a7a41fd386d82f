"""Optimizer state as a closed form of the network's layer shapes and the hyperparameters.

Each function returns the number of state *elements* (multiply by the element size for
bytes) an optimizer keeps for ``spec``, counted layer by layer as its library lays the state
out (see :mod:`mlpbench.optimizers.curvature` for the sources). P-proportional optimizers
(momentum P, Adam 2·P, L-BFGS (2h+2)·P) are the simple case, :func:`per_param`.
``tests/test_curvature_memory.py`` checks every form against a hand count for two specs
and against the tensors the libraries actually allocate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mlpbench.spec import MLPSpec

#: a state closed form: (spec, full hyperparameters) -> elements
StateForm = Callable[[MLPSpec, dict], int]


def tensor_shapes(spec: MLPSpec) -> Iterator[tuple[int, ...]]:
    """Shapes of the parameter tensors, in ``model.parameters()`` order: each layer's
    weight (n_out, n_in), then its bias (n_out,) when the spec has biases."""
    for fan_in, fan_out in spec.layer_shapes:
        yield (fan_out, fan_in)
        if spec.bias:
            yield (fan_out,)


def layer_counts(spec: MLPSpec) -> list[tuple[tuple[int, int], int]]:
    """``((fan_in, fan_out), count)`` of the network's distinct Linear layers: input, the
    ``depth - 1`` hidden ones, output — O(1) at any depth (``-L 100000000`` answers at once)."""
    d, w, o, depth = spec.input_dim, spec.width, spec.output_dim, spec.depth
    counts: dict[tuple[int, int], int] = {}
    for shape, n in (((d, w), 1), ((w, w), depth - 1), ((w, o), 1)):
        if n:
            counts[shape] = counts.get(shape, 0) + n
    return list(counts.items())


def tensor_counts(spec: MLPSpec) -> list[tuple[tuple[int, ...], int]]:
    """``(shape, count)`` of the distinct parameter tensors (weights (n_out, n_in), biases
    (n_out,)): :func:`tensor_shapes` grouped, in closed form."""
    out: dict[tuple[int, ...], int] = {}
    for (fan_in, fan_out), n in layer_counts(spec):
        out[(fan_out, fan_in)] = out.get((fan_out, fan_in), 0) + n
        if spec.bias:
            out[(fan_out,)] = out.get((fan_out,), 0) + n
    return list(out.items())


def per_param(units: float) -> StateForm:
    """State of ``units`` P-sized buffers (momentum 1, Adam 2)."""
    return lambda spec, hp: int(units * spec.num_params)


def _eigen_factors(shape: tuple[int, ...], max_dim: int, precondition_1d: bool) -> int:
    """Elements of one SOAP/Shampoo factor pair (statistics GG and eigenbasis Q) per
    preconditioned dimension: 2·n² for each dimension 1 < n ≤ max_dim, of matrices only
    (vectors too with ``precondition_1d``)."""
    if len(shape) < 2 and not precondition_1d:
        return 0
    return sum(2 * n * n for n in shape if 1 < n <= max_dim)


def soap_like(moments: int) -> StateForm:
    """SOAP (``moments=2``: Adam's two moments in the eigenbasis) and KL-Shampoo
    (``moments=1``): ``moments``·P plus Σ over weight dimensions 1 < n ≤ max_precond_dim of
    2·n² (factor and eigenbasis)."""

    def form(spec: MLPSpec, hp: dict) -> int:
        max_dim, p1d = int(hp["max_precond_dim"]), bool(hp["precondition_1d"])
        factors = sum(n * _eigen_factors(s, max_dim, p1d) for s, n in tensor_counts(spec))
        return moments * spec.num_params + factors

    return form


def _psgd_factors(shape: tuple[int, ...], max_triangular: int) -> int:
    """PSGD-Kron's Q for one tensor: size-1 dimensions dropped; a matrix gets an upper
    triangle n(n+1)/2 per dimension n ≤ max_size_triangular (diagonal n above); anything
    with fewer than two remaining dimensions gets a diagonal."""
    dims = [n for n in shape if n > 1] or [1]
    if len(dims) < 2:
        return sum(dims)
    return sum(n * (n + 1) // 2 if n <= max_triangular else n for n in dims)


def psgd_kron(spec: MLPSpec, hp: dict) -> int:
    """PSGD-Kron: the momentum buffer P plus the triangular Kronecker factors."""
    max_tri = int(hp["max_size_triangular"])
    return spec.num_params + sum(n * _psgd_factors(s, max_tri) for s, n in tensor_counts(spec))


def kfac(spec: MLPSpec, hp: dict) -> int:
    """K-FAC (curvlinops, weight and bias separate): per layer the input covariance n_in²
    and the output-gradient covariance n_out², each kept with its damped inverse."""
    return sum(n * 2 * (fan_in * fan_in + fan_out * fan_out)
               for (fan_in, fan_out), n in layer_counts(spec))


def factor_cubes(spec: MLPSpec, max_dim: int) -> int:
    """Σ n³ over the Kronecker factors of the weight matrices (1 < n ≤ max_dim): the
    FLOP model's unit for eigendecompositions, roots and inverses, each O(n³) per factor."""
    return sum(c * n ** 3 for s, c in tensor_counts(spec) if len(s) == 2
               for n in s if 1 < n <= max_dim)


__all__ = ["StateForm", "factor_cubes", "kfac", "layer_counts", "per_param", "psgd_kron",
           "soap_like", "tensor_counts", "tensor_shapes"]
