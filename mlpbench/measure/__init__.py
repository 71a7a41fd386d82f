"""How one thing is measured: timing, memory, peak, instruction counts."""
