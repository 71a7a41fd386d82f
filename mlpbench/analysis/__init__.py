"""mlpbench.analysis (see DESIGN.md)."""
