"""Pure functions over stored tables: crossover, fits, the Newton wall, summaries.
Analysis imports no study, no measurement and no report code."""
