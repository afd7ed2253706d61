"""PNG figures of a run's history (matplotlib with the Agg backend, imported lazily).

``plot_history`` draws what the history holds, one file per figure, each written atomically:

* ``loss.png`` (key ``loss``), ``acceptance.png`` (``accept_prob`` or ``acceptance``),
* ``plaquette.png`` (``plaquette``, with the exact value as a line when given),
* ``charge.png`` (``charge`` and ``sin_charge``: a few chains' Monte Carlo histories),
* ``dq.png`` (|ΔQ| between consecutive records of ``charge``, averaged over chains).

Per-chain metrics ``[T, B]`` are drawn as the chain mean with a band of ± one standard
deviation across chains.  Importing this module does not import matplotlib.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .history import History, atomic_write_bytes

__all__ = ["plot_history", "plot_series"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _mean_band(values: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any] | None]:
    v = values.reshape(values.shape[0], -1).astype(np.float64)
    if v.shape[1] == 1:
        return v[:, 0], None
    return v.mean(1), v.std(1)


def plot_series(
    path: str | os.PathLike[str],
    steps: NDArray[Any],
    values: NDArray[Any],
    *,
    title: str,
    ylabel: str,
    exact: float | None = None,
    exact_label: str = "exact",
    xlabel: str = "step",
) -> Path:
    """One metric against the step: mean over chains with a ±1σ band, optional exact line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    mean, band = _mean_band(values)
    ax.plot(steps, mean, lw=1.0, label="mean over chains" if band is not None else None)
    if band is not None:
        ax.fill_between(steps, mean - band, mean + band, alpha=0.25, lw=0)
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1.0, label=f"{exact_label} = {exact:.6g}")
    if band is not None or exact is not None:
        ax.legend(loc="best", fontsize=8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def _charge_chains(
    path: Path, steps: NDArray[Any], q: NDArray[Any], q_sin: NDArray[Any] | None, n_show: int
) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    q2 = q.reshape(q.shape[0], -1)
    for c in range(min(n_show, q2.shape[1])):
        (line,) = ax.plot(steps, q2[:, c], lw=0.9, drawstyle="steps-post", label=f"chain {c}")
        if q_sin is not None:
            ax.plot(
                steps,
                q_sin.reshape(q_sin.shape[0], -1)[:, c],
                lw=0.5,
                alpha=0.5,
                color=line.get_color(),
            )
    ax.set(title="topological charge (thin: Q_sin)", xlabel="step", ylabel="Q")
    ax.legend(loc="best", fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_history(
    history: History,
    out_dir: str | os.PathLike[str],
    *,
    exact_plaquette: float | None = None,
    prefix: str = "",
    n_chains_shown: int = 4,
    skip: Sequence[str] = (),
) -> list[Path]:
    """Write the figures for the metrics present in ``history``; returns the files written."""
    out = Path(out_dir)
    written: list[Path] = []

    def name(stem: str) -> Path:
        return out / f"{prefix}{stem}.png"

    if "loss" in history and "loss" not in skip:
        written.append(
            plot_series(
                name("loss"), history.steps("loss"), history["loss"], title="loss", ylabel="loss"
            )
        )
    acc_key = next((k for k in ("accept_prob", "acceptance") if k in history), None)
    if acc_key is not None and "acceptance" not in skip:
        written.append(
            plot_series(
                name("acceptance"),
                history.steps(acc_key),
                history[acc_key],
                title="acceptance probability",
                ylabel="min(1, e^{-ΔH} |J|)",
            )
        )
    if "plaquette" in history and "plaquette" not in skip:
        written.append(
            plot_series(
                name("plaquette"),
                history.steps("plaquette"),
                history["plaquette"],
                title="plaquette",
                ylabel="⟨Re tr U_P⟩ / N",
                exact=exact_plaquette,
            )
        )
    if "charge" in history and "charge" not in skip:
        q = history["charge"]
        steps = history.steps("charge")
        q_sin = history.get("sin_charge")
        if q_sin is not None and len(q_sin) != len(q):
            q_sin = None
        written.append(_charge_chains(name("charge"), steps, q, q_sin, n_chains_shown))
        if len(q) > 1:
            dq = np.abs(np.diff(q.reshape(q.shape[0], -1).astype(np.float64), axis=0))
            written.append(
                plot_series(name("dq"), steps[1:], dq, title="|ΔQ| per step", ylabel="|ΔQ|")
            )
    return written
