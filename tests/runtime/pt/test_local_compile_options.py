"""Which inductor options ``Dynamics.compile_proposal`` gives the layer graph on CPU:
``LOCAL_COMPILE_OPTIONS`` for ``network local`` (``LocalNet``), ``hmc.COMPILE_OPTIONS``
for the other networks, and explicit options win over both. Nothing is compiled here: the
options are read from the call to ``compile_layers``."""

from typing import Any

import pytest
import torch

from l2hmcc.runtime.pt.dynamics import LOCAL_COMPILE_OPTIONS, Dynamics, DynamicsConfig
from l2hmcc.runtime.pt.groups import U1
from l2hmcc.runtime.pt.hmc import COMPILE_OPTIONS
from l2hmcc.runtime.pt.networks import NetworkConfig

LOCAL = NetworkConfig(kind="local", conv_filters=(4,), conv_kernels=(3,), hidden=(8,))
DENSE = NetworkConfig(hidden=(8,))


def _options(net: NetworkConfig, **kwargs: Any) -> dict[str, Any]:
    dyn = Dynamics(U1, (4, 4), DynamicsConfig(leapfrog=1), net, dtype=torch.float64)
    seen: dict[str, Any] = {}

    def record(enabled: bool = True, **compile_kwargs: Any) -> None:
        seen.update(compile_kwargs, enabled=enabled)

    dyn.compile_layers = record  # type: ignore[method-assign]
    assert dyn.compile_proposal(True, **kwargs) == "layers"
    return seen


@pytest.mark.parametrize(
    ("net", "expected"), [(LOCAL, LOCAL_COMPILE_OPTIONS), (DENSE, COMPILE_OPTIONS)]
)
def test_layer_graph_options_follow_the_network_kind(
    net: NetworkConfig, expected: dict[str, object]
) -> None:
    seen = _options(net)
    assert seen["enabled"] is True and seen["dynamic"] is False
    assert seen["options"] == dict(expected)


def test_local_options_keep_channels_first_and_default_realization() -> None:
    assert LOCAL_COMPILE_OPTIONS == {"layout_optimization": False, "cpp_wrapper": True}
    assert "realize_opcount_threshold" in COMPILE_OPTIONS


def test_explicit_options_win() -> None:
    assert _options(LOCAL, options={"max_autotune": False})["options"] == {"max_autotune": False}
