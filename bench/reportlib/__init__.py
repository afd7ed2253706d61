"""The pieces of ``bench/report.py``: one module per report section.

* ``machine``: the machine, load, versions and the exact commands;
* ``frontend``: whole-process ``l2hmcc check``/``compile`` latency of every shipped spec;
* ``throughput``: train steps/s and trajectories/s (L2HMC and HMC), eager vs ``torch.compile``,
  fp32 vs fp64 (and bf16 networks on CUDA), measured in interleaved rounds;
* ``physics``: U(1) 16×16 L2HMC vs tuned HMC: plaquette and ⟨Q²⟩ against their exact
  finite-volume values, τ_int(Q), tunneling rate, cost per effective sample;
* ``su3``: SU(3) plaquette and acceptance against strong coupling and published values;
* ``render``: the markdown report and the PNG figures.

Every section returns plain JSON-ready data; ``render`` turns it into text and pictures.
"""
