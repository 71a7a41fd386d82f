"""Studies: run a grid of measurements and store tidy tables with their metadata."""
