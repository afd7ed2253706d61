"""``Dynamics.compile_proposal``: the whole U(1) trajectory as one graph without networks (the
layer graph otherwise), equal to eager to rounding in evaluation and training, with the eager
fallback; the network-free layer (one drift of all links) is the plain leapfrog bit for bit."""

import warnings

import pytest
import torch

from l2hmcc.runtime.pt import hmc
from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig
from l2hmcc.runtime.pt.groups import SU2, U1
from l2hmcc.runtime.pt.networks import NetworkConfig

torch.set_num_threads(1)
F64 = torch.float64


def make(grp=U1, shape=(4, 4), net=None, **cfg) -> Dynamics:
    torch.manual_seed(0)
    config = DynamicsConfig(**{"leapfrog": 2, "step_size": 0.2, **cfg})
    return Dynamics(grp, shape, config, net, dtype=F64)


def state(grp=U1, shape=(4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = grp.random(3, shape, generator=g)
    return x, grp.random_momenta(x, g)


@pytest.mark.parametrize(("grp", "shape"), [(U1, (4, 4)), (SU2, (2, 2, 2))])
def test_network_free_layers_are_the_plain_leapfrog_bit_for_bit(grp, shape) -> None:
    dyn = make(grp, shape, leapfrog=3)
    x, v = state(grp, shape)
    beta = torch.tensor(2.0, dtype=F64)
    with torch.no_grad():
        prop = dyn.propose(x, v, beta)
        fwd = dyn.transport(x, v, beta)
        x6, v6 = hmc.leapfrog(x, v, beta, dyn.step_sizes()[0], 6)
        x3, v3 = hmc.leapfrog(x, v, beta, dyn.step_sizes()[0], 3)
    assert torch.equal(prop.x, x6) and torch.equal(prop.v, -v6)
    assert torch.equal(fwd[0], x3) and torch.equal(fwd[1], v3)
    assert torch.equal(prop.logdet, torch.zeros(3, dtype=F64))


def test_what_is_compiled() -> None:
    assert make().compile_proposal(backend="eager") == "proposal"
    assert make(net=NetworkConfig(hidden=(4,))).compile_proposal(backend="eager") == "layers"
    assert make(SU2, (2, 2)).compile_proposal(backend="eager") == "layers"
    dyn = make()
    assert dyn.compile_proposal(False) == "layers" and dyn._propose_fn == dyn.trajectory
    # evaluate.compile = false after a compiled training: nothing compiled is left
    dyn.compile_proposal(backend="eager")
    dyn.compile_proposal(False)
    assert dyn._propose_fn == dyn.trajectory and dyn._layer_fn == dyn.apply_layer


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg", [{}, {"directions": "random", "x_update": "affine"}], ids=["merged", "random-affine"]
)
def test_compiled_proposal_matches_eager_in_evaluation_and_training(cfg) -> None:
    """The inductor-compiled trajectory against eager (fp64): the proposal to 1e-12 and, in
    training, the gradient of the loss with respect to the step sizes to 1e-10."""
    torch._dynamo.reset()
    eager, comp = make(**cfg), make(**cfg)
    assert comp.compile_proposal() == "proposal"
    x, v = state()
    d = torch.tensor([True, False, True])
    beta = torch.tensor(2.0, dtype=F64)
    with torch.no_grad():
        pe, pc = eager.propose(x, v, beta, d), comp.propose(x, v, beta, d)
    for a, b in zip(pe, pc, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    grads = []
    for dyn in (eager, comp):
        prop = dyn.propose(x, v, beta, d)
        loss = (prop.acceptance * (prop.x - x).square().flatten(1).sum(1)).mean()
        (g,) = torch.autograd.grad(loss, dyn.log_step_size)
        grads.append(g)
    assert grads[0].abs().max() > 1e-3  # the test bites
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-12)


def test_failing_compilation_of_the_proposal_falls_back_to_eager_with_a_warning() -> None:
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no code generation today")

    dyn = make()
    x, v = state()
    with torch.no_grad():
        eager = dyn.propose(x, v, 2.0)
    torch._dynamo.reset()
    dyn.compile_proposal(backend=broken_backend)
    with pytest.warns(RuntimeWarning, match="L2HMC proposal failed"), torch.no_grad():
        fallback = dyn.propose(x, v, 2.0)
    assert torch.equal(fallback.x, eager.x) and torch.equal(fallback.v, eager.v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls are silently eager
        dyn.propose(x, v, 2.0)
