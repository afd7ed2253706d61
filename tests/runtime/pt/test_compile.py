"""torch.compile: no graph breaks in the layer, the proposal and the train step; the compiled
path matches eager to rounding; a failing compilation falls back to eager with a warning."""

import warnings

import pytest
import torch
import torch._functorch.config

from l2hmcc.runtime.pt.compile import graph_breaks, maybe_compile
from l2hmcc.runtime.pt.dynamics import Dynamics, DynamicsConfig
from l2hmcc.runtime.pt.groups import SU2, SU3, U1
from l2hmcc.runtime.pt.lattice import action_and_force
from l2hmcc.runtime.pt.loss import LossConfig, plaquette_distance
from l2hmcc.runtime.pt.networks import NetworkConfig
from l2hmcc.runtime.pt.trainer import TrainConfig, Trainer

torch.set_num_threads(1)
F64 = torch.float64
NET = NetworkConfig(conv_filters=(2,), conv_kernels=(3,), hidden=(8,), head_init=1.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make(grp, shape, net=NET, **cfg) -> Dynamics:
    torch.manual_seed(0)
    return Dynamics(grp, shape, DynamicsConfig(leapfrog=2, step_size=0.2, **cfg), net, dtype=F64)


CASES = [
    pytest.param(U1, (4, 4), {}, NET, id="u1-merged-conv"),
    pytest.param(
        U1, (4, 4), {"directions": "random", "x_update": "affine"}, NET, id="u1-random-affine"
    ),
    pytest.param(SU2, (2, 2, 2, 2), {}, NetworkConfig(hidden=(8,)), id="su2"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("grp", "shape", "cfg", "net"), CASES)
def test_no_graph_breaks_in_layer_proposal_and_train_step(grp, shape, cfg, net) -> None:
    dyn = make(grp, shape, net, **cfg)
    x = grp.random(2, shape, generator=gen())
    v, d, _ = dyn.draw(x, gen(1))
    beta = torch.tensor(2.0, dtype=F64)
    f = action_and_force(x, beta)[1]
    nets = (dyn._vnet(0), dyn._xnet(0, 0), dyn._xnet(0, 1))
    zero = torch.zeros(2, dtype=F64)
    eps = dyn.step_sizes()[0]
    for inverse in (False, True):
        layer = graph_breaks(
            dyn.apply_layer, *nets, dyn.masks[0], eps, x, v, f, zero, beta, inverse
        )
        assert layer["graph_breaks"] == 0 and layer["graphs"] == 1, layer["reasons"]
    prop = graph_breaks(dyn.propose, x, v, beta, d)
    assert prop["graph_breaks"] == 0 and prop["graphs"] == 1, prop["reasons"]
    torch.manual_seed(0)
    tr = Trainer(
        grp,
        shape,
        2.0,
        DynamicsConfig(leapfrog=2, step_size=0.2, **cfg),
        net,
        LossConfig(plaquette=1.0, charge=0.5 if grp is U1 else 0.0, aux_weight=0.3),
        TrainConfig(steps=1, chains=2, precision="fp64", compile=False),
        log=None,
    )
    step = graph_breaks(tr._loss_and_proposal, x, v, beta, d, x.clone(), v.clone(), d)
    assert step["graph_breaks"] == 0 and step["graphs"] == 1, step["reasons"]


def test_failing_compilation_falls_back_to_eager_with_a_warning() -> None:
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no code generation today")

    dyn = make(U1, (4, 4))
    x = U1.random(2, (4, 4), generator=gen())
    v = U1.random_momenta(x, gen(1))
    with torch.no_grad():
        eager = dyn.propose(x, v, 2.0)
    torch._dynamo.reset()
    dyn.compile_layers(backend=broken_backend)
    with pytest.warns(RuntimeWarning, match="leapfrog layer failed"), torch.no_grad():
        fallback = dyn.propose(x, v, 2.0)
    assert torch.equal(fallback.x, eager.x) and torch.equal(fallback.logdet, eager.logdet)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls are silently eager
        dyn.propose(x, v, 2.0)
    assert maybe_compile(abs, False) is abs


def test_u1_layer_directions_compile_apart() -> None:
    """Compiled U1 layers: forward and inverse layers are two compiled functions, each with one
    cache entry after repeated proposals (one function with an ``inverse`` argument held both
    graphs, and every inverse call first failed the forward entry's guards); the proposal is
    eager's (dynamo's eager backend: the same operations)."""
    from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list

    torch._dynamo.reset()
    net = NetworkConfig(hidden=(8,), head_init=1.0)
    dyn, ref = make(U1, (4, 4), net), make(U1, (4, 4), net)
    dyn.compile_layers(backend="eager")
    x = U1.random(2, (4, 4), generator=gen())
    v = U1.random_momenta(x, gen(1))
    with torch.no_grad():
        for _ in range(2):
            comp = dyn.propose(x, v, 2.0)
        eager = ref.propose(x, v, 2.0)
    for fn in (Dynamics._layer_forward, Dynamics._layer_inverse):
        assert len(_debug_get_cache_entry_list(fn.__code__)) == 1, fn.__name__
    for a, b in zip(comp, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_compiled_layers_match_eager_in_proposal_and_training() -> None:
    """Inductor-compiled layers (forward, inverse, and their backward) agree with eager to
    rounding on a tiny U(1) case (fp64). One layer and a dense network keep the compile short
    (4 graphs: no-grad forward/inverse, training forward/inverse with their backward)."""
    torch._dynamo.reset()

    def trainer(compiled: bool) -> Trainer:
        torch.manual_seed(0)
        return Trainer(
            "U1",
            (4, 4),
            2.0,
            DynamicsConfig(leapfrog=1, step_size=0.2),
            NetworkConfig(hidden=(8,), head_init=1.0),
            LossConfig(plaquette=1.0, charge=0.5),
            TrainConfig(steps=2, chains=4, precision="fp64", compile=compiled, lr=0.01),
            log=None,
        )

    eager, comp = trainer(False), trainer(True)
    x = eager.x
    v, _, _ = eager.model.draw(x, gen(3))
    with torch.no_grad():
        pe, pc = eager.model.propose(x, v, 2.0), comp.model.propose(x, v, 2.0)
    for a, b in zip(pe, pc, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    he, hc = eager.train(), comp.train()
    for key in ("loss", "accept_prob", "sumlogdet"):
        torch.testing.assert_close(
            torch.as_tensor(hc[key]), torch.as_tensor(he[key]), rtol=1e-5, atol=1e-6
        )
    for (name, a), (_, b) in zip(
        eager.model.named_parameters(), comp.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12, msg=name)


def _sun_pair(grp, backend=None) -> tuple[Dynamics, Dynamics]:
    net = NetworkConfig(hidden=(8,), head_init=1.0)
    eager, comp = make(grp, (2, 2, 2, 2), net), make(grp, (2, 2, 2, 2), net)
    comp.compile_layers(**({} if backend is None else {"backend": backend}))
    return eager, comp


def _proposal_and_gradients(dyn: Dynamics, x, v) -> list[torch.Tensor]:
    prop = dyn.propose(x, v, 2.0)
    loss = (prop.acceptance * plaquette_distance(x, prop.x)).sum() + prop.v.square().sum()
    grads = torch.autograd.grad(loss, list(dyn.parameters()))
    return [t.detach() for t in prop] + list(grads)


@pytest.mark.parametrize("grp", [SU2, SU3], ids=["su2", "su3"])
def test_sun_layers_compile_to_graphs_without_complex_tensors(grp) -> None:
    """SU(N) layers are compiled on planar real pairs: every graph dynamo hands to the backend
    (recorded here, then run as traced) holds real tensors only, and the proposal and the
    gradients of a loss through it equal eager's."""
    graphs: list[torch.fx.GraphModule] = []

    def record(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    eager, comp = _sun_pair(grp, record)
    x = grp.random(2, (2, 2, 2, 2), generator=gen())
    v = grp.random_momenta(x, gen(1))
    for a, b in zip(
        _proposal_and_gradients(eager, x, v), _proposal_and_gradients(comp, x, v), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)  # pairs: other rounding
    assert comp._planar and len(graphs) >= 3  # plane, force, drift
    values = [n.meta.get("example_value") for gm in graphs for n in gm.graph.nodes]
    tensors = [t for t in values if isinstance(t, torch.Tensor)]
    assert tensors and not any(t.is_complex() for t in tensors)


@pytest.mark.slow
def test_inductor_compiled_sun_layers_match_eager() -> None:
    """The inductor-compiled SU(2) units (forward, and their backward in a gradient) agree with
    eager to rounding (fp64)."""
    torch._dynamo.reset()
    eager, comp = _sun_pair(SU2)
    x = SU2.random(2, (2, 2, 2, 2), generator=gen())
    v = SU2.random_momenta(x, gen(1))
    for a, b in zip(
        _proposal_and_gradients(eager, x, v), _proposal_and_gradients(comp, x, v), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_sun_units_compile_their_backward_under_the_unit_autograd_config() -> None:
    """``su_pairs.compile_units``: a unit first called with gradients is traced (and its
    backward partitioned by AOT autograd) with ``UNIT_AUTOGRAD_CONFIG`` in force; without
    gradients under the defaults; the setting does not leak out of the call."""
    from l2hmcc.runtime.pt import su_pairs

    default = torch._functorch.config.max_dist_from_bw
    assert su_pairs.UNIT_AUTOGRAD_CONFIG == {"max_dist_from_bw": 0} != {"max_dist_from_bw": default}
    seen: list[int] = []

    def record(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        seen.append(torch._functorch.config.max_dist_from_bw)
        return gm.forward

    torch._dynamo.reset()
    drift = su_pairs.compile_units({"drift": su_pairs.drift}, backend=record)["drift"]
    links = su_pairs.to_pairs(SU3.random(2, (2, 2), generator=gen()))
    p = torch.randn(2, 2, 2, 2, 8, dtype=F64, generator=gen(1))
    eps = torch.tensor(0.1, dtype=F64)
    with torch.no_grad():
        drift(links, p, eps)
    drift(links, p.requires_grad_(True), eps).sum().backward()
    assert seen == [default, 0]
    assert torch._functorch.config.max_dist_from_bw == default
    torch._dynamo.reset()


def _recording_trainer(graphs: list, directions: str = "merged") -> Trainer:
    def record(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    tr = Trainer(
        SU3,
        (2, 2, 2, 2),
        6.0,
        DynamicsConfig(leapfrog=2, step_size=0.05, directions=directions),
        NetworkConfig(hidden=(8,), head_init=1.0),
        LossConfig(plaquette=0.1),
        TrainConfig(steps=1, chains=4, precision="fp64", compile=False),
        log=None,
    )
    tr.model.compile_layers(backend=record)
    return tr


def test_sun_train_step_compiles_one_graph_per_unit() -> None:
    """Compiled SU(N) training traces each unit once (v step, x drift, drift, plane, force):
    the first layer's inputs, the force at the start and the log-det before the first ``s``
    do not add graphs for their requires_grad (each graph costs seconds of inductor time)."""
    graphs: list[torch.fx.GraphModule] = []
    tr = _recording_trainer(graphs)
    tr.train_step(6.0)
    assert len(graphs) == 5, [gm.code.count("\n") for gm in graphs]
    tr.train_step(6.0)
    assert len(graphs) == 5


def test_planar_sun_proposal_is_an_involution_and_matches_eager_in_both_directions() -> None:
    """The planar SU(3) layers (units traced, run as traced): ``M(M(ξ)) = ξ`` to 1e-12, and the
    random-direction proposal (forward and backward chains in one batch) equals eager's."""
    graphs: list[torch.fx.GraphModule] = []
    comp = _recording_trainer(graphs, "random").model
    torch.manual_seed(0)
    eager = Dynamics(
        SU3,
        (2, 2, 2, 2),
        DynamicsConfig(leapfrog=2, step_size=0.05, directions="random"),
        NetworkConfig(hidden=(8,), head_init=1.0),
        dtype=F64,
    )
    eager.load_state_dict(comp.state_dict())
    x = SU3.random(4, (2, 2, 2, 2), generator=gen())
    v, d, _ = comp.draw(x, gen(1))
    d = torch.tensor([True, False, True, False])
    with torch.no_grad():
        for a, b in zip(eager.propose(x, v, 6.0, d), comp.propose(x, v, 6.0, d), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
        x1, v1, ld, _, _ = comp.involution(x, v, 6.0)
        x2, v2, ld2, _, _ = comp.involution(x1, v1, 6.0)
    assert comp._planar and graphs
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(v2, v, rtol=0, atol=1e-12)
    torch.testing.assert_close(ld + ld2, torch.zeros_like(ld), rtol=0, atol=1e-12)
