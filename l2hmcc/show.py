"""``l2hmcc show JOBDIR``: what a job directory is and, once it ran, what came out.

The report is data first (`report`, also what ``--format json`` prints): the spec (name,
sha256, the specs it extends, overrides, sweep point, its text), the target and system, the
compiler version, and, when the run has written them, ``output/run.json`` (status, start and
end, wall time, hosts, world size, seeds, versions) and ``output/summary.json`` (L2HMC
against HMC: acceptance, plaquette against its exact value, ⟨Q²⟩, τ_int(Q), throughput, the
improvement). `render_plain` prints it as aligned text; `render_rich` as tables (on a
terminal). A sweep directory (a campaign) gets one row per point instead: its state (not
started, running, stopped, finished, failed: from its ``run.json``), the values of the swept
fields and the results side by side (`campaign_rows`); ``--format csv`` prints those rows
(`to_csv`), and `plot_metric` draws one metric against the swept field(s) as a PNG
(matplotlib, imported only there).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from l2hmcc import manifest, record
from l2hmcc.results import RunRecord, Summary


def _printable(text: str) -> str:
    """``text`` with control characters (a terminal's escape sequences among them) and other
    unprintable ones written as Python escapes; tabs kept."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\t" else ascii(c)[1:-1] for c in text)


def _clip(text: str, limit: int = 200) -> str:
    """Text from a file someone else wrote, fit to quote: printable and at most ``limit``
    characters."""
    text = _printable(text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "…"


def _finite(value: Any) -> bool:
    """Whether no number in the JSON data ``value`` is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _read_model(
    root: Path, rel: str, model: type[Summary] | type[RunRecord]
) -> dict[str, Any] | None:
    """The run output ``root/rel`` as validated JSON data: None if absent, ``{"error": ...}``
    if it cannot be one. Read as untrusted input, as ``verify`` reads a job's files
    (`manifest.read_job_file`): never through a symbolic link, a regular file only, at most
    `manifest.MAX_FILE_BYTES`."""
    try:
        raw, _ = manifest.read_job_file(root, rel)
    except manifest.JobFileError as e:
        return None if e.kind == "missing" else {"error": f"`{rel}` {e.what}"}
    try:
        data = model.model_validate_json(raw).model_dump(mode="json")
        if not _finite(data):  # what pydantic accepts; the runtime writes null instead
            return {"error": f"`{rel}` is not valid JSON: it holds NaN or Infinity"}
        return data
    except ValidationError as e:
        errors = e.errors(include_url=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            return {
                "error": f"`{rel}` is not valid JSON: {_clip(first['msg'].removeprefix('Invalid JSON: '))}"
            }
        where = ".".join(str(x) for x in first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        what = "summary" if model is Summary else "run record"
        return {
            "error": f"`{rel}` is not a valid {what}: {_clip(where)}: {_clip(first['msg'])}{more}"
        }


def wall_time_s(run: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(run["started_at"])
        end = datetime.fromisoformat(run["ended_at"]) if run.get("ended_at") else None
    except (KeyError, TypeError, ValueError):
        return None
    return None if end is None else (end - start).total_seconds()


def _spec_part(rec: record.JobRecord) -> dict[str, Any]:
    common = rec.common
    try:
        text = manifest.read_job_file(rec.root, common.spec.file)[0].decode("utf-8")
    except (manifest.JobFileError, UnicodeDecodeError):
        text = common.spec.normalized  # `verify` says what is wrong with the copy
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
        out["run"] = _run(rec.root, "")
        out["summary"] = _read_model(rec.root, f"{manifest.RUN_OUTPUT_DIR}/summary.json", Summary)
        return out
    assert rec.sweep is not None
    out["axes"] = [a.model_dump(mode="json") for a in rec.sweep.axes]
    out["submission"] = rec.sweep.submission.model_dump(mode="json")
    points = []
    for p in rec.sweep.points:
        # p.name is one safe path component (`manifest.load_record`); a point directory
        # that is a symbolic link is not followed.
        prefix = f"{p.name}/"
        summary = _read_model(rec.root, f"{prefix}{manifest.RUN_OUTPUT_DIR}/summary.json", Summary)
        run = _run(rec.root, prefix)
        points.append(
            {
                "index": p.index,
                "name": p.name,
                "values": {v.path: v.value for v in p.values},
                "state": point_state(run),
                "run": run,
                "summary": summary,
                "metrics": metrics(summary),
            }
        )
    out["points"] = points
    return out


STATES = ("not started", "running", "stopped", "finished", "failed", "unreadable")
"""What a point's ``run.json`` says: absent, ``running`` (or killed without a word),
``stopped`` by a signal with a checkpoint (``--resume`` continues it), ``completed``,
``failed`` after an error; or a file that does not parse."""

_STATE = {"running": "running", "stopped": "stopped", "completed": "finished", "failed": "failed"}


def point_state(run: dict[str, Any] | None) -> str:
    if run is None:
        return "not started"
    if "error" in run:
        return "unreadable"
    return _STATE.get(run.get("status", ""), "unreadable")


METRICS: dict[str, str] = {
    "acceptance": "acceptance (L2HMC)",
    "plaquette": "plaquette (L2HMC)",
    "plaquette_exact": "exact plaquette (finite volume)",
    "q2": "<Q^2> (L2HMC)",
    "q2_exact": "exact <Q^2>",
    "tau_int_q": "tau_int(Q) (L2HMC)",
    "hmc_tau_int_q": "tau_int(Q) (HMC)",
    "trajectories_per_s": "trajectories/s (L2HMC)",
    "improvement": "improvement over HMC",
}
"""The campaign metrics (`metrics`), each a number or null; ``plaquette``, ``q2`` and the
``tau_int`` ones have an ``_err`` beside them."""


def metrics(summary: dict[str, Any] | None) -> dict[str, float | None]:
    """A point's results as flat numbers: what the comparison table, the CSV and the plot use.
    All null when the point has no (readable) ``summary.json``."""
    out: dict[str, float | None] = {}
    for key in METRICS:
        out[key] = None
        if key in ("plaquette", "q2", "tau_int_q", "hmc_tau_int_q"):
            out[f"{key}_err"] = None
    if summary is None or "error" in summary:
        return out
    l2hmc, hmc = summary["l2hmc"], summary.get("hmc")
    out.update(
        acceptance=l2hmc["acceptance"],
        plaquette=l2hmc["plaquette"]["mean"],
        plaquette_err=l2hmc["plaquette"]["err"],
        plaquette_exact=l2hmc["plaquette"]["exact_finite_volume"],
        q2=l2hmc["q2"]["mean"],
        q2_err=l2hmc["q2"]["err"],
        q2_exact=l2hmc["q2"]["exact"],
        tau_int_q=l2hmc["tau_int_q"]["value"],
        tau_int_q_err=l2hmc["tau_int_q"]["err"],
        trajectories_per_s=l2hmc["trajectories_per_s"],
        improvement=summary.get("improvement"),
    )
    if hmc:
        out.update(
            hmc_tau_int_q=hmc["tau_int_q"]["value"], hmc_tau_int_q_err=hmc["tau_int_q"]["err"]
        )
    return out


def campaign_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per point (a job directory: one row): index, name, each swept field's
    value, state, then `metrics`."""
    if r["kind"] != "sweep":
        run, summary = r.get("run"), r.get("summary")
        return [
            {
                "index": 0,
                "name": Path(r["directory"]).name,
                "state": point_state(run),
                **metrics(summary),
            }
        ]
    paths = [a["path"] for a in r["axes"]]
    return [
        {
            "index": p["index"],
            "name": p["name"],
            **{path: p["values"].get(path) for path in paths},
            "state": p["state"],
            **p["metrics"],
        }
        for p in r["points"]
    ]


def to_csv(r: dict[str, Any]) -> str:
    """`campaign_rows` as CSV (a header line, empty cells for nulls)."""
    rows = campaign_rows(r)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


class PlotError(ValueError):
    """The plot cannot be drawn (unknown metric, no finished point, no matplotlib)."""


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _literal(text: str) -> str:
    """``text`` as matplotlib draws it verbatim: a ``$`` pair would start mathtext, which
    fails on what is not TeX."""
    return _printable(text).replace("$", r"\$")


def plot_metric(r: dict[str, Any], metric: str, path: str | Path) -> Path:
    """A PNG of ``metric`` against the first swept field, one line per combination of the
    other swept fields, with error bars where the metric has them. Raises `PlotError`."""
    if metric not in METRICS:
        raise PlotError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if r["kind"] != "sweep":
        raise PlotError("a plot needs a sweep directory (one point per value)")
    if not r["axes"]:
        raise PlotError("the sweep records no swept field")
    x_path, *others = [a["path"] for a in r["axes"]]
    x_values = r["axes"][0]["values"]
    numeric = all(_as_number(v) is not None for v in x_values)
    position: dict[str, float] = {
        v: (float(v) if numeric else float(i)) for i, v in enumerate(x_values)
    }
    # A point whose value is not among its axis's (a record edited by hand) has no place.
    rows = [
        row
        for row in campaign_rows(r)
        if row.get(metric) is not None and row.get(x_path) in position
    ]
    if not rows:
        raise PlotError(f"no point has a value of {metric} yet (none finished?)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotError(f"plots need matplotlib ({e})") from e
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row[o]) for o in others), []).append(row)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for key, members in groups.items():
        members.sort(key=lambda m: position[m[x_path]])
        xs = [position[m[x_path]] for m in members]
        ys = [m[metric] for m in members]
        errs = [m.get(f"{metric}_err") for m in members]
        label = _literal(", ".join(f"{o} = {v}" for o, v in zip(others, key, strict=True)))
        if any(e is not None for e in errs):
            ax.errorbar(
                xs, ys, yerr=[e or 0.0 for e in errs], marker="o", capsize=3, label=label or None
            )
        else:
            ax.plot(xs, ys, marker="o", label=label or None)
    if not numeric:
        ax.set_xticks(range(len(x_values)), [_literal(v) for v in x_values])
    ax.set_xlabel(_literal(x_path))
    ax.set_ylabel(METRICS[metric])
    ax.set_title(_literal(f"{r['spec']['name']}: {METRICS[metric]}"))
    if others:
        ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _run(root: Path, prefix: str) -> dict[str, Any] | None:
    run = _read_model(root, f"{prefix}{manifest.RUN_OUTPUT_DIR}/run.json", RunRecord)
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
        row("equilibrated", _equilibrated),
    ]
    imp = _num(summary.get("improvement"), 3)
    if summary.get("improvement") is None and summary.get("improvement_note"):
        imp += f" ({summary['improvement_note']})"
    rows.append(["improvement", imp, *([""] * (len(present) - 1))])
    ab = summary.get("ablation")
    if ab:
        # what the networks add: the ablation's τ_int(Q) over the trained sampler's
        gains = f"{_num(ab.get('gain_per_trajectory'), 3)} / {_num(ab.get('gain'), 3)}"
        rows.append(["networks' gain (traj / cost)", gains, *([""] * (len(present) - 1))])
    return header, rows


def _equilibrated(s: dict[str, Any]) -> str:
    """``yes``/``NO`` with the drift test's statistic (``-`` for a summary without the check)."""
    flag = s.get("equilibrated")
    if flag is None:
        return "-"
    z = (s.get("equilibrium") or {}).get("drift_z")
    stat = "" if z is None else f" (drift {z:.1f}σ)"
    return ("yes" if flag else "NO") + stat


def equilibrium_warnings(summary: dict[str, Any]) -> list[str]:
    """A WARNING per sampler whose measured record is not in equilibrium."""
    out = []
    for key, label in (("l2hmc", "L2HMC"), ("ablation", "no networks"), ("hmc", "HMC")):
        s = summary.get(key)
        if s and s.get("equilibrated") is False:
            reason = (s.get("equilibrium") or {}).get("reason") or "no plaquette record"
            out.append(
                f"WARNING: {label} is not in equilibrium: {reason}; its figures are not known"
                " to be equilibrium values"
            )
    return out


def _pm_flat(m: dict[str, Any], key: str) -> str:
    value, err = m.get(key), m.get(f"{key}_err")
    if value is None:
        return "-"
    return _num(value) + (f" ± {_num(err, 2)}" if err is not None else "")


def points_table(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The campaign's comparison table: a row per point with its swept values, state and
    results (L2HMC; the exact values where known; the improvement over HMC)."""
    labels = [a["path"].rsplit(".", 1)[-1] for a in r["axes"]]
    header = ["#", "point", *labels, "state", "acceptance", "plaquette", "exact", "<Q^2>"]
    header += ["exact", "tau_int(Q)", "traj/s", "improvement"]
    rows = []
    for p in r["points"]:
        m = p["metrics"]
        rows.append(
            [
                str(p["index"]),
                p["name"],
                *(p["values"].get(a["path"], "-") for a in r["axes"]),
                p["state"],
                _num(m["acceptance"], 3),
                _pm_flat(m, "plaquette"),
                _num(m["plaquette_exact"]),
                _pm_flat(m, "q2"),
                _num(m["q2_exact"], 3),
                _pm_flat(m, "tau_int_q"),
                _num(m["trajectories_per_s"], 3),
                _num(m["improvement"], 3),
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
            lines.extend(equilibrium_warnings(summary))
    if r["kind"] == "sweep":
        lines.append("")
        lines.extend(_aligned(*points_table(r)))
    if with_spec:
        lines.append("")
        lines.append(f"--- {r['spec']['file']}")
        lines.extend(r["spec"]["text"].rstrip("\n").splitlines())
    # Every text comes from files of the directory, which anyone may have written.
    return "\n".join(map(_printable, lines)) + "\n"


def render_rich(r: dict[str, Any], *, with_spec: bool = True, force: bool = False) -> None:
    """Print the report with rich tables (imported only here: a terminal is asking, or
    ``force``: ``--color always``)."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Column, Table
    from rich.text import Text

    def text(value: str) -> Text:
        # Text, not markup, and printable: the values come from the directory's files ("[/]"
        # is no tag here, and an escape sequence no command to the terminal).
        return Text(_printable(value))

    console = Console(force_terminal=force or None)
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in facts(r):
        t.add_row(text(k), text(v))
    console.print(t)
    summary = r.get("summary")
    tables: list[tuple[list[str], list[list[str]]]] = []
    if summary is not None and "error" not in summary:
        tables.append(results_table(summary))
    elif summary is not None:
        console.print(text(f"results: {summary['error']}"))
    if r["kind"] == "sweep":
        tables.append(points_table(r))
    for header, rows in tables:
        table = Table(*(Column(header=text(h)) for h in header))
        for row in rows:
            table.add_row(*map(text, row))
        console.print(table)
    if summary is not None and "error" not in summary:
        for line in equilibrium_warnings(summary):
            console.print(text(line), style="bold red", highlight=False)
    if with_spec:
        spec = "\n".join(map(_printable, r["spec"]["text"].split("\n")))
        console.print(Syntax(spec, "text", line_numbers=False))


def dumps(r: dict[str, Any]) -> str:
    return json.dumps(r, indent=2, ensure_ascii=False)
