"""Summary figures of a run, computed from its ``History`` (numpy only).

``summarize`` returns a JSON-ready dict (plain floats, ints, bools); ``write_summary`` writes it
atomically.  Conventions: per-chain metrics are ``[T, B]`` (time first); errors include the
autocorrelation (``err = σ √(2 τ_int / N)``, see ``autocorr``); ``burn_in`` records are dropped
first.  Keys read from the history, when present: ``accept_prob`` (or ``acceptance``),
``plaquette``, ``charge``, ``sin_charge``, ``dH``, ``loss``, and ``time_s`` (wall time of each
step, for per-second rates).

Exact values: 2D U(1) plaquette and ⟨Q²⟩ in finite volume (``group="U1"``, ``dims=2`` and
``volume`` = number of plaquettes); SU(3) strong-coupling plaquette for ``β ≤ 1``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import exact
from .autocorr import integrated_autocorr_time, mean_error
from .history import History, atomic_write_bytes, process_rank

__all__ = ["format_summary", "observable_summary", "summarize", "write_summary"]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def observable_summary(x: NDArray[Any], c: float = 5.0) -> dict[str, Any]:
    """``mean``, ``err`` (τ-corrected), ``naive_err``, ``tau`` ± ``tau_err``, ``n_eff``."""
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    me = mean_error(a, c)
    return {
        "mean": me.mean,
        "err": _finite(me.err),
        "naive_err": me.naive_err,
        "tau": _finite(me.tau),
        "tau_err": _finite(me.tau_err),
        "n_eff": me.n_eff,
    }


def summarize(
    history: History,
    *,
    beta: float | None = None,
    group: str | None = None,
    dims: int | None = None,
    volume: int | None = None,
    burn_in: int = 0,
    c: float = 5.0,
) -> dict[str, Any]:
    """Summary of a sampling run (see the module docstring for keys and exact values)."""
    out: dict[str, Any] = {"n_records": 0, "burn_in": burn_in}

    def get(key: str) -> NDArray[Any] | None:
        if key not in history:
            return None
        v = history[key][burn_in:]
        return v if len(v) >= 2 else None

    acc = get("accept_prob")
    if acc is None:
        acc = get("acceptance")
    if acc is not None:
        out["n_records"] = len(acc)
        out["acceptance"] = observable_summary(acc, c)

    plaq = get("plaquette")
    if plaq is not None:
        out["n_records"] = max(out["n_records"], len(plaq))
        s = observable_summary(plaq, c)
        ref = _exact_plaquette(beta, group, dims, volume)
        if ref is not None:
            s["exact"] = ref[0]
            s["exact_kind"] = ref[1]
            if s["err"]:
                s["deviation_sigma"] = (s["mean"] - ref[0]) / s["err"]
        out["plaquette"] = s

    q = get("charge")
    if q is not None:
        qs = q.reshape(len(q), -1).astype(np.float64)
        ac = integrated_autocorr_time(qs, c)
        dq = np.abs(np.diff(qs, axis=0))
        q2 = observable_summary(qs**2, c)
        out["charge"] = {
            "tau_int": _finite(ac.tau),
            "tau_int_err": _finite(ac.tau_err),
            "window": ac.window,
            "converged": ac.converged,
            "n_eff": ac.n_eff,
            "mean_abs_dq": float(dq.mean()),
            "q2": q2,
        }
        if group is not None and group.upper() == "U1" and dims == 2 and beta and volume:
            out["charge"]["q2"]["exact"] = exact.u1_q2(beta, volume)
        times = get("time_s")
        if times is not None:
            total = float(np.sum(times))
            out["time_s"] = total
            if total > 0:
                out["charge"]["n_eff_per_s"] = ac.n_eff / total

    sq = get("sin_charge")
    if sq is not None:
        ac = integrated_autocorr_time(sq.reshape(len(sq), -1), c)
        out["sin_charge"] = {"tau_int": _finite(ac.tau), "tau_int_err": _finite(ac.tau_err)}

    dh = get("dH")
    if dh is not None:
        d = dh.reshape(len(dh), -1).astype(np.float64)
        out["dH"] = {
            "mean": float(d.mean()),
            "rms": float(np.sqrt((d**2).mean())),
            "exp_minus_dH": observable_summary(np.exp(-np.clip(d, -700, 700)), c),
        }

    loss = get("loss")
    if loss is not None:
        tail = loss.reshape(len(loss), -1)[-max(1, len(loss) // 10) :]
        out["loss"] = {"last": float(np.mean(loss[-1])), "mean_last_10pct": float(tail.mean())}
    return out


def _exact_plaquette(
    beta: float | None, group: str | None, dims: int | None, volume: int | None
) -> tuple[float, str] | None:
    if beta is None or group is None or beta <= 0:
        return None
    g = group.upper()
    if g == "U1" and dims == 2:
        if volume:
            return exact.u1_plaquette(beta, volume), "finite volume"
        return exact.u1_plaquette(beta), "infinite volume"
    if g == "SU3" and beta <= 1.0:
        return exact.su3_strong_coupling_plaquette(beta), "strong coupling O(β²)"
    return None


def write_summary(
    path: str | os.PathLike[str], summary: dict[str, Any], *, rank: int | None = None
) -> Path | None:
    """Write ``summary`` as indented JSON, atomically, from rank 0 only."""
    if (process_rank() if rank is None else rank) != 0:
        return None
    text = json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


def format_summary(summary: dict[str, Any], keys: Sequence[str] = ()) -> str:
    """Human-readable lines: ``name: mean ± err (τ = …)`` for the observables present."""
    lines = []
    for key in keys or ("acceptance", "plaquette"):
        s = summary.get(key)
        if not s:
            continue
        line = (
            f"{key}: {s['mean']:.6f} ± {s['err'] or 0.0:.6f} (τ_int {s['tau'] or float('inf'):.2f})"
        )
        if "exact" in s:
            line += f"; exact {s['exact']:.6f} ({s['exact_kind']})"
            if "deviation_sigma" in s:
                line += f", {s['deviation_sigma']:+.2f}σ"
        lines.append(line)
    ch = summary.get("charge")
    if ch:
        tau = ch["tau_int"]
        tau_s = "inf" if tau is None else f"{tau:.2f} ± {ch['tau_int_err'] or 0.0:.2f}"
        lines.append(
            f"charge: τ_int {tau_s}, ⟨|ΔQ|⟩ {ch['mean_abs_dq']:.4f}, N_eff {ch['n_eff']:.1f}"
        )
    return "\n".join(lines)
