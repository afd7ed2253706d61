"""The intermediate representation: one resolved, typed L2HMC experiment.

`lower` builds a `Spec` from the syntax tree with every default filled in, so that later
stages (checks, targets) never guess. Models are frozen and reject unknown fields; choices
are `Literal`s, alternatives are discriminated unions on a ``kind`` field, units are in field
names (``walltime_min``), and every field has a description: ``Spec.model_json_schema()`` is
the reference documentation of the IR and is committed as ``l2hmcc/schemas/ir.schema.json``.

Defaults follow good L2HMC practice (Foreman, Jin, Osborn, arXiv:2105.03418, 2112.01582):
merged directions, checkerboard masks, the compact x update for U(1), learnable step sizes,
fp64 links for SU(N), HMC baselines tuned to 80% acceptance. Some defaults depend on the gauge
group (docs/recipe.md measured them on U(1)): lowering fills them in for the keys a spec does
not write (`network local`, the charge loss and a 3× step-size learning rate for U(1)), and the
descriptions below state each rule; the fields' own defaults are the SU(N) ones.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

IR_VERSION: Literal[1] = 1

GroupName = Literal["U1", "SU2", "SU3"]
ActionName = Literal["wilson"]
StartName = Literal["hot", "cold"]
Directions = Literal["merged", "random"]
MaskKind = Literal["checkerboard", "random"]
XUpdate = Literal["compact", "affine", "group"]
NetworkSharing = Literal["separate", "shared"]
#: The `network` block's label: the kind of networks, or none.
NetworkKind = Literal["l2hmc", "local", "none"]
#: The kinds of networks (`Network.kind`; `network none` is a null `Spec.network`).
NetworkArchitecture = Literal["l2hmc", "local"]
Embedding = Literal["trig", "raw"]
ConvPadding = Literal["same", "full"]
Activation = Literal["relu", "swish", "tanh", "gelu", "elu"]
LossForm = Literal["mixed", "plain"]
Optimizer = Literal["adam", "adamw", "sgd"]
LrSchedule = Literal["constant", "cosine", "linear", "exponential"]
Precision = Literal["fp32", "fp64", "fp16", "bf16"]
SystemName = Literal["local", "polaris", "aurora", "sunspot"]
BackendName = Literal["none", "ddp", "horovod", "deepspeed"]


class _Model(BaseModel):
    # defer_build: validators are built once, for `Spec` as a whole, on first use (not once
    # per model at import), which shortens every `l2hmcc check`.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, defer_build=True)


# --- experiment ------------------------------------------------------------------------------


class Experiment(_Model):
    name: str = Field(
        description="Experiment name: the `experiment` block's label, else the spec's file name."
        " Used for job names and output directories.",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        max_length=64,
    )
    description: str = Field("", description="Free text describing the experiment.")
    seed: int = Field(
        1234,
        ge=0,
        lt=2**63,
        description="Seed of every random number generator (per rank: seed + rank).",
    )


# --- lattice ---------------------------------------------------------------------------------


class Constant(_Model):
    kind: Literal["constant"] = Field("constant", description="A constant β.")
    value: float = Field(gt=0, description="Inverse coupling β, the same at every step.")


class Linear(_Model):
    kind: Literal["linear"] = Field("linear", description="β linear in the step.")
    start: float = Field(gt=0, description="β at the first training step.")
    end: float = Field(gt=0, description="β at the last training step, linear in between.")


class Geometric(_Model):
    kind: Literal["geometric"] = Field("geometric", description="β geometric in the step.")
    start: float = Field(gt=0, description="β at the first training step.")
    end: float = Field(
        gt=0, description="β at the last training step, geometric (constant ratio) in between."
    )


class Eras(_Model):
    kind: Literal["eras"] = Field("eras", description="β stepped in equal shares.")
    values: tuple[Annotated[float, Field(gt=0)], ...] = Field(
        min_length=1,
        description="Stepped β: training is cut into len(values) equal shares of steps, the k-th"
        " share uses values[k].",
    )


BetaSchedule = Annotated[Constant | Linear | Geometric | Eras, Field(discriminator="kind")]


class Lattice(_Model):
    group: GroupName = Field(description="Gauge group of the links: U1, SU2 or SU3.")
    shape: tuple[Annotated[int, Field(ge=2, le=4096)], ...] = Field(
        min_length=2,
        max_length=8,
        description="Lattice extents (L_0, ..., L_{D-1}); D ≥ 2 dimensions, periodic.",
    )
    action: ActionName = Field("wilson", description="Gauge action (Wilson plaquette action).")
    beta: BetaSchedule = Field(
        description="Inverse coupling β during training: a constant or a schedule. Evaluation"
        " and HMC use the final value."
    )
    start: StartName = Field(
        "hot", description="Initial links: `hot` (random, Haar) or `cold` (identity)."
    )


# --- dynamics --------------------------------------------------------------------------------


class Dynamics(_Model):
    leapfrog: int = Field(
        8, ge=1, le=1024, description="Number of generalized leapfrog layers per trajectory."
    )
    step_size: float = Field(
        0.1, gt=0, le=10, description="Initial leapfrog step size ε (every layer)."
    )
    learnable_step_size: bool = Field(
        True, description="Train the per-layer step sizes ε_k with the networks."
    )
    directions: Directions = Field(
        "merged",
        description="`merged`: the proposal B^N ∘ flip ∘ F^N is an involution; `random`: draw"
        " a direction per chain.",
    )
    mask: MaskKind = Field(
        "checkerboard",
        description="Which half of the links each x update changes: by site parity"
        " (`checkerboard`) or a fixed random half (`random`), alternating per layer.",
    )
    mask_seed: int = Field(
        0,
        ge=0,
        lt=2**63,
        description="Seed of the numpy generator that draws the `random` masks (one permutation"
        " per layer; unused by `checkerboard`). Resolved to `experiment.seed` when omitted.",
    )
    x_update: XUpdate = Field(
        "compact",
        description="Link update: `compact` (2 atan(e^{εs} tan(x/2)), U1: a bijection of the"
        " circle, exact) or `affine` (x e^{εs}, U1: a bijection of the real line, exact only as a"
        " chain of real coordinates; warning W004); SU(N) uses `group` (exp(ε(P e^{εq} + t)) U)."
        " Resolved per group when omitted.",
    )
    networks: NetworkSharing = Field(
        "separate",
        description="`separate`: each leapfrog layer has its own networks; `shared`: one set for"
        " all layers.",
    )
    split_x: bool = Field(
        True,
        description="Two x-networks per layer (one per mask half, as in the reference code)"
        " instead of one.",
    )
    fourier: float = Field(
        0.0,
        description="Fourier acceleration (U1, 2D/3D lattice): > 0 kicks with K F and drifts by"
        " ε K v in every layer, K̂(k) = √((4D + m²)/(λ(k) + m²)) (λ: the lattice Laplacian's"
        " eigenvalues; HMC with a momentum-space mass), one mass² m² per layer starting at this"
        " value and learned with the step sizes (when they are learnable, at their learning-rate"
        " factor); 0: the plain leapfrog. It is part of the dynamics, so `network none` and the"
        " ablation without networks keep it. Resolved to 0.5 for U1 on a 2D or 3D lattice that"
        " gets the default network (no `network` block), 0 otherwise.",
    )


# --- network ---------------------------------------------------------------------------------


class Conv(_Model):
    filters: tuple[Annotated[int, Field(ge=1, le=4096)], ...] = Field(
        min_length=1, description="Output channels of each conv layer."
    )
    kernel: tuple[Annotated[int, Field(ge=1, le=64)], ...] = Field(
        min_length=1, description="Kernel size of each conv layer (periodic padding)."
    )
    pool: tuple[Annotated[int, Field(ge=1, le=64)], ...] = Field(
        min_length=1,
        description="Max-pool factor after each conv layer (1: no pooling, floor mode). Defaults"
        " to all 1 (and must be 1 with `network local`).",
    )
    padding: ConvPadding = Field(
        "same",
        description="Periodic padding of each conv input: `same` (k−1 in total, the extent is"
        " kept) or `full` (k−1 on each side, the extent grows by k−1 per layer: the seed's"
        " network, l2hmc 0.13; not with `network local`).",
    )


class Network(_Model):
    """The networks of every leapfrog layer: `network l2hmc` (or an unlabelled `network`) or
    `network local`."""

    kind: NetworkArchitecture = Field(
        "l2hmc",
        description="`l2hmc`: x- and v-networks over the whole lattice (the seed's); `local`"
        " (U1): gauge-invariant v-networks that read the plaquettes around each link, the same"
        " at every site, and no x-networks (the x updates are the drift x + εv). Default: a"
        " spec without a `network` block gets `local` (conv [8], kernel [3], hidden [8], tanh;"
        " and `dynamics.fourier` 0.5) for U1 on a 2D or 3D lattice, `l2hmc` with the defaults"
        " below otherwise.",
    )
    embedding: Embedding = Field(
        "trig",
        description="Input embedding: `trig` (U1: cos x, sin x; SU(N): real and imaginary parts)"
        " or `raw` (U1 angles as they are). `l2hmc` only (`local` reads cos θ_P, sin θ_P).",
    )
    conv: Conv | None = Field(
        None, description="Optional periodic conv stack before the dense layers (2D/3D)."
    )
    hidden: tuple[Annotated[int, Field(ge=1, le=65536)], ...] = Field(
        (16, 16, 16),
        min_length=1,
        description="Widths of the dense layers. `hidden[0]` is the layer where the link path"
        " (embedding, or the conv stack's output) and the momentum/force path are each"
        " projected and summed; `hidden[1:]` are further dense layers; the heads read"
        " `hidden[-1]`.",
    )
    activation: Activation = Field("relu", description="Activation of the hidden layers.")
    dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout probability after each layer (`l2hmc` only)."
    )
    batch_norm: bool = Field(
        False,
        description="Batch normalisation after the hidden layers (over the chains; `l2hmc` only).",
    )
    scale_s: float = Field(
        1.0, gt=0, description="Initial λ_s of the scale head s = λ_s tanh(W_s z)."
    )
    scale_q: float = Field(
        1.0, gt=0, description="Initial λ_q of the transformation head q = λ_q tanh(W_q z)."
    )
    head_init: float = Field(
        0.01,
        ge=0,
        description="Factor on the initial (Kaiming-uniform) head weights W_s, W_t, W_q: small,"
        " so an untrained layer is close to a plain leapfrog step; 0 gives zero heads (a plain"
        " leapfrog, bit for bit, until trained).",
    )


# --- loss ------------------------------------------------------------------------------------


class Loss(_Model):
    plaquette: float = Field(
        0.1,
        ge=0,
        description="Weight of the plaquette distance Σ_P 2(1 − cos(θ'_P − θ_P)) (per chain,"
        " times the acceptance). Default: 0 for U1 on a 2D lattice (the charge term trains),"
        " 0.1 otherwise.",
    )
    charge: float = Field(
        0.0,
        ge=0,
        description="Weight of the charge distance (Q'_sin − Q_sin)² (U1, 2D) or the clover"
        " charge distance (SU(N), 4D). Default: 1 for U1 on a 2D lattice, 0 otherwise.",
    )
    rmse: float = Field(0.0, ge=0, description="Weight of the mean squared link distance.")
    form: LossForm = Field(
        "mixed",
        description="`mixed`: Levy et al.'s mean(λ²/ℓ − ℓ/λ²); `plain`: −mean(ℓ). Default:"
        " `plain` for U1 on a 2D lattice, `mixed` otherwise.",
    )
    scale: float = Field(1.0, gt=0, description="λ² of the mixed form.")
    aux_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of the auxiliary loss on proposals from freshly drawn states (0: off).",
    )


# --- train / evaluate / hmc ------------------------------------------------------------------


class Train(_Model):
    eras: int = Field(
        1,
        ge=1,
        description="Training eras: a way to count steps (total steps = eras × steps_per_era);"
        " the runtime treats era boundaries like any other step (β by era is"
        " `lattice.beta = eras(...)`).",
    )
    steps_per_era: int = Field(
        2000, ge=1, description="Training steps per era; total steps = eras × steps_per_era."
    )
    chains: int = Field(16, ge=1, description="Chains (batch size) per rank.")
    optimizer: Optimizer = Field("adam", description="Optimizer of networks and step sizes.")
    lr: float = Field(1e-3, gt=0, le=10, description="Initial learning rate.")
    step_size_lr_factor: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="Learning rate of the step sizes log ε_k as a factor of `lr` (the networks"
        " keep `lr`; the schedule scales both). Default: 3 for U1, 1 for SU(N).",
    )
    lr_schedule: LrSchedule = Field(
        "constant",
        description="Learning-rate schedule after the warm-up: `constant`, or a decay from `lr`"
        " to `lr × lr_final` (`cosine`, `linear`, `exponential`).",
    )
    lr_final: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Final learning rate of a decaying schedule, as a factor of `lr` (unused by"
        " `constant`).",
    )
    warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warm-up steps.")
    weight_decay: float = Field(
        0.0,
        ge=0,
        description="Weight decay of the optimizer: an L2 term in the gradient for `adam` and"
        " `sgd`, decoupled for `adamw` (0: none).",
    )
    clip_norm: float = Field(
        1.0, ge=0, description="Gradient clipping by global norm (0: no clipping)."
    )
    precision: Precision = Field(
        "fp32",
        description="Precision of links, actions and the accept/reject test: fp32 (U1 float32,"
        " SU(N) complex64) or fp64 (float64, complex128). Resolved per group when omitted:"
        " fp32 for U1, fp64 for SU(N).",
    )
    network_precision: Precision = Field(
        "fp32",
        description="Precision of the networks: fp64, fp32, or bf16/fp16 (autocast on a GPU)."
        " Defaults to `precision`.",
    )
    compile: bool = Field(
        True,
        description="Compile the leapfrog layers (torch.compile / XLA jit_compile) in training"
        " and the HMC baseline; evaluation follows unless `evaluate.compile` says otherwise.",
    )
    checkpoint_every: int = Field(
        100, ge=0, description="Save a checkpoint every this many steps (0: only at the end)."
    )
    keep_checkpoints: int = Field(
        3, ge=0, description="Checkpoints kept on disk, the latest ones (0: keep all)."
    )
    log_every: int = Field(10, ge=1, description="Log metrics every this many steps.")

    @property
    def steps(self) -> int:
        """Total training steps."""
        return self.eras * self.steps_per_era


class Evaluate(_Model):
    steps: int = Field(
        500, ge=0, description="Evaluation steps with the trained sampler (0: skip)."
    )
    chains: int = Field(16, ge=1, description="Chains per rank. Defaults to `train.chains`.")
    compile: bool = Field(
        True,
        description="Compile the leapfrog layers for evaluation (torch.compile / XLA"
        " jit_compile), whatever training does. Defaults to `train.compile`.",
    )
    ablation: bool = Field(
        False,
        description="Also train the same spec without networks (only the step sizes ε_k, same"
        " loss, schedule and steps) and evaluate it like the trained sampler: what the networks"
        " add (`train.py --ablation` does the same for one run).",
    )


class FixedStepSize(_Model):
    kind: Literal["fixed"] = Field("fixed", description="A fixed HMC step size.")
    value: float = Field(gt=0, le=10, description="HMC leapfrog step size ε.")


class AutoStepSize(_Model):
    kind: Literal["auto"] = Field(
        "auto", description="An HMC step size tuned to a target acceptance."
    )
    target_acceptance: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="Tune ε before sampling until the mean acceptance reaches this value.",
    )


HmcStepSize = Annotated[FixedStepSize | AutoStepSize, Field(discriminator="kind")]


class Hmc(_Model):
    steps: int = Field(500, ge=0, description="Generic HMC baseline steps (0: skip).")
    chains: int = Field(16, ge=1, description="Chains per rank. Defaults to `train.chains`.")
    step_size: HmcStepSize = Field(
        default_factory=AutoStepSize, description="A fixed ε, or `auto(acceptance)` tuning."
    )
    trajectory_length: float = Field(
        1.0,
        gt=0,
        le=100,
        description="Trajectory length τ; leapfrog steps per trajectory n = ceil(τ / ε), each"
        " of τ / n (a fixed ε that does not divide τ runs a smaller one: warning W006).",
    )
    fourier: float = Field(
        0.0,
        description="Fourier-accelerated HMC (U1, 2D/3D lattice): > 0 kicks with K F and drifts"
        " by ε K p, K̂(k) = √((4D + m²)/(λ(k) + m²)) with this fixed mass² m² (not learned),"
        " the usual Metropolis test with ½Σp²; ε tuned as without it. 0: plain HMC.",
    )


class Thermalize(_Model):
    """HMC trajectories that bring the chains to equilibrium before they are used."""

    max_trajectories: int = Field(
        500,
        ge=0,
        le=1_000_000,
        description="At most this many HMC trajectories per thermalization (0: none). Chains"
        " are thermalized at the first β before training (not on --resume) and at the final β"
        " before evaluation and the HMC baseline, with the `hmc` block's ε (fixed, or tuned:"
        " the tuning trajectories count) and τ.",
    )
    window: int = Field(
        10,
        ge=2,
        le=10_000,
        description="Trajectories per window: thermalization stops once the mean plaquette of"
        " a window agrees with the previous window's within 2 standard errors.",
    )


# --- distributed -----------------------------------------------------------------------------


class NoBackend(_Model):
    backend: Literal["none"] = Field("none", description="One process, no distribution.")


class DDP(_Model):
    backend: Literal["ddp"] = Field("ddp", description="PyTorch DistributedDataParallel.")
    launcher: Literal["auto", "mpiexec", "torchrun"] = Field(
        "auto",
        description="How ranks are started: `auto` (mpiexec on ALCF systems, torchrun locally).",
    )
    find_unused_parameters: bool = Field(
        False, description="DDP's find_unused_parameters (only needed for shared networks)."
    )


class Horovod(_Model):
    backend: Literal["horovod"] = Field("horovod", description="Horovod allreduce.")
    launcher: Literal["auto", "mpiexec", "horovodrun"] = Field(
        "auto",
        description="How ranks are started: `auto` (mpiexec on ALCF systems, horovodrun locally).",
    )
    fp16_allreduce: bool = Field(False, description="Compress gradients to fp16 for allreduce.")


class DeepSpeed(_Model):
    backend: Literal["deepspeed"] = Field("deepspeed", description="DeepSpeed (ZeRO).")
    launcher: Literal["auto", "mpiexec", "deepspeed"] = Field(
        "auto",
        description="How ranks are started: `mpiexec` (with deepspeed.init_distributed), the"
        " `deepspeed` launcher (hostfile + ssh), or `auto` (mpiexec on ALCF systems).",
    )
    zero_stage: int = Field(1, ge=0, le=3, description="ZeRO optimisation stage (0-3).")


Distributed = Annotated[NoBackend | DDP | Horovod | DeepSpeed, Field(discriminator="backend")]


# --- job -------------------------------------------------------------------------------------


class Job(_Model):
    system: SystemName = Field("local", description="Where the job runs.")
    name: str | None = Field(
        None,
        max_length=64,
        description="Job name (PBS -N); defaults to the experiment name.",
    )
    account: str | None = Field(None, description="Project to charge (PBS -A); ALCF needs one.")
    queue: str | None = Field(
        None, description="Queue (PBS -q), e.g. `debug`, `debug-scaling`, `prod`."
    )
    nodes: int = Field(1, ge=1, le=100_000, description="Nodes (PBS -l select).")
    ranks_per_node: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Ranks per node; default: one per GPU (Polaris 4) or tile (Aurora 12),"
        " one locally.",
    )
    walltime_min: int = Field(
        60, ge=1, le=10_080, description="Wall-clock limit in minutes (PBS -l walltime)."
    )
    filesystems: tuple[str, ...] = Field(
        (),
        description="Filesystems the job needs (PBS -l filesystems); empty: the system's default.",
    )
    modules: tuple[str, ...] = Field(
        (), description="Modules to load in addition to the system's framework module."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables exported before launch."
    )
    preemptable: bool = Field(False, description="The job may be preempted and rerun (PBS -r y).")
    continue_jobs: int = Field(
        0,
        ge=0,
        le=100,
        description="Walltime chaining (`continue` in the spec): a job stopped at its walltime"
        " checkpoints and submits itself again with --resume (qsub -W depend=afterany), at most"
        " this many follow-on jobs; 0: no follow-ons.",
    )


# --- the whole spec --------------------------------------------------------------------------


class Sweep(_Model):
    path: str = Field(description="IR path of the swept field, e.g. `lattice.beta`.")
    values: tuple[JsonValue, ...] = Field(
        min_length=1,
        description="The values of the scan (IR JSON); the field itself holds the first.",
    )


class Spec(_Model):
    """One L2HMC experiment, every default resolved."""

    ir_version: Literal[1] = Field(IR_VERSION, description="Version of this IR's layout.")
    experiment: Experiment = Field(description="Name, description, seed.")
    lattice: Lattice = Field(description="Gauge group, lattice and action.")
    dynamics: Dynamics = Field(default_factory=Dynamics, description="Generalized leapfrog.")
    network: Network | None = Field(
        default_factory=Network,
        description="The networks, or null for `network none` (no networks: the leapfrog"
        " layers learn their step sizes only, s = t = q = 0). Without a `network` block: U1 on a"
        " 2D or 3D lattice `local` (conv [8], kernel [3], hidden [8], tanh; with"
        " `dynamics.fourier` 0.5), otherwise `l2hmc`.",
    )
    loss: Loss = Field(default_factory=Loss, description="Training objective.")
    train: Train = Field(default_factory=Train, description="Training loop.")
    evaluate: Evaluate = Field(default_factory=Evaluate, description="Evaluation run.")
    hmc: Hmc = Field(default_factory=Hmc, description="Generic HMC baseline.")
    thermalize: Thermalize = Field(
        default_factory=Thermalize, description="Thermalization of the chains."
    )
    distributed: Distributed = Field(
        default_factory=NoBackend, description="Distributed training backend."
    )
    job: Job = Field(default_factory=Job, description="Where and how the job runs.")
    sweeps: tuple[Sweep, ...] = Field(
        (), description="Parameter scans (`sweep(...)` values), to be expanded into jobs."
    )


#: Union-typed fields and the name of their tag: lowering and error mapping skip the tag
#: segment pydantic puts into error locations (``distributed.deepspeed.zero_stage``).
TAGGED_UNIONS = {"lattice.beta": "kind", "hmc.step_size": "kind", "distributed": "backend"}
