"""The TensorFlow and PyTorch runtimes compute the same numbers.

For the same fp64 inputs (links, momenta, uniforms drawn with numpy; network weights created by
the PyTorch runtime and copied into the TensorFlow one through the shared ``state_dict`` layout)
both frameworks agree on the action, force, plaquettes, staples, charges, one HMC trajectory
with its Metropolis decision, the networks' outputs, one L2HMC proposal (log-det included), the
loss, its gradients and an optimizer step, to ≤ 1e-10 — for U(1) and SU(3), with TensorFlow
eager and under ``tf.function(jit_compile=True)``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from l2hmcc.runtime.common.config import DynamicsConfig, LossConfig, NetworkConfig  # noqa: E402
from l2hmcc.runtime.pt import dynamics as pdyn  # noqa: E402
from l2hmcc.runtime.pt import groups as pgroups  # noqa: E402
from l2hmcc.runtime.pt import hmc as phmc  # noqa: E402
from l2hmcc.runtime.pt import lattice as plat  # noqa: E402
from l2hmcc.runtime.pt import loss as ploss  # noqa: E402
from l2hmcc.runtime.pt import networks as pnet  # noqa: E402
from l2hmcc.runtime.tf import dynamics as tdyn  # noqa: E402
from l2hmcc.runtime.tf import groups as tgroups  # noqa: E402
from l2hmcc.runtime.tf import hmc as thmc  # noqa: E402
from l2hmcc.runtime.tf import lattice as tlat  # noqa: E402
from l2hmcc.runtime.tf import loss as tloss  # noqa: E402
from l2hmcc.runtime.tf import networks as tnet  # noqa: E402
from l2hmcc.runtime.tf.compile import compile_function  # noqa: E402
from l2hmcc.runtime.tf.optim import Optimizer, clip_by_global_norm  # noqa: E402

pytestmark = pytest.mark.tf
torch.set_num_threads(1)

TOL = 1e-10
MODES = ["eager", "xla"]
SHAPES = {"U1": (6, 6), "SU3": (2, 2, 2, 4)}


def close(name: str, a: Any, b: Any, tol: float = TOL, angles: bool = False) -> None:
    """``|a − b| ≤ tol · max(1, |b|)`` elementwise (angles compared modulo 2π)."""
    a = a.numpy() if hasattr(a, "numpy") and not isinstance(a, torch.Tensor) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    d = a - b
    if angles:
        d = d - 2 * math.pi * np.round(d / (2 * math.pi))
    scale = np.maximum(1.0, np.abs(b))
    worst = float(np.max(np.abs(d) / scale)) if d.size else 0.0
    assert worst <= tol, f"{name}: max scaled difference {worst:.3g} > {tol}"


def inputs(
    name: str, batch: int = 3, seed: int = 0, shape: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Links (Haar), momenta and uniforms from numpy, identical for both frameworks."""
    rng = np.random.default_rng(seed)
    shape = shape or SHAPES[name]
    d = len(shape)
    if name == "U1":
        links = rng.uniform(-math.pi, math.pi, (batch, d, *shape))
        p = rng.standard_normal(links.shape)
    else:
        z = (
            rng.standard_normal((batch, d, *shape, 3, 3))
            + 1j * rng.standard_normal((batch, d, *shape, 3, 3))
        ) / math.sqrt(2)
        q, r = np.linalg.qr(z)
        ph = np.diagonal(r, axis1=-2, axis2=-1)
        q = q * (ph / np.abs(ph))[..., None, :]
        links = q * np.exp(-1j * np.angle(np.linalg.det(q)) / 3)[..., None, None]
        p = rng.standard_normal((batch, d, *shape, 8))
    return {
        "links": links,
        "p": p,
        "u": rng.uniform(size=batch),
        "d": rng.uniform(size=batch) < 0.5,
    }


def run_tf(fn: Any, mode: str, *args: Any) -> Any:
    return compile_function(fn, mode, name=getattr(fn, "__name__", "fn"))(*args)


# -- lattice -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("U1", "eager"),
        ("U1", "xla"),
        ("SU3", "eager"),
        pytest.param("SU3", "xla", marks=pytest.mark.slow),
    ],
)
def test_action_force_plaquettes_staples_charges(name, mode) -> None:
    x = inputs(name)["links"]
    xp, xt = torch.from_numpy(x), tf.constant(x)
    beta = 2.3
    extras = mode == "eager"  # smoothing and loops: eager only (XLA compile time)

    def measures(lat: Any, links: Any) -> dict[str, Any]:
        s, f = lat.action_and_force(links, beta)
        out = {
            "action": s,
            "force": f,
            "wilson_action": lat.wilson_action(links, beta),
            "plaquettes": lat.plaquettes(links),
            "mean_plaquette": lat.mean_plaquette(links),
            "staples": lat.staples(links),
            "charge": lat.topological_charge(links),
        }
        if name == "U1":
            out["sin_charge"] = lat.sin_charge(links)
        if extras:
            out["wilson_loop_2x1"] = lat.wilson_loops(links, 2, 1)
            out["stout_plaquette"] = lat.mean_plaquette(lat.stout(links, 0.1, 2))
            out["smeared_charge"] = lat.topological_charge(lat.smear(links, 0.1, 1))
        return out

    ref = measures(plat, xp)
    got = run_tf(lambda links: measures(tlat, links), mode, xt)
    assert set(got) == set(ref)
    for key in ref:
        close(key, got[key], ref[key])


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("U1", "eager"),
        ("U1", "xla"),
        ("SU3", "eager"),
        pytest.param("SU3", "xla", marks=pytest.mark.slow),
    ],
)
def test_one_hmc_trajectory_and_metropolis_decision(name, mode) -> None:
    data = inputs(name, batch=4)
    beta, eps, n = 1.9, 0.05 if name == "SU3" else 0.1, 6
    xp, pp = torch.from_numpy(data["links"]), torch.from_numpy(data["p"])
    ref = phmc._leapfrog(xp, pp, beta, eps, n)
    integrate = thmc.compile_leapfrog(mode)
    got = integrate(tf.constant(data["links"]), tf.constant(data["p"]), beta, eps, n)
    for key, a, b in zip(("links", "p", "S_end", "S_start"), got, ref, strict=True):
        close(key, a, b, angles=key == "links" and name == "U1")
    grp_p = pgroups.group_by_name(name)
    grp_t = tgroups.group_by_name(name)
    h0 = beta * ref[3] + grp_p.kinetic_energy(pp)
    dh_ref = (beta * ref[2] + grp_p.kinetic_energy(ref[1]) - h0).numpy()
    dh = (
        beta * got[2]
        + grp_t.kinetic_energy(got[1])
        - beta * got[3]
        - grp_t.kinetic_energy(tf.constant(data["p"]))
    ).numpy()
    close("dH", dh, dh_ref)
    assert np.array_equal(data["u"] < np.exp(-dh), data["u"] < np.exp(-dh_ref))
    close(
        "hamiltonian",
        thmc.hamiltonian(got[0], got[1], beta),
        phmc.hamiltonian(ref[0], ref[1], beta),
    )


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_one_fourier_accelerated_hmc_trajectory(mode) -> None:
    """``hmc { fourier = m² }``: kicks ``K F``, drifts ``ε K p`` (``fourier_leapfrog``)."""
    data = inputs("U1", batch=4)
    shape = data["links"].shape[2:]
    beta, eps, n, m2 = 1.9, 0.1, 6, 0.6
    xp, pp = torch.from_numpy(data["links"]), torch.from_numpy(data["p"])
    ref = phmc.fourier_leapfrog(m2, shape, dtype=torch.float64, compiled=False)(
        xp, pp, beta, eps, n
    )
    integrate = thmc.fourier_leapfrog(m2, shape, mode=mode)
    got = integrate(tf.constant(data["links"]), tf.constant(data["p"]), beta, eps, n)
    for key, a, b in zip(("links", "p", "S_end", "S_start"), got, ref, strict=True):
        close(key, a, b, angles=key == "links")
    plain = phmc._leapfrog(xp, pp, beta, eps, n)
    assert float((plain[1] - ref[1]).abs().max()) > 1e-3  # the filter moved the momenta


# -- networks ------------------------------------------------------------------------------------
NET_CASES = [
    pytest.param(
        "U1",
        (6, 6),
        NetworkConfig(
            conv_filters=(3, 4), conv_kernels=(3,), conv_pool=(1, 2), hidden=(8, 8), head_init=0.5
        ),
        id="u1-2d-conv",
    ),
    pytest.param(
        "U1",
        (4, 4, 4),
        NetworkConfig(
            conv_filters=(2,),
            conv_kernels=(2,),
            hidden=(8,),
            activation="swish",
            head_init=0.5,
            conv_padding="full",
        ),
        id="u1-3d-conv-full",
    ),
    pytest.param(
        "U1",
        (6, 6),
        NetworkConfig(
            embedding="raw", hidden=(8,), batch_norm=True, activation="gelu", head_init=0.5
        ),
        id="u1-raw-bn",
    ),
    pytest.param(
        "SU3",
        (2, 2, 2, 4),
        NetworkConfig(hidden=(8, 8), activation="elu", head_init=0.5),
        id="su3-4d-dense",
    ),
    pytest.param(
        "SU3",
        (4, 4),
        NetworkConfig(
            conv_filters=(4,), hidden=(8,), head_init=0.5, scale_s=0.0, activation="leaky_relu"
        ),
        id="su3-2d-conv",
    ),
]


def copy_state(src: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in src.state_dict().items()}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("name", "shape", "config"), NET_CASES)
def test_network_outputs_with_copied_weights(name, shape, config, training) -> None:
    torch.manual_seed(1)
    grp_p, grp_t = pgroups.group_by_name(name), tgroups.group_by_name(name)
    for kind in ("XNet", "VNet"):
        net_p = getattr(pnet, kind)(grp_p, shape, config, dtype=torch.float64)
        net_t = getattr(tnet, kind)(grp_t, shape, config)
        state = copy_state(net_p)
        assert set(state) == set(net_t.state_dict())
        for key, value in net_t.state_dict().items():
            assert value.shape == state[key].shape, key
        net_t.load_state_dict(state)
        net_p.train(training)
        rng = np.random.default_rng(2)
        links = grp_p.random(4, shape, generator=torch.Generator().manual_seed(4)).numpy()
        other = rng.standard_normal(tuple(grp_p.momentum_shape(torch.from_numpy(links))))
        mask = (rng.uniform(size=(len(shape), *shape)) < 0.5).astype(np.float64)
        m = mask if kind == "XNet" else None
        with torch.no_grad():
            ref = net_p(
                torch.from_numpy(links),
                torch.from_numpy(other),
                None if m is None else torch.from_numpy(m),
            )
        got = net_t(
            tf.constant(links),
            tf.constant(other),
            None if m is None else tf.constant(m),
            training=training,
        )
        for head, a, b in zip("stq", got, ref, strict=True):
            assert (a is None) == (b is None), head
            if a is not None:
                close(f"{kind}.{head}", a, b)
        after = net_t.state_dict()  # batch-norm running statistics moved the same way
        for key, value in copy_state(net_p).items():
            close(key, after[key], value)


LOCAL_CASES = [
    pytest.param(
        (16, 16),
        NetworkConfig(
            kind="local", conv_filters=(4, 8), conv_kernels=(3, 5), hidden=(8, 6), head_init=0.5
        ),
        "eager",
        id="u1-16x16-conv-eager",
    ),
    pytest.param(
        (4, 4, 6),
        NetworkConfig(
            kind="local",
            conv_filters=(3,),
            conv_kernels=(2,),
            hidden=(5,),
            activation="swish",
            scale_s=0.0,
            head_init=0.5,
        ),
        "xla",
        id="u1-3d-even-kernel-no-s-xla",
    ),
    pytest.param(
        (4, 6),
        NetworkConfig(kind="local", hidden=(4, 4), activation="gelu", head_init=0.5),
        "eager",
        id="u1-dense-only-eager",
    ),
]


@pytest.mark.parametrize(("shape", "config", "mode"), LOCAL_CASES)
def test_local_network_outputs_with_copied_weights(shape, config, mode) -> None:
    """`network local`: same parameter names and layouts, same (s, t, q) per link."""
    torch.manual_seed(3)
    net_p = pnet.LocalNet(pgroups.U1, shape, config, dtype=torch.float64)
    net_t = tnet.LocalNet(tgroups.U1, shape, config)
    state = copy_state(net_p)
    assert set(state) == set(net_t.state_dict())
    for key, value in net_t.state_dict().items():
        assert value.shape == state[key].shape, key
    net_t.load_state_dict(state)
    links = np.random.default_rng(4).uniform(-math.pi, math.pi, (3, len(shape), *shape))
    with torch.no_grad():
        ref = net_p(torch.from_numpy(links))
    got = run_tf(lambda x: net_t(x), mode, tf.constant(links))
    for head, a, b in zip("stq", got, ref, strict=True):
        assert (a is None) == (b is None), head
        if a is not None:
            assert tuple(a.shape) == (3, len(shape), *shape)
            close(f"local.{head}", a, b)


# -- the L2HMC proposal --------------------------------------------------------------------------
CASES = {
    "u1-compact-merged-conv-bn": (
        "U1",
        {"leapfrog": 2},
        NetworkConfig(
            conv_filters=(2, 4), conv_pool=(1, 2), hidden=(8,), head_init=0.5, batch_norm=True
        ),
    ),
    "u1-affine-random": (
        "U1",
        {"leapfrog": 2, "directions": "random", "x_update": "affine", "mask": "random"},
        NetworkConfig(hidden=(8,), head_init=0.5, activation="tanh"),
    ),
    "su3-merged": ("SU3", {"leapfrog": 2}, NetworkConfig(hidden=(8,), head_init=0.5)),
    "su3-random-shared": (
        "SU3",
        {"leapfrog": 1, "directions": "random", "networks": "shared", "split_x": False},
        NetworkConfig(hidden=(6,), head_init=0.5),
    ),
    # network local: v-networks on the plaquettes around each link, no x-networks
    "u1-local-16x16-merged": (
        "U1",
        {"leapfrog": 3},
        NetworkConfig(
            kind="local",
            conv_filters=(4, 3),
            conv_kernels=(3, 2),
            hidden=(8, 6),
            activation="tanh",
            head_init=0.5,
        ),
        (16, 16),
    ),
    "u1-local-3d-random": (
        "U1",
        {"leapfrog": 2, "directions": "random", "networks": "shared"},
        NetworkConfig(
            kind="local", conv_filters=(3,), hidden=(5,), activation="gelu", head_init=0.5
        ),
        (4, 4, 6),
    ),
    # Fourier-accelerated kicks and drifts (`dynamics.fourier`: the filters' initial mass²)
    "u1-local-fourier": (
        "U1",
        {"leapfrog": 2, "fourier": 0.7},
        NetworkConfig(kind="local", hidden=(6,), activation="tanh", head_init=0.5),
        (8, 6),
    ),
    "u1-local-fourier-3d-shared": (
        "U1",
        {"leapfrog": 2, "networks": "shared", "fourier": 1.3},
        NetworkConfig(kind="local", hidden=(5,), head_init=0.5),
        (4, 4, 6),
    ),
    # ... with no networks (Fourier-accelerated leapfrog) and with the seed's networks
    "u1-none-fourier": ("U1", {"leapfrog": 3, "fourier": 0.4}, None, (8, 6)),
    "u1-l2hmc-fourier-random": (
        "U1",
        {"leapfrog": 2, "fourier": 0.9, "directions": "random"},
        NetworkConfig(hidden=(6,), head_init=0.5, activation="tanh"),
        (6, 4),
    ),
}
# TF modes: every case eager; under XLA one case per group and compilation style ("xla-layers":
# the per-layer XLA executables that train.compile uses, inside a plain tf.function; "xla": the
# whole proposal one XLA function).  XLA compiles take 5–40 s each here, hence the selection.
# (tests/runtime/tf/test_trainer.py runs the "xla" training path against eager as well.)
PROPOSAL_CASES = [
    *(pytest.param(case, "eager", id=f"{case}-eager") for case in CASES),
    pytest.param(
        "u1-compact-merged-conv-bn",
        "xla-layers",
        id="u1-compact-merged-conv-bn-xla-layers",
        marks=pytest.mark.slow,
    ),
    pytest.param("u1-affine-random", "xla", id="u1-affine-random-xla", marks=pytest.mark.slow),
    pytest.param("su3-merged", "xla-layers", id="su3-merged-xla-layers", marks=pytest.mark.slow),
    pytest.param(
        "u1-local-16x16-merged",
        "xla-layers",
        id="u1-local-16x16-merged-xla-layers",
        marks=pytest.mark.slow,
    ),
    pytest.param("u1-local-3d-random", "xla", id="u1-local-3d-random-xla", marks=pytest.mark.slow),
    pytest.param(
        "u1-local-fourier",
        "xla-layers",
        id="u1-local-fourier-xla-layers",
        marks=pytest.mark.slow,
    ),
]


def make_pair(
    name: str,
    cfg: dict[str, Any],
    network: NetworkConfig | None,
    shape: tuple[int, ...] | None = None,
) -> tuple[Any, Any]:
    torch.manual_seed(5)
    config = DynamicsConfig(step_size=0.15, **cfg)
    shape = shape or SHAPES[name]
    dyn_p = pdyn.Dynamics(pgroups.group_by_name(name), shape, config, network, dtype=torch.float64)
    dyn_t = tdyn.Dynamics(tgroups.group_by_name(name), shape, config, network)
    dyn_t.load_state_dict(copy_state(dyn_p))
    return dyn_p, dyn_t


@pytest.mark.parametrize(("case", "mode"), PROPOSAL_CASES)
def test_one_l2hmc_proposal_with_logdet(case, mode) -> None:
    name, cfg, network, *shape = CASES[case]
    dyn_p, dyn_t = make_pair(name, cfg, network, *shape)
    data = inputs(name, batch=4, seed=6, shape=shape[0] if shape else None)
    beta = 1.4
    d = data["d"] if dyn_p.config.directions == "random" else None
    with torch.no_grad():
        ref = dyn_p.propose(
            torch.from_numpy(data["links"]),
            torch.from_numpy(data["p"]),
            beta,
            None if d is None else torch.from_numpy(d),
        )
    args = (
        tf.constant(data["links"]),
        tf.constant(data["p"]),
        tf.constant(beta, tf.float64),
        None if d is None else tf.constant(d),
    )
    if mode == "xla-layers":
        dyn_t.compile_layers("xla")
        got = compile_function(dyn_t.propose, "graph")(*args)
    else:
        got = run_tf(dyn_t.propose, mode, *args)
    assert got._fields == ref._fields
    for key, a, b in zip(ref._fields, got, ref, strict=True):
        close(key, a, b, angles=key == "x" and name == "U1" and cfg.get("x_update") != "affine")
    close("acceptance", got.acceptance, ref.acceptance)
    assert float(np.abs(ref.logdet.numpy()).max()) > 1e-3 or name != "U1" or network is None
    accepted_p = data["u"] < ref.acceptance.numpy()
    assert np.array_equal(data["u"] < got.acceptance.numpy(), accepted_p)


def test_same_masks_from_the_same_config() -> None:
    """Checkerboard and random masks are built identically (numpy recipe), not copied."""
    for mask in ("checkerboard", "random"):
        config = DynamicsConfig(leapfrog=3, mask=mask, mask_seed=11)
        dyn_p = pdyn.Dynamics(pgroups.U1, (4, 6), config, None, dtype=torch.float64)
        dyn_t = tdyn.Dynamics(tgroups.U1, (4, 6), config, None)
        np.testing.assert_array_equal(dyn_t.masks.numpy(), dyn_p.masks.numpy())


# -- loss, gradients, optimizer ------------------------------------------------------------------
# Gradients with TF eager (and U(1) in a plain tf.function): XLA compiles the gradient of a
# trajectory slowly on this CPU (~20 s U(1), ~80 s SU(3) for one layer); that XLA training
# equals eager training is tests/runtime/tf/test_trainer.py::test_xla_training_equals_eager.
@pytest.mark.parametrize(("name", "mode"), [("U1", "eager"), ("U1", "graph"), ("SU3", "eager")])
def test_loss_and_its_gradients(name, mode) -> None:
    network = NetworkConfig(hidden=(8,), head_init=0.5, activation="tanh")
    dyn_p, dyn_t = make_pair(name, {"leapfrog": 2}, network)
    data = inputs(name, batch=4, seed=7)
    loss_cfg = LossConfig(plaquette=1.0, charge=0.5 if name == "U1" else 0.0, rmse=0.2)
    beta = 1.2
    x_p = torch.from_numpy(data["links"])
    prop = dyn_p.propose(x_p, torch.from_numpy(data["p"]), beta)
    loss_p, parts_p = ploss.l2hmc_loss(loss_cfg, x_p, prop.x, prop.acceptance)
    names = [k for k, p in dyn_p.named_parameters() if p.requires_grad]
    grads_p = torch.autograd.grad(loss_p, [dict(dyn_p.named_parameters())[k] for k in names])
    variables = dict(dyn_t.named_parameters())
    assert set(variables) == set(names)

    def loss_and_grads(x: Any, v: Any) -> Any:
        with tf.GradientTape() as tape:
            prop_t = dyn_t.propose(x, v, beta)
            loss_t, parts_t = tloss.l2hmc_loss(loss_cfg, x, prop_t.x, prop_t.acceptance)
        return loss_t, parts_t, tape.gradient(loss_t, [variables[k] for k in names])

    loss_t, parts_t, grads_t = run_tf(
        loss_and_grads, mode, tf.constant(data["links"]), tf.constant(data["p"])
    )
    close("loss", loss_t, loss_p)
    assert set(parts_t) == set(parts_p)
    for key in parts_p:
        close(key, parts_t[key], parts_p[key])
    for key, a, b in zip(names, grads_t, grads_p, strict=True):
        close(f"d loss / d {key}", a, b, tol=1e-9)


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_optimizer_steps_match_torch(kind) -> None:
    rng = np.random.default_rng(8)
    shapes = [(4, 3), (3,), (1,)]
    values = [rng.standard_normal(s) for s in shapes]
    params_p = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    params_t = [(f"p{i}", tf.Variable(v.copy())) for i, v in enumerate(values)]
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[kind]
    kwargs: dict[str, Any] = {"lr": 0.05, "weight_decay": 0.01}
    if kind == "sgd":
        kwargs["momentum"] = 0.9
    opt_p = cls(params_p, **kwargs)
    opt_t = Optimizer(kind, params_t, weight_decay=0.01)
    step = compile_function(lambda g, lr: opt_t.apply(g, lr), "xla")
    for _ in range(5):
        grads = [rng.standard_normal(s) * 3 for s in shapes]
        for p, g in zip(params_p, grads, strict=True):
            p.grad = torch.from_numpy(g.copy())
        norm_p = torch.nn.utils.clip_grad_norm_(params_p, 1.0)
        opt_p.step()
        clipped, norm_t = clip_by_global_norm([tf.constant(g) for g in grads], 1.0)
        close("grad norm", norm_t, norm_p)
        step(clipped, tf.constant(0.05, tf.float64))
    for (key, var), p in zip(params_t, params_p, strict=True):
        close(key, var, p, tol=1e-12)
