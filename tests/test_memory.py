"""The peak-memory estimate of the front end (``l2hmcc/memory.py``) and its check (W360).

Its agreement with the dry run's measurement is tested in ``tests/runtime/pt/test_dryrun.py``;
here: the parameter count by hand, how the estimate moves with chains, precision and ZeRO, the
warning's span and help, and that the front end still imports no torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from targets_helpers import REPO, spec_ir

from l2hmcc import driver, memory

U1 = """
lattice { group = U1  shape = [4, 4]  beta = 2.0 }
dynamics { leapfrog = 2 }
network { hidden = [8, 8] }
train { chains = 4 }
"""


def test_parameters_counted_layer_by_layer() -> None:
    """U(1) 4×4 (D = 2, 32 links), hidden [8, 8], heads s, t, q, 2 layers × (v + 2 x)."""
    n_links, h = 2 * 16, 8
    embed = 2 * n_links  # cos, sin of every link
    one = (
        (embed * h + h)  # x_layer
        + (n_links * h + h)  # v_layer
        + (h * h + h)  # hidden
        + 3 * n_links * h  # heads s, t, q
        + n_links  # t bias
        + 2  # log scales of s and q
    )
    assert memory.network_parameters(spec_ir(U1)) == 2 * 3 * one + 2  # + step sizes


def test_estimate_grows_with_chains_and_precision() -> None:
    small = memory.estimate(spec_ir(U1))
    more = memory.estimate(spec_ir(U1.replace("chains = 4", "chains = 64")))
    fp64 = memory.estimate(spec_ir(U1.replace("chains = 4", "chains = 4  precision = fp64")))
    assert more.parameters == small.parameters and more.activations > 10 * small.activations
    assert fp64.parameters == 2 * small.parameters and fp64.peak > small.peak
    assert small.gradients == small.parameters and small.optimizer == 2 * small.parameters


def test_zero_partitions_optimizer_state_and_gradients() -> None:
    text = U1 + "distributed deepspeed { zero_stage = 1 }\n"
    one = memory.estimate(spec_ir(text), world_size=1)
    eight = memory.estimate(spec_ir(text), world_size=8)
    two = memory.estimate(spec_ir(text.replace("zero_stage = 1", "zero_stage = 2")), world_size=8)
    assert eight.peak < one.peak and two.peak < eight.peak
    ddp = memory.estimate(spec_ir(U1 + "distributed ddp {}\n"), world_size=8)
    assert ddp.wrapper == ddp.gradients  # the gradient buckets


POLARIS = """
lattice { group = SU3  shape = [16, 16, 16, 16]  beta = 6.0 }
network none {}
train { steps = 10  chains = CHAINS }
job polaris { account = "lqcd"  queue = debug  walltime = 1h  filesystems = [home, eagle] }
"""


def _check(text: str, tmp_path: Path) -> driver.Outcome:
    path = tmp_path / "s.l2h"
    path.write_text(text)
    return driver.check(str(path))


def test_w360_for_thousands_of_su3_chains_on_polaris(tmp_path: Path) -> None:
    outcome = _check(POLARIS.replace("CHAINS", "2048"), tmp_path)
    (d,) = [d for d in outcome.diagnostics if d.code == "W360"]
    assert "exceeds one NVIDIA A100-40GB (40.0 GiB) on Polaris" in d.message
    assert d.primary.span.line == 4 and d.primary.message == "2048 chains per rank"
    assert d.help is not None and "per rank would fit" in d.help
    fits = _check(POLARIS.replace("CHAINS", "1"), tmp_path)
    assert "W360" not in [d.code for d in fits.diagnostics]
    # the same spec run locally: no device to exceed
    local = POLARIS.replace("CHAINS", "2048").split("job polaris")[0]
    assert "W360" not in [d.code for d in _check(local, tmp_path).diagnostics]


def test_w360_points_at_the_lattice_when_the_networks_dominate(tmp_path: Path) -> None:
    text = POLARIS.replace("network none {}", "network { hidden = [512] }").replace("CHAINS", "1")
    (d,) = [d for d in _check(text, tmp_path).diagnostics if d.code == "W360"]
    assert d.primary.span.line == 2 and "lattice" in d.primary.message


@pytest.mark.parametrize("spec", ["specs/su3.l2h", "specs/aurora.l2h"])
def test_shipped_cluster_specs_fit(spec: str) -> None:
    outcome = driver.check(str(REPO / spec))
    assert "W360" not in [d.code for d in outcome.diagnostics]


def test_front_end_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from l2hmcc import driver, memory\n"
        f"s = driver.load({str(REPO / 'specs/su3.l2h')!r}).spec\n"
        "memory.estimate(s, world_size=8)\n"
        "print(sorted({'torch', 'tensorflow'} & set(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.splitlines()[-1] == "[]"


def test_local_network_parameters_counted_layer_by_layer() -> None:
    """`network local` (the U(1) default): v-networks only, shared by every link.

    16×16 (D = 2, P = 1 plane): conv 2 → 8 (kernel 3²), link features 2 (D − 1) · 8 = 16,
    dense 16 → 8, heads s, t, q, log scales; 8 separate layers + 8 step sizes + the Fourier
    filter's 8 log mass² (the default's `dynamics.fourier`)."""
    one = (8 * 2 * 9 + 8) + (16 * 8 + 8) + (3 * 8 + 3) + 2
    assert one == 317
    text = "lattice { group = U1  shape = [16, 16]  beta = 4.0 }\n"
    assert memory.network_parameters(spec_ir(text)) == 8 * one + 8 + 8
    plain = text + "dynamics { fourier = 0 }\n"
    assert memory.network_parameters(spec_ir(plain)) == 8 * one + 8
    written = text + "network local { conv { filters = [8] }  hidden = [8] }\n"
    assert memory.network_parameters(spec_ir(written)) == 8 * one + 8  # no default filter
    # 3D (P = 3 planes, 6 channels), two conv layers, one network shared by the layers
    text3 = (
        "lattice { group = U1  shape = [4, 4, 6]  beta = 4.0 }\n"
        "dynamics { leapfrog = 3  networks = shared }\n"
        "network local { conv { filters = [4, 6]  kernel = [3, 2] }  hidden = [8, 5] }\n"
    )
    convs = (4 * 6 * 27 + 4) + (6 * 4 * 8 + 6)
    dense = (2 * 2 * 6 * 8 + 8) + (8 * 5 + 5)
    assert memory.network_parameters(spec_ir(text3)) == convs + dense + (3 * 5 + 3) + 2 + 3
    # no x-networks: split_x changes nothing
    unsplit = text3.replace("shared }", "shared  split_x = false }")
    split = memory.network_parameters(spec_ir(unsplit))
    assert split == memory.network_parameters(spec_ir(text3))
