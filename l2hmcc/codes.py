"""The code registry: every diagnostic code with a one-line title and the long explanation
that ``l2hmcc explain CODE`` prints (`explain`).

Code ranges: E0xx syntax and input files, E1xx keys/types/ranges, E2xx cross-field physics
and training rules, E3xx target and system, E4xx job directories as records (``verify``),
Wxxx warnings. A new code goes here, with a file in ``tests/corpus/`` that triggers it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeInfo:
    title: str
    explanation: str


CODES: dict[str, CodeInfo] = {
    # E0xx: the file and its syntax --------------------------------------------------------
    "E001": CodeInfo(
        "syntax error",
        """The parser met a character or token it did not expect here. A spec is a list of
blocks; a block is a name, an optional label and braces holding `key = value` attributes or
nested blocks:

    lattice { group = U1  shape = [16, 16]  beta = 4.0 }
    distributed deepspeed { zero_stage = 1 }

Values are numbers (`8`, `0.1`, `1e-3`), strings (`"text"`), identifiers (`merged`), `true`
or `false`, durations (`1h30m`, `01:30:00`), lists (`[16, 16]`) and calls
(`linear(4.0, 6.0)`). `#` starts a comment that runs to the end of the line.""",
    ),
    "E002": CodeInfo(
        "missing `=` between a key and its value",
        """Every attribute is written `key = value`:

    dynamics { leapfrog = 8 }     # not: dynamics { leapfrog 8 }

A name followed by `{` opens a nested block instead (`conv { ... }`, `env { ... }`). A word
after a value is read as the next key, so a qualifier has to be a key of its own:

    dynamics { step_size = 0.05  learnable_step_size = true }   # not: step_size = 0.05 learnable""",
    ),
    "E003": CodeInfo(
        "unclosed `{`",
        """The file ended while a block was still open. Every `{` needs its `}`:

    train {
        steps = 2000
    }                             # <- this one was missing""",
    ),
    "E004": CodeInfo(
        "unclosed `[` or `(`",
        """A list or call was not closed before the block ended:

    shape = [16, 16]              # not: shape = [16, 16
    beta = linear(4.0, 6.0)       # not: beta = linear(4.0, 6.0""",
    ),
    "E005": CodeInfo(
        "unterminated string",
        """A string starts with `"` and must end with `"` on the same line. Write a quote
inside a string as `\\"` and a backslash as `\\\\`.""",
    ),
    "E006": CodeInfo(
        "unexpected `}`",
        """A closing brace has no block to close. Check for an extra `}` or a block whose
opening line is missing.""",
    ),
    "E007": CodeInfo(
        "missing value after `=`",
        """An attribute needs a value after `=`:

    lattice { beta = 4.0 }        # not: lattice { beta = }""",
    ),
    "E008": CodeInfo(
        "separator between attributes",
        """Attributes are separated by spaces or newlines only, not by `,` or `;`:

    lattice { group = U1  shape = [16, 16] }

Commas separate the items of a list (`[16, 16]`) and the arguments of a call.""",
    ),
    "E009": CodeInfo(
        "attribute outside a block",
        """Every `key = value` belongs to a block. Put it inside the block it configures:

    train { steps = 2000 }        # not: steps = 2000 at the top level""",
    ),
    "E010": CodeInfo(
        "cannot read the spec file",
        """The file does not exist, is a directory, or cannot be opened (permissions).""",
    ),
    "E011": CodeInfo(
        "not a text file",
        """A spec is UTF-8 text. The file contains NUL bytes or bytes that are not UTF-8.""",
    ),
    "E012": CodeInfo(
        "empty spec",
        """The file has no content. The smallest useful spec is one `lattice` block:

    lattice { group = U1  shape = [8, 8]  beta = 2.0 }""",
    ),
    "E013": CodeInfo(
        "spec file too large",
        """Specs are a few KiB; l2hmcc refuses files over 1 MiB, which are almost
certainly not specs.""",
    ),
    "E014": CodeInfo(
        "nesting too deep",
        """Lists, calls and blocks nest at most 32 levels deep. No field of a spec needs more
than two (a list inside a call: `eras([4.0, 5.0])`).""",
    ),
    "E015": CodeInfo(
        "misplaced `extends`",
        """A spec names at most one base spec, on its first line (comments may come before):

    extends "u1.l2h"
    lattice { beta = 6.0 }

To build on several specs, make a chain: the base may itself start with `extends`.""",
    ),
    "E016": CodeInfo(
        "cannot read the base spec",
        """The file named by `extends "PATH"` does not exist or cannot be read. The path is
relative to the directory of the spec that names it (not to the working directory):

    # specs/u1-b6.l2h
    extends "u1.l2h"              # reads specs/u1.l2h""",
    ),
    "E017": CodeInfo(
        "`extends` cycle",
        """The chain of base specs comes back to a spec it has already read (a spec extends
itself, directly or through its bases), or it is longer than 16 files. The message shows the
chain; break it by removing one `extends`.""",
    ),
    "E018": CodeInfo(
        "not a spec file",
        """A spec is read from a regular file or a pipe (`/dev/stdin`, `<(...)`, a FIFO).
Devices (`/dev/zero`), sockets and the like are refused, and so is a pipe that nobody writes
to (l2hmcc waits 30 s for the first bytes).""",
    ),
    # E1xx: keys, types, ranges --------------------------------------------------------------
    "E101": CodeInfo(
        "unknown block",
        """The top-level blocks are `experiment`, `lattice`, `dynamics`, `network`, `loss`,
`train`, `evaluate`, `hmc`, `distributed` and `job` (see docs/language.md). `network` holds a
nested `conv` block and `job` holds a nested `env` block.""",
    ),
    "E102": CodeInfo(
        "unknown key",
        """The block has no attribute of that name. `l2hmcc` suggests the closest known key;
the full list per block is in docs/language.md.""",
    ),
    "E103": CodeInfo(
        "wrong type",
        """The value has the wrong type for the key, e.g. a string where a number is
expected (`leapfrog = "8"`), a float where an integer is expected (`steps = 1.5`) or a
list where a single value is expected. The message says what was expected and what was
found.""",
    ),
    "E104": CodeInfo(
        "value out of range",
        """The value has the right type but lies outside the allowed range, e.g.
`leapfrog = 0` (at least one layer), `dropout = 1.5` (a probability below 1), a negative
learning rate or loss weight, or a lattice with fewer than two dimensions.""",
    ),
    "E105": CodeInfo(
        "unknown choice",
        """The key takes one of a fixed set of identifiers (for example `group` is `U1`,
`SU2` or `SU3`; `directions` is `merged` or `random`). The message lists them and suggests
the closest.""",
    ),
    "E106": CodeInfo(
        "duplicate block",
        """Each block appears at most once per spec; merge the two blocks into one.""",
    ),
    "E107": CodeInfo(
        "duplicate key",
        """Each key appears at most once per block; the second would silently win, so it is
an error. Remove one of them.""",
    ),
    "E108": CodeInfo(
        "missing block",
        """The spec lacks a required block. Only `lattice` is required; every other block
has defaults (see docs/language.md).""",
    ),
    "E109": CodeInfo(
        "missing key",
        """The block lacks a required key, e.g. `lattice` needs `group`, `shape` and
`beta`.""",
    ),
    "E110": CodeInfo(
        "wrong block label",
        """Only three blocks take a label after their name: `experiment NAME`,
`distributed BACKEND` (`none`, `ddp`, `horovod`, `deepspeed`) and `job SYSTEM` (`local`,
`polaris`, `aurora`, `sunspot`). The others take none, and `distributed`/`job` need one.""",
    ),
    "E111": CodeInfo(
        "wrong call",
        """Calls are a fixed set of constructors, each with a fixed number of arguments:

    beta = linear(4.0, 6.0)            # from 4.0 at the first step to 6.0 at the last
    beta = geometric(4.0, 6.0)         # the same, geometrically
    beta = eras([4.0, 5.0, 6.0])       # stepped: equal shares of the training steps
    step_size = auto(0.8)              # HMC step size tuned to 80% acceptance
    lr = sweep(1e-3, 3e-4)             # a parameter scan (any key)""",
    ),
    "E112": CodeInfo(
        "misplaced sweep",
        """`sweep(a, b, ...)` stands for the whole value of one attribute and needs at least
one value; it cannot sit inside a list or another call, or contain another sweep.""",
    ),
    "E113": CodeInfo(
        "bad duration",
        """Durations are written `1h30m`, `90m`, `2h`, `45m30s` or `HH:MM:SS`/`HH:MM`
(`01:30:00`). Minutes and seconds in the clock form are below 60, and a walltime is a whole
number of minutes.""",
    ),
    "E114": CodeInfo(
        "bad override",
        """A `--set` override is `block.key=value` (or `block.nested.key=value`), where the
value is written as in a spec: `--set train.steps=100`, `--set lattice.shape=[8,8]`,
`--set 'job.account="proj"'`.""",
    ),
    "E115": CodeInfo(
        "number too large",
        """A number is larger than its key can hold: integers are at most 2^63 - 1 (the
generated code and the records store them as 64-bit integers), numbers at most about 1.8e308
(a 64-bit float), and durations have at most 12 digits per part. Such a value is almost always
a typo: check the number of digits. This applies to `--set` values as well.""",
    ),
    "E116": CodeInfo(
        "override too long",
        """A `--set` override holds one value and is at most 65 536 characters long. Put long
values (big lists) in a spec, or in a small spec that `extends` the one you are changing.""",
    ),
    # E2xx: cross-field rules ----------------------------------------------------------------
    "E201": CodeInfo(
        "topological charge needs another lattice dimension",
        """The charge loss (`loss.charge > 0`) uses the topological charge. For U(1) it is
defined on 2D lattices (Q = (1/2π) Σ wrap(θ_P) over the 01 plane); for SU(N) it is the clover
charge Q = (1/32π²) Σ ε_μνρσ tr F_μν F_ρσ, which needs exactly 4 dimensions. Use a 2D
lattice for U1 or a 4D one for SU2/SU3, or set `loss.charge = 0`.""",
    ),
    "E202": CodeInfo(
        "odd lattice extent with a checkerboard mask",
        """The checkerboard mask splits the sites by parity (x_0 + x_1 + ... even or odd).
On a periodic lattice that is a proper two-colouring only if every extent is even; with an
odd extent, neighbours across the boundary get the same colour and the generalized leapfrog
would update a link from a network that saw it. Use even extents or `mask = random`.""",
    ),
    "E203": CodeInfo(
        "half precision for the lattice",
        """`train.precision` is the precision of the gauge links, actions and the accept/reject
step: fp32 (U1: float32 angles; SU(N): complex64) or fp64 (float64 / complex128).
Half precision (fp16, bf16) would break reversibility and the Metropolis test; it is
allowed for the networks only, through `train.network_precision` (autocast on a GPU).""",
    ),
    "E204": CodeInfo(
        "x update does not fit the gauge group",
        """`dynamics.x_update` chooses how links are updated. `compact` (the map
2 atan(e^{εs} tan(x/2)) on angles) and `affine` (x e^{εs}) act on U(1) angles only. SU(N)
links are updated by left multiplication with exp(ε(P e^{εq} + t)), which is `group` (the
default for SU2/SU3).""",
    ),
    "E205": CodeInfo(
        "embedding does not fit the gauge group",
        """`network.embedding = raw` feeds U(1) angles to the networks as they are. SU(N)
links are complex matrices; use `trig` (real and imaginary parts; cos/sin for U(1)).""",
    ),
    "E206": CodeInfo(
        "several ranks without a distributed backend",
        """The job asks for more than one rank (`job.nodes` × `job.ranks_per_node` > 1) but
the spec has no distributed backend, so every rank would train its own copy. Add
`distributed ddp {}` (or `horovod`, `deepspeed`), or run one rank.""",
    ),
    "E207": CodeInfo(
        "batch norm with a single chain",
        """Batch normalisation estimates statistics over the chains of one rank; with one chain
per rank (`train.chains = 1`) the variance is zero. Use more chains or
`network.batch_norm = false`.""",
    ),
    "E208": CodeInfo(
        "conv lists of different lengths",
        """`network.conv` describes one layer per entry: `filters`, `kernel` and `pool` must
have the same length (pool 1 means no pooling after that layer).""",
    ),
    "E209": CodeInfo(
        "conv stack on an unsupported lattice",
        """The conv stack uses periodic 2D or 3D convolutions over the lattice; there are no
4D convolution layers in PyTorch or TensorFlow. Remove the `conv` block for 4D lattices.""",
    ),
    "E210": CodeInfo(
        "pooling does not divide the lattice",
        """With `padding = same` (the default) every conv layer keeps the lattice extent, and
the product of the `pool` factors must divide every extent, or pooling (floor mode) would drop
sites. With `padding = full` (the seed's network) each layer grows the extent by k−1 before
pooling, so sites are duplicated anyway and a remainder is dropped as the seed drops it; there
a pool factor larger than the extent it pools leaves nothing, which is the error.""",
    ),
    "E211": CodeInfo(
        "all loss weights are zero",
        """With `plaquette`, `charge` and `rmse` all zero the loss is identically zero and
training does nothing. Give at least one a positive weight (0.1 is a good start).""",
    ),
    "E212": CodeInfo(
        "conflicting step counts",
        """Training length is either `steps = N` or `eras = E` with `steps_per_era = M`
(N = E·M). Give one form, or make them agree.""",
    ),
    "E213": CodeInfo(
        "nothing to train",
        """`network none` removes the networks, so the only parameters of the sampler are the
per-layer step sizes ε_k; with `dynamics.learnable_step_size = false` there is nothing left
for training to change (and no optimizer can be built over no parameters). Set
`learnable_step_size = true` for the learned-ε leapfrog ("L2HMC minus the networks"), or give
the sampler networks. A plain HMC baseline is the `hmc` block, which every job runs.""",
    ),
    # E3xx: targets and systems ----------------------------------------------------------------
    "E301": CodeInfo(
        "backend not available for the target's framework",
        """The framework comes from `--target`: `pytorch*` targets use PyTorch, `tensorflow*`
targets TensorFlow. DDP and DeepSpeed exist for PyTorch only; TensorFlow distributes with
Horovod (`--target tensorflow-horovod`).""",
    ),
    "E302": CodeInfo(
        "spec and target disagree on the backend",
        """The spec's `distributed` block names one backend and `--target` another (e.g.
`distributed deepspeed` with `--target pytorch-ddp`). Pick the target that matches the spec
(`l2hmcc targets` lists them), or drop the `distributed` block to let the target decide.""",
    ),
    "E303": CodeInfo(
        "no such sweep point",
        """`compile --point P` compiles one point of a sweep: P is a point's name (as in
`sweep.json`, e.g. `u1-beta4.0-leapfrog8`) or its 0-based index. The spec has no sweep, or
no point of that name. Without `--point`, `compile` writes every point under one directory.""",
    ),
    "E304": CodeInfo(
        "output directory exists",
        """`compile` never overwrites an existing job directory unless `--force` is given;
with `--force` it replaces the directory atomically, and only if it is empty or is a job (or
sweep) directory l2hmcc wrote: a valid manifest.json (or sweep.json) with l2hmcc's
`generated_by` notice, and nothing in it but the files the record lists and what runs write
(`output/`, PBS logs, the runtime's `__pycache__/`). Anything else (your files, links, a
record that does not validate) makes `--force` refuse, so it never deletes what l2hmcc did
not write.""",
    ),
    "E305": CodeInfo(
        "cannot write the job directory",
        """Writing the job failed (permissions, disk full, a file in the way). Nothing was
left half-written: the job is built in a temporary directory and renamed into place.""",
    ),
    "E306": CodeInfo(
        "sweep too large",
        """The sweeps of a spec expand into the cartesian product of their values: three
sweeps of 10 values make 1000 jobs. `compile` refuses more than 1024 points. Split the scan
into several specs that extend a common base (`extends "base.l2h"`), or sweep fewer values.""",
    ),
    "E360": CodeInfo(
        "`-o` names no directory of its own",
        """`-o ''`, `-o .`, `-o ..` or a path ending in `/.` or `/..` would make the working
directory (or its parent) the job directory. A job gets a directory of its own: name one,
e.g. `-o jobs/u1-pytorch`.""",
    ),
    # E320-E349: cluster checks (l2hmcc/checks/system.py, facts in l2hmcc/systems.py) --------
    "E320": CodeInfo(
        "cluster job without an account",
        """Every ALCF PBS job is charged to a project: `qsub` refuses a script without
`-A` ("Account_Name is required to be set"). Name the project in the job block:

    job polaris { account = "YourProject"  queue = debug  nodes = 1  walltime = 30m }""",
    ),
    "E321": CodeInfo(
        "value cannot appear in a #PBS directive",
        """The account (`-A`) and job name (`-N`) are written into `#PBS` lines, which PBS
parses itself: they cannot be quoted, so they must not contain spaces, quotes, `#`, `$`,
newlines or other special characters. Project names use letters, digits, `_`, `.` and `-`;
job names letters, digits, `_`, `.`, `+` and `-`, starting with a letter or digit.""",
    ),
    "E322": CodeInfo(
        "unknown filesystem",
        """`-l filesystems=…` names the filesystems a job needs; PBS rejects names the system
does not have (`qstat -Bf` lists them as `resources_available.valid_filesystems`). Polaris:
`home`, `eagle`. Aurora: `home`, `flare`, `daos_user_fs`, `daos_perf_fs`. Sunspot: `home`,
`tegu`.""",
    ),
    "E323": CodeInfo(
        "no queue takes the job",
        """The job names no queue and no open queue of the system takes this many nodes for
this long. The help line lists the queues that come closest; change `nodes` or `walltime`,
or name a queue you have access to.""",
    ),
    "E324": CodeInfo(
        "unknown queue",
        """The queue does not exist on this system. The execution queues behind a routing queue
(`small`, `medium`, `large` behind `prod`) cannot be named directly: submit to `prod`.
Queues (2026): Polaris `debug`, `debug-scaling`, `prod`, `preemptable`, `demand`,
`capacity`; Aurora `debug`, `debug-scaling`, `prod`, `capacity`, `visualization`;
Sunspot `workq`.""",
    ),
    "E325": CodeInfo(
        "walltime below the minimum",
        """Every ALCF queue asks for at least 5 minutes of walltime.""",
    ),
    "E326": CodeInfo(
        "nodes outside the queue's limits",
        """Each queue takes a range of node counts. A routing queue such as `prod` accepts a job
of any size and then silently drops it when none of its execution queues fits (`Job
rejected by all possible destinations`, or a job id that later disappears), so l2hmcc checks
the execution queues' limits. On Aurora `prod` starts at 256 nodes; 17–255 nodes run only
in `debug-scaling` (2–256 nodes, ≤ 1h).""",
    ),
    "E327": CodeInfo(
        "walltime over the queue's limit",
        """Each execution queue has a maximum walltime, and behind a routing queue it depends
on the node count: on Polaris `prod` gives 10–24 nodes ≤ 3h, 25–99 nodes ≤ 6h and 100–496
nodes ≤ 24h; on Aurora 256–1024 nodes ≤ 12h, 1025–1999 ≤ 18h, 2000+ ≤ 24h.""",
    ),
    "E328": CodeInfo(
        "more ranks per node than devices",
        """l2hmcc places one rank per GPU (Polaris: 4 per node) or per GPU tile (Aurora and
Sunspot: 12 per node). More ranks would share devices, which needs MPS or several compute
command streamers per tile; the generated jobs do not set those up.""",
    ),
    "E329": CodeInfo(
        "not a module name",
        """`modules` lists Lmod modules loaded after the system's framework module, e.g.
`conda/2024-04-29` or `xpu-smi`. Names use letters, digits and `_ . + / @ : -`.""",
    ),
    "E330": CodeInfo(
        "control character in an environment value",
        """Values in `job { env { … } }` are exported by the job script (and copied into
DeepSpeed's `.deepspeed_env`, one `KEY=VALUE` per line), so they must be single-line text.""",
    ),
    "E331": CodeInfo(
        "local launcher on a cluster",
        """`torchrun` and `horovodrun` start ranks on one machine. On ALCF systems ranks start
with `mpiexec` (PALS), which also binds them to cores; DeepSpeed may also use its own
`deepspeed` launcher (hostfile and ssh). Use `launcher = mpiexec` or leave it `auto`.""",
    ),
    "E332": CodeInfo(
        "framework or backend not available on the system",
        """The system's module stacks do not ship the target's framework with its distributed
backend: Horovod for PyTorch was removed from Aurora's `frameworks` module (2025.3.1);
Polaris ships Horovod only in `conda/2024-04-29`; no TensorFlow stack is known on Sunspot.""",
    ),
    "E333": CodeInfo(
        "the chosen module lacks the backend",
        """The spec pins a module stack (`modules = [...]`) that does not ship the target's
backend, e.g. Horovod with Polaris' `conda/2025-09-25`. The help names a stack that does.""",
    ),
    "E334": CodeInfo(
        "several nodes for a local job",
        """`job local` runs on this machine through the job directory's `run-local.sh`: one
node. For several processes use `ranks_per_node = N` (with a distributed backend).""",
    ),
    "E335": CodeInfo(
        "DeepSpeed's launcher on an Intel system",
        """`launcher = deepspeed` starts the ranks with DeepSpeed's own launcher: pdsh over ssh,
from a hostfile. On Aurora and Sunspot the collective library is oneCCL, and the settings
ALCF documents for it (`CCL_PROCESS_LAUNCHER=pmix`, `CCL_ATL_TRANSPORT=mpi`,
`CCL_KVS_MODE=mpi`, the Aurora oneCCL page) hold for ranks that PALS `mpiexec` starts; ranks
started over ssh would need other settings (`CCL_PROCESS_LAUNCHER=none`, an ofi transport)
that ALCF does not document. Use `launcher = mpiexec` (or `auto`): the ranks start with
mpiexec and DeepSpeed joins them with `deepspeed.init_distributed`.""",
    ),
    "E336": CodeInfo(
        "walltime chaining in a one-job-per-user queue",
        """`job { continue = N }` makes a job that reaches its walltime checkpoint and submit
its follow-on (`qsub -W depend=afterany:$PBS_JOBID`) while it still runs. Queues that hold one
job per user, running or queued (Aurora `debug` and `debug-scaling`, Polaris `debug-scaling`),
refuse that second submission, so the chain would stop after the first job. Use a queue
without that limit, or drop `continue` and resubmit by hand (`qsub -v L2HMCC_RESUME=1
job.pbs` continues from the checkpoint).""",
    ),
    # E350-E359: what the targets' runtimes support (l2hmcc/checks/target_support.py, issue 4)
    "E350": CodeInfo(
        "DeepSpeed ZeRO stage 0 with fp64 parameters",
        """With `train.precision = fp64` (the default for SU(N)) the networks and step sizes
are fp64. DeepSpeed's ZeRO stage 0 all-reduces gradients in buckets of the accelerator's
supported types (fp32, fp16, bf16) and stops with "attempting to reduce an unsupported grad
type: torch.float64" (DeepSpeed 0.19.8). ZeRO stages 1 and 2 reduce fp64 gradients correctly.
Use `zero_stage = 1` (or 2), or `precision = fp32`.""",
    ),
    "E351": CodeInfo(
        "DeepSpeed ZeRO stage 3",
        """ZeRO stage 3 partitions the parameters between ranks and gathers them only while a
submodule runs its forward. The L2HMC dynamics read their step sizes outside any submodule,
and checkpoints need whole state dicts, so stage 3 cannot run them. The networks are small:
stage 3 would save no memory that matters. Use `zero_stage = 1` or `2`.""",
    ),
    "W350": CodeInfo(
        "half-precision networks with TensorFlow",
        """The TensorFlow runtime computes the networks in `train.precision` (fp32 or fp64);
it has no bf16/fp16 networks (the PyTorch runtime runs them under autocast on CUDA). The job
runs, with its networks in full precision: drop `network_precision`, or compile for a PyTorch
target.""",
    ),
    # E385-E389, W385-W387: `network local` (l2hmcc/lower.py, l2hmcc/checks/network.py) -------
    "E385": CodeInfo(
        "key not an option of `network local`",
        """`network local` (U1) computes the scale, translation and transformation heads of
every link from the plaquettes around it, with one small network shared by all sites:

    c(n) = [cos θ_P(n), sin θ_P(n)]  per plane,  h = conv stack(c)  (periodic, `same`)
    (s, t, q)(link μ at n) = heads(dense([h(n), h(n − ν̂)] for ν ≠ μ))

Its inputs are always cos θ_P and sin θ_P of the plaquettes (gauge invariant), so it takes no
`embedding`; it has no `dropout` and no `batch_norm`. Its keys are `conv { filters  kernel }`,
`hidden`, `activation`, `scale_s`, `scale_q` and `head_init`. Remove the key, or write
`network l2hmc { ... }` for the seed's networks, which take it.""",
    ),
    "E386": CodeInfo(
        "pooling in `network local`",
        """The local network gives every link its own heads at the lattice's resolution: its
conv stack keeps the extent (`same` periodic padding) and cannot pool. Remove `conv.pool` (or
write all 1).""",
    ),
    "E387": CodeInfo(
        "`full` padding in `network local`",
        """`padding = full` (the seed's network) grows the lattice by k−1 per conv layer; the
local network's features must stay on the lattice's sites, one per site, so its conv layers
pad periodically to keep the extent (`same`, the default). Remove `conv.padding`.""",
    ),
    "E388": CodeInfo(
        "`network local` with an SU(N) group",
        """`network local` is implemented for U(1) links only: its inputs are U(1) plaquette
angles and its outputs scale real momenta. SU(N) specs use `network l2hmc { ... }`, which is
also what an SU(N) spec without a `network` block gets.""",
    ),
    "E389": CodeInfo(
        "`network local` kernel wider than the lattice",
        """The local network's conv layers pad every lattice axis periodically by (k−1)/2
sites on each side (`same` padding) before a convolution of width k. A padding longer than an
extent of the lattice would have to wrap around it more than once. Use kernels of at most
2L + 1 sites for the smallest extent L (in practice 3 or 5: a kernel as wide as the lattice
already sees every site).""",
    ),
    "W385": CodeInfo(
        "`dynamics.split_x` with `network local`",
        """`split_x` gives each leapfrog layer two x-networks instead of one. `network local`
has no x-networks at all (an x-network may not read the links it moves, and every plaquette
around a link contains it, so no gauge-invariant x-network exists with checkerboard masks):
its x updates are the drift x + ε v of every link. The key does nothing; remove it.""",
    ),
    "W386": CodeInfo(
        "`dynamics.mask` with `network local`",
        """The masks choose which links each x-network reads and which it moves. With `network
local` there are no x-networks and every link drifts by ε v in one update, so neither
`mask` nor `mask_seed` changes the sampler. Remove them (or use `network l2hmc`).""",
    ),
    "W387": CodeInfo(
        "`dynamics.x_update` with `network local`",
        """`x_update` chooses how an x-network's scale head s acts on U(1) angles (`compact`:
2 atan(e^{εs} tan(x/2)); `affine`: x e^{εs}). With `network local` there is no x-network and
s = 0 in every x update, so both forms are the drift x + ε v, exact on the circle. Remove
`x_update`.""",
    ),
    # E370-E372: `dynamics { fourier }`, Fourier acceleration (l2hmcc/lower.py,
    # l2hmcc/checks/dynamics.py) ---------------------------------------------------------------
    "E370": CodeInfo(
        "`dynamics.fourier` out of range",
        """`fourier` is the initial mass² m² of the Fourier filter through which every leapfrog
layer kicks and drifts: K̂(k) = √((4D + m²)/(λ(k) + m²)) per lattice momentum k, with
λ(k) = Σ_d 4 sin²(k_d/2) the lattice Laplacian's eigenvalues (0 … 4D). K̂ is 1 for the
highest momentum and √((4D + m²)/m²) for constant fields, so small m² speeds up the long
wavelengths most; m² is learned from there (one per layer, with the step sizes). It must be
a finite number ≥ 0; 0 is the plain leapfrog (no filter). The same holds for
`hmc { fourier }`, the Fourier-accelerated HMC baseline, whose mass² stays fixed.""",
    ),
    "E371": CodeInfo(
        "`fourier` in the `network` block",
        """The Fourier filter is part of the dynamics, not of the networks: every layer kicks
with the filtered force K F and drifts every link by ε K v whatever its networks are (or with
none: `network none` is then Fourier-accelerated leapfrog with learned step sizes and masses,
and the evaluation's ablation without networks keeps the filter). Move the key:

    dynamics { fourier = 0.5 }    # not: network local { fourier = 0.5 }""",
    ),
    "E372": CodeInfo(
        "`dynamics.fourier` other than U1 on a 2D or 3D lattice",
        """The Fourier filter of `dynamics { fourier }` is implemented for U1 on 2D and 3D
lattices (one real FFT over the lattice axes per kick and drift, in both frameworks; U1
momenta and forces are gauge invariant, so the filter commutes with gauge transformations,
which SU(N) algebra fields would not), in `dynamics` and in the `hmc` baseline alike.
Remove `fourier` for this lattice.""",
    ),
    # Warnings -----------------------------------------------------------------------------------
    # E4xx: job directories as records (`l2hmcc verify`, l2hmcc/verify.py) -------------------
    "E401": CodeInfo(
        "file edited after compilation",
        """The file's sha256 differs from the one manifest.json (or sweep.json) recorded when
l2hmcc wrote the job. Generated files are not meant to be edited: change the spec and
compile again (`--force` replaces the directory), so the record stays true.""",
    ),
    "E402": CodeInfo(
        "file missing",
        """The record lists a file the job directory no longer has. Compile the spec again to
restore it.""",
    ),
    "E403": CodeInfo(
        "file not part of the job",
        """The job directory holds a file its record does not list, a symbolic link, a FIFO
or device, or an empty directory. What a run writes is ignored where runs write it:
`output/`, DeepSpeed's `hostfile` and `.deepspeed_env` and PBS logs `NAME.o123` at the job's
top level (a sweep's and each point's), and Python's bytecode `__pycache__/NAME.*.pyc` beside
a carried `NAME.py`; anything else was added by hand.""",
    ),
    "E404": CodeInfo(
        "file mode changed",
        """A generated script lost its executable bit, or a file gained one.""",
    ),
    "E405": CodeInfo(
        "today's compiler writes the job differently",
        """`verify` compiles the spec copies of the job again (the recorded `--set`
overrides, target and sweep point applied) and compares the result with the record. A
difference means this l2hmcc (or its system facts) would generate another job from the same
spec: the diff shows what. The job as recorded still says what ran.""",
    ),
    "E406": CodeInfo(
        "not a job directory",
        """The directory has no manifest.json (a job) or sweep.json (a sweep), or the record
cannot be read: invalid JSON, another layout version, or fields that do not validate.""",
    ),
    "E407": CodeInfo(
        "the spec copy no longer compiles",
        """The job's spec copy (with its recorded overrides) has errors with this version of
l2hmcc, so `verify` cannot compare: run `l2hmcc check` on the copy to see them.""",
    ),
    "E408": CodeInfo(
        "not a valid record",
        """The directory's manifest.json (or sweep.json) is not a record l2hmcc wrote: it is
not a regular file, larger than 64 MiB, not JSON (or nested too deeply), another layout
version, fields that do not validate, no `generated_by` notice, paths that leave the
directory (absolute, `..`), spec copies it does not list, or a target this l2hmcc does not
know. `verify` reads the directory as untrusted input and stops here.""",
    ),
    "E409": CodeInfo(
        "job file is not a regular file",
        """The record lists a file here, but the path is a symbolic link (or lies under a
linked directory), a FIFO, a device, or a file over 64 MiB. `verify` never follows links or
reads special files: a link to an identical copy elsewhere is still not the job's file.""",
    ),
    "W001": CodeInfo(
        "SU(N) links in single precision",
        """SU(N) links default to fp64 (complex128): over many leapfrog steps, products of
complex64 matrices drift off the group (unitarity, det 1) and ΔH loses digits the
Metropolis test needs. fp32 (complex64) is allowed when asked for; this warns that it was.""",
    ),
    "W002": CodeInfo(
        "distributed backend with a single rank",
        """The spec asks for a distributed backend but the job runs one rank
(`job.nodes = 1` and `job.ranks_per_node = 1`). It works, with the backend's start-up cost
and nothing to gain.""",
    ),
    "W003": CodeInfo(
        "interval longer than training",
        """`train.log_every` or `train.checkpoint_every` is larger than the number of training
steps, so nothing would be logged or checkpointed during training.""",
    ),
    "W004": CodeInfo(
        "affine x update on U(1)",
        """`x_update = affine` updates the angles as x ↦ x e^{εs} + ε(…), a bijection of the
real line but not of the circle: x and x + 2π, the same link, are mapped to points that differ
by 2π e^{εs}, not by a multiple of 2π, so the update is not a function of the link. The
generalized leapfrog is reversible, with the Jacobian it accounts for, for the angles as real
numbers (the runtime wraps them onto [−π, π) only at the end of a proposal): the chain is exact
as a chain of real coordinates (the seed's choice, l2hmc 0.13), not as a chain of U(1) links.
`x_update = compact` (2 atan(e^{εs} tan(x/2)), the default for U1) maps the circle onto itself
and is exact for the links.""",
    ),
    "W005": CodeInfo(
        "fp16 gradient allreduce with the mixed loss",
        """`fp16_allreduce = true` makes Horovod cast every gradient to fp16 for the allreduce
(no loss scaling): fp16 holds at most 65504 and about 3 significant digits. The mixed loss
λ²/ℓ − ℓ/λ² has gradients proportional to 1/ℓ², which explode when a batch's proposals are
mostly rejected (ℓ → 0): on U(1) 16×16 they reached 1.07e4 within 20 steps, one bad batch
from overflow. An inf gradient turns the clipped update into NaN step sizes, and the run stops
with "training diverged". The L2HMC networks are small, so compression saves little time:
drop `fp16_allreduce`, or train with `form = plain` (gradients below 10 in the same run).""",
    ),
    "W006": CodeInfo(
        "HMC step size that does not divide the trajectory length",
        """A trajectory of length τ is n leapfrog steps of one size. The runtime runs
n = ceil(τ/ε) steps of τ/n: every trajectory has exactly the length asked for, and the step
actually run is never larger than the one written (a larger step would lower the acceptance
and could make the integrator unstable). When ε does not divide τ, the job runs a smaller ε
than the spec says: `step_size = 0.3` with `trajectory_length = 1.0` runs 4 steps of 0.25.
The warning names the ε that runs; write that value (or a τ that is a multiple of ε) so that
the spec, summary.json and the job agree. Thermalization uses the same ε and τ.""",
    ),
    "W007": CodeInfo(
        "compiled leapfrog layers the target runs eagerly",
        """`train.compile` (the default) or `evaluate.compile` asks for compiled leapfrog
layers, but the target's runtime runs this gauge group's layers eagerly: the job runs, more
slowly than the spec suggests, and its `train.py` says so. Write `compile = false` to say what
runs. (The HMC baseline's integrator is compiled either way.)""",
    ),
    "W011": CodeInfo(
        "step-size learning rate for fixed step sizes",
        """`train.step_size_lr_factor` sets the learning rate of the step sizes ε_k (as a factor
of `train.lr`), but `dynamics.learnable_step_size = false` keeps them fixed: the factor changes
nothing. Drop it, or let the step sizes learn.""",
    ),
    "W012": CodeInfo(
        "ablation of a sampler without networks",
        """`evaluate.ablation = true` trains the spec a second time without networks (only the
step sizes ε_k) and evaluates it beside the trained sampler, to show what the networks add.
With `network none` the sampler has no networks: the ablation would be the same sampler,
trained twice. Drop `ablation`, or give the sampler networks.""",
    ),
    # W360: device memory (l2hmcc/checks/memory.py, l2hmcc/memory.py) ---------------------------
    "W360": CodeInfo(
        "estimated peak memory exceeds the device",
        """The peak device memory per rank that l2hmcc estimates from the spec (`l2hmcc.memory`:
the networks' parameters, gradients and optimizer state, the activations a train step keeps
for its backward pass, the chains, and what DDP or ZeRO add or partition away) is larger than
one GPU (Polaris: A100, 40 GiB) or GPU tile (Aurora, Sunspot: 64 GiB) of the job's system. The
job would stop with an out-of-memory error in its first minute, after its wait in the queue.
The estimate is within a factor 2 of what `train.py --dry-run` measures on a fake device (run
it on a login node for the exact figure). Fewer chains per rank (`train.chains`) shrink the
activations; the parameters grow with the lattice volume and the width of the first layer
(`network.hidden`); fp32 halves both; DeepSpeed ZeRO stage 1/2 divides the optimizer state
(and the gradients) by the number of ranks.""",
    ),
    # W320-W329: cluster warnings (l2hmcc/checks/system.py) ------------------------------------
    "W320": CodeInfo(
        "job name longer than qstat shows",
        """qstat shows the first 15 characters of a job name; the script uses those 15 as
`-N`, so pick a name whose first 15 characters tell your jobs apart.""",
    ),
    "W321": CodeInfo(
        "no filesystems given",
        """ALCF PBS jobs must name their filesystems (`-l filesystems=…`); without a
`filesystems` list the job asks for the system's home and project filesystems (Polaris
`home:eagle`, Aurora `home:flare`, Sunspot `home:tegu`).""",
    ),
    "W322": CodeInfo(
        "deprecated filesystem",
        """The filesystem was retired or renamed (Polaris `grand` was removed in 2024; Aurora's
`daos_user` is now `daos_user_fs`). PBS may reject the job or it may not find its files.""",
    ),
    "W323": CodeInfo(
        "no walltime given",
        """ALCF PBS jobs must give a walltime; without one the job asks for the default (1h).
State it so that the queue limits are checked against what you mean.""",
    ),
    "W324": CodeInfo(
        "queue by request only",
        """Some queues (Polaris `demand`, Aurora `visualization`) need ALCF to grant the
project access first; without it qsub rejects the job.""",
    ),
    "W325": CodeInfo(
        "nodes outside a queue's unverified limits",
        """The queue's limits are not public (Sunspot's `workq`); l2hmcc knows only what jobs
were observed to run with. Check with `qstat -Qf workq` on the system.""",
    ),
    "W326": CodeInfo(
        "walltime outside a queue's unverified limits",
        """The queue's limits are not public (Sunspot's `workq`); check the walltime limit with
`qstat -Qf workq` on the system.""",
    ),
    "W327": CodeInfo(
        "module stack announced for removal",
        """The job needs a module stack that ALCF announced it will remove, and no other stack
on the system ships the target's backend (Horovod on Polaris is only in `conda/2024-04-29`).
The job works while the module exists; the help says what to do once it is gone (a virtual
environment on top of the current module with the backend installed, or another backend).""",
    ),
    "W328": CodeInfo(
        "walltime chaining on the local system",
        """`continue = N` resubmits a PBS job that reaches its walltime. A `job local` run has
no walltime and no scheduler, so the key does nothing there; continue a stopped local run with
`./run-local.sh --resume`.""",
    ),
}


def explain(code: str) -> str | None:
    """The long text for ``code`` (case-insensitive), or None if there is no such code."""
    info = CODES.get(code.strip().upper())
    if info is None:
        return None
    return f"{code.strip().upper()}: {info.title}\n\n{info.explanation}\n"
