"""Atomic job-directory writes and the --force rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from l2hmcc import driver
from l2hmcc.bundle import Bundle
from l2hmcc.emit import EmitError, write_bundle


def bundle(text: str = "x") -> Bundle:
    b = Bundle()
    b.add("run.sh", "#!/bin/sh\necho " + text + "\n", executable=True)
    b.add("sub/dir/data.txt", text)
    b.add("manifest.json", "{}\n")
    return b


def test_writes_files_with_modes(tmp_path: Path) -> None:
    out = write_bundle(bundle(), tmp_path / "job")
    assert (out / "sub/dir/data.txt").read_text() == "x"
    assert os.access(out / "run.sh", os.X_OK)
    assert not os.access(out / "sub/dir/data.txt", os.X_OK)
    assert [p.name for p in tmp_path.iterdir()] == ["job"]  # no temp dirs left


def job_bundle(tmp_path: Path, steps: int) -> Bundle:
    """A real job (a valid manifest.json): what `--force` may replace."""
    spec = tmp_path / f"spec{steps}.l2h"
    spec.write_text(
        f"lattice {{ group = U1  shape = [4, 4]  beta = 2.0 }}\ntrain {{ steps = {steps} }}\n"
    )
    outcome = driver.build(str(spec), "pytorch")
    assert outcome.bundle is not None, outcome.diagnostics
    return outcome.bundle


def test_existing_directory_needs_force(tmp_path: Path) -> None:
    out = write_bundle(job_bundle(tmp_path, 10), tmp_path / "job")
    with pytest.raises(EmitError) as info:
        write_bundle(job_bundle(tmp_path, 20), out)
    assert info.value.code == "E304"
    old = (out / "manifest.json").read_text()
    assert "steps = 10" in old
    write_bundle(job_bundle(tmp_path, 20), out, force=True)
    assert (out / "manifest.json").read_text() != old
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["job"]


def test_force_refuses_a_directory_l2hmcc_did_not_write(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(EmitError) as info:
        write_bundle(bundle(), precious, force=True)
    assert "not an l2hmcc job directory" in info.value.message
    assert (precious / "thesis.tex").exists()


def test_force_replaces_an_empty_directory_and_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_bundle(bundle(), tmp_path / "empty", force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EmitError):
        write_bundle(bundle(), tmp_path / "file", force=True)


def test_unwritable_parent_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(EmitError) as info:
        write_bundle(bundle(), tmp_path / "file" / "job")
    assert info.value.code == "E305"


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../b", "", "a//b", "./a"])
def test_bundle_rejects_paths_outside_the_job(path: str) -> None:
    with pytest.raises(ValueError):
        Bundle().add(path, "x")


def test_bundle_digest_depends_on_paths_modes_and_contents() -> None:
    a, b = bundle(), bundle()
    assert a.digest() == b.digest()
    c = Bundle()
    c.add("run.sh", a["run.sh"].data, executable=False)
    d = Bundle()
    d.add("run.sh", a["run.sh"].data, executable=True)
    assert c.digest() != d.digest()
    with pytest.raises(ValueError):
        d.add("run.sh", "again")
