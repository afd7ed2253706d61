"""SU(N) on planar pairs (``su_pairs``): the entry form of the drift (what compiled SU(N) layers
run without gradients) equals the stacked form and the complex group update, and the layers
pick it exactly when gradients are off."""

import pytest
import torch

from l2hmcc.runtime.pt import su_pairs
from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig
from l2hmcc.runtime.pt.groups import SU2, SU3
from l2hmcc.runtime.pt.networks import NetworkConfig

torch.set_num_threads(1)
F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("grp", [SU2, SU3], ids=["su2", "su3"])
def test_entries_round_trip_and_product_equal_the_stacked_form(grp) -> None:
    """``stack_entries(entries(a)) == a`` and ``mm_entries`` is ``mm`` bit for bit (the same
    products summed in the same order)."""
    a = su_pairs.to_pairs(grp.random(2, (2, 3, 2, 2), generator=gen(0)))
    b = su_pairs.to_pairs(grp.random(2, (2, 3, 2, 2), generator=gen(1)))
    assert torch.equal(su_pairs.stack_entries(su_pairs.entries(a)), a)
    ab = su_pairs.stack_entries(su_pairs.mm_entries(su_pairs.entries(a), su_pairs.entries(b)))
    assert torch.equal(ab, su_pairs.mm(a, b))


@pytest.mark.parametrize("grp", [SU2, SU3], ids=["su2", "su3"])
@pytest.mark.parametrize("per_chain", [False, True], ids=["eps", "eps-per-chain"])
def test_drift_moved_entries_is_the_group_update_of_the_moved_links(grp, per_chain) -> None:
    """``drift_moved_entries`` = ``drift_moved`` (to 1e-15) = ``exp(εP) U`` of the complex group
    on the links ``index`` (1e-14), the other links untouched; the results stay in SU(N)
    (``U U† = 1`` and ``det U = 1`` to 1e-13) for large ``‖εP‖`` too."""
    shape = (2, 3, 2, 2)
    links = grp.random(3, shape, generator=gen(2))
    pairs = su_pairs.to_pairs(links)
    index = torch.randperm(4 * 24, generator=gen(3))[:40].sort().values
    p = 4.0 * torch.randn(3, 40, grp.n_generators, dtype=F64, generator=gen(4))
    eps = torch.tensor([0.3, -0.7, 1.1], dtype=F64) if per_chain else torch.tensor(0.6, dtype=F64)
    new = su_pairs.drift_moved_entries(pairs, p, eps, index)
    torch.testing.assert_close(new, su_pairs.drift_moved(pairs, p, eps, index), rtol=0, atol=1e-15)
    flat_new = su_pairs.from_pairs(new).flatten(1, 5)  # [B, D·|L|, N, N]
    flat_old = links.flatten(1, 5)
    ref = grp.exp_update(flat_old[:, index], p, eps)
    torch.testing.assert_close(flat_new[:, index], ref, rtol=0, atol=1e-14)
    kept = torch.ones(flat_old.shape[1], dtype=torch.bool)
    kept[index] = False
    assert torch.equal(flat_new[:, kept], flat_old[:, kept])
    eye = torch.eye(grp.n_colors, dtype=flat_new.dtype)
    torch.testing.assert_close(flat_new @ flat_new.mH, eye.expand_as(flat_new), rtol=0, atol=1e-13)
    det = torch.linalg.det(flat_new)
    torch.testing.assert_close(det, torch.ones_like(det), rtol=0, atol=1e-13)


def test_compiled_layers_use_moved_heads_and_entries_without_gradients_only() -> None:
    """Compiled SU(3) layers (units run as traced) compute the x-networks' heads at the moved
    links and drift them on entries in a proposal without gradients (``x_drift_moved``,
    ``drift_moved_entries``) and use the stacked units with gradients (``x_drift``,
    ``drift_links``: their backward compiles and runs faster); both proposals equal eager's."""
    torch.manual_seed(0)
    cfg = DynamicsConfig(leapfrog=2, step_size=0.1)
    net = NetworkConfig(hidden=(8,), head_init=1.0)
    eager = Dynamics(SU3, (2, 2, 2, 2), cfg, net, dtype=F64)
    comp = Dynamics(SU3, (2, 2, 2, 2), cfg, net, dtype=F64)
    comp.load_state_dict(eager.state_dict())
    comp.compile_layers(backend="eager")
    calls: list[str] = []

    def counted(name, fn):
        def call(*args, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)

        return call

    comp._pair_units = {k: counted(k, f) for k, f in comp._pair_units.items()}
    x = SU3.random(2, (2, 2, 2, 2), generator=gen(5))
    v = SU3.random_momenta(x, gen(6))
    ref = eager.propose(x, v, 6.0)
    with torch.no_grad():
        out = comp.propose(x, v, 6.0)
    assert {"x_drift_moved", "drift_moved_entries"} <= set(calls)
    assert not {"x_drift", "drift_links"} & set(calls)
    for a, b in zip(ref, out, strict=True):
        torch.testing.assert_close(b, a.detach(), rtol=1e-10, atol=1e-10)
    calls.clear()
    out = comp.propose(x, v, 6.0)
    assert {"x_drift", "drift_links"} <= set(calls)
    assert not {"x_drift_moved", "drift_moved_entries"} & set(calls)
    for a, b in zip(ref, out, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
