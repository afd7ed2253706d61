"""``l2hmcc show JOBDIR``: what a job directory is and, once it ran, what came out.

The report is data first (`report`, also what ``--format json`` prints): the spec (name,
sha256, the specs it extends, overrides, sweep point, its text), the target and system, the
compiler version, and, when the run has written them, ``output/run.json`` (status, start and
end, wall time, hosts, world size, seeds, versions) and ``output/summary.json`` (L2HMC
against HMC: acceptance, plaquette against its exact value, ⟨Q²⟩, τ_int(Q), throughput, the
improvement). `render_plain` prints it as aligned text; `render_rich` as tables (on a
terminal). A sweep directory gets one row per point instead.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from l2hmcc import manifest, record
from l2hmcc.results import RunRecord, Summary


def _read_model(path: Path, model: type[Summary] | type[RunRecord]) -> dict[str, Any] | None:
    """The file as validated JSON data, None if absent, ``{"error": ...}`` if unreadable."""
    if not path.is_file():
        return None
    try:
        return model.model_validate_json(path.read_bytes()).model_dump(mode="json")
    except (OSError, ValidationError, ValueError) as e:
        reason = str(e).splitlines()[0]
        return {"error": f"cannot read {path.name}: {reason}"}


def wall_time_s(run: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(run["started_at"])
        end = datetime.fromisoformat(run["ended_at"]) if run.get("ended_at") else None
    except (KeyError, TypeError, ValueError):
        return None
    return None if end is None else (end - start).total_seconds()


def _spec_part(rec: record.JobRecord) -> dict[str, Any]:
    common = rec.common
    text_path = rec.root / common.spec.file
    try:
        text = text_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = common.spec.normalized
    return {
        "name": common.spec.name,
        "sha256": common.spec.sha256,
        "file": common.spec.file,
        "extends": [e.name for e in common.extends],
        "overrides": list(common.overrides),
        "text": text,
    }


def report(directory: str | Path) -> dict[str, Any]:
    """The report of a job or sweep directory. Raises `record.RecordError`."""
    rec = record.read(directory)
    common = rec.common
    out: dict[str, Any] = {
        "directory": str(rec.root),
        "kind": rec.kind,
        "l2hmcc_version": common.l2hmcc_version,
        "spec": _spec_part(rec),
        "target": common.target.model_dump(mode="json"),
        "system": common.system.model_dump(mode="json"),
    }
    if rec.job is not None:
        spec = rec.job.ir
        out["point"] = rec.job.point.model_dump(mode="json") if rec.job.point else None
        out["experiment"] = {
            "name": spec.experiment.name,
            "description": spec.experiment.description,
            "seed": spec.experiment.seed,
            "lattice": f"{spec.lattice.group} {'x'.join(map(str, spec.lattice.shape))}",
            "beta": spec.lattice.beta.model_dump(mode="json"),
            "train": f"{spec.train.eras * spec.train.steps_per_era} steps × {spec.train.chains}"
            " chains per rank",
            "job": f"{spec.job.system}, {spec.job.nodes} node{'s' * (spec.job.nodes != 1)}",
        }
        out["run"] = _run(rec.root)
        out["summary"] = _read_model(rec.root / manifest.RUN_OUTPUT_DIR / "summary.json", Summary)
        return out
    assert rec.sweep is not None
    out["axes"] = [a.model_dump(mode="json") for a in rec.sweep.axes]
    out["submission"] = rec.sweep.submission.model_dump(mode="json")
    points = []
    for p in rec.sweep.points:
        root = rec.root / p.name
        summary = _read_model(root / manifest.RUN_OUTPUT_DIR / "summary.json", Summary)
        points.append(
            {
                "index": p.index,
                "name": p.name,
                "values": {v.path: v.value for v in p.values},
                "run": _run(root),
                "summary": summary,
            }
        )
    out["points"] = points
    return out


def _run(root: Path) -> dict[str, Any] | None:
    run = _read_model(root / manifest.RUN_OUTPUT_DIR / "run.json", RunRecord)
    if run is not None and "error" not in run:
        run["wall_time_s"] = wall_time_s(run)
    return run


# ---------------------------------------------------------------------------------------------
# Text


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _pm(d: dict[str, Any] | None, key: str = "mean") -> str:
    if not d or d.get(key) is None:
        return "-"
    err = d.get("err")
    return _num(d[key]) + (f" ± {_num(err, 2)}" if err is not None else "")


def _beta(beta: dict[str, Any]) -> str:
    kind = beta["kind"]
    if kind == "constant":
        return _num(beta["value"])
    if kind == "eras":
        return "eras(" + ", ".join(_num(v) for v in beta["values"]) + ")"
    return f"{kind}({_num(beta['start'])}, {_num(beta['end'])})"


def facts(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's key facts as (label, text) rows."""
    spec = r["spec"]
    target = r["target"]
    rows = [("directory", f"{r['directory']} ({r['kind']})")]
    spec_line = f"{spec['name']} (sha256 {spec['sha256'][:12]}…)"
    if spec["extends"]:
        spec_line += " extends " + " → ".join(spec["extends"])
    rows.append(("spec", spec_line))
    if spec["overrides"]:
        rows.append(("overrides", "  ".join(f"--set {o}" for o in spec["overrides"])))
    rows.append(
        (
            "target",
            f"{target['name']} ({target['framework']}, backend {target['backend']}) on"
            f" {r['system']['name']}",
        )
    )
    rows.append(("compiled by", f"l2hmcc {r['l2hmcc_version']}"))
    if r["kind"] == "sweep":
        axes = "; ".join(f"{a['path']} = {', '.join(a['values'])}" for a in r["axes"])
        rows.append(("sweep", f"{len(r['points'])} points over {axes}"))
        rows.append(("submission", f"{r['submission']['mode']}: {r['submission']['reason']}"))
        return rows
    if r.get("point"):
        p = r["point"]
        values = ", ".join(f"{v['path']} = {v['value']}" for v in p["values"])
        rows.append(("sweep point", f"{p['index'] + 1} of {p['count']}: {values}"))
    e = r["experiment"]
    rows.append(("experiment", e["name"] + (f": {e['description']}" if e["description"] else "")))
    rows.append(("lattice", f"{e['lattice']}, beta {_beta(e['beta'])}, seed {e['seed']}"))
    rows.append(("training", e["train"]))
    rows.append(("job", e["job"]))
    run = r.get("run")
    if run is None:
        rows.append(("run", "not run yet (no output/run.json)"))
    elif "error" in run:
        rows.append(("run", run["error"]))
    else:
        wall = run.get("wall_time_s")
        rows.append(
            (
                "run",
                f"{run['status']}, {run['started_at']} → {run['ended_at'] or '…'}"
                + (f" ({wall:.1f} s)" if wall is not None else ""),
            )
        )
        hosts = sorted(set(run["hosts"]))
        rows.append(
            (
                "ranks",
                f"{run['world_size']} on {', '.join(hosts[:4])}"
                + (f" (+{len(hosts) - 4} hosts)" if len(hosts) > 4 else "")
                + f"; {run['device']}, {run['launcher']}"
                + (f", {run['dist_backend']}" if run["dist_backend"] else ""),
            )
        )
        seeds = run["chain_seeds"]
        rows.append(
            (
                "seeds",
                f"{run['seed']}; chains {', '.join(map(str, seeds[:4]))}"
                + (", …" if len(seeds) > 4 else ""),
            )
        )
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items() if v)
        rows.append(("versions", versions))
        if run.get("resumed_from_step") is not None:
            rows.append(("resumed", f"from step {run['resumed_from_step']}"))
    return rows


def results_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) comparing the L2HMC sampler and the HMC baseline."""
    samplers = [
        ("l2hmc", summary["l2hmc"]),
        ("no networks", summary.get("ablation")),
        ("hmc", summary.get("hmc")),
    ]
    header = ["", *(name for name, s in samplers if s)]
    present = [s for _, s in samplers if s]

    def row(label: str, f: Any) -> list[str]:
        return [label, *(f(s) for s in present)]

    rows = [
        row("acceptance", lambda s: _num(s["acceptance"], 3)),
        row("plaquette", lambda s: _pm(s["plaquette"])),
        row("  exact", lambda s: _num(s["plaquette"]["exact"])),
        row("<Q^2>", lambda s: _pm(s["q2"])),
        row("tau_int(Q)", lambda s: _pm(s["tau_int_q"], "value")),
        row("traj/s", lambda s: _num(s["trajectories_per_s"], 3)),
        row("time (s)", lambda s: _num(s["time_s"], 3)),
    ]
    rows.append(["improvement", _num(summary.get("improvement"), 3), *([""] * (len(present) - 1))])
    ab = summary.get("ablation")
    if ab:
        # what the networks add: the ablation's τ_int(Q) over the trained sampler's
        gains = f"{_num(ab.get('gain_per_trajectory'), 3)} / {_num(ab.get('gain'), 3)}"
        rows.append(["networks' gain (traj / cost)", gains, *([""] * (len(present) - 1))])
    return header, rows


def points_table(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["#", "point", "status", "acceptance", "tau_int(Q)", "improvement"]
    rows = []
    for p in r["points"]:
        run, s = p["run"], p["summary"]
        status = "not run" if run is None else run.get("status", "unreadable")
        ok = s is not None and "error" not in s
        rows.append(
            [
                str(p["index"]),
                p["name"],
                status,
                _num(s["l2hmc"]["acceptance"], 3) if ok and s else "-",
                _pm(s["l2hmc"]["tau_int_q"], "value") if ok and s else "-",
                _num(s.get("improvement"), 3) if ok and s else "-",
            ]
        )
    return header, rows


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def render_plain(r: dict[str, Any], *, with_spec: bool = True) -> str:
    rows = facts(r)
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    summary = r.get("summary")
    if summary is not None:
        lines.append("")
        if "error" in summary:
            lines.append(f"results: {summary['error']}")
        else:
            lines.extend(_aligned(*results_table(summary)))
    if r["kind"] == "sweep":
        lines.append("")
        lines.extend(_aligned(*points_table(r)))
    if with_spec:
        lines.append("")
        lines.append(f"--- {r['spec']['file']}")
        lines.extend(r["spec"]["text"].rstrip("\n").splitlines())
    return "\n".join(lines) + "\n"


def render_rich(r: dict[str, Any], *, with_spec: bool = True, force: bool = False) -> None:
    """Print the report with rich tables (imported only here: a terminal is asking, or
    ``force``: ``--color always``)."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    console = Console(force_terminal=force or None)
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in facts(r):
        t.add_row(k, v)
    console.print(t)
    summary = r.get("summary")
    tables: list[tuple[list[str], list[list[str]]]] = []
    if summary is not None and "error" not in summary:
        tables.append(results_table(summary))
    elif summary is not None:
        console.print(f"results: {summary['error']}")
    if r["kind"] == "sweep":
        tables.append(points_table(r))
    for header, rows in tables:
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if with_spec:
        console.print(Syntax(r["spec"]["text"], "text", line_numbers=False))


def dumps(r: dict[str, Any]) -> str:
    return json.dumps(r, indent=2, ensure_ascii=False)
