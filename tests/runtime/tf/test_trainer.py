"""The TensorFlow trainer: a tiny run that learns, evaluation and the HMC baseline (tuned and
fixed step size), histories like the PyTorch trainer's, checkpoints (resume = uninterrupted
run), the signal stop, and the compiled modes computing the same numbers as eager."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from l2hmcc.runtime.common.config import (  # noqa: E402
    BetaSchedule,
    DynamicsConfig,
    LossConfig,
    NetworkConfig,
    TrainConfig,
)
from l2hmcc.runtime.tf.checkpoint import list_checkpoints  # noqa: E402
from l2hmcc.runtime.tf.distributed import Backend, SingleProcess  # noqa: E402
from l2hmcc.runtime.tf.trainer import COMPILE_MODES, Trainer  # noqa: E402

pytestmark = pytest.mark.tf

TRAIN_KEYS = {
    "accept_prob",
    "accepted",
    "dH",
    "sumlogdet",
    "plaquette",
    "step_sizes",
    "charge",
    "dQ",
    "sin_charge",
    "dQ_sin",
    "loss",
    "loss_plaquette",
    "esjd_plaquette",
    "loss_charge",
    "esjd_charge",
    "aux_loss_plaquette",
    "aux_esjd_plaquette",
    "aux_loss_charge",
    "aux_esjd_charge",
    "beta",
    "lr",
    "grad_norm",
    "time_s",
}


def tiny(out_dir=None, mode="eager", network=None, **train) -> Trainer:
    cfg = {
        "steps": 6,
        "chains": 8,
        "lr": 0.01,
        "precision": "fp64",
        "log_every": 0,
        "clip_norm": 1.0,
        **train,
    }
    return Trainer(
        "U1",
        (4, 4),
        BetaSchedule("linear", 1.0, 2.0),
        DynamicsConfig(leapfrog=2, step_size=0.1),
        network or NetworkConfig(hidden=(8,), batch_norm=True),
        LossConfig(plaquette=1.0, charge=0.5, aux_weight=0.5),
        TrainConfig(**cfg),
        out_dir=out_dir,
        log=None,
        compile_mode=mode,
    )


def test_single_process_backend_satisfies_the_protocol() -> None:
    b = SingleProcess()
    assert isinstance(b, Backend) and b.is_main and b.world_size == 1
    g = [tf.ones(2)]
    assert b.reduce_gradients(g)[0] is g[0]
    d = {"a": tf.ones(2)}
    assert b.all_reduce_mean(d) is d


@pytest.mark.slow
def test_a_tiny_training_run_learns(tmp_path) -> None:
    tr = Trainer(
        "U1",
        (4, 4),
        2.0,
        DynamicsConfig(leapfrog=2, step_size=0.05),
        NetworkConfig(hidden=(16,), head_init=0.0),
        LossConfig(form="plain"),
        TrainConfig(
            steps=40,
            chains=32,
            lr=0.02,
            precision="fp64",
            log_every=0,
            compile=False,
            clip_norm=0,
            seed=0,
        ),
        log=None,
    )
    hist = tr.train()
    esjd = hist["esjd_plaquette"]
    assert esjd[-10:].mean() > 1.5 * esjd[:5].mean()  # larger jumps ...
    assert np.all(tr.model.step_sizes().numpy() > 0.05)  # ... from larger step sizes


def test_train_evaluate_hmc_histories(tmp_path) -> None:
    lines: list[str] = []
    progress: list[tuple[str, int, int]] = []
    tr = tiny(tmp_path, log_every=3, checkpoint_every=2)
    tr._log = lines.append
    tr._on_step = lambda *a: progress.append(a)
    hist = tr.train()
    assert set(hist.keys()) == TRAIN_KEYS
    assert hist["accept_prob"].shape == (6, 8) and hist["beta"].shape == (6,)
    np.testing.assert_allclose(hist["beta"], np.linspace(1.0, 2.0, 6), rtol=1e-6)
    assert len(lines) == 2 and lines[0].startswith("train 3/6")
    ev = tr.evaluate(3)
    assert ev["accept_prob"].shape == (3, 8) and "time_s" in ev
    hm = tr.run_hmc(2)
    assert hm["dQ"].shape == (2, 8) and {"step_size", "n_steps", "exp_minus_dH"} <= set(hm.keys())
    fixed = tr.run_hmc(2, step_size=0.3)
    assert fixed["n_steps"][-1] == 4 and fixed["step_size"][-1] == pytest.approx(0.25)
    assert progress[:6] == [("train", s, 6) for s in range(1, 7)]
    assert [p[0] for p in progress[6:]] == ["eval"] * 3 + ["hmc"] * 4
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == [
        "ckpt-00000002.npz",
        "ckpt-00000004.npz",
        "ckpt-00000006.npz",
    ]


@pytest.mark.slow
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path) -> None:
    full = tiny(tmp_path / "a")
    full.train()
    part = tiny(tmp_path / "b", checkpoint_every=3)
    part.train(steps=3)
    resumed = tiny(tmp_path / "b")
    assert resumed.resume() and resumed.step == 3
    resumed.train()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("loss", "accept_prob", "plaquette"):
        np.testing.assert_array_equal(full.histories["train"][key], resumed.histories["train"][key])
    np.testing.assert_array_equal(full.x.numpy(), resumed.x.numpy())
    assert not tiny(tmp_path / "empty").resume()


def test_stop_flag_checkpoints_and_returns_early(tmp_path) -> None:
    tr = tiny(tmp_path)
    original = tr.train_step

    def step_then_signal(beta):
        out = original(beta)
        if tr.step == 1:
            tr.stop_flag.set(15)
        return out

    tr.train_step = step_then_signal
    hist = tr.train()
    assert tr.step == 2 and len(hist["loss"]) == 2
    assert list_checkpoints(tmp_path / "checkpoints")[-1].name == "ckpt-00000002.npz"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "batch_norm", "looped"),
    [
        ("xla", True, False),  # train.compile: per-layer XLA executables, XLA update/accept
        ("xla-step", False, True),  # one XLA function per train step / trajectory, a loop
        ("xla-step", True, False),  # batch norm: the layers as in "xla"
    ],
    ids=["xla", "xla-step-loop", "xla-step-batch-norm"],
)
def test_xla_training_equals_eager(mode: str, batch_norm: bool, looped: bool) -> None:
    """Two train steps and two evaluation trajectories in an XLA mode: the same losses,
    parameters and chains as eager to 1e-10 (same seeds, same draws)."""
    net = NetworkConfig(hidden=(8,), batch_norm=batch_norm)
    ref, comp = tiny(network=net, steps=2), tiny(mode=mode, network=net, steps=2)
    for tr in (ref, comp):
        tr.train()
    assert comp.compile_mode == mode  # no fallback happened
    assert comp.model._loop is looped and comp._fused is looped
    for key in ("loss", "accept_prob", "sumlogdet", "grad_norm"):
        np.testing.assert_allclose(
            comp.histories["train"][key], ref.histories["train"][key], rtol=1e-10, atol=1e-10
        )
    a, b = ref.model.state_dict(), comp.model.state_dict()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-10, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(comp.x.numpy(), ref.x.numpy(), rtol=0, atol=1e-10)
    ev_ref, ev_comp = ref.evaluate(2), comp.evaluate(2)
    for key in ("accept_prob", "plaquette"):
        np.testing.assert_allclose(ev_comp[key], ev_ref[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.slow
def test_layers_switched_before_evaluation_leave_the_xla_trajectory() -> None:
    """A generated train.py with ``evaluate.compile = false`` calls
    ``trainer.model.compile_layers(False)`` after training: in ``"xla-step"`` the evaluation
    then runs the layers without XLA (not the fused XLA trajectory), with the same numbers as
    eager."""
    net = NetworkConfig(hidden=(8,))
    ref, comp = tiny(network=net, steps=1), tiny(mode="xla-step", network=net, steps=1)
    for tr in (ref, comp):
        tr.train()
        tr.model.compile_layers(False)
    assert not comp.model._loop
    ev_ref, ev_comp = ref.evaluate(2), comp.evaluate(2)
    assert comp._trajectory_fn._first_call  # never called
    np.testing.assert_allclose(ev_comp["accept_prob"], ev_ref["accept_prob"], rtol=1e-10)


def test_bad_compile_mode_is_refused() -> None:
    assert COMPILE_MODES == ("eager", "graph", "xla", "xla-step", "xla-full")
    with pytest.raises(ValueError, match="compile mode"):
        tiny(mode="fast")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("xla", "XLA cannot compile the leapfrog layer"),
        ("xla-step", "XLA cannot compile 'train step'"),
    ],
)
def test_xla_mode_falls_back_to_graph_with_a_warning(mode: str, message: str) -> None:
    """A layer XLA cannot compile (here with ``tf.linalg.expm`` of a complex matrix, which has
    no XLA kernel on CPU) switches the trainer to ``"graph"`` with a warning; training goes on
    with the same numbers as eager."""
    net = NetworkConfig(hidden=(4,))
    ref, tr = tiny(network=net, steps=1), tiny(mode=mode, network=net, steps=1)
    for t in (ref, tr):
        layer = t.model.apply_layer

        def with_expm(*args, layer=layer, **kwargs):
            x, v, logdet, action, f = layer(*args, **kwargs)
            zero = tf.math.real(tf.linalg.trace(tf.linalg.expm(tf.zeros([2, 2], tf.complex128))))
            return x, v, logdet + 0.0 * zero, action, f

        t.model.apply_layer = with_expm
    ref.train()
    with pytest.warns(RuntimeWarning, match=message):
        tr.train()
    assert tr.compile_mode == "graph"
    np.testing.assert_allclose(
        tr.histories["train"]["loss"], ref.histories["train"]["loss"], rtol=1e-10
    )
