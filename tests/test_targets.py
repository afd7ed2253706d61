"""The PyTorch targets as a compiler stage: what they emit, goldens, and lint of the output.

Every target × shipped spec is compiled once (module fixture). Combinations the spec rules out
(its `distributed` block names another backend) must fail with E302 and nothing else; every
other one must compile, and its train.py, run-local.sh and ds_config.json must equal the
goldens (``pytest --update-goldens`` rewrites them; review the diff). The generated Python is
checked with ast.parse, ``ruff format --check`` and ``ruff check`` exactly as written (no
formatter runs at compile time), the shell with bash -n and shellcheck. The jobs are run for
real in tests/test_targets_jobs.py.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from targets_helpers import REPO, SPECS, SU3, Compiled, compile_every_spec, ok, shellcheck, spec_ir

from l2hmcc import driver, ir, pbs, targets
from l2hmcc.checks import target_support
from l2hmcc.lower import lower
from l2hmcc.source import Source
from l2hmcc.syntax import parse
from l2hmcc.targets import job, pytorch, pytorch_deepspeed

PT_TARGETS = [name for name, t in targets.TARGETS.items() if t.framework == "pytorch"]
RUFF = Path(sys.executable).with_name("ruff")
GOLDEN_FILES = ("train.py", "run-local.sh", "ds_config.json")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Compiled]:
    """Every shipped spec × PyTorch target."""
    return compile_every_spec(tmp_path_factory.mktemp("targets"), PT_TARGETS)


def test_registry_declares_the_pytorch_targets() -> None:
    assert PT_TARGETS == ["pytorch", "pytorch-ddp", "pytorch-horovod", "pytorch-deepspeed"]
    for name in PT_TARGETS:
        t = targets.TARGETS[name]
        assert targets.is_implemented(t)
        assert (t.framework, t.backend) == tuple(
            __import__("l2hmcc.systems", fromlist=["TARGETS"]).TARGETS[name]
        )


def test_every_combination_compiles_or_names_the_backend_mismatch(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    for (spec, target), c in compiled.items():
        backend = targets.TARGETS[target].backend
        assert c.outcome.spec is not None, (spec, target, c.outcome.diagnostics)
        declared = c.outcome.spec.distributed.backend
        if c.codes:
            # E302, and maybe the system's own verdict (issue 5: e.g. no Horovod on Aurora)
            assert "E302" in c.codes, (spec, target, c.outcome.diagnostics)
            assert all(code.startswith("E3") for code in c.codes), c.codes
            assert declared != backend
        else:
            assert c.out.is_dir(), (spec, target)
    # every target compiles at least the two smoke specs
    for target in PT_TARGETS:
        for spec in ("u1-smoke.l2h", "su3-smoke.l2h"):
            assert not compiled[spec, target].codes


def test_job_directory_layout(compiled: dict[tuple[str, str], Compiled]) -> None:
    for c in ok(compiled):
        files = {p.relative_to(c.out).as_posix() for p in c.out.rglob("*") if p.is_file()}
        expected = {"train.py", "run-local.sh", "job.pbs", "spec.l2h", "manifest.json"}
        if c.target == "pytorch-deepspeed":
            expected.add("ds_config.json")
        assert expected <= files, (c.spec, c.target)
        carried = {f for f in files if f.startswith("l2hmcc_runtime/")}
        assert "l2hmcc_runtime/pt/trainer.py" in carried
        assert "l2hmcc_runtime/common/history.py" in carried
        assert not any(f.startswith("l2hmcc_runtime/tf/") for f in carried)
        assert not any("__pycache__" in f for f in carried)
        assert files - carried - expected == set(), (c.spec, c.target)
        for name in ("run-local.sh", "job.pbs"):
            assert (c.out / name).stat().st_mode & 0o111, name
        manifest = json.loads((c.out / "manifest.json").read_text())
        recorded = {f["path"] for f in manifest["files"]}
        assert recorded == files - {"manifest.json"}


def test_carried_runtime_is_a_byte_copy_of_the_package(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    c = compiled["u1-smoke.l2h", "pytorch"]
    package = REPO / "l2hmcc" / "runtime"
    for path, data in job.runtime_files("pt"):
        rel = Path(path).relative_to(job.CARRIED_RUNTIME)
        assert (package / rel).read_bytes() == data
        assert (c.out / path).read_bytes() == data


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("target", PT_TARGETS)
def test_goldens(
    spec: str,
    target: str,
    compiled: dict[tuple[str, str], Compiled],
    golden: Callable[[str, str], None],
) -> None:
    c = compiled[spec, target]
    if c.codes:
        return  # the E302 case, asserted above
    for name in GOLDEN_FILES:
        path = c.out / name
        if path.exists():
            golden(f"targets/{Path(spec).stem}/{target}/{name}", path.read_text(encoding="utf-8"))


def test_generated_headers(compiled: dict[tuple[str, str], Compiled]) -> None:
    for c in ok(compiled):
        sha = c.outcome.spec and json.loads((c.out / "manifest.json").read_text())["spec"]["sha256"]
        notice = f"generated by l2hmcc 0.1.0 from {c.spec} (sha256 {sha}); do not edit"
        assert (c.out / "train.py").read_text().splitlines()[0] == f"# {notice}"
        assert (c.out / "run-local.sh").read_text().splitlines()[1] == f"# {notice}"
        if c.target == "pytorch-deepspeed":
            ds = json.loads((c.out / "ds_config.json").read_text())
            assert ds["_l2hmcc"]["generated_by"] == notice


def test_generated_python_parses_and_is_ruff_clean(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    for c in ok(compiled):
        assert_python_is_clean(c.out, (c.spec, c.target))


def assert_python_is_clean(job_dir: Path, what: object) -> None:
    """``train.py`` parses and is ruff clean as a user's ruff sees it: no configuration, run
    from the job directory."""
    assert RUFF.exists(), "ruff is a dev dependency (scripts/setup.sh)"
    ast.parse((job_dir / "train.py").read_text(), filename=str(job_dir / "train.py"))
    fmt = subprocess.run(
        [RUFF, "format", "--isolated", "--check", "--diff", "train.py"],
        cwd=job_dir,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, (what, fmt.stdout, fmt.stderr)
    lint = subprocess.run(
        [
            RUFF,
            "check",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP,SIM,RUF",
            "--ignore",
            "E501",
            "--output-format",
            "concise",
            "train.py",
        ],
        cwd=job_dir,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, (what, lint.stdout, lint.stderr)


def test_generated_shell_passes_bash_n_and_shellcheck(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    shellcheck(*(c.out / "run-local.sh" for c in ok(compiled)))


def test_compiling_twice_gives_identical_bytes(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        a = driver.compile("specs/su3-smoke.l2h", "pytorch-deepspeed", tmp_path / "a")
        b = driver.compile("specs/su3-smoke.l2h", "pytorch-deepspeed", tmp_path / "b")
    assert a.ok and b.ok
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert ma["bundle_digest"] == mb["bundle_digest"]


# ----------------------------------------------------------------------------------------------
# What the spec's choices become


def _train_py(spec: ir.Spec, target: str = "pytorch") -> str:
    t = targets.TARGETS[target]
    assert isinstance(t, pytorch.PyTorchTarget)
    ctx = targets.RenderContext("t.l2h", "", "ab" * 32, "0.1.0")
    return pytorch.render_train_py(t, spec, ctx)


def test_spec_choices_are_visible_in_train_py() -> None:
    spec = spec_ir(
        "lattice { group = U1  shape = [8, 8]  beta = linear(2.0, 4.0) }\n"
        "dynamics { leapfrog = 3  directions = random  mask = random  x_update = affine }\n"
        "network { conv { filters = [4, 8]  kernel = [3, 3] }  hidden = [32]  activation = swish }\n"
        "train { eras = 2  steps_per_era = 5  compile = true  network_precision = bf16 }\n"
        "hmc { step_size = auto(0.7) }\n"
        'experiment e { seed = 11  description = "it\'s \\"quoted\\"" }\n'
    )
    text = _train_py(spec)
    ast.parse(text)
    for fragment in (
        'kind="linear"',
        "end=4.0",
        "leapfrog=3",
        'directions="random"',
        "mask_seed=11",
        'x_update="affine"',
        "conv_filters=(4, 8)",
        "conv_kernels=(3, 3)",
        'activation="swish"',
        "eras=2",
        "steps_per_era=5",
        "compile=True",
        'network_precision="bf16"',
        "# torch.compile: every leapfrog layer",
        "networks in bf16 (autocast on CUDA)",
        "step_size=None",
        "target_acceptance=0.7",
    ):
        assert fragment in text, fragment
    # the free-text description is a literal that evaluates back to itself
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "description"]
    assert ast.literal_eval(calls[0].value) == 'it\'s "quoted"'


def test_new_runtime_fields_reach_train_py() -> None:
    spec = spec_ir(
        "lattice { group = U1  shape = [8, 8]  beta = 2.0 }\n"
        "dynamics { mask = random  mask_seed = 42 }\n"
        "network { conv { filters = [2]  kernel = [3]  padding = full }  head_init = 0 }\n"
        "train { lr_schedule = cosine  lr_final = 0.05  weight_decay = 1e-4"
        "  keep_checkpoints = 5 }\n"
    )
    text = _train_py(spec)
    for fragment in (
        "mask_seed=42",
        'conv_padding="full"',
        "head_init=0.0",
        "lr_final=0.05",
        "weight_decay=0.0001",
        "keep_checkpoints=5",
    ):
        assert fragment in text, fragment
    # a constant schedule has no final rate; a checkerboard mask no seed
    plain = _train_py(spec_ir("lattice { group = U1  shape = [8, 8]  beta = 2.0 }\n"))
    assert "lr_final" not in plain and "mask_seed" not in plain
    assert "compile_layers" not in plain  # evaluation follows training


def _network_config(train_py: str) -> dict[str, object]:
    """The keyword arguments of ``NETWORK = NetworkConfig(...)`` in a generated train.py."""
    [call] = [
        node.value
        for node in ast.parse(train_py).body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["NETWORK"]
        and isinstance(node.value, ast.Call)
    ]
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}


def test_u1_seed_spec_is_the_seeds_network(compiled: dict[tuple[str, str], Compiled]) -> None:
    """specs/u1-seed.l2h compiles to the runtime's ``seed_u1_network()`` (60 249 712
    parameters, counted in tests/runtime/pt/test_networks.py); ``cos_sin`` is what the seed's
    ``auto`` embedding means for U(1)."""
    from dataclasses import replace

    from l2hmcc.runtime.pt.networks import NetworkConfig, seed_u1_network

    train_py = (compiled["u1-seed.l2h", "pytorch"].out / "train.py").read_text()
    config = NetworkConfig(**_network_config(train_py))  # type: ignore[arg-type]
    assert config == replace(seed_u1_network(), embedding="cos_sin")


def test_network_none_and_evaluation_compiled_alone(tmp_path: Path) -> None:
    (tmp_path / "bare.l2h").write_text(
        "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\nnetwork none {}\n"
        "train { compile = false }\nevaluate { compile = true }\n"
    )
    outcome = driver.compile(str(tmp_path / "bare.l2h"), "pytorch", tmp_path / "job")
    assert outcome.ok, outcome.diagnostics
    text = (tmp_path / "job" / "train.py").read_text()
    assert "NETWORK = None" in text and "NetworkConfig" not in text
    assert "no networks." in text
    assert "    trainer.model.compile_layers(True)\n    run.evaluate(" in text
    assert_python_is_clean(tmp_path / "job", "network none")
    # and the other way round: compiled training, eager evaluation
    spec = spec_ir(
        "lattice { group = U1  shape = [4, 4]  beta = 2.0 }\nevaluate { compile = false }\n"
    )
    text = _train_py(spec)
    assert "compile=True" in text and "trainer.model.compile_layers(False)" in text
    assert "not evaluation" in text


def test_su3_train_py_leaves_the_u1_x_update_out() -> None:
    text = _train_py(spec_ir(SU3 + "train { precision = fp64 }\n"))
    assert "x_update" not in text
    assert 'embedding="real_imag"' in text
    assert "(complex128)" in text


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("pytorch", "return SingleProcessBackend()"),
        ("pytorch-ddp", "torch.distributed.init_process_group("),
        ("pytorch-deepspeed", "deepspeed.init_distributed("),
        ("pytorch-horovod", "hvd.init()"),
    ],
)
def test_backend_setup_is_visible(target: str, needle: str) -> None:
    text = _train_py(spec_ir(SU3), target)
    assert needle in text
    assert "def setup_backend(env: LaunchEnv, device: torch.device)" in text


def test_deepspeed_config_batch_sizes_follow_the_ranks() -> None:
    spec = spec_ir(
        SU3 + "train { chains = 16 }\ndistributed deepspeed { zero_stage = 2 }\n"
        'job polaris { account = "A"  queue = debug  nodes = 2  walltime = 1h }\n'
    )
    ctx = targets.RenderContext("t.l2h", "", "ab" * 32, "0.1.0")
    config = pytorch_deepspeed.deepspeed_config(spec, ctx)
    assert config["train_batch_size"] == 16 * 2 * 4  # chains × nodes × 4 GPUs per node
    assert config["train_micro_batch_size_per_gpu"] == 16
    assert config["gradient_accumulation_steps"] == 1
    assert config["zero_optimization"] == {"stage": 2}
    assert config["zero_allow_untested_optimizer"] is True
    assert config["fp16"] == {"enabled": False} and config["bf16"] == {"enabled": False}
    local = pytorch_deepspeed.deepspeed_config(
        spec_ir(SU3 + "distributed deepspeed { zero_stage = 0 }\n"), ctx
    )
    assert local["train_batch_size"] == 16  # one local rank, default 16 chains
    assert "zero_allow_untested_optimizer" not in local


@pytest.mark.parametrize(
    ("spec_text", "target", "kind", "nproc"),
    [
        ("", "pytorch", "python", 1),
        ("distributed ddp {}\njob local { ranks_per_node = 2 }\n", "pytorch-ddp", "torchrun", 2),
        ("", "pytorch-deepspeed", "deepspeed", 1),
        (
            "distributed deepspeed { launcher = deepspeed }\n",
            "pytorch-deepspeed",
            "deepspeed_runner",
            1,
        ),
        ("", "pytorch-horovod", "horovodrun", 1),
    ],
)
def test_local_launcher(spec_text: str, target: str, kind: str, nproc: int) -> None:
    t = targets.TARGETS[target]
    assert isinstance(t, pytorch.PyTorchTarget)
    launch = t.local_launch(spec_ir(SU3 + spec_text))
    assert (launch.kind, launch.default_nproc) == (kind, nproc)
    ctx = targets.RenderContext("t.l2h", "", "ab" * 32, "0.1.0")
    script = job.run_local_script(launch, target=target, ctx=ctx)
    assert f"NPROC={nproc}\n" in script
    assert script.startswith("#!/usr/bin/env bash\n# generated by l2hmcc")


def test_job_pbs_is_issue_5s_script(compiled: dict[tuple[str, str], Compiled]) -> None:
    c = compiled["su3.l2h", "pytorch-deepspeed"]
    spec = c.outcome.spec
    assert spec is not None
    sha = json.loads((c.out / "manifest.json").read_text())["spec"]["sha256"]
    expected = pbs.render_pbs(
        spec, target="pytorch-deepspeed", spec_name="su3.l2h", spec_sha256=sha
    )
    assert (c.out / "job.pbs").read_text() == expected
    assert "#PBS -l select=2:system=polaris" in expected


# ----------------------------------------------------------------------------------------------
# Target support checks


@dataclass(frozen=True)
class FakeTarget:
    name: str
    framework: str
    backend: str


DS = FakeTarget("pytorch-deepspeed", "pytorch", "deepspeed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train { precision = fp64 }\ndistributed deepspeed { zero_stage = 0 }\n", ["E350"]),
        ("train { precision = fp32 }\ndistributed deepspeed { zero_stage = 0 }\n", []),
        ("train { precision = fp64 }\ndistributed deepspeed { zero_stage = 1 }\n", []),
        ("train { precision = fp64 }\ndistributed deepspeed { zero_stage = 2 }\n", []),
        ("distributed deepspeed { zero_stage = 3 }\n", ["E351"]),
    ],
)
def test_deepspeed_support(text: str, expected: list[str]) -> None:
    tree = parse(Source("t.l2h", SU3 + text)).tree
    assert tree is not None
    r = lower(tree, "t.l2h")
    assert r.spec is not None
    found = target_support.deepspeed_support(r.spec, r.spans, DS)
    assert [d.code for d in found] == expected
    line = (SU3 + text).splitlines().index(text.splitlines()[-1]) + 1
    for d in found:
        assert d.primary.span.line == line  # at zero_stage's value
    other = FakeTarget("pytorch-ddp", "pytorch", "ddp")
    assert target_support.deepspeed_support(r.spec, r.spans, other) == []
