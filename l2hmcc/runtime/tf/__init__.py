"""TensorFlow runtime: the mirror of ``pt/`` (see docs/contracts.md).

Modules: ``groups`` (U1, SU2, SU3 behind ``GaugeGroup``), ``lattice`` (plaquettes, staples,
Wilson action, force, charges, smoothing), ``hmc`` (leapfrog, HMC step, step-size tuning),
``dynamics``/``networks``/``loss``/``trainer`` (L2HMC), ``checkpoint``, ``compile`` (XLA with a
fallback), ``distributed`` (single process, Horovod).  Same names, formulas and parameter
layout as ``pt/``; relative imports only, so that a job can carry this package under another
name together with ``common/``.
"""

from .groups import SU2, SU3, U1, GaugeGroup, group_by_name, group_of

__all__ = ["SU2", "SU3", "U1", "GaugeGroup", "group_by_name", "group_of"]
