"""What is timed: the phases of running and training an MLP, and seeded optimization
workloads (data, model factory, loss, target)."""
