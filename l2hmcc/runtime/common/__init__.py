"""Framework-neutral numerics (numpy only; matplotlib imported lazily by ``plots``).

* ``autocorr``: integrated autocorrelation time with automatic windowing, effective sample
  size, binned and jackknife errors.
* ``exact``: exact reference values (2D U(1) plaquette and topological susceptibility in finite
  and infinite volume, SU(3) strong-coupling plaquette), modified Bessel functions.
* ``history``: compact per-step metric history saved atomically as ``.npz``.
* ``plots``: PNG figures of a history (Agg backend).
* ``summary``: the summary figures of a run computed from its history.
"""
