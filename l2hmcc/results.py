"""What a finished job writes: the layouts of ``output/summary.json`` and ``output/run.json``.

The runtime writes these files with numpy and the standard library only
(``l2hmcc/runtime/common/run.py``); these pydantic models are their reference: their JSON
Schemas are committed beside the manifest's (``l2hmcc/schemas/summary.schema.json``,
``run.schema.json``), and tests validate what generated jobs write against them. Tools that
read results (``l2hmcc show``) parse them with these models.

Rates count chain trajectories: one trajectory of each of ``chains`` chains is ``chains``
trajectories. Values that cannot be estimated (too few records, zero variance) are null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SUMMARY_SCHEMA_VERSION = 1
RUN_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Plaquette(_Model):
    mean: float | None = Field(description="Mean plaquette ⟨Re tr U_P⟩/N over chains and records.")
    err: float | None = Field(description="Its error, with the autocorrelation taken into account.")
    exact: float | None = Field(
        description="2D U(1): the infinite-volume value I₁(β)/I₀(β); null for other theories."
    )
    exact_finite_volume: float | None = Field(
        description="2D U(1): the exact value on this lattice (periodic, finite volume); null"
        " otherwise."
    )


class ChargeSquared(_Model):
    mean: float | None = Field(description="⟨Q²⟩ of the topological charge.")
    err: float | None = Field(description="Its error, with the autocorrelation taken into account.")
    exact: float | None = Field(
        description="2D U(1): the exact finite-volume ⟨Q²⟩; null otherwise."
    )


class TauInt(_Model):
    value: float | None = Field(
        description="Integrated autocorrelation time of Q in trajectories (automatic windowing,"
        " ½ for independent samples)."
    )
    err: float | None = Field(description="Its statistical error.")
    converged: bool | None = Field(
        None,
        description="Whether the automatic window converged (W ≥ 5 τ within half the record);"
        " when it did not, τ_int is a lower bound and the errors that use it are too small.",
    )


class Equilibrium(_Model):
    """The drift test of a measured record (``l2hmcc_runtime/common/equilibrium.py``)."""

    observable: str = Field(description="The tested series (the plaquette).")
    kept: int = Field(ge=0, description="Records kept after the burn-in.")
    drift_z: float | None = Field(
        description="|m₂ − m₁| / √(e₁² + e₂²) between the halves of the kept records, with"
        " autocorrelation-corrected errors; null when it cannot be computed."
    )
    threshold: float = Field(description="Equilibrated when drift_z is below this.")
    halves: list[float] | None = Field(description="The halves' means m₁, m₂.")
    reason: str | None = Field(description="Why the record is not equilibrated; null if it is.")


class Sampler(_Model):
    trajectories: int = Field(ge=0, description="Trajectories recorded (per chain).")
    burn_in: int = Field(ge=0, description="Leading records left out of the statistics.")
    chains: int = Field(ge=1, description="Chains, all ranks together.")
    acceptance: float | None = Field(description="Mean Metropolis acceptance probability.")
    plaquette: Plaquette = Field(description="The plaquette against its exact value.")
    q2: ChargeSquared = Field(description="The topological susceptibility volume × χ = ⟨Q²⟩.")
    tau_int_q: TauInt = Field(description="τ_int of the topological charge Q.")
    mean_abs_dq: float | None = Field(description="⟨|ΔQ|⟩ between consecutive trajectories.")
    trajectories_per_s: float | None = Field(
        description="Chain trajectories per second (the first record, holding any compilation"
        " warm-up, left out when per-step times exist)."
    )
    time_s: float | None = Field(description="Wall time of the phase in seconds.")
    forces_per_trajectory: int | None = Field(
        None,
        ge=1,
        description="Force evaluations one trajectory needs (L2HMC merged: 2N + 1 for N layers;"
        " random: N + 1; HMC: leapfrog steps + 1). Null in summaries written before it existed.",
    )
    tau_int_q_forces: float | None = Field(
        None,
        description="τ_int(Q) × forces per trajectory: force evaluations per τ_int(Q), which"
        " compares samplers whose trajectories differ in length.",
    )
    tau_int_q_seconds: float | None = Field(
        None,
        description="τ_int(Q) / trajectories_per_s: the job's wall seconds per τ_int(Q) chain"
        " trajectories (all chains running together), the cost `improvement` compares.",
    )
    equilibrated: bool | None = Field(
        None,
        description="Whether the kept records pass the drift test (burn-in chosen from the"
        " data by the MSER rule; `equilibrium`): false means the figures above are not known"
        " to be equilibrium values. Null when nothing was measured.",
    )
    equilibrium: Equilibrium | None = Field(None, description="The drift test's figures.")


class Hmc(Sampler):
    step_size: float = Field(gt=0, description="Leapfrog step size ε of the HMC trajectories.")
    leapfrog_steps: int = Field(ge=1, description="Leapfrog steps per trajectory.")
    tuned: bool = Field(description="Whether ε was tuned to the target acceptance first.")
    fourier: float | None = Field(
        None,
        description="The fixed mass² of Fourier-accelerated HMC (`hmc.fourier`); null for"
        " plain HMC.",
    )


class Training(_Model):
    steps: int = Field(ge=0, description="Training steps done.")
    total_steps: int = Field(ge=0, description="Training steps of the run.")
    chains: int = Field(ge=1, description="Chains, all ranks together.")
    time_s: float | None = Field(description="Wall time of the training phase of this process.")
    resumed_from_step: int | None = Field(description="The checkpoint step a --resume started at.")
    final_loss: float | None = Field(description="Loss of the last training step.")
    step_sizes: list[float] = Field(description="Trained leapfrog step sizes ε_k per layer.")
    fourier_masses: list[float] | None = Field(
        None,
        description="Trained mass² m²_k of every layer's Fourier filter (`dynamics.fourier`);"
        " null without the filter.",
    )


class Ablation(Sampler):
    """The same spec trained without networks (only the step sizes ε_k), evaluated like the
    trained sampler (`evaluate.ablation`, `train.py --ablation`)."""

    train: Training = Field(description="Its training phase (same steps, loss and β schedule).")
    gain_per_trajectory: float | None = Field(
        description="Its τ_int(Q) over the trained sampler's: above 1, the networks decorrelate"
        " Q in fewer trajectories."
    )
    gain: float | None = Field(
        description="Its τ_int(Q) × cost per trajectory over the trained sampler's: above 1, the"
        " networks pay for their cost."
    )


class Summary(_Model):
    """``output/summary.json``."""

    schema_version: Literal[1] = Field(description="Version of this layout.")
    experiment: str = Field(description="The spec's experiment name.")
    spec_sha256: str = Field(description="sha256 of the spec the job was compiled from.")
    target: str = Field(description="The compile target, e.g. `pytorch-ddp`.")
    world_size: int = Field(ge=1, description="Ranks of the run.")
    beta: float = Field(description="β of evaluation and HMC (the schedule's final value).")
    train: Training = Field(description="The training phase.")
    l2hmc: Sampler = Field(description="The trained L2HMC sampler.")
    hmc: Hmc | None = Field(description="The generic-HMC baseline (null when it ran 0 steps).")
    improvement: float | None = Field(
        description="HMC's τ_int(Q) × cost per trajectory over L2HMC's; above 1 L2HMC"
        " decorrelates Q faster per unit of compute. Null when either sampler is not"
        " equilibrated or its τ_int window did not converge (`improvement_note` says which)."
    )
    improvement_note: str | None = Field(
        None, description="Why `improvement` is null; null when it is a number."
    )
    ablation: Ablation | None = Field(
        None,
        description="The sampler trained without networks (absent unless `evaluate.ablation` or"
        " `train.py --ablation` asked for it).",
    )


class Thermalization(_Model):
    """One thermalization: HMC trajectories until the plaquette stopped drifting, or the cap."""

    before: Literal["training", "measuring"] = Field(
        description="What the chains were thermalized for: training (at the first β) or the"
        " measured phases (evaluation and the HMC baseline, at the final β)."
    )
    beta: float = Field(description="β of the trajectories.")
    trajectories: int = Field(ge=0, description="HMC trajectories run (tuning included).")
    max_trajectories: int = Field(ge=0, description="The cap.")
    window: int = Field(ge=1, description="Trajectories per window of the drift test.")
    step_size: float = Field(gt=0, description="Leapfrog step size ε.")
    leapfrog_steps: int = Field(ge=1, description="Leapfrog steps per trajectory.")
    tuned: bool = Field(description="Whether ε was tuned to the target acceptance first.")
    acceptance: float | None = Field(description="Mean acceptance over the windows.")
    plaquette_first_window: float | None = Field(description="Mean plaquette of the first window.")
    plaquette_last_window: float | None = Field(description="Mean plaquette of the last window.")
    drift_z: float | None = Field(
        description="The last two windows' difference in standard errors (null: fewer than two"
        " windows)."
    )
    converged: bool = Field(
        description="Whether the last two windows agreed (false: the cap stopped it first)."
    )
    time_s: float = Field(ge=0, description="Wall time in seconds.")


class Chain(_Model):
    """A job that continues itself after its walltime (``job { continue = N }``)."""

    link: int = Field(ge=0, description="0 for the first job, k for the k-th follow-on.")
    max_follow_ons: int = Field(ge=0, description="Follow-on jobs allowed in all (N).")
    job_ids: list[str | None] = Field(
        description="PBS job id of every link so far, this one last (null outside PBS)."
    )


class RunRecord(_Model):
    """``output/run.json``: what ran, where, with what."""

    schema_version: Literal[1] = Field(description="Version of this layout.")
    experiment: str = Field(description="The spec's experiment name.")
    spec: str = Field(
        description="The spec's file name (`u1.l2h`, no directory), as the generated files"
        " name it in their headers."
    )
    spec_sha256: str = Field(description="sha256 of the spec.")
    target: str = Field(description="The compile target.")
    l2hmcc_version: str = Field(description="The compiler version that generated the job.")
    status: Literal["running", "completed", "stopped", "failed"] = Field(
        description="`running` while it runs (or if it was killed), `stopped` after"
        " SIGTERM/SIGUSR1 (resume with --resume), `completed` at the end, `failed` after an"
        " error."
    )
    started_at: str = Field(description="UTC start time (ISO 8601).")
    ended_at: str | None = Field(description="UTC end time (ISO 8601), null while running.")
    argv: list[str] = Field(description="The command line of rank 0.")
    world_size: int = Field(ge=1, description="Ranks.")
    hosts: list[str] = Field(description="Host name of every rank, by rank.")
    launcher: str = Field(
        description="Who started the ranks: torchrun, horovod, mpich, pals, openmpi or none."
    )
    device: str = Field(description="Device of rank 0 (cpu, cuda:0, xpu:0, mps).")
    dist_backend: str | None = Field(
        description="Communication library (gloo, nccl, xccl, ccl, horovod-gloo, horovod-mpi)."
    )
    seed: int = Field(description="The spec's seed (network initialisation, masks).")
    chain_seeds: list[int] = Field(description="Seed of each rank's chain generator, by rank.")
    resumed_from_step: int | None = Field(description="The checkpoint step a --resume started at.")
    versions: dict[str, str | None] = Field(
        description="python, platform, numpy, torch, deepspeed, horovod, matplotlib (null when"
        " not used)."
    )
    thermalization: list[Thermalization] = Field(
        default_factory=list, description="Every thermalization of the run, in order."
    )
    chain: Chain | None = Field(
        None,
        description="Walltime chaining (`job { continue = N }`): this job's place in the chain;"
        " null for a job that does not continue itself.",
    )
