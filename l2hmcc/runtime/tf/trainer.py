"""Training, evaluation and HMC-baseline loops of L2HMC in TensorFlow, with checkpoints and
clean stops (mirror of ``pt/trainer.py``).

``Trainer`` owns one ``Dynamics`` (networks + step sizes), its optimizer (``optim.Optimizer``,
PyTorch's update rules) and learning-rate schedule, the chains (``train.chains`` per rank), a
``tf.random.Generator`` (seeded from ``train.seed`` and the rank), a ``BetaSchedule`` and three
``History`` objects (``common``): ``train``, ``eval`` and ``hmc``.

One train step: draw momenta (and directions, and a fresh hot start for the aux term) eagerly;
then

1. ``_grads``: propose (model in train mode), ``loss = l2hmc_loss(...)``, the gradients;
2. ``backend.reduce_gradients`` — eager, outside XLA (Horovod's allreduce has no XLA kernel);
3. ``_apply``: PyTorch's global-norm clipping and the optimizer update (learning rate passed
   as a tensor, so the schedule does not retrace);
4. ``_finish``: the per-chain Metropolis test moves the chains; metrics.

``train.compile`` (mode ``"xla"``) runs 1 as a graph whose leapfrog layers are XLA executables
(forward and backward) and 3 and 4 as XLA functions; mode ``"xla-step"`` makes 1–4 one
``tf.function(jit_compile=True)`` on one rank, and 1 and 3–4 two of them around the eager
allreduce on several, and an evaluation trajectory (proposal, accept, metrics) one too
(``COMPILE_MODES``).

Horovod: the model's variables are broadcast from rank 0 before the first step, and the
model's and the optimizer's after it.  Checkpoints (``out_dir/checkpoints``, ``.npz``, latest
``keep_checkpoints``) hold the variables under the PyTorch ``state_dict`` keys, the optimizer
slots, the step, the generator state, the chains and the histories; ``resume()`` continues a
run so that its history and final parameters equal an uninterrupted run's.  A ``StopFlag``
(SIGTERM/SIGUSR1) makes ``train()`` write a checkpoint and return early.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ..common.config import BetaSchedule, TrainConfig, lr_factor
from ..common.history import History
from ..common.loop import (
    CHECKPOINT_FORMAT,
    TrainerLoop,
    history_from_state,
    history_state,
)
from . import hmc, lattice
from .checkpoint import SUFFIX, StopFlag, load_checkpoint, save_checkpoint
from .compile import compile_function
from .distributed import Backend, SingleProcess
from .dynamics import Dynamics, DynamicsConfig, Proposal
from .groups import GaugeGroup, group_by_name
from .loss import LossConfig, l2hmc_loss
from .networks import NetworkConfig
from .optim import Optimizer, clip_by_global_norm

__all__ = ["CHECKPOINT_FORMAT", "BetaSchedule", "TrainConfig", "Trainer"]

#: ``"eager"``; ``"graph"`` (plain ``tf.function``); ``"xla"`` (``train.compile``: the train
#: step and the proposal are graphs whose leapfrog layers run as one shared XLA executable,
#: forward and backward; the optimizer update and the accept/metrics step are XLA functions;
#: compile time does not grow with the number of layers); ``"xla-step"`` (one XLA function per
#: train step (proposal, loss, gradients, clipping, the optimizer update, accept and metrics)
#: and one per evaluation trajectory, the leapfrog layers a loop over their stacked parameters,
#: ``Dynamics.loop_layers``; networks with batch norm, which the loop cannot take, run as in
#: ``"xla"``); ``"xla-full"`` (as ``"xla-step"`` with the layers unrolled: the slowest to
#: compile).  On CPU ``"xla-step"`` measured no faster than ``"xla"`` (docs/performance.md in
#: the l2hmcc sources), hence the default.  With more than one rank the allreduce runs between
#: the gradient function and the update function, both XLA.
COMPILE_MODES = ("eager", "graph", "xla", "xla-step", "xla-full")


class Trainer(TrainerLoop):
    """Train, evaluate and compare L2HMC with tuned HMC on one lattice (see the module docstring).

    ``group`` a ``GaugeGroup`` or its name; ``beta`` a number or a ``BetaSchedule``; ``network``
    ``None`` trains step sizes only; ``out_dir`` (optional) receives ``checkpoints/``;
    ``backend`` defaults to ``SingleProcess()``; ``log`` gets one line per ``log_every`` steps
    on the main rank; ``on_step(phase, step, total)`` (optional) is called on the main rank
    after every train/eval/hmc step (progress bars).  ``compile_mode`` (one of
    ``COMPILE_MODES``) overrides ``train.compile``, which means ``"xla"``.  The loops and the
    checkpoint bookkeeping are ``common.loop.TrainerLoop``'s.
    """

    model: Dynamics
    group: GaugeGroup
    generator: tf.random.Generator
    x: tf.Tensor
    checkpoint_suffix = SUFFIX
    hmc_module = hmc
    lattice_module = lattice

    def __init__(
        self,
        group: GaugeGroup | str,
        lattice_shape: tuple[int, ...] | list[int],
        beta: float | BetaSchedule,
        dynamics: DynamicsConfig,
        network: NetworkConfig | None,
        loss: LossConfig,
        train: TrainConfig,
        *,
        out_dir: str | Path | None = None,
        backend: Backend | None = None,
        log: Callable[[str], None] | None = print,
        on_step: Callable[[str, int, int], None] | None = None,
        compile_mode: str | None = None,
    ) -> None:
        self.group = group_by_name(group) if isinstance(group, str) else group
        self.lattice_shape = tuple(int(n) for n in lattice_shape)
        self.beta = beta if isinstance(beta, BetaSchedule) else BetaSchedule(start=float(beta))
        self.dynamics_config, self.network_config = dynamics, network
        self.loss_config, self.config = loss, train
        self.dtype = tf.as_dtype(train.dtype_name)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.backend: Backend = backend if backend is not None else SingleProcess()
        self._log = log if self.backend.is_main else None
        self._on_step = on_step if self.backend.is_main else None
        if loss.charge > 0 and self.group.name != "U1" and len(self.lattice_shape) != 4:
            raise ValueError("loss.charge for SU(N) needs a 4D lattice (clover charge)")
        if train.network_precision in ("bf16", "fp16"):
            warnings.warn(
                f"train.network_precision={train.network_precision!r} is not implemented by the "
                f"TensorFlow runtime; networks run in {train.precision}",
                RuntimeWarning,
                stacklevel=2,
            )
        self.model = Dynamics(
            self.group, self.lattice_shape, dynamics, network, dtype=self.dtype, seed=train.seed
        )
        self.params = self.model.named_parameters()
        self.optimizer = Optimizer(
            train.optimizer,
            self.params,
            weight_decay=train.weight_decay,
            lr_scales={
                "log_step_size": train.step_size_lr_factor,
                "kinetic_log_m2": train.step_size_lr_factor,
            },
        )
        self._lr_factor = lr_factor(train)
        self.backend.broadcast_variables(self.model.trainable_variables)
        self._broadcast_after_first_step = self.backend.world_size > 1

        self.generator = tf.random.Generator.from_seed(train.seed + 1_000_003 * self.backend.rank)
        self.x = self.group.random(
            train.chains, self.lattice_shape, dtype=self.dtype, generator=self.generator
        )
        self.step = 0
        self.histories = {"train": History(), "eval": History(), "hmc": History()}
        self.stop_flag = StopFlag()

        mode = compile_mode if compile_mode is not None else ("xla" if train.compile else "eager")
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}")
        self._build_compiled(mode)

    # -- compiled pieces ----------------------------------------------------------------------
    def _build_compiled(self, mode: str) -> None:
        """The compiled units for ``mode`` (see ``COMPILE_MODES``)."""
        self.compile_mode = mode
        looped = self.model.loop_layers(mode == "xla-step")
        layers = mode == "xla" or (mode == "xla-step" and not looped)
        self._fused = mode in ("xla-step", "xla-full") and not layers
        outer = "graph" if layers else ("xla" if self._fused else mode)
        small = "xla" if mode.startswith("xla") else mode
        self.model.compile_layers("xla" if layers else "eager")
        self.model.loop_layers(looped)
        # fused: _step_fn (one rank) or _grads_fn + _update_fn (allreduce between), and
        # _trajectory_fn; otherwise _grads_fn, _apply_fn, _finish_fn and _propose_fn (fused:
        # a plain tf.function, for evaluation after ``model.compile_layers`` unrolled the loop)
        self._grads_fn = compile_function(self._grads, outer, name="train step")
        propose_mode = "graph" if self._fused else outer
        self._propose_fn = compile_function(self._propose_eval, propose_mode, name="proposal")
        self._apply_fn = compile_function(self._apply, small, name="optimizer step")
        self._finish_fn = compile_function(self._finish, small, name="accept and metrics")
        self._step_fn = compile_function(self._whole_step, outer, name="train step")
        self._update_fn = compile_function(self._update, outer, name="optimizer step")
        self._trajectory_fn = compile_function(self._trajectory, outer, name="trajectory")
        self._first_call = layers

    def _fused_call(self, fn: Any, *args: Any) -> Any:
        """Call a fused unit; where XLA could not compile it (the unit fell back to a plain
        ``tf.function`` with a warning) the trainer switches to ``"graph"``."""
        out = fn(*args)
        if fn.mode != fn.requested:
            self._build_compiled("graph")
        return out

    def _xla_guard(self, which: str, *args: Any) -> Any:
        """Call the compiled ``"grads"`` or ``"propose"`` unit.  The first time, in ``"xla"``
        mode, an XLA compilation error (raised when the enclosing graph first runs its
        per-layer XLA clusters) switches the trainer to ``"graph"`` with a warning and the call
        is retried."""
        units = {"grads": lambda: self._grads_fn, "propose": lambda: self._propose_fn}
        if not self._first_call:
            return units[which]()(*args)
        try:
            out = units[which]()(*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err)
            warnings.warn(
                f"XLA cannot compile the leapfrog layer ({first_line}); "
                "falling back to plain tf.function",
                RuntimeWarning,
                stacklevel=3,
            )
            self._build_compiled("graph")
            out = units[which]()(*args)
        self._first_call = False
        return out

    def _beta_tensor(self, beta: float) -> tf.Tensor:
        return tf.constant(beta, dtype=self.dtype)

    def _loss_and_proposal(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor,
        directions: tf.Tensor | None,
        x_aux: tf.Tensor | None,
        v_aux: tf.Tensor | None,
        directions_aux: tf.Tensor | None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor], Proposal]:
        """Proposal of the chains (and of fresh samples for the aux term, in the same batch)
        and the loss."""
        b = int(x.shape[0])
        if x_aux is not None and v_aux is not None:
            xx, vv = tf.concat([x, x_aux], 0), tf.concat([v, v_aux], 0)
            dd = None
            if directions is not None and directions_aux is not None:
                dd = tf.concat([directions, directions_aux], 0)
        else:
            xx, vv, dd = x, v, directions
        prop = self.model.propose(xx, vv, beta, dd)
        acc = prop.acceptance
        aux = None
        if x_aux is not None:
            aux = (x_aux, prop.x[b:], acc[b:])
            prop = Proposal(*(t[:b] for t in prop))
            acc = acc[:b]
        loss, parts = l2hmc_loss(self.loss_config, x, prop.x, acc, aux=aux)
        return loss, parts, prop

    def _grads(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor,
        directions: tf.Tensor | None,
        x_aux: tf.Tensor | None,
        v_aux: tf.Tensor | None,
        directions_aux: tf.Tensor | None,
    ) -> tuple[dict[str, tf.Tensor], Proposal, list[tf.Tensor]]:
        self.model.train()
        variables = [v for _, v in self.params]
        with tf.GradientTape() as tape:
            loss, parts, prop = self._loss_and_proposal(
                x, v, beta, directions, x_aux, v_aux, directions_aux
            )
        grads = tape.gradient(loss, variables)
        grads = [
            tf.zeros_like(w) if g is None else g for g, w in zip(grads, variables, strict=True)
        ]
        prop = Proposal(*(tf.stop_gradient(t) for t in prop))
        return parts, prop, grads

    def _apply(self, grads: list[tf.Tensor], lr: tf.Tensor) -> tf.Tensor:
        norm = tf.zeros((), self.dtype)
        if self.config.clip_norm:
            grads, norm = clip_by_global_norm(grads, self.config.clip_norm)
        self.optimizer.apply(grads, lr)
        return norm

    def _finish(
        self, x: tf.Tensor, prop: Proposal, u: tf.Tensor
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        x_new, accepted = self.model.accept(x, prop, u)
        return x_new, self.model.metrics(x, x_new, prop, accepted)

    def _whole_step(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor,
        directions: tf.Tensor | None,
        x_aux: tf.Tensor | None,
        v_aux: tf.Tensor | None,
        directions_aux: tf.Tensor | None,
        u: tf.Tensor,
        lr: tf.Tensor,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor], dict[str, tf.Tensor], tf.Tensor]:
        """A whole train step (one process): ``(x_new, metrics, loss parts, grad norm)``."""
        parts, prop, grads = self._grads(x, v, beta, directions, x_aux, v_aux, directions_aux)
        x_new, metrics, norm = self._update(grads, lr, x, prop, u)
        return x_new, metrics, parts, norm

    def _update(
        self, grads: list[tf.Tensor], lr: tf.Tensor, x: tf.Tensor, prop: Proposal, u: tf.Tensor
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]:
        """Clipping, the optimizer update, then accept and metrics."""
        norm = self._apply(grads, lr)
        x_new, metrics = self._finish(x, prop, u)
        return x_new, metrics, norm

    def _trajectory(
        self,
        x: tf.Tensor,
        v: tf.Tensor,
        beta: tf.Tensor,
        directions: tf.Tensor | None,
        u: tf.Tensor,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """An evaluation trajectory: proposal (eval mode), accept and metrics."""
        return self._finish(x, self._propose_eval(x, v, beta, directions), u)

    def _propose_eval(
        self, x: tf.Tensor, v: tf.Tensor, beta: tf.Tensor, directions: tf.Tensor | None
    ) -> Proposal:
        self.model.eval()
        return self.model.propose(x, v, beta, directions)

    # -- one step -----------------------------------------------------------------------------
    def train_step(self, beta: float) -> dict[str, tf.Tensor]:
        """One optimisation step on the chains; returns its metrics (``[B]`` and scalars)."""
        x = self.x
        v, d, u = self.model.draw(x, self.generator)
        x_aux = v_aux = d_aux = None
        if self.loss_config.aux_weight > 0:
            x_aux = self.group.random(
                int(x.shape[0]), self.lattice_shape, dtype=self.dtype, generator=self.generator
            )
            v_aux, d_aux, _ = self.model.draw(x_aux, self.generator)
        bt = self._beta_tensor(beta)
        lr = tf.constant(self.config.lr * self._lr_factor(self.step), self.dtype)
        if self._fused and self.backend.world_size == 1:
            x_new, metrics, parts, grad_norm = self._fused_call(
                self._step_fn, x, v, bt, d, x_aux, v_aux, d_aux, u, lr
            )
        elif self._fused:
            parts, prop, grads = self._fused_call(self._grads_fn, x, v, bt, d, x_aux, v_aux, d_aux)
            grads = self.backend.reduce_gradients(grads)
            x_new, metrics, grad_norm = self._fused_call(self._update_fn, grads, lr, x, prop, u)
            self._broadcast_first()
        else:
            parts, prop, grads = self._xla_guard("grads", x, v, bt, d, x_aux, v_aux, d_aux)
            grads = self.backend.reduce_gradients(grads)
            grad_norm = self._apply_fn(grads, lr)
            self._broadcast_first()
            x_new, metrics = self._finish_fn(x, prop, u)
        metrics = dict(metrics)
        metrics.update(parts)
        metrics["beta"] = tf.constant(beta, tf.float64)
        metrics["lr"] = tf.constant(self.config.lr * self._lr_factor(self.step + 1), tf.float64)
        if self.config.clip_norm:
            metrics["grad_norm"] = grad_norm
        self.x = x_new
        return metrics

    def _broadcast_first(self) -> None:
        """Horovod: rank 0's model and optimizer state to every rank after the first step."""
        if self._broadcast_after_first_step:
            self.backend.broadcast_variables(
                [*self.model.trainable_variables, *self.optimizer.variables]
            )
            self._broadcast_after_first_step = False

    # -- loops (``train()`` is ``TrainerLoop``'s) ----------------------------------------------
    def evaluate(
        self, steps: int, beta: float | None = None, x: tf.Tensor | None = None
    ) -> History:
        """``steps`` L2HMC trajectories with the trained networks (eval mode, no gradients),
        starting from the training chains (or ``x``); returns the ``eval`` history."""
        bt = self._beta_tensor(self._final_beta(beta))

        def step(x: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
            v, d, u = self.model.draw(x, self.generator)
            if self._fused and (self.model._loop or self.compile_mode == "xla-full"):
                x, metrics = self._fused_call(self._trajectory_fn, x, v, bt, d, u)
            else:
                prop = self._xla_guard("propose", x, v, bt, d)
                x, metrics = self._finish_fn(x, prop, u)
            return x, dict(metrics)

        hist = self._sample("eval", steps, self.x if x is None else x, step)
        self.model.train()
        return hist

    def _hmc_integrator(self, fourier: float = 0.0) -> Any:
        mode = {"eager": "eager", "graph": "graph"}.get(self.compile_mode, "xla")
        if fourier > 0:
            return hmc.fourier_leapfrog(fourier, self.lattice_shape, dtype=self.dtype, mode=mode)
        if mode == "eager":
            return None
        return hmc.compile_leapfrog(mode)

    # -- logging ------------------------------------------------------------------------------
    def _reduce(self, metrics: dict[str, tf.Tensor]) -> dict[str, Any]:
        """Per-chain metrics stay per chain (this rank's chains); scalars are averaged over
        ranks."""
        scalars = {k: v for k, v in metrics.items() if v.shape.rank == 0}
        if self.backend.world_size > 1 and scalars:
            floats = {k: tf.cast(v, tf.float64) for k, v in scalars.items()}
            scalars = self.backend.all_reduce_mean(floats)
        return {**metrics, **scalars}

    def _scalar(self, value: float) -> tf.Tensor:
        """``float64`` (``int64`` for an integer such as ``n_steps``)."""
        return tf.constant(value, tf.int64 if isinstance(value, int | np.integer) else tf.float64)

    def _flag(self, value: float) -> tf.Tensor:
        return tf.constant(value, tf.float64)

    def _mean(self, value: tf.Tensor) -> float:
        return float(tf.reduce_mean(tf.cast(value, tf.float64)))

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        gen_state = self.generator.state.numpy()
        return {
            "format": CHECKPOINT_FORMAT,
            "framework": "tensorflow",
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"generator": gen_state, "algorithm": int(self.generator.algorithm)},
            "chains": self.x.numpy(),
            "histories": {k: history_state(h) for k, h in self.histories.items()},
            "beta_schedule": json.loads(json.dumps(asdict(self.beta))),
            "configs": json.loads(json.dumps(self._configs_state())),
            "world_size": self.backend.world_size,
            "rank": self.backend.rank,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_format(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.reset(np.asarray(state["rng"]["generator"]))
        self.x = tf.constant(np.asarray(state["chains"]))
        self.histories = {k: history_from_state(h) for k, h in state["histories"].items()}
        self.step = int(state["step"])
        self._broadcast_after_first_step = False

    def _write_checkpoint(self, directory: Path, state: dict[str, Any]) -> Path:
        return save_checkpoint(directory, self.step, state, keep=self.config.keep_checkpoints)

    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        return load_checkpoint(path)
