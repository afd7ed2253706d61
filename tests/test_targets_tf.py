"""The TensorFlow targets as a compiler stage: what they emit, goldens, lint of the output.

Every TensorFlow target × shipped spec is compiled once (module fixture). Combinations the
spec rules out (a PyTorch-only backend: E301; another backend: E302) must fail with E3xx codes
only; every other one must compile, and its train.py and run-local.sh must equal the goldens
under tests/goldens/targets/<spec>/<target>/ (``pytest --update-goldens`` rewrites them; review
the diff). The generated Python is checked with ast.parse, ``ruff format --check`` and ``ruff
check`` as written, the shell with bash -n and shellcheck. The jobs are run for real in
tests/test_targets_jobs_tf.py.
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

from l2hmcc import driver, ir, pbs, systems, targets
from l2hmcc.checks import target_support
from l2hmcc.lower import lower
from l2hmcc.source import Source
from l2hmcc.syntax import parse
from l2hmcc.targets import job, tensorflow

TF_TARGETS = [name for name, t in targets.TARGETS.items() if t.framework == "tensorflow"]
RUFF = Path(sys.executable).with_name("ruff")
GOLDEN_FILES = ("train.py", "run-local.sh")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Compiled]:
    """Every shipped spec × TensorFlow target."""
    return compile_every_spec(tmp_path_factory.mktemp("tf-targets"), TF_TARGETS)


def test_registry_declares_the_tensorflow_targets() -> None:
    assert TF_TARGETS == ["tensorflow", "tensorflow-horovod"]
    for name in TF_TARGETS:
        t = targets.TARGETS[name]
        assert targets.is_implemented(t)
        assert isinstance(t, tensorflow.TensorFlowTarget)
        assert (t.framework, t.backend) == systems.TARGETS[name]
    assert not any(isinstance(t, targets.PendingTarget) for t in targets.TARGETS.values())


def test_every_combination_compiles_or_names_the_backend_mismatch(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    for (spec, target), c in compiled.items():
        assert c.outcome.spec is not None, (spec, target, c.outcome.diagnostics)
        declared = c.outcome.spec.distributed.backend
        if c.codes:
            # E301 (ddp/deepspeed need PyTorch) or E302, maybe with the system's own verdict
            assert {"E301", "E302"} & set(c.codes), (spec, target, c.outcome.diagnostics)
            assert all(code.startswith("E3") for code in c.codes), c.codes
            assert declared != targets.TARGETS[target].backend
            assert not c.out.exists()
        else:
            assert c.out.is_dir(), (spec, target)
    for target in TF_TARGETS:
        for spec in ("u1-smoke.l2h", "su3-smoke.l2h"):
            assert not compiled[spec, target].codes, compiled[spec, target].outcome.diagnostics


def test_job_directory_layout(compiled: dict[tuple[str, str], Compiled]) -> None:
    """The PyTorch layout, carrying common/ + tf/ (and no pt/)."""
    for c in ok(compiled):
        files = {p.relative_to(c.out).as_posix() for p in c.out.rglob("*") if p.is_file()}
        expected = {"train.py", "run-local.sh", "job.pbs", "spec.l2h", "manifest.json"}
        assert expected <= files, (c.spec, c.target)
        carried = {f for f in files if f.startswith("l2hmcc_runtime/")}
        for module in ("tf/trainer.py", "tf/run.py", "tf/backends.py", "common/driver.py"):
            assert f"l2hmcc_runtime/{module}" in carried
        assert not any(f.startswith("l2hmcc_runtime/pt/") for f in carried)
        assert not any("__pycache__" in f for f in carried)
        assert files - carried - expected == set(), (c.spec, c.target)
        for name in ("run-local.sh", "job.pbs"):
            assert (c.out / name).stat().st_mode & 0o111, name
        manifest = json.loads((c.out / "manifest.json").read_text())
        assert {f["path"] for f in manifest["files"]} == files - {"manifest.json"}
        assert manifest["target"]["name"] == c.target


def test_carried_runtime_is_a_byte_copy_of_the_package(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    c = compiled["u1-smoke.l2h", "tensorflow"]
    package = REPO / "l2hmcc" / "runtime"
    for path, data in job.runtime_files("tf"):
        rel = Path(path).relative_to(job.CARRIED_RUNTIME)
        assert (package / rel).read_bytes() == data
        assert (c.out / path).read_bytes() == data


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("target", TF_TARGETS)
def test_goldens(
    spec: str,
    target: str,
    compiled: dict[tuple[str, str], Compiled],
    golden: Callable[[str, str], None],
) -> None:
    c = compiled[spec, target]
    if c.codes:
        return  # the E301/E302 case, asserted above
    for name in GOLDEN_FILES:
        golden(f"targets/{Path(spec).stem}/{target}/{name}", (c.out / name).read_text())


def test_generated_headers(compiled: dict[tuple[str, str], Compiled]) -> None:
    for c in ok(compiled):
        sha = json.loads((c.out / "manifest.json").read_text())["spec"]["sha256"]
        notice = f"generated by l2hmcc 0.1.0 from {c.spec} (sha256 {sha}); do not edit"
        assert (c.out / "train.py").read_text().splitlines()[0] == f"# {notice}"
        assert (c.out / "run-local.sh").read_text().splitlines()[1] == f"# {notice}"


def test_generated_python_parses_and_is_ruff_clean(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    """Every generated .py file: train.py and the carried runtime."""
    assert RUFF.exists(), "ruff is a dev dependency (scripts/setup.sh)"
    for c in ok(compiled):
        for path in sorted(c.out.rglob("*.py")):
            ast.parse(path.read_text(), filename=str(path))
        fmt = subprocess.run(
            [RUFF, "format", "--isolated", "--check", "--diff", "train.py"],
            cwd=c.out,
            capture_output=True,
            text=True,
        )
        assert fmt.returncode == 0, (c.spec, c.target, fmt.stdout, fmt.stderr)
        lint = subprocess.run(
            [
                RUFF,
                "check",
                "--isolated",
                "--target-version",
                "py310",  # the runtime's oldest Python (pyproject.toml)
                "--select",
                "E,F,W,I,B,UP,SIM,RUF",
                "--ignore",
                "E501,RUF001,RUF002,RUF003",
                "--output-format",
                "concise",
                "train.py",
                "l2hmcc_runtime",
            ],
            cwd=c.out,
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0, (c.spec, c.target, lint.stdout, lint.stderr)


def test_generated_shell_passes_bash_n_and_shellcheck(
    compiled: dict[tuple[str, str], Compiled],
) -> None:
    shellcheck(*(c.out / "run-local.sh" for c in ok(compiled)))


# ----------------------------------------------------------------------------------------------
# What the spec's choices become


CTX = targets.RenderContext("t.l2h", "", "ab" * 32, "0.1.0")


def _train_py(spec: ir.Spec, target: str = "tensorflow") -> str:
    t = targets.TARGETS[target]
    assert isinstance(t, tensorflow.TensorFlowTarget)
    return tensorflow.render_train_py(t, spec, CTX)


def test_spec_choices_are_visible_in_train_py() -> None:
    spec = spec_ir(
        "lattice { group = U1  shape = [8, 8]  beta = linear(2.0, 4.0) }\n"
        "dynamics { leapfrog = 3  directions = random  mask = random  x_update = affine }\n"
        "network { conv { filters = [4, 8]  kernel = [3, 3] }  hidden = [32]  activation = swish }\n"
        "train { eras = 2  steps_per_era = 5  compile = true  precision = fp64 }\n"
        "hmc { step_size = auto(0.7) }\n"
        "experiment e { seed = 11 }\n"
    )
    text = _train_py(spec)
    ast.parse(text)
    for fragment in (
        'kind="linear"',
        "leapfrog=3",
        'directions="random"',
        'x_update="affine"',
        "conv_filters=(4, 8)",
        'activation="swish"',
        "eras=2",
        "compile=True",
        'precision="fp64"',
        "# Links, actions and the accept/reject test in fp64 (float64); networks in float64.",
        "# XLA, tf.function(jit_compile=True): every leapfrog layer (forward and backward)",
        "step_size=None",
        "target_acceptance=0.7",
        "from l2hmcc_runtime.tf.trainer import BetaSchedule, TrainConfig, Trainer",
        "compile_mode=run.compile_mode",
    ):
        assert fragment in text, fragment
    assert "torch" not in text


def test_eager_and_su3_precision_comments() -> None:
    text = _train_py(spec_ir(SU3 + "train { compile = false }\n"))
    assert "# XLA off: eager (--compile: tf.function(jit_compile=True))." in text
    assert "fp64 (complex128); networks in float64." in text
    assert "x_update" not in text and 'embedding="real_imag"' in text
    half = _train_py(spec_ir(SU3 + "train { precision = fp32  network_precision = bf16 }\n"))
    assert "(complex64); networks in float32 (network_precision = bf16 is not" in half


def test_network_none_and_evaluate_compile() -> None:
    """``network none``: ``NETWORK = None`` and no NetworkConfig import; ``evaluate.compile``
    different from ``train.compile``: the layers are switched before evaluation."""
    text = _train_py(
        spec_ir(SU3 + "network none {}\ntrain { compile = true }\nevaluate { compile = false }\n")
    )
    ast.parse(text)
    assert "NETWORK = None" in text and "NetworkConfig" not in text
    assert "; no networks." in text
    assert "Evaluation runs the leapfrog layers without XLA (evaluate.compile)." in text
    switch = "    trainer.model.compile_layers(False)\n    run.evaluate(trainer, EVALUATE)"
    assert switch in text
    eager = _train_py(spec_ir(SU3 + "train { compile = false }\nevaluate { compile = true }\n"))
    assert "    trainer.model.compile_layers(True)\n" in eager
    assert "compile_layers" not in _train_py(spec_ir(SU3 + "train { compile = true }\n"))


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("tensorflow", "return SingleProcessBackend()"),
        ("tensorflow-horovod", "return HorovodBackend(\n        fp16_allreduce=True,\n    )"),
    ],
)
def test_backend_setup_is_visible(target: str, needle: str) -> None:
    text = _train_py(spec_ir(SU3 + "distributed horovod { fp16_allreduce = true }\n"), target)
    assert needle in text
    assert "def setup_backend(env: LaunchEnv)" in text


@pytest.mark.parametrize(
    ("spec_text", "target", "kind", "nproc", "needle"),
    [
        ("", "tensorflow", "python", 1, "compile with --target tensorflow-horovod for more"),
        (
            "distributed horovod {}\njob local { ranks_per_node = 2 }\n",
            "tensorflow-horovod",
            "horovodrun",
            2,
            '-np "$NPROC" -H "localhost:$NPROC" --gloo',
        ),
    ],
)
def test_local_launcher(spec_text: str, target: str, kind: str, nproc: int, needle: str) -> None:
    t = targets.TARGETS[target]
    assert isinstance(t, tensorflow.TensorFlowTarget)
    launch = t.local_launch(spec_ir(SU3 + spec_text))
    assert (launch.kind, launch.default_nproc, launch.framework) == (kind, nproc, "tensorflow")
    script = job.run_local_script(launch, target=target, ctx=CTX)
    assert f"NPROC={nproc}\n" in script and needle in script
    assert "it needs tensorflow" in script and "torch" not in script


def test_job_pbs_is_issue_5s_script(compiled: dict[tuple[str, str], Compiled]) -> None:
    for c in ok(compiled):
        spec = c.outcome.spec
        assert spec is not None
        sha = json.loads((c.out / "manifest.json").read_text())["spec"]["sha256"]
        expected = pbs.render_pbs(spec, target=c.target, spec_name=c.spec, spec_sha256=sha)
        assert (c.out / "job.pbs").read_text() == expected


def test_polaris_tensorflow_horovod_loads_the_module_that_has_it(tmp_path: Path) -> None:
    """Horovod for TensorFlow ships only in Polaris' conda/2024-04-29 (E333 otherwise)."""
    text = (
        SU3 + "distributed horovod {}\n"
        'job polaris { account = "A"  queue = debug  nodes = 1  walltime = 30m\n'
        '  modules = ["conda/2024-04-29"] }\n'
    )
    (tmp_path / "p.l2h").write_text(text)
    outcome = driver.compile(str(tmp_path / "p.l2h"), "tensorflow-horovod", tmp_path / "job")
    assert outcome.ok, outcome.diagnostics
    script = (tmp_path / "job" / "job.pbs").read_text()
    assert "module load conda/2024-04-29" in script and "mpiexec" in script


# ----------------------------------------------------------------------------------------------
# Target support checks


@dataclass(frozen=True)
class FakeTarget:
    name: str
    framework: str
    backend: str


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ("train { precision = fp32  network_precision = bf16 }\n", "tensorflow", ["W350"]),
        ("train { precision = fp32  network_precision = fp16 }\n", "tensorflow", ["W350"]),
        ("train { network_precision = fp64 }\n", "tensorflow", []),
        ("train { precision = fp32  network_precision = bf16 }\n", "pytorch", []),
    ],
)
def test_tensorflow_support(text: str, target: str, expected: list[str]) -> None:
    tree = parse(Source("t.l2h", SU3 + text)).tree
    assert tree is not None
    r = lower(tree, "t.l2h")
    assert r.spec is not None
    t = targets.TARGETS[target]
    found = target_support.tensorflow_support(r.spec, r.spans, t)
    assert [d.code for d in found] == expected
    for d in found:
        assert d.primary.span.line == 2 and not d.is_error


def test_pytorch_backends_are_refused_for_tensorflow(tmp_path: Path) -> None:
    for backend in ("ddp", "deepspeed"):
        (tmp_path / "s.l2h").write_text(
            SU3 + f"distributed {backend} {{}}\njob local {{ ranks_per_node = 2 }}\n"
        )
        for target in TF_TARGETS:
            outcome = driver.check(str(tmp_path / "s.l2h"), (), target)
            assert [d.code for d in outcome.diagnostics if d.is_error] == ["E301"], target
