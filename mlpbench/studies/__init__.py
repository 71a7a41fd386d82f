"""mlpbench.studies (see DESIGN.md)."""
