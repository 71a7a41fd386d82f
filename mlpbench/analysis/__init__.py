"""Pure functions over stored result tables."""
