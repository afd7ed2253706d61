"""The l2hmcc runtime: what a generated job carries and runs.

Layout (see docs/contracts.md): ``common/`` is numpy only (autocorrelation, exact values,
history, plots, summaries); ``pt/`` is PyTorch (gauge groups, lattice action and force, HMC,
L2HMC dynamics, networks, loss, trainer); ``tf/`` is the TensorFlow mirror of ``pt/``.

This package never imports the compiler (lark, jinja2, pydantic) and uses relative imports
only, so a job directory can carry a copy of it as ``l2hmcc_runtime/``.  Importing this package
imports neither torch nor TensorFlow: import ``.pt`` or ``.tf`` explicitly.
"""
