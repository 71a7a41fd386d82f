"""mlpbench: what it costs to run and to train fully connected networks, measured."""

from mlpbench.errors import UsageError
from mlpbench.spec import ACTIVATIONS, DTYPE_BYTES, FlopCount, MemoryModel, MLPSpec, SpecError

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "DTYPE_BYTES", "FlopCount", "MLPSpec", "MemoryModel", "SpecError",
           "UsageError", "__version__"]
