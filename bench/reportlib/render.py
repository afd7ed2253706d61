"""The report as markdown, and its PNG figures (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .references import PUBLISHED_SU3_PLAQUETTE

#: HMC τ_int(Q) on 16×16 from the issue: ≈ 60 trajectories at β = 4, × ≈ 4.7 per unit of β
TAU_REF_BETA4, TAU_REF_GROWTH = 60.0, 4.7
#: the goal: L2HMC's τ_int(Q) × cost per trajectory ≤ 1/10 of HMC's at β = 5
GOAL_IMPROVEMENT, GOAL_BETA = 10.0, 5.0

SECTIONS = (
    "Summary",
    "Machine and run",
    "Compile latency",
    "Runtime throughput",
    "Against the seed",
    "U(1) physics",
    "SU(3)",
    "GPU run",
    "Reproduce",
)


#: the samplers of the physics section, in table order
SAMPLER_LABELS = (
    ("l2hmc", "L2HMC"),
    ("leapfrog", "leapfrog, trained ε, no networks"),
    ("hmc", "HMC"),
    ("hmc_long", "HMC long"),
)


def tau_reference(beta: float) -> float:
    return TAU_REF_BETA4 * TAU_REF_GROWTH ** (beta - 4.0)


# -- number formatting ---------------------------------------------------------------------------
def num(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits (no exponent between 1e-3 and 1e5)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if x == 0:
        return "0"
    mag = abs(x)
    if mag >= 1e5 or mag < 1e-3:
        return f"{x:.{digits}g}"
    if mag >= 10 ** (digits - 1):
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def pm(mean: float | None, err: float | None) -> str:
    """``mean ± err`` with the mean rounded to the error's second significant digit."""
    if mean is None:
        return "–"
    if not err or not math.isfinite(err):
        return f"{mean:.5g}"
    d = max(0, 1 - math.floor(math.log10(err)))
    return f"{mean:.{d}f} ± {err:.{d}f}"


def sigma(s: float | None) -> str:
    return "–" if s is None or not math.isfinite(s) else f"{s:+.1f}σ"


def tau_text(t: dict[str, Any]) -> str:
    if t["value"] is None:
        return "∞ (Q frozen)"
    lower = "" if t["converged"] else "≥ "
    return f"{lower}{pm(t['value'], t['err'])}"


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# -- figures -------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    _plt().close(fig)
    return path.name


def figures(results: dict[str, Any], out: Path) -> dict[str, str]:
    """Every figure the results allow; name → file name (relative to ``out``)."""
    plt = _plt()
    figs: dict[str, str] = {}
    fe = results.get("frontend")
    if fe and fe["specs"]:
        fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
        names = [Path(r["spec"]).stem for r in fe["specs"]]
        y = np.arange(len(names))
        for i, key in enumerate(("check", "compile")):
            vals = [(r[key] or {}).get("median_s", np.nan) for r in fe["specs"]]
            ax.barh(y + 0.4 * i, vals, height=0.4, label=f"l2hmcc {key}")
        ax.axvline(fe["goal_s"], color="k", ls=":", label=f"goal {fe['goal_s']} s")
        ax.set_yticks(y + 0.2, names)
        ax.set_xlabel("median wall time of the whole process [s]")
        ax.legend(fontsize=8)
        figs["frontend"] = _save(fig, out / "compile-latency.png")
    tp = results.get("throughput")
    if tp and tp["results"]:
        ok = [r for r in tp["results"] if "error" not in r]
        rows = [r for r in ok if r["kind"] == "l2hmc"]
        hm = [r for r in ok if r["kind"] == "hmc"]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained")
        for ax, key, title, data in (
            (axes[0], "train", "L2HMC train steps/s", rows),
            (axes[1], "traj", "L2HMC trajectories/s", rows),
            (axes[2], "traj", "HMC trajectories/s", hm),
        ):
            labels = [f"{r['workload']} {r['label']}" for r in data]
            vals = [1.0 / r[key]["cpu_s"] if r[key]["cpu_s"] > 0 else np.nan for r in data]
            ax.barh(np.arange(len(labels)), vals, color="tab:blue")
            ax.set_yticks(np.arange(len(labels)), labels, fontsize=7)
            ax.set_xscale("log")
            ax.set_title(title + " (CPU time)" if tp["device"] == "cpu" else title, fontsize=9)
        figs["throughput"] = _save(fig, out / "throughput.png")
    ph = results.get("physics")
    if ph and ph["results"]:
        res = ph["results"]
        betas = np.array([r["beta"] for r in res])
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
        ax = axes[0]
        for key, label, marker in (
            ("hmc", "HMC (same trajectories)", "o"),
            ("hmc_long", "HMC (long run)", "s"),
            ("l2hmc", "L2HMC", "^"),
            ("leapfrog", "trained ε, no networks", "v"),
        ):
            if key not in res[0]:
                continue
            vals = [r[key]["tau_q"]["value"] for r in res]
            errs = [r[key]["tau_q"]["err"] or 0 for r in res]
            ok = [v is not None for v in vals]
            b = betas[ok]
            v = np.array([x for x in vals if x is not None])
            e = np.array([errs[i] for i in range(len(vals)) if ok[i]])
            conv = [r[key]["tau_q"]["converged"] for r, k in zip(res, ok, strict=True) if k]
            ax.errorbar(b, v, yerr=e, marker=marker, ls="-", label=label, capsize=3)
            for bi, vi, c in zip(b, v, conv, strict=True):
                if not c:
                    ax.annotate("≥", (bi, vi), textcoords="offset points", xytext=(4, 4))
        grid = np.linspace(betas.min(), betas.max(), 50)
        ax.plot(grid, tau_reference(grid), "k:", label="HMC reference 60·4.7^(β−4)")
        ax.set_yscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel("τ_int(Q) [trajectories]")
        ax.legend(fontsize=7)
        ax = axes[1]
        for key, label, marker in (
            ("hmc", "HMC", "o"),
            ("l2hmc", "L2HMC", "^"),
            ("leapfrog", "trained ε, no networks", "v"),
        ):
            if key not in res[0]:
                continue
            vals = [r[key]["cost_per_eff_s"] for r in res]
            ok = [v is not None for v in vals]
            ax.plot(betas[ok], [v for v in vals if v is not None], marker=marker, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("β")
        basis = res[0].get("cost_basis", "cpu")
        ax.set_ylabel(f"{'CPU' if basis == 'cpu' else 'wall'} s per effective sample of Q")
        ax.legend(fontsize=7)
        figs["tau"] = _save(fig, out / "tau-and-cost.png")

        series = ph.get("_series") or {}
        if series:
            beta = max(series)
            s = series[beta]
            fig, axes = plt.subplots(2, 1, figsize=(9, 4), sharex=True, layout="constrained")
            n = s["l2hmc_charge"].shape[0]
            for ax, key, title in ((axes[0], "hmc", "HMC"), (axes[1], "l2hmc", "L2HMC")):
                q = s[f"{key}_charge"][:n]
                for c in range(min(3, q.shape[1])):
                    ax.plot(np.rint(q[:, c]), lw=0.7)
                ax.set_ylabel(f"Q ({title})")
            axes[1].set_xlabel(f"trajectory (β = {beta})")
            figs["charge"] = _save(fig, out / "charge-history.png")

            fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
            from l2hmcc.runtime.common.autocorr import autocorrelation

            for key, label in (("hmc", "HMC"), ("l2hmc", "L2HMC"), ("leapfrog", "no networks")):
                if f"{key}_charge" not in s:
                    continue
                q = np.rint(s[f"{key}_charge"][:n])
                rho = autocorrelation(q[n // 10 :], max_lag=min(n // 2, 400))
                ax.plot(rho, label=label)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xlabel(f"lag [trajectories] (β = {beta})")
            ax.set_ylabel("ρ_Q(t)")
            ax.legend(fontsize=8)
            figs["rho"] = _save(fig, out / "charge-autocorrelation.png")

        curves = ph.get("train_curves") or {}
        if curves.get("loss"):
            fig, axes = plt.subplots(1, 3, figsize=(12, 3), layout="constrained")
            steps = np.arange(len(curves["loss"]))
            for ax, key, label in (
                (axes[0], "loss", "loss"),
                (axes[1], "accept_prob", "acceptance"),
                (axes[2], "dQ", "|ΔQ| per trajectory"),
            ):
                if key in curves:
                    y = np.asarray(curves[key])
                    w = max(1, len(y) // 100)
                    sm = np.convolve(y, np.ones(w) / w, mode="valid")
                    ax.plot(steps[: len(sm)], sm)
                    if key == "dQ":
                        ax.set_yscale("symlog", linthresh=1e-3)
                    ax.set_title(label, fontsize=9)
                    ax.set_xlabel("train step")
            if "beta" in curves:
                tw = axes[1].twinx()
                tw.plot(steps, curves["beta"], "k:", lw=0.8)
                tw.set_ylabel("β (dotted)")
            figs["training"] = _save(fig, out / "training.png")
    return figs


# -- markdown ------------------------------------------------------------------------------------
def _machine(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = m["versions"]
    gpu = m["gpu"]
    rows = [
        ["CPU", f"{m['cpu']} ({m['cores']} cores, {m['cores_usable']} usable)"],
        ["memory", f"{num(m['memory_gib'])} GiB"],
        [
            "GPU",
            "none"
            if gpu is None
            else f"{gpu['count']}× {gpu['name']} ({gpu['memory_gib']} GiB, CUDA {gpu['cuda']})",
        ],
        [
            "load average (1, 5, 15 min)",
            f"start {m['load_average_start']}, end {results.get('load_average_end')}",
        ],
        ["platform", m["platform"]],
        ["versions", ", ".join(f"{k} {val}" for k, val in v.items())],
        [
            "git",
            f"{m['git']['describe']} ({m['git']['modified_tracked_files']} modified tracked files)",
        ],
        ["threads", f"torch {m['torch_threads']}, OMP_NUM_THREADS={m['env']['OMP_NUM_THREADS']}"],
        ["device", results["device"]],
        ["mode", results["mode"]],
        [
            "report time",
            f"{num(results['wall_s'] / 60)} min wall, {num(results['cpu_s'] / 60)} min process CPU",
        ],
    ]
    text = table(["", ""], rows)
    text += f"\n\nCommand: `{m['command']}`"
    timings = results.get("section_times") or {}
    if timings:
        text += "\n\nSection times (wall / CPU): " + ", ".join(
            f"{k} {num(w / 60, 2)}/{num(c / 60, 2)} min" for k, (w, c) in timings.items()
        )
    return text


def _frontend(fe: dict[str, Any] | None, figs: dict[str, str]) -> str:
    if not fe:
        return "Not run."

    def cell(t: dict[str, float] | None) -> list[str]:
        if t is None:
            return ["failed", "", ""]
        return [f"{t['median_s']:.3f}", f"{t['min_s']:.3f}", f"{t['cpu_median_s']:.3f}"]

    rows = [
        [f"`{r['spec']}`", *cell(r["check"]), *cell(r["compile"]), r["target"]] for r in fe["specs"]
    ]
    rows += [[f"({k})", *cell(t), "", "", "", ""] for k, t in fe["floors"].items()]
    worst = max(
        [r[k]["median_s"] for r in fe["specs"] for k in ("check", "compile") if r[k]] or [math.nan]
    )
    text = (
        f"Whole processes (`{fe['command']} check SPEC`, `{fe['command']} compile SPEC --target T -o DIR "
        f"--force`), one warm-up run then {fe['runs']} runs each; seconds (median wall / min wall "
        "/ median CPU of the child).\n\n"
    )
    text += table(["spec", "check", "min", "CPU", "compile", "min", "CPU", "target"], rows)
    verdict = "within" if worst <= fe["goal_s"] else "over"
    text += f"\n\nWorst median {worst:.3f} s: {verdict} the {fe['goal_s']} s goal."
    if "frontend" in figs:
        text += f"\n\n![compile latency]({figs['frontend']})"
    return text


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}×"


def _throughput(tp: dict[str, Any] | None, figs: dict[str, str]) -> str:
    if not tp:
        return "Not run."
    failed = [r for r in tp["results"] if "error" in r]
    res = [r for r in tp["results"] if "error" not in r]
    cpu = tp["device"] == "cpu"
    text = (
        "Fastest of the interleaved rounds (median in parentheses); "
        + (
            "process CPU time (one thread; robust to other load) and wall time. "
            if cpu
            else "wall time (CUDA synchronised). "
        )
        + f"{tp['plan']['rounds']} rounds of {tp['plan']['n_train']} train step(s) and "
        f"{tp['plan']['n_traj']} trajectory(ies) per L2HMC variant, {tp['plan']['hmc_traj']} "
        "trajectories per HMC variant. The first call (compilation, cold or warm inductor cache) "
        "is listed on its own."
    )
    skipped = [
        w
        for w in tp["plan"]["workloads"]
        if tp["plan"]["compiled"] and w not in tp["plan"]["l2hmc_compiled"]
    ]
    if skipped:
        text += (
            f" Compiled L2HMC variants of {', '.join(skipped)} are not measured in this mode: "
            "compiling their layers (complex arithmetic, for which inductor generates no fused "
            "code) had not finished after 18 min wall (≈ 9 min CPU) of the first compiled SU(3) "
            "variant in a trial of this mode on this 2-core machine; the full mode measures them."
        )
    text += "\n\n"
    key = "cpu_s" if cpu else "wall_s"
    med = "cpu_median_s" if cpu else "wall_median_s"
    rows = []
    for r in (x for x in res if x["kind"] == "l2hmc"):
        rows.append(
            [
                r["workload"],
                f"{'×'.join(map(str, r['shape']))} ×{r['chains']}, {r['layers']} layers, {r['parameters'] / 1e6:.2f} M params",
                r["label"],
                f"{r['train'][key]:.3f} ({r['train'][med]:.3f})",
                f"{r['train']['wall_s']:.3f}",
                f"{1 / r['train'][key]:.3g}",
                f"{r['traj'][key]:.4f} ({r['traj'][med]:.4f})",
                f"{r['traj']['wall_s']:.4f}",
                f"{1 / r['traj'][key]:.3g}",
                f"{r['first_train_s']:.1f} / {r['first_traj_s']:.1f}",
            ]
        )
    unit = "CPU s" if cpu else "s"
    text += "**L2HMC**\n\n" + table(
        [
            "workload",
            "size",
            "variant",
            f"train {unit}/step",
            "wall s",
            "steps/s",
            f"{unit}/trajectory",
            "wall s",
            "traj/s",
            "first train / traj s",
        ],
        rows,
    )
    rows = []
    for r in (x for x in res if x["kind"] == "hmc"):
        rows.append(
            [
                r["workload"],
                f"{'×'.join(map(str, r['shape']))} ×{r['chains']}, {r['leapfrog_steps']} steps of ε = {r['step_size']}",
                r["label"],
                f"{1e3 * r['traj'][key]:.2f} ({1e3 * r['traj'][med]:.2f})",
                f"{1e3 * r['traj']['wall_s']:.2f}",
                f"{1 / r['traj'][key]:.3g}",
                num(r["acceptance"], 2),
                f"{r['first_two_s']:.1f}",
            ]
        )
    text += "\n\n**HMC**\n\n" + table(
        [
            "workload",
            "size",
            "variant",
            "ms/trajectory" + (" (CPU)" if cpu else ""),
            "wall ms",
            "traj/s",
            "acceptance",
            "first two s",
        ],
        rows,
    )
    # ratios
    by = {(r["kind"], r["workload"], r["label"]): r for r in res}
    rows = []
    for kind, fields in (("l2hmc", ("train", "traj")), ("hmc", ("traj",))):
        for wl in sorted({r["workload"] for r in res if r["kind"] == kind}):
            for f in fields:

                def t(label: str, f: str = f, wl: str = wl, kind: str = kind) -> float | None:
                    r = by.get((kind, wl, label))
                    return r[f][key] if r else None

                rows.append(
                    [
                        f"{'L2HMC' if kind == 'l2hmc' else 'HMC'} {wl} {'train step' if f == 'train' else 'trajectory'}",
                        _ratio(t("fp32 eager"), t("fp32 compiled")),
                        _ratio(t("fp64 eager"), t("fp64 compiled")),
                        _ratio(t("fp64 eager"), t("fp32 eager")),
                        _ratio(t("fp64 compiled"), t("fp32 compiled")),
                        _ratio(t("fp32 compiled"), t("fp32+bf16 nets compiled")),
                    ]
                )
    text += (
        "\n\n**Ratios** (speed-ups from the same run; > 1: the second variant is faster)\n\n"
        + table(
            [
                "",
                "compiled vs eager, fp32",
                "compiled vs eager, fp64",
                "fp32 vs fp64, eager",
                "fp32 vs fp64, compiled",
                "bf16 nets vs fp32, compiled",
            ],
            rows,
        )
    )
    if failed:
        text += "\n\n**Failed variants**\n\n" + "\n".join(
            f"* {r['kind']} {r['workload']} {r['label']}: `{r['error']}`" for r in failed
        )
    text += _cost(tp.get("cost"))
    if "throughput" in figs:
        text += f"\n\n![throughput]({figs['throughput']})"
    return text


def _times(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}×"


def _cost(cost: dict[str, Any] | None) -> str:
    """The cost figures of the same run (``reportlib/cost.py``): L2HMC per force against HMC,
    networks against their FLOP floor, SU(3) compiled against eager."""
    if not cost:
        return ""
    rows = cost["rows"]
    cpu = cost["device"] == "cpu"
    unit = "CPU ms" if cpu else "ms"
    text = (
        "\n\n**L2HMC against HMC, per force evaluation; networks against their FLOP floor** "
        f"(`bench/bench_cost{'' if cpu else '_gpu'}.py`'s figures, measured in this run on "
        f"{cost['device']}"
        + (", one thread, process CPU time" if cpu else ", wall time, CUDA synchronised")
        + "; U(1) 16×16, 8 layers, merged directions; L2HMC `network none` (the compiled "
        "proposal: 17 forces per trajectory) against the compiled HMC integrator (8 steps: 9 "
        "forces); `hidden = [16]` networks' added time against their matmul FLOPs at the "
        "matmul peak measured in the same run (the architecture's, and those the runtime "
        "computes: x-network heads of the moved links only); median of interleaved rounds)"
    )
    if cost["plan"].get("dry_run"):
        text += (
            ". **Dry run: torch.compile was disabled (this mode runs in seconds), so "
            "'compiled' is eager here and these figures mean nothing.**"
        )
    peaks = ", ".join(
        f"{r['precision']} {r['matmul_gflops']:.0f} GFLOP/s" for r in rows if r["section"] == "peak"
    )
    text += f"\n\nMatmul peak: {peaks or '–'}.\n\n"
    table_rows = []
    for r in (r for r in rows if r["section"] == "cost"):
        nets = f" + {r['network_precision']} networks" if r.get("network_precision") else ""
        first = r["cold_compile_s"]
        table_rows.append(
            [
                f"{r['chains']}",
                f"{r['precision']}{nets}",
                f"{r['l2hmc_ms_per_force']:.4f}",
                f"{r['hmc_ms_per_force']:.4f}",
                f"{r['l2hmc_over_hmc_per_force']:.2f}",
                f"{r['net_added_ms']:.2f}",
                f"{r['net_floor_ms']:.2f}",
                f"{r['net_over_floor']:.1f}×",
                _times(r.get("net_over_computed_floor")),
                " / ".join(f"{first[k]:.1f}" for k in ("none", "hidden16", "hmc")),
                f"{r['load']:.1f}",
            ]
        )
    text += table(
        [
            "chains",
            "precision",
            f"L2HMC {unit}/force",
            f"HMC {unit}/force",
            "ratio",
            f"networks add {unit}",
            f"FLOP floor {unit}",
            "× floor",
            "× floor of the FLOPs computed",
            "first call, wall s (none / hidden16 / HMC)",
            "load",
        ],
        table_rows,
    )
    su3 = [r for r in rows if r["section"] == "su3"]
    if su3:
        text += (
            "\n\n**SU(3) compiled against eager** (`train.compile`; 4 layers, `hidden = [16]`, "
            "merged directions, β = 6; trajectory: draw, proposal without gradients, accept; "
            "median of interleaved rounds; the first call, with compilation, on its own)\n\n"
        )
        text += table(
            [
                "lattice × chains",
                "precision",
                f"trajectory eager / compiled {unit}",
                "speed-up",
                f"train step eager / compiled {unit}",
                "speed-up",
                "first compiled trajectory / train step, wall s",
                "load",
            ],
            [
                [
                    f"{'×'.join(map(str, r['shape']))} ×{r['chains']}",
                    r["precision"],
                    f"{1e3 * r['trajectory_eager_s']:.1f} / {1e3 * r['trajectory_compiled_s']:.1f}",
                    f"{r['trajectory_speedup']:.2f}×",
                    f"{1e3 * r['train_eager_s']:.1f} / {1e3 * r['train_compiled_s']:.1f}",
                    f"{r['train_speedup']:.2f}×",
                    f"{r['trajectory_compiled_first_s']:.1f} / {r['train_compiled_first_s']:.1f}",
                    f"{r['load']:.1f}",
                ]
                for r in su3
            ],
        )
    return text


def _seed_side_by_side(cost: dict[str, Any] | None) -> str | None:
    """The seed timed beside ours in this run (``bench_cost.seed_section`` rows), or None."""
    if not cost:
        return None
    rows = [r for r in cost["rows"] if r["section"] == "seed"]
    timed = [r for r in rows if "note" not in r]
    if not timed:
        notes = [r["note"] for r in rows if "note" in r]
        return (
            None
            if not notes
            else f"No side-by-side figure exists: {notes[0].removeprefix('no side-by-side figure exists: ')}."
        )
    text = (
        "The seed (PyPI `l2hmc` 0.13.0, in `bench/.seed-venv`) run beside ours in this report "
        "(`bench_cost.seed_section`: its timed rounds alternate with ours), on "
        "`specs/u1-seed.l2h`'s workload: U(1) 16×16, 128 chains, 8 layers, the seed's network "
        f"({timed[0]['seed_parameters']} parameters), fp32, process CPU seconds, one thread:\n\n"
    )
    return text + table(
        ["unit", "ours", "ours s", "seed s", "speed-up", "our first call s", "load"],
        [
            [
                "train step" if r["unit"] == "train" else "trajectory",
                r["ours"],
                f"{r['ours_s']:.3f}",
                f"{r['seed_s']:.3f}",
                f"{r['speedup']:.2f}×",
                f"{r['ours_first_call_s']:.1f}",
                f"{r['load']:.1f}",
            ]
            for r in timed
        ],
    )


def _seed(tp: dict[str, Any] | None) -> str:
    if not tp:
        return "Not run."
    res = [r for r in tp["results"] if r["kind"] == "l2hmc" and "error" not in r]
    cpu = tp["device"] == "cpu"
    key = "cpu_s" if cpu else "wall_s"
    rows = []
    for r in res:
        seed = tp["seed"].get(r["workload"])
        if not seed:
            continue
        rows.append(
            [
                r["workload"],
                r["label"],
                f"{seed['train_s']:.2f}",
                f"{r['train'][key]:.3f}",
                f"{seed['train_s'] / r['train'][key]:.1f}×",
                f"{seed['traj_s']:.2f}",
                f"{r['traj'][key]:.4f}",
                f"{seed['traj_s'] / r['traj'][key]:.1f}×",
            ]
        )
    same = all(
        r["chains"] == (128 if r["workload"] == "u1" else 8)
        and r["shape"] == ([16, 16] if r["workload"] == "u1" else [4, 4, 4, 4])
        for r in res
    )
    side = _seed_side_by_side(tp.get("cost"))
    if not rows and side is not None:
        return side
    if not rows:
        return (
            "No side-by-side figure exists: the seed (PyPI `l2hmc` 0.13.0) did not run beside "
            "ours in this report. Timings of the seed taken on another day are not comparable "
            "and are not quoted. `bench/setup-seed.sh` installs the seed into its own venv, and "
            "`bench/bench_cost.py` then runs it interleaved with ours (its seed section)."
        )
    text = (
        "The seed (PyPI `l2hmc` 0.13.0, framework=pytorch), run beside ours in this report, "
        "on the same architectures "
        + ("(process CPU time, one thread)" if cpu else f"(wall time on {tp['device']})")
        + ":\n\n"
    )
    if not same:
        text += "**These sizes differ from the seed's workloads (this mode scales them): the ratios are not comparable.**\n\n"
    text += table(
        [
            "workload",
            "ours",
            "seed s/step",
            "ours s/step",
            "speed-up",
            "seed s/traj",
            "ours s/traj",
            "speed-up",
        ],
        rows,
    )
    return text


def _physics(ph: dict[str, Any] | None, figs: dict[str, str]) -> str:
    if not ph:
        return "Not run."
    cfg = ph["config"]
    tr = cfg["train"]
    basis = ph["results"][0].get("cost_basis", "cpu") if ph["results"] else "cpu"
    unit = "CPU" if basis == "cpu" else "wall"
    timed = "process CPU time" if basis == "cpu" else "wall time (device synchronised)"
    total_cpu = sum(t["cpu_s"] for t in ph["training"])
    total_steps = sum(t["steps"] for t in ph["training"])
    net = cfg["network"]
    text = (
        f"Spec `{cfg['spec']}`"
        + (f" with `--set {' --set '.join(cfg['overrides'])}`" if cfg["overrides"] else "")
        + f": {'×'.join(map(str, cfg['shape']))} lattice, {cfg['dynamics']['leapfrog']} layers "
        f"({cfg['dynamics']['directions']} directions, {cfg['dynamics']['x_update']} x update, "
        f"ε₀ = {cfg['dynamics']['step_size']}), networks: hidden {list(net['hidden'])} "
        f"{net['activation']}"
        + (f", conv {list(net['conv_filters'])}" if net["conv_filters"] else "")
        + f" ({ph['parameters']} trainable parameters); loss {cfg['loss']['form']} with weights "
        f"plaquette {cfg['loss']['plaquette']}, charge {cfg['loss']['charge']}; Adam lr {tr['lr']} "
        f"({tr['lr_schedule']}), clip {tr['clip_norm']}, {tr['precision']}, compile {tr['compile']}. "
        f"β annealed through the eras {list(cfg['beta']['values']) or [cfg['beta']['start']]}.\n\n"
        f"**Training budget:** {total_steps} steps × {tr['chains']} chains in "
        f"{num(total_cpu / 60)} min CPU. Measurement: {cfg['evaluate']['steps']} trajectories × "
        f"{cfg['evaluate']['chains']} chains per sampler (first 10 % dropped), interleaved in "
        f"blocks and timed in {timed}; HMC ε tuned to acceptance "
        f"{cfg['hmc'].get('target_acceptance')} at trajectory length "
        f"{cfg['hmc']['trajectory_length']} (dual averaging; tuning trajectories not counted, "
        "compiled integrator); the long HMC run continues the same chains. L2HMC layers: "
        f"{ph.get('compile_eval', 'as the spec')}.\n\n"
    )
    if ph.get("training_ablation"):
        abl_cpu = sum(t["cpu_s"] for t in ph["training_ablation"])
        text += (
            "**Ablation:** the same spec without networks (`Dynamics(network=None)`: only the "
            "integrator's own parameters train, the per-layer step sizes ε_k and, with "
            "`dynamics.fourier`, the per-layer Fourier masses, with the same loss, schedule and "
            f"steps; {num(abl_cpu / 60)} min CPU): what the networks add over a learned "
            "leapfrog of the same length.\n\n"
        )
    rows = [
        [
            label,
            num(t["beta"]),
            str(t["steps"]),
            f"{t['cpu_s']:.0f} / {t['wall_s']:.0f}",
            num(t["acceptance"]),
            num(t["dQ"]),
            num(t["loss"]),
            ", ".join(f"{e:.3f}" for e in t["step_sizes"]),
        ]
        for label, recs in (("L2HMC", ph["training"]), ("no networks", ph.get("training_ablation")))
        for t in recs or []
    ]
    text += "**Training** (acceptance, |ΔQ| and loss: mean of the era's last 10 %)\n\n" + table(
        ["sampler", "β", "steps", "CPU / wall s", "acceptance", "⟨|ΔQ|⟩", "loss", "ε_k"], rows
    )
    rows = []
    for r in ph["results"]:
        for key, label in SAMPLER_LABELS:
            if key not in r:
                continue
            s = r[key]
            forces = r.get(f"{key}_forces_per_traj") or r["hmc_forces_per_traj"]
            rows.append(
                [
                    num(r["beta"]),
                    label,
                    f"{s['trajectories']}×{s['chains']}",
                    num(s["acceptance"]),
                    f"{pm(s['plaquette']['mean'], s['plaquette']['err'])} ({sigma(s['plaquette']['sigma'])})",
                    f"{pm(s['q2']['mean'], s['q2']['err'])} ({sigma(s['q2']['sigma'])})",
                    num(s["tunneling_rate"]),
                    tau_text(s["tau_q"]) + f" (W={s['tau_q']['window']})",
                    "" if key == "hmc_long" else f"{1e3 * s['cost_s']:.2f}",
                    ""
                    if key == "hmc_long"
                    else num(s["cost_per_eff_s"] and 1e3 * s["cost_per_eff_s"]),
                    str(forces),
                ]
            )
        ex = ph["results"][0]
        _ = ex
    text += (
        "\n\n**Results.** ⟨cos θ_P⟩ and ⟨Q²⟩ against their exact finite-volume values "
        "(character expansion, `common.exact`; deviation in units of the τ-corrected error); "
        "tunneling rate = fraction of trajectories (all chains) whose integer Q changed; τ_int(Q) "
        "with the Madras–Sokal window W (c = 5; '≥': the window did not converge below T/2, a "
        f"lower bound); cost = {timed}, ms per trajectory of all chains; per effective sample = "
        "cost × 2τ / chains.\n\n"
    )
    text += table(
        [
            "β",
            "sampler",
            "traj×chains",
            "acc",
            "⟨cos θ_P⟩ (vs exact)",
            "⟨Q²⟩ (vs exact)",
            "tunnel",
            "τ_int(Q)",
            f"{unit} ms/traj",
            f"{unit} ms/eff. sample",
            "forces/traj",
        ],
        rows,
    )
    ablation = bool(ph["results"]) and "leapfrog" in ph["results"][0]
    rows = []
    for r in ph["results"]:
        exact = [
            f"{num(r['l2hmc']['plaquette']['exact'], 6)}",
            f"{num(r['l2hmc']['q2']['exact'], 4)}",
        ]
        rows.append(
            [
                num(r["beta"]),
                *exact,
                f"{num(tau_reference(r['beta']), 3)}",
                _x(r["improvement_tau"]),
                _x(r["improvement_forces"]),
                _x(r["improvement_cost"]),
                f"≥ {GOAL_IMPROVEMENT:.0f}×" if abs(r["beta"] - GOAL_BETA) < 1e-9 else "",
                *(
                    [_x(r["leapfrog_vs_hmc"]["tau"]), _x(r["leapfrog_vs_hmc"]["cost"])]
                    if ablation
                    else []
                ),
            ]
        )
    text += "\n\n**L2HMC against HMC** (ratios > 1 favour L2HMC)\n\n" + table(
        [
            "β",
            "exact ⟨cos θ_P⟩",
            "exact ⟨Q²⟩",
            "HMC τ reference",
            "τ_HMC / τ_L2HMC",
            "per force evaluation",
            f"per {unit} second",
            "goal",
            *(["no networks: τ ratio", f"no networks: per {unit} second"] if ablation else []),
        ],
        rows,
    )
    text += "\n\n" + _verdict(ph)
    for key, alt in (
        ("tau", "tau and cost"),
        ("charge", "charge history"),
        ("rho", "autocorrelation"),
        ("training", "training"),
    ):
        if key in figs:
            text += f"\n\n![{alt}]({figs[key]})"
    return text


def _x(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g}×"


def _verdict(ph: dict[str, Any]) -> str:
    lines = []
    for r in ph["results"]:
        l2, hm = r["l2hmc"], r["hmc"]
        bad = [
            f"{label} {what} off by {s:+.1f}σ"
            for key, label in SAMPLER_LABELS
            if key in r
            for what, s in (
                ("plaquette", r[key]["plaquette"]["sigma"]),
                ("⟨Q²⟩", r[key]["q2"]["sigma"]),
            )
            if s is not None and abs(s) > 3
        ]
        imp = r["improvement_cost"]
        lines.append(
            f"* β = {num(r['beta'])}: "
            + (
                "τ_int(Q) × cost: L2HMC is "
                + (
                    f"{imp:.3g}× HMC's efficiency"
                    if imp is not None
                    else "not comparable (a τ is infinite)"
                )
            )
            + (
                f"; per trajectory τ_HMC/τ_L2HMC = {r['improvement_tau']:.3g}"
                if r["improvement_tau"] is not None
                else ""
            )
            + ("; " + ", ".join(bad) if bad else "; plaquette and ⟨Q²⟩ within 3σ of exact for all")
            + (
                ""
                if l2["tau_q"]["converged"] and hm["tau_q"]["converged"]
                else " (a τ window did not converge: lower bound)"
            )
            + "."
        )
    goal = [r for r in ph["results"] if abs(r["beta"] - GOAL_BETA) < 1e-9]
    if goal:
        imp = goal[0]["improvement_cost"]
        met = imp is not None and imp >= GOAL_IMPROVEMENT
        lines.append(
            f"\n**Goal at β = {GOAL_BETA:g}** (L2HMC τ_int(Q) × cost ≤ 1/{GOAL_IMPROVEMENT:.0f} of "
            f"HMC's): {'met' if met else 'not met'} in this budget "
            f"(measured {_x(imp)})."
        )
    else:
        lines.append(
            f"\nβ = {GOAL_BETA:g} was not measured in this mode: the goal is not assessed."
        )
    return "\n".join(lines)


def _su3(s3: dict[str, Any] | None) -> str:
    if not s3:
        return "Not run."
    cfg = s3["config"]
    text = (
        f"Spec `{cfg['spec']}`"
        + (f" with `--set {' --set '.join(cfg['overrides'])}`" if cfg["overrides"] else "")
        + f" and `lattice.beta=β`: {'×'.join(map(str, cfg['shape']))}, "
        f"{cfg['evaluate']['chains']} chains, {cfg['dynamics']['leapfrog']} layers, ε₀ = "
        f"{cfg['dynamics']['step_size']}, hidden {list(cfg['network']['hidden'])} "
        f"{cfg['network']['activation']}, {cfg['train']['precision']} (complex128 links for fp64), "
        f"{cfg['train']['steps']} L2HMC train steps from HMC-thermalised chains. HMC tuned to "
        f"acceptance {cfg['hmc'].get('target_acceptance')} at trajectory length 1, then "
        f"{s3['therm']} thermalisation trajectories; {s3['steps']} measured trajectories per "
        "sampler (first 10 % dropped).\n\n"
    )
    rows = []
    for r in s3["results"]:
        ref = r["reference"]
        for key, label in (("hmc", "HMC"), ("l2hmc", "L2HMC")):
            s = r[key]
            rows.append(
                [
                    num(r["beta"]),
                    label,
                    num(s["acceptance"]),
                    pm(s["plaquette"], s["err"]),
                    "–" if ref is None else f"{ref['value']:.5f} ({ref['kind']})",
                    sigma(s.get("sigma_vs_reference")),
                    f"{1e3 * s['cost_cpu_s']:.0f} / {1e3 * s['cost_wall_s']:.0f}",
                ]
            )
        rows.append(
            [num(r["beta"]), "L2HMC − HMC", "", "", "", sigma(r["l2hmc_minus_hmc_sigma"]), ""]
        )
    text += table(
        [
            "β",
            "sampler",
            "acceptance",
            "⟨Re tr U_P⟩/3",
            "reference",
            "deviation",
            "CPU / wall ms/traj",
        ],
        rows,
    )
    value, _, source = PUBLISHED_SU3_PLAQUETTE[6.0]
    text += (
        "\n\n**Volume dependence.** At β ≤ 1 the strong-coupling series is exact up to "
        "−5β⁴/93312 and finite-volume terms from surfaces wrapping the torus (O((β/18)^L)), both "
        f"far below the errors on 4⁴. The β = 6.0 reference, {value} ({source}), is a large-"
        "volume value; 4⁴ at β = 6 is a ≈ 0.37 fm box, deconfined (β_c(N_t = 4) ≈ 5.69), and the "
        "absent zero modes alone raise the plaquette by ≈ g²/(3V) ≈ 0.0013 at one loop, so the 4⁴ "
        f"plaquette is expected above {value:.4f} by O(10⁻³–10⁻²). That comparison is indicative; "
        "the test of the sampler at β = 6 is L2HMC against HMC on the same volume (last row)."
    )
    return text


def _gpu(results: dict[str, Any]) -> str:
    gpu = results["machine"]["gpu"]
    text = (
        "`bench/gpu_report.sh` runs this report in full mode on a CUDA node (H100/H200/A100): "
        "`python bench/report.py --full --device cuda`, i.e. larger batches and lattices in the "
        "throughput section (U(1) 16×16 seed network at 1024 chains, U(1) HMC 64×64, SU(3) 8⁴), "
        "`torch.compile` on CUDA, fp32 links with bf16 networks (autocast) as an extra variant, "
        "and the full physics budget of the spec. "
    )
    if gpu is None:
        text += (
            "**This report ran without a GPU**: no CUDA figures are in it. The script was written "
            "for a first run and checked here only on the CPU path (`DEVICE=cpu`, smoke mode)."
        )
    else:
        text += f"This report ran on {gpu['name']}."
    return text


def _reproduce(results: dict[str, Any]) -> str:
    cmds = results["commands"]
    return "\n".join(f"* {label}: `{cmd}`" for label, cmd in cmds)


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _summary(results: dict[str, Any]) -> str:
    """The headline numbers, each with the section it comes from."""
    lines = []
    fe = results.get("frontend")
    if fe and fe["specs"]:
        meds = [r[k]["median_s"] for r in fe["specs"] for k in ("check", "compile") if r[k]]
        cpus = [r[k]["cpu_median_s"] for r in fe["specs"] for k in ("check", "compile") if r[k]]
        lines.append(
            f"* **Compile latency:** every shipped spec checks and compiles in a whole process in "
            f"≤ {max(meds):.2f} s median wall, ≤ {max(cpus):.2f} s CPU (goal {fe['goal_s']} s "
            "wall; load average in the machine table)."
        )
    tp = results.get("throughput")
    if tp:
        key = "cpu_s" if tp["device"] == "cpu" else "wall_s"
        ok = [r for r in tp["results"] if "error" not in r]
        for wl, group in (("u1", "U(1)"), ("su3", "SU(3)")):
            e = _find(ok, kind="l2hmc", workload=wl, label="fp32 eager")
            c = _find(ok, kind="l2hmc", workload=wl, label="fp32 compiled")
            seed = tp["seed"].get(wl)
            if e and seed:
                label = f"{group} {'×'.join(map(str, e['shape']))} ×{e['chains']} chains"
                text = (
                    f"* **{label}, fp32:** train step {e['train'][key]:.3g} s eager"
                    + (f", {c['train'][key]:.3g} s compiled" if c else "")
                    + f" (seed {seed['train_s']} s); trajectory {e['traj'][key]:.3g} s eager"
                    + (f", {c['traj'][key]:.3g} s compiled" if c else "")
                    + f" (seed {seed['traj_s']} s)"
                )
                best_train = min(x["train"][key] for x in (e, c) if x)
                best_traj = min(x["traj"][key] for x in (e, c) if x)
                text += (
                    f": {seed['train_s'] / best_train:.1f}× and {seed['traj_s'] / best_traj:.1f}× "
                    "the seed's speed" + (" (CPU time, one thread)." if key == "cpu_s" else ".")
                )
                lines.append(text)
        for wl in ("u1", "su3"):
            e = _find(ok, kind="hmc", workload=wl, label="fp64 eager")
            c = _find(ok, kind="hmc", workload=wl, label="fp64 compiled")
            if e and c:
                lines.append(
                    f"* **HMC {wl}, fp64:** compiled {e['traj'][key] / c['traj'][key]:.2f}× eager."
                )
    ph = results.get("physics")
    if ph and ph["results"]:
        unit = "CPU" if ph["results"][0].get("cost_basis", "cpu") == "cpu" else "wall"
        parts = []
        for r in ph["results"]:
            parts.append(
                f"β = {num(r['beta'])}: τ_int(Q) L2HMC {tau_text(r['l2hmc']['tau_q'])} vs HMC "
                f"{tau_text(r['hmc']['tau_q'])}, per {unit} second {_x(r['improvement_cost'])}"
            )
        shape = "×".join(map(str, ph["config"]["shape"]))
        lines.append(
            f"* **U(1) {shape} physics** (ratios > 1 favour L2HMC): " + "; ".join(parts) + "."
        )
        goal = [r for r in ph["results"] if abs(r["beta"] - GOAL_BETA) < 1e-9]
        if goal:
            imp = goal[0]["improvement_cost"]
            met = imp is not None and imp >= GOAL_IMPROVEMENT
            lines.append(
                f"* **Goal** (≤ 1/{GOAL_IMPROVEMENT:.0f} of HMC's τ_int(Q) × cost at β = "
                f"{GOAL_BETA:g}): **{'met' if met else 'not met'}** ({_x(imp)})."
            )
        bad = [
            f"{key} β = {num(r['beta'])}"
            for r in ph["results"]
            for key, _ in SAMPLER_LABELS
            if key in r
            for what in ("plaquette", "q2")
            if r[key][what]["sigma"] is not None and abs(r[key][what]["sigma"]) > 3
        ]
        lines.append(
            "* **Exactness:** ⟨cos θ_P⟩ and ⟨Q²⟩ "
            + (
                "agree with the exact finite-volume values within 3σ for every sampler and β."
                if not bad
                else "deviate by more than 3σ in: " + ", ".join(sorted(set(bad))) + "."
            )
        )
    s3 = results.get("su3")
    if s3 and s3["results"]:
        parts = [
            f"β = {num(r['beta'])}: HMC {sigma(r['hmc'].get('sigma_vs_reference'))}, "
            f"L2HMC {sigma(r['l2hmc'].get('sigma_vs_reference'))} from the reference, "
            f"L2HMC − HMC {sigma(r['l2hmc_minus_hmc_sigma'])}"
            for r in s3["results"]
        ]
        lines.append("* **SU(3) plaquette:** " + "; ".join(parts) + ".")
    if results.get("errors"):
        lines.append(f"* **Failed sections:** {', '.join(results['errors'])} (see Failures).")
    return "\n".join(lines) or "No section ran."


def markdown(results: dict[str, Any], figs: dict[str, str]) -> str:
    title = f"# l2hmcc performance and physics report: {results['date']} ({results['mode']} mode)"
    parts = [
        title,
        "## Summary\n\n" + _summary(results),
        "## Machine and run\n\n" + _machine(results),
        "## Compile latency\n\n" + _frontend(results.get("frontend"), figs),
        "## Runtime throughput\n\n" + _throughput(results.get("throughput"), figs),
        "## Against the seed\n\n" + _seed(results.get("throughput")),
        "## U(1) physics\n\n" + _physics(results.get("physics"), figs),
        "## SU(3)\n\n" + _su3(results.get("su3")),
        "## GPU run\n\n" + _gpu(results),
        "## Reproduce\n\n" + _reproduce(results),
    ]
    errors = results.get("errors") or {}
    if errors:
        parts.append("## Failures\n\n" + "\n".join(f"* {k}: `{v}`" for k, v in errors.items()))
    return "\n\n".join(p for p in parts if p) + "\n"
