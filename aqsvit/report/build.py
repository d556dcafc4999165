"""Everything a finished search leaves behind: HTML report, PNGs, Markdown summary, exports."""
from __future__ import annotations

from pathlib import Path

import optuna

from aqsvit.report.export import assignment_json, save_model
from aqsvit.report.figures import (answered_deltas, drift_figure, front_figure, front_widths_figure,
                                   layer_map_figure, pareto_figure, progress_figure, trials_of, write_html, write_pngs)
from aqsvit.report.tables import (FRONT_HEADERS, MEASUREMENT_HEADERS, front_rows, html_table, markdown_table,
                                  measurement_cells)


def used_tau(settings) -> tuple[float | None, bool]:
    """The drift threshold the pruner used: (fixed tau or None, whether it was calibrated online)."""
    pruning = settings.pruner_settings
    tau = getattr(pruning, "tau", None)
    return tau, tau is None and bool(getattr(pruning, "calibrate", False))


def summary_block(summary, delta: float) -> str:
    """The report's first block: what the search chose and what it cost."""
    m = summary.measurement
    if m is None:
        chosen = "<p>No feasible assignment found.</p>"
    else:
        chosen = (f"<ul><li>compression: <b>{m.weight_compression:.2f}x</b> weights ({m.effective_bits:.2f} effective "
                  f"bits), {m.model_compression:.2f}x model</li>"
                  f"<li>accuracy: <b>{m.accuracy:.2f}%</b>, drop <b>{m.drop:.2f}</b> points (delta {delta})</li>")
        chosen += f"<li>memory: {m.memory_bytes / 1024:.2f} KiB</li></ul>"
    return (f"<section id='summary'><h2>Summary</h2>{chosen}<p>search time <b>{summary.wall_seconds:.1f} s</b>, "
            f"{summary.trials} trials ({summary.probes} probes, {summary.pruned} stopped early, "
            f"{summary.screened} accepted on the screen, "
            f"{summary.full_evaluations} fully evaluated), cost <b>{summary.cost:.1f}</b> full evaluations "
            "(multiply-accumulates spent / those of one FP forward over the evaluation split)</p></section>")


def front_block(rows: list[list[object]], deltas: list[float]) -> str:
    """The report's table of the searched front, one row per point, the Δ values each one answers."""
    answered = ", ".join(f"{d:g}" for d in deltas)
    return (f"<section id='front'><h2>Searched front</h2><p>Trials measured on the whole split that no other "
            f"beats on both accuracy and memory, least memory first; Δ: the pick for each Δ answered ({answered}): "
            f"the least memory within Δ points of FP.</p>{html_table(FRONT_HEADERS, rows)}</section>")


def write_report(search, summary, baselines, out: str | Path, compare: list[optuna.Study] | None = None) -> dict[str, Path]:
    """Write ``report.html``, one PNG per figure, ``summary.md``, ``assignment.json`` and the quantized
    model as its hardware target takes it (:func:`~aqsvit.report.export.save_model`) into ``out``;
    returns their paths by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study, space, ev = search.study, search.space, search.evaluator
    fp = ev.measure({})
    key = space.key(summary.choices) if summary.choices else None
    deltas = answered_deltas(study, search.settings.delta)
    rows = front_rows(trials_of(study), deltas)
    figures = {
        "pareto": pareto_figure(study, key, (fp.accuracy, fp.memory_bytes),
                                [(f"{s} {b}", m.accuracy, m.memory_bytes) for s, b, m in baselines if s != "fp32"],
                                search.settings.delta),
        "front": front_figure(study, deltas, key),
        "front_widths": front_widths_figure(study, [u.name for u in space.units]).update_layout(
            height=max(450, 200 + 20 * len(space.units))),  # a row a layer can read
        "progress": progress_figure([study, *(compare or [])]),
        "drift": drift_figure(study, search.settings.delta, *used_tau(search.settings)),
    }
    if summary.choices:
        figures["layers"] = layer_map_figure([u.name for u in space.units], summary.choices)
    paths = {"html": write_html(out / "report.html", f"aqsvit report: {study.study_name}", list(figures.values()),
                                summary_block(summary, search.settings.delta) + front_block(rows, deltas))}
    for png in write_pngs(out, figures):
        paths[png.stem] = png
    lines = [f"# {study.study_name}", "", f"Hardware target: {ev.target.describe()}.", "",
             f"{summary.trials} trials ({summary.probes} probes), {summary.pruned} stopped early, "
             f"{summary.screened} accepted on the screen, "
             f"{summary.full_evaluations} fully evaluated, "
             f"{summary.images} images, cost {summary.cost:.1f} full evaluations, {summary.wall_seconds:.1f} s.", ""]
    if summary.choices:
        m = summary.measurement
        lines += [markdown_table(("assignment", *MEASUREMENT_HEADERS),
                                 [("fp32", *measurement_cells(fp)), ("chosen", *measurement_cells(m))]), "",
                  markdown_table(("unit", "scheme", "bits"), [(u.name, *summary.choices[u.name]) for u in space.units])]
        assignment = space.assignment(summary.choices)
        (out / "assignment.json").write_text(assignment_json(ev.model.spec, assignment, m.as_dict()))
        paths["assignment"] = out / "assignment.json"
        paths["model"] = save_model(out, ev.model, assignment, ev.target, split_qkv=ev.quantizer.split_qkv)
    lines += ["", "Searched front (measured on the whole split; Δ: the pick for each Δ answered):", "",
              markdown_table(FRONT_HEADERS, rows)]
    lines += ["", "One scheme and width for all layers:", "",
              markdown_table(("scheme", "bits", *MEASUREMENT_HEADERS), [(s, b, *measurement_cells(m)) for s, b, m in baselines])]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    paths["summary"] = out / "summary.md"
    return paths
