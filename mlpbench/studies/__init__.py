"""Studies: run a grid, write tidy tables plus metadata, resumably. A study imports
primitives, measure, problems and optimizers; never another study, analysis or report."""
