"""l2hmcc: a compiler from `.l2h` experiment specs to runnable L2HMC lattice-gauge-theory jobs.

The package is split in two halves that never import each other:

* the compiler (``l2hmcc.source`` … ``l2hmcc.render``, ``l2hmcc.cli``), which needs only lark,
  jinja2, pydantic and rich, and never imports torch or tensorflow;
* the runtime (``l2hmcc.runtime``), the lattice physics and L2HMC sampler that generated jobs
  carry a copy of, which needs only numpy and the chosen framework.
"""

__version__ = "0.1.0"
