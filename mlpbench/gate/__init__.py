"""The CI regression gate (``mlpbench regress``): :mod:`~mlpbench.gate.core` runs it,
:mod:`~mlpbench.gate.config` says what it measures, :mod:`~mlpbench.gate.select` derives the
default benchmark sets, :mod:`~mlpbench.gate.tiers` and :mod:`~mlpbench.gate.side` drive the
workers (:mod:`~mlpbench.gate.worker`), :mod:`~mlpbench.gate.stats` decides, and
:mod:`~mlpbench.gate.git` exports the commits.

Kept free of imports: the worker (``python -m mlpbench.gate.worker``) loads this package
before it imports the tree under test.
"""
