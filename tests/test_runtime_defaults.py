"""One source of defaults: the IR's.

A generated ``train.py`` passes the runtime configs (``l2hmcc_runtime.common.config``,
``common.run``) every value it needs, computed from the IR by ``targets/sampler.py``; anyone who
builds a config by hand (bench/, tests) gets the dataclasses' own defaults. Those must be the
IR's: for every keyword the compiler passes, the dataclass field has no default or the default
is what a spec that does not write the key compiles to (for a U(1) and an SU(3) spec: the
resolutions per group, such as the precision, are the runtime's ``None``/``auto`` or agree).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from l2hmcc import ir
from l2hmcc.runtime.common import config, run
from l2hmcc.targets import sampler

#: (runtime class, the sampler function that computes its keyword arguments from the IR)
TABLES = [
    (config.DynamicsConfig, sampler.dynamics_kwargs),
    (config.NetworkConfig, sampler.network_kwargs),
    (config.LossConfig, sampler.loss_kwargs),
    (config.TrainConfig, sampler.train_kwargs),
    (run.Lattice, sampler.lattice_kwargs),
    (run.Evaluate, sampler.evaluate_kwargs),
    (run.Hmc, sampler.hmc_kwargs),
    (run.Thermalize, sampler.thermalize_kwargs),
]

#: Runtime defaults that stand for a resolution the compiler makes per spec, with the reason.
RESOLVED_PER_SPEC = {
    # "auto": cos/sin of U(1) angles, real/imaginary parts of SU(N) links, what `trig` means
    ("NetworkConfig", "embedding"): "auto",
    # None: the same as `precision`, the IR's default for network_precision
    ("TrainConfig", "network_precision"): None,
    # fp32 is the U(1) default; SU(N) specs resolve fp64 and always pass it
    ("TrainConfig", "precision"): "fp32",
}


def spec(group: str) -> ir.Spec:
    shape = [4, 4] if group == "U1" else [2, 2, 2, 2]
    return ir.Spec.model_validate(
        {
            "experiment": {"name": "t"},
            "lattice": {"group": group, "shape": shape, "beta": {"kind": "constant", "value": 1}},
        }
    )


def defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@pytest.mark.parametrize("group", ["U1", "SU3"])
@pytest.mark.parametrize(("cls", "kwargs"), TABLES, ids=lambda x: getattr(x, "__name__", ""))
def test_runtime_defaults_are_the_irs(cls: type, kwargs: Any, group: str) -> None:
    s = spec(group)
    passed = kwargs(s)
    assert passed is not None
    ours = defaults(cls)
    for key, value in passed:
        if key not in ours:
            continue  # no default: every caller says it
        if (cls.__name__, key) in RESOLVED_PER_SPEC:
            assert ours[key] == RESOLVED_PER_SPEC[cls.__name__, key]
            continue
        assert ours[key] == value, f"{cls.__name__}.{key}: runtime {ours[key]!r}, IR {value!r}"


def test_fields_the_compiler_leaves_out_default_to_the_irs() -> None:
    # train_kwargs passes `steps` for one era and `lr_final_factor` only for a decaying schedule;
    # dynamics_kwargs passes `mask_seed` only for random masks (the IR resolves it to the seed)
    t = config.TrainConfig()
    assert t.total_steps == ir.Train().steps
    assert t.lr_final_factor == ir.Train().lr_final
    assert t.seed == ir.Experiment(name="t").seed
