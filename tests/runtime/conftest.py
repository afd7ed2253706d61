"""Framework adapters for test bodies shared by the PyTorch and TensorFlow runtimes.

A test that takes the ``fw`` fixture runs once per installed framework (``pt``, ``tf``; the
``tf`` case carries the ``tf`` marker).  ``fw`` exposes the runtime modules under the same names
(``fw.groups``, ``fw.lattice``, ``fw.hmc``, ``fw.dynamics``, ``fw.networks``, ``fw.loss``) and
the few framework-specific operations a test body needs; comparisons are done in numpy
(``fw.np``).  Test bodies live in ``tests/runtime/test_exactness.py``; a framework's own tests
(``tests/runtime/pt/``, ``tests/runtime/tf/``) may import nothing from here but the fixture.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_TF = importlib.util.find_spec("tensorflow") is not None


class PT:
    """The PyTorch runtime behind the shared interface."""

    name = "pt"

    def __init__(self) -> None:
        import torch

        from l2hmcc.runtime.pt import dynamics, groups, hmc, lattice, loss, networks

        torch.set_num_threads(1)
        self.torch = torch
        self.groups, self.lattice, self.hmc = groups, lattice, hmc
        self.dynamics, self.networks, self.loss = dynamics, networks, loss
        self.float64 = torch.float64

    def group(self, name: str) -> Any:
        return self.groups.group_by_name(name)

    def gen(self, seed: int = 0) -> Any:
        return self.torch.Generator().manual_seed(seed)

    def np(self, t: Any) -> np.ndarray:
        if isinstance(t, self.torch.Tensor):
            return t.detach().cpu().numpy()
        return np.asarray(t)

    def tensor(self, a: Any) -> Any:
        return self.torch.from_numpy(np.array(a))

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return self.torch.no_grad()

    def make_dynamics(
        self, grp: Any, shape: Sequence[int], config: Any, network: Any, seed: int
    ) -> Any:
        self.torch.manual_seed(seed)
        return self.dynamics.Dynamics(grp, shape, config, network, dtype=self.float64)

    def jacobian(self, fn: Callable[[Any], Any], z: np.ndarray) -> np.ndarray:
        jac = self.torch.autograd.functional.jacobian(fn, self.tensor(z))
        return self.np(jac)

    def flat(self, *ts: Any) -> Any:
        return self.torch.cat([t.flatten() for t in ts])

    def reshape(self, t: Any, shape: Sequence[int]) -> Any:
        return t.reshape(tuple(shape))

    def matmul(self, a: Any, b: Any) -> Any:
        return a @ b

    def dagger(self, a: Any) -> Any:
        return a.conj().transpose(-1, -2)

    def uniform(self, n: int, g: Any) -> Any:
        return self.torch.rand(n, dtype=self.float64, generator=g)

    def integrator(self) -> Any:
        return None  # eager: torch.compile costs more than these small tests run

    def compiled(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn

    def stepper(self, dyn: Any) -> Callable[..., Any]:
        def step(x: Any, beta: float, g: Any) -> Any:
            with self.torch.no_grad():
                return dyn.step(x, beta, g)

        return step


class TF:
    """The TensorFlow runtime behind the shared interface."""

    name = "tf"

    def __init__(self) -> None:
        import tensorflow as tf

        from l2hmcc.runtime.tf import dynamics, groups, hmc, lattice, loss, networks
        from l2hmcc.runtime.tf.compile import compile_function

        with contextlib.suppress(RuntimeError):  # already initialised by an earlier test
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        self.tf = tf
        self.groups, self.lattice, self.hmc = groups, lattice, hmc
        self.dynamics, self.networks, self.loss = dynamics, networks, loss
        self.compile_function = compile_function
        self.float64 = tf.float64

    def group(self, name: str) -> Any:
        return self.groups.group_by_name(name)

    def gen(self, seed: int = 0) -> Any:
        return self.tf.random.Generator.from_seed(seed)

    def np(self, t: Any) -> np.ndarray:
        if hasattr(t, "numpy"):
            return np.asarray(t.numpy())
        return np.asarray(t)

    def tensor(self, a: Any) -> Any:
        return self.tf.constant(np.asarray(a))

    def no_grad(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def make_dynamics(
        self, grp: Any, shape: Sequence[int], config: Any, network: Any, seed: int
    ) -> Any:
        return self.dynamics.Dynamics(grp, shape, config, network, dtype=self.float64, seed=seed)

    def jacobian(self, fn: Callable[[Any], Any], z: np.ndarray) -> np.ndarray:
        tf = self.tf
        zt = tf.constant(z)

        @tf.function(autograph=False)
        def jac(z: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(z)
                y = fn(z)
            return tape.jacobian(y, z)  # vectorised (pfor) inside a graph

        return np.asarray(jac(zt).numpy())

    def flat(self, *ts: Any) -> Any:
        return self.tf.concat([self.tf.reshape(t, [-1]) for t in ts], axis=0)

    def reshape(self, t: Any, shape: Sequence[int]) -> Any:
        return self.tf.reshape(t, list(shape))

    def matmul(self, a: Any, b: Any) -> Any:
        return self.tf.linalg.matmul(a, b)

    def dagger(self, a: Any) -> Any:
        return self.tf.linalg.adjoint(a)

    def uniform(self, n: int, g: Any) -> Any:
        return g.uniform([n], dtype=self.float64)

    def integrator(self) -> Any:
        # a plain tf.function: traced once per shape in ~1 s, no XLA compile in the tests
        return self.hmc.compile_leapfrog("graph")

    def compiled(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` as a plain ``tf.function`` (eager TF ops cost ~20–100 µs each)."""
        return self.compile_function(fn, "graph")

    def stepper(self, dyn: Any) -> Callable[..., Any]:
        def accept_and_measure(x: Any, prop: Any, u: Any) -> Any:
            x_new, accepted = dyn.accept(x, prop, u)
            return x_new, dyn.metrics(x, x_new, prop, accepted)

        propose = self.compile_function(dyn.propose, "graph", name="propose")
        finish = self.compile_function(accept_and_measure, "graph", name="finish")

        def step(x: Any, beta: float, g: Any) -> Any:
            v, d, u = dyn.draw(x, g)
            prop = propose(x, v, self.tf.constant(beta, self.float64), d)
            return finish(x, prop, u)

        return step


_ADAPTERS: dict[str, Any] = {}


def _adapter(name: str) -> Any:
    if name not in _ADAPTERS:
        _ADAPTERS[name] = PT() if name == "pt" else TF()
    return _ADAPTERS[name]


FRAMEWORKS = [
    pytest.param(
        "pt", marks=pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed"), id="pt"
    ),
    pytest.param(
        "tf",
        marks=[
            pytest.mark.tf,
            pytest.mark.skipif(not HAVE_TF, reason="tensorflow is not installed"),
        ],
        id="tf",
    ),
]


@pytest.fixture(params=FRAMEWORKS)
def fw(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The runtime of one framework (see the module docstring)."""
    yield _adapter(request.param)
