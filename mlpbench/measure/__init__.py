"""How one thing is timed or weighed, safely: timing, memory peaks, the matmul peak,
worker isolation, second-order building blocks (gradients, HVPs, Hessians)."""
