"""mlpbench.problems (see DESIGN.md)."""
