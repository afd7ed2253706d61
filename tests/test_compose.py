"""`extends`: the merge rules, chains read relative to each file, cycles, the formatter, and
the job's record of the chain. (Diagnostics that point into base files: tests/corpus/extends_*.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from l2hmcc import compose, driver
from l2hmcc.blocks import BLOCKS
from l2hmcc.fmt import format_spec
from l2hmcc.source import Source
from l2hmcc.syntax import parse

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
experiment fam { description = "the family"  seed = 11 }
lattice { group = U1  shape = [8, 8]  beta = linear(2.0, 4.0) }
dynamics { leapfrog = 4  step_size = 0.05 }
network {
    conv { filters = [4, 8]  kernel = [3, 3] }
    hidden = [16, 16]
}
train { steps = 100  chains = 8  lr = 1e-3 }
distributed deepspeed { zero_stage = 2  launcher = mpiexec }
job polaris {
    account = "Proj"  queue = debug  nodes = 2  walltime = 30m  filesystems = [home, eagle]
    env { A = "1"  B = "2" }
}
"""


def ir_of(tmp_path: Path, child: str, base: str = BASE) -> dict[str, object]:
    (tmp_path / "base.l2h").write_text(base)
    (tmp_path / "child.l2h").write_text(child)
    outcome = driver.check(str(tmp_path / "child.l2h"))
    assert outcome.ok and outcome.spec is not None, outcome.diagnostics
    return outcome.spec.model_dump(mode="json")


def plain_ir(tmp_path: Path, text: str) -> dict[str, object]:
    (tmp_path / "plain.l2h").write_text(text)
    outcome = driver.check(str(tmp_path / "plain.l2h"))
    assert outcome.ok and outcome.spec is not None, outcome.diagnostics
    return outcome.spec.model_dump(mode="json")


def test_variant_blocks_are_the_labelled_ones() -> None:
    assert {k for k, s in BLOCKS.items() if s.variant} == compose.VARIANT_BLOCKS
    assert {k for k, s in BLOCKS.items() if s.label_required} <= compose.VARIANT_BLOCKS
    assert {k: s.label_default for k, s in BLOCKS.items() if s.label_default} == compose.UNLABELLED


def test_network_none_replaces_the_base_networks_and_l2hmc_brings_them_back(
    tmp_path: Path,
) -> None:
    base = "lattice { group = U1 shape = [4, 4] beta = 1.0 }\nnetwork { hidden = [8, 8] }\n"
    assert ir_of(tmp_path, 'extends "base.l2h"\nnetwork none {}\n', base)["network"] is None
    (tmp_path / "none.l2h").write_text('extends "base.l2h"\nnetwork none {}\n')
    (tmp_path / "back.l2h").write_text('extends "none.l2h"\nnetwork l2hmc { dropout = 0.5 }\n')
    back = driver.check(str(tmp_path / "back.l2h"))
    assert back.ok and back.spec is not None and back.spec.network is not None
    # replaced whole: nothing of the base's `hidden = [8, 8]` comes back
    assert (back.spec.network.hidden, back.spec.network.dropout) == ((16, 16, 16), 0.5)
    (tmp_path / "keep.l2h").write_text('extends "none.l2h"\nnetwork { dropout = 0.5 }\n')
    [d] = driver.check(str(tmp_path / "keep.l2h")).diagnostics
    assert d.code == "E102" and d.secondary[0].span.file == str(tmp_path / "none.l2h")


def test_keys_merge_nested_blocks_merge_lists_replace(tmp_path: Path) -> None:
    child = """extends "base.l2h"
experiment fam_b6 { seed = 12 }
lattice { beta = 6.0 }
network { conv { filters = [8] } }
train { chains = 16 }
job { nodes = 1  env { B = "3"  C = "4" } }
"""
    expected = """
experiment fam_b6 { description = "the family"  seed = 12 }
lattice { group = U1  shape = [8, 8]  beta = 6.0 }
dynamics { leapfrog = 4  step_size = 0.05 }
network {
    conv { filters = [8]  kernel = [3, 3] }
    hidden = [16, 16]
}
train { steps = 100  chains = 16  lr = 1e-3 }
distributed deepspeed { zero_stage = 2  launcher = mpiexec }
job polaris {
    account = "Proj"  queue = debug  nodes = 1  walltime = 30m  filesystems = [home, eagle]
    env { A = "1"  B = "3"  C = "4" }
}
"""
    # (conv's kernel stays [3, 3] against one filter: lowering only, as for a plain spec)
    (tmp_path / "base.l2h").write_text(BASE)
    (tmp_path / "child.l2h").write_text(child)
    outcome = driver.load(str(tmp_path / "child.l2h"))
    (tmp_path / "plain.l2h").write_text(expected)
    plain = driver.load(str(tmp_path / "plain.l2h"))
    assert outcome.spec is not None and plain.spec is not None, outcome.diagnostics
    a = outcome.spec.model_dump(mode="json")
    b = plain.spec.model_dump(mode="json")
    assert a == b


def test_a_differently_labelled_variant_block_replaces_the_base_block(tmp_path: Path) -> None:
    ir = ir_of(tmp_path, 'extends "base.l2h"\ndistributed ddp {}\njob local {}\n')
    assert ir["distributed"] == {
        "backend": "ddp",
        "launcher": "auto",
        "find_unused_parameters": False,
    }  # zero_stage and launcher = mpiexec are not carried over
    assert (
        ir["job"] == plain_ir(tmp_path, "lattice { group = U1 shape = [4, 4] beta = 1.0 }")["job"]
    )  # nothing of `job polaris` survives
    same = ir_of(tmp_path, 'extends "base.l2h"\ndistributed deepspeed { zero_stage = 1 }\n')
    assert same["distributed"]["launcher"] == "mpiexec"  # type: ignore[index]


def test_chains_resolve_relative_to_each_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/root.l2h").write_text(BASE)
    (tmp_path / "a/mid.l2h").write_text('extends "b/root.l2h"\ntrain { steps = 50 }\n')
    (tmp_path / "top.l2h").write_text('extends "a/mid.l2h"\ntrain { lr = 5e-4 }\n')
    monkeypatch.chdir(tmp_path / "a/b")  # the working directory plays no part
    outcome = driver.check(str(tmp_path / "top.l2h"))
    assert outcome.ok and outcome.spec is not None, outcome.diagnostics
    assert (outcome.spec.train.steps_per_era, outcome.spec.train.lr) == (50, 5e-4)
    assert [Path(f.name).name for f in outcome.chain] == ["top.l2h", "mid.l2h", "root.l2h"]
    assert [f.written for f in outcome.chain] == [None, "a/mid.l2h", "b/root.l2h"]


def test_self_extension_and_long_chains_are_errors(tmp_path: Path) -> None:
    (tmp_path / "self.l2h").write_text('extends "self.l2h"\n')
    [d] = driver.check(str(tmp_path / "self.l2h")).diagnostics
    assert d.code == "E017" and d.message.count("self.l2h") == 2
    for i in range(compose.MAX_CHAIN + 1):
        (tmp_path / f"c{i}.l2h").write_text(f'extends "c{i + 1}.l2h"\n')
    (tmp_path / f"c{compose.MAX_CHAIN + 1}.l2h").write_text(BASE)
    [d] = driver.check(str(tmp_path / "c0.l2h")).diagnostics
    assert d.code == "E017" and "deeper than 16" in d.message
    assert d.primary.span.file == str(tmp_path / f"c{compose.MAX_CHAIN - 1}.l2h")


def test_a_base_with_a_syntax_error_is_reported_in_the_base(tmp_path: Path) -> None:
    (tmp_path / "base.l2h").write_text("lattice { group = U1\n")
    (tmp_path / "child.l2h").write_text('extends "base.l2h"\n')
    outcome = driver.check(str(tmp_path / "child.l2h"))
    [d] = outcome.diagnostics
    assert d.code == "E003" and d.primary.span.file == str(tmp_path / "base.l2h")
    assert str(tmp_path / "base.l2h") in outcome.sources


def test_fmt_keeps_the_extends_line_and_its_comments() -> None:
    text = '# a family member\nextends   "u1.l2h"   # the base\nlattice { beta = 6.0 }\n'
    tree = parse(Source("t.l2h", text)).tree
    assert tree is not None and tree.extends is not None
    once = format_spec(tree, Source("t.l2h", text))
    assert once == (
        '# a family member\nextends "u1.l2h"  # the base\n\nlattice {\n    beta = 6.0\n}\n'
    )
    again = parse(Source("t.l2h", once)).tree
    assert again == tree and format_spec(again, Source("t.l2h", once)) == once  # type: ignore[arg-type]
    only = 'extends "u1.l2h"\n'
    tree = parse(Source("t.l2h", only)).tree
    assert tree is not None and format_spec(tree, Source("t.l2h", only)) == only


def test_extends_is_only_a_keyword_at_the_top_level() -> None:
    tree = parse(Source("t.l2h", "job local { queue = extends }")).tree
    assert tree is not None and tree.extends is None


def test_the_job_records_the_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "family").mkdir()
    base = tmp_path / "family/base.l2h"
    base.write_text("# the base\n" + BASE.replace("polaris", "local").split("job local")[0])
    child = tmp_path / "child.l2h"
    child.write_text('extends "family/base.l2h"\nlattice { beta = 6.0 }  # a point\n')
    monkeypatch.chdir(tmp_path / "family")
    outcome = driver.compile(str(child), "pytorch-deepspeed", tmp_path / "job")
    assert outcome.ok, outcome.diagnostics
    m = json.loads((tmp_path / "job/manifest.json").read_text())
    assert m["spec"]["name"] == "child.l2h" and m["spec"]["file"] == "spec.l2h"
    assert m["spec"]["normalized"] == (
        'extends "family/base.l2h"\n\nlattice {\n    beta = 6.0\n}  # a point\n'
    )
    [rec] = m["extends"]
    assert (rec["name"], rec["file"]) == ("family/base.l2h", "extends/1-base.l2h")
    assert rec["sha256"] == __import__("hashlib").sha256(base.read_bytes()).hexdigest()
    assert rec["normalized"].startswith("# the base\nexperiment fam {\n    description")
    assert (tmp_path / "job/extends/1-base.l2h").read_bytes() == base.read_bytes()
    assert m["ir"]["lattice"]["beta"] == {"kind": "constant", "value": 6.0}


@pytest.mark.parametrize("name", ["u1-base.l2h", "u1-b6.l2h", "u1-b6-ddp.l2h"])
def test_the_family_examples_check_clean(name: str) -> None:
    outcome = driver.check(str(ROOT / "examples/family" / name), target="pytorch-ddp")
    assert outcome.ok and outcome.diagnostics == [], outcome.diagnostics
    assert len(outcome.chain) == {"u1-base.l2h": 1, "u1-b6.l2h": 2, "u1-b6-ddp.l2h": 3}[name]
