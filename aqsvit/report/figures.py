"""The HTML report (plotly), its static PNGs (matplotlib) and a Markdown summary."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from aqsvit.proxy.calibrate import calibrate_tau
from aqsvit.report.tables import picks
from aqsvit.search.front import answered, front, measured, pick
from aqsvit.search.trials import is_feasible
from aqsvit.search.vocabulary import CONTEXT_ATTR, DRIFT_ATTR, DROP_ATTR, IDLE_ATTR, SCREENED_ATTR

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from optuna.trial import FrozenTrial

SCHEME_COLORS = {"uniform": "#1f77b4", "pot": "#ff7f0e", "fp32": "#7f7f7f"}


def trials_of(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials less those a worker ran while it had nothing to evaluate (not results)."""
    return [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]


def _kib(t: FrozenTrial) -> float:
    return t.values[1] / 1024


def _trial_points(trials: Sequence[FrozenTrial], name: str, **marker) -> go.Scatter:
    """``trials`` as accuracy-memory markers, hover naming each trial."""
    return go.Scatter(x=[_kib(t) for t in trials], y=[t.values[0] for t in trials], mode="markers", name=name,
                      marker=marker, text=[f"trial {t.number}" for t in trials])


def _holds(trial: FrozenTrial, assignment: Sequence[Sequence]) -> bool:
    """Whether ``trial``'s params are ``assignment`` (``[[unit, scheme, bits], ...]``; an fp32 unit's
    bits say nothing): any sampler's trials match, not only those a stepwise sampler keyed."""
    return all(trial.params.get(f"{unit}.scheme") == scheme
               and (scheme == "fp32" or int(trial.params.get(f"{unit}.bits", -1)) == bits)
               for unit, scheme, bits in assignment)


def _chosen(trials: Sequence[FrozenTrial], chosen_key: str | None) -> FrozenTrial | None:
    """The trial of ``trials`` holding the assignment of ``chosen_key`` (:meth:`SearchSpace.key`: the
    JSON of ``[[unit, scheme, bits], ...]``), as measured on the whole split when one was (its
    verification, when it was screened)."""
    if chosen_key is None:
        return None
    assignment = json.loads(chosen_key)
    held = [t for t in trials if _holds(t, assignment)]
    return min(held, key=lambda t: (bool(t.user_attrs.get(SCREENED_ATTR)), t.number), default=None)


def _chosen_point(trial: FrozenTrial) -> go.Scatter:
    return go.Scatter(x=[_kib(trial)], y=[trial.values[0]], mode="markers", name="chosen",
                      text=[f"trial {trial.number}"],
                      marker=dict(symbol="star", size=18, color="gold", line=dict(color="black", width=1)))


def _accuracy_memory(fig: go.Figure, title: str, fp: float | None, delta: float | None, banded: str) -> go.Figure:
    """The axes every accuracy-memory figure shares (memory on a log axis); with ``fp`` and ``delta``,
    the accuracy axis opens on the feasible band (FP - 2 delta .. FP + delta/2), the trials below it
    staying on the plot (plotly's Autoscale shows them), and the title says so (``banded``)."""
    fig.update_layout(title=title, xaxis_title="memory (KiB)", yaxis_title="accuracy (%)", xaxis_type="log")
    if fp is not None and delta is not None:
        pad = max(delta / 2, 0.25)
        fig.update_yaxes(range=[fp - 2 * delta - pad, fp + pad])
        fig.update_layout(title=f"{title} {banded}")
    return fig


def pareto_figure(study: optuna.Study, chosen_key: str | None, fp: tuple[float, float],
                  baselines: Sequence[tuple[str, float, float]], delta: float | None = None) -> go.Figure:
    """Accuracy against memory: feasible and infeasible trials, the chosen one, FP and baselines.
    With ``delta``, the accuracy axis opens on the feasible band (:func:`_accuracy_memory`)."""
    done = [t for t in trials_of(study) if t.state == TrialState.COMPLETE]
    groups = {"feasible trials": ("#2ca02c", lambda t: is_feasible(t) and not t.user_attrs.get(SCREENED_ATTR)),
              "accepted on the screen (accuracy: upper bound)": ("#98df8a", lambda t: bool(t.user_attrs.get(SCREENED_ATTR))),
              "infeasible trials": ("#d62728", lambda t: not is_feasible(t))}
    fig = go.Figure()
    for name, (color, member) in groups.items():
        fig.add_trace(_trial_points([t for t in done if member(t)], name, color=color, size=7, opacity=0.7))
    chosen = _chosen(done, chosen_key)
    if chosen is not None:
        fig.add_trace(_chosen_point(chosen))
    fig.add_trace(go.Scatter(x=[fp[1] / 1024], y=[fp[0]], mode="markers", name="FP32",
                             marker=dict(symbol="diamond", size=12, color="black")))
    if baselines:
        fig.add_trace(go.Scatter(x=[b[2] / 1024 for b in baselines], y=[b[1] for b in baselines], mode="markers+text",
                                 name="one width for all", text=[b[0] for b in baselines], textposition="top center",
                                 marker=dict(symbol="x", size=9, color="#9467bd")))
    _accuracy_memory(fig, "Pareto front: accuracy vs memory", fp[0], delta,
                     "(opens on the feasible band; Autoscale: all)")
    if delta is not None:
        fig.add_hline(y=fp[0] - delta, line_dash="dash", annotation_text=f"FP - delta ({fp[0] - delta:.2f})")
    return fig


def answered_deltas(study: optuna.Study, default: float | None = None) -> list[float]:
    """The Δ values the search answered (:func:`aqsvit.search.front.answered`), else ``default``, ascending."""
    deltas = answered(study.user_attrs.get(CONTEXT_ATTR, {})) or ([] if default is None else [default])
    return sorted(set(deltas))


def fp_accuracy(study: optuna.Study) -> float | None:
    """The FP accuracy a study's drops are measured from: a measured trial's accuracy plus its drop
    (exactly what its constraint read), else the context's (rounded) value."""
    done = measured(trials_of(study))
    if done:
        return done[0].values[0] + float(done[0].user_attrs[DROP_ATTR])
    return study.user_attrs.get(CONTEXT_ATTR, {}).get("fp_accuracy")


def front_figure(study: optuna.Study, deltas: Sequence[float], chosen_key: str | None = None) -> go.Figure:
    """The measured front (:func:`aqsvit.search.front.front`: accuracy against memory, least memory
    first, drawn as the staircase it is) over the other measured trials (faint); a dashed line at
    FP - Δ for each Δ of ``deltas`` with its pick (:func:`~aqsvit.search.front.pick`) ringed; the
    chosen assignment starred: the one of ``chosen_key``, else the pick for the study's own Δ
    (what the search reports, read from the study alone: the dashboard's case)."""
    trials = trials_of(study)
    points, fp = front(trials), fp_accuracy(study)
    on_front = {t.number for t in points}
    fig = go.Figure()
    fig.add_trace(_trial_points([t for t in measured(trials) if t.number not in on_front], "other measured trials",
                                color="#7f7f7f", size=6, opacity=0.3))
    fig.add_trace(go.Scatter(x=[_kib(t) for t in points], y=[t.values[0] for t in points], mode="lines+markers",
                             name="front", line_shape="hv", marker=dict(color="#1f77b4", size=8),
                             text=[f"trial {t.number}: drop {float(t.user_attrs[DROP_ATTR]):.2f}" for t in points]))
    answers = picks(trials, deltas)
    picked = [t for t in points if t.number in answers]
    if picked:
        fig.add_trace(go.Scatter(
            x=[_kib(t) for t in picked], y=[t.values[0] for t in picked], mode="markers+text", name="pick for Δ",
            text=[", ".join(f"Δ = {d:g}" for d in answers[t.number]) for t in picked],
            textposition="bottom right",
            marker=dict(symbol="circle-open", size=16, color="#d62728", line=dict(width=2))))
    own = study.user_attrs.get(CONTEXT_ATTR, {}).get("delta")
    chosen = _chosen(measured(trials), chosen_key) if chosen_key is not None else (
        pick(trials, float(own)) if own is not None else None)
    if chosen is not None:
        fig.add_trace(_chosen_point(chosen))
    _accuracy_memory(fig, "Searched front: accuracy vs memory", fp, max(deltas, default=None), "(Autoscale: all)")
    if fp is not None:
        fig.add_hline(y=fp, line_dash="dot", line_color="black", annotation_text=f"FP {fp:.2f}%",
                      annotation_position="top left")
        for delta in deltas:
            fig.add_hline(y=fp - delta, line_dash="dash", line_color="#d62728", annotation_text=f"Δ = {delta:g}",
                          annotation_position="bottom left")
    return fig


def _cell(choice: tuple[str, int]) -> str:
    """A unit's choice in two or three characters: u4, p3, fp."""
    return "fp" if choice[0] == "fp32" else f"{choice[0][0]}{choice[1]}"


def front_widths_figure(study: optuna.Study, units: Sequence[str]) -> go.Figure:
    """The widths of every front point: a heatmap of ``units`` (rows, walk order) by front points
    (columns, least memory first, labelled by memory and drop); a cell's colour is its bits, its text
    the scheme's letter and the bits (u4, p3); an FP32 cell has no bits (no colour) and reads fp."""
    points = front(trials_of(study))
    choices = [{u: (str(t.params[f"{u}.scheme"]), int(t.params[f"{u}.bits"])) for u in units} for t in points]
    z = [[None if c[u][0] == "fp32" else c[u][1] for c in choices] for u in units]
    labels = [f"{_kib(t):.1f} KiB / {float(t.user_attrs[DROP_ATTR]):.2f}" for t in points]
    bits = [b for row in z for b in row if b is not None] or [8]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(len(points))), y=list(units), zmin=min(bits), zmax=max(max(bits), min(bits) + 1),
        colorscale="Viridis", colorbar=dict(title="bits", dtick=1), xgap=1, ygap=1, hoverongaps=True,
        text=[[_cell(c[u]) for c in choices] for u in units], texttemplate="%{text}", textfont=dict(size=9),
        customdata=[[f"{'fp32' if c[u][0] == 'fp32' else f'{c[u][0]} {c[u][1]}-bit'}, trial {t.number}: {label}"
                     for c, t, label in zip(choices, points, labels)] for u in units],
        hovertemplate="%{y}: %{customdata}<extra></extra>"))
    fig.update_layout(title="Widths along the front (u: uniform, p: power of two, fp: FP32)",
                      xaxis=dict(title="front point (memory / accuracy drop, points)", tickmode="array",
                                 tickvals=list(range(len(points))), ticktext=labels, tickangle=45),
                      yaxis=dict(title="layer", autorange="reversed", tickfont=dict(size=9)))
    return fig


def layer_map_figure(units: Sequence[str], choices: Mapping[str, tuple[str, int]]) -> go.Figure:
    """Bits per unit of the chosen assignment, coloured by scheme."""
    fig = go.Figure()
    for scheme, color in SCHEME_COLORS.items():
        names = [u for u in units if choices[u][0] == scheme]
        if names:
            fig.add_trace(go.Bar(x=names, y=[32 if scheme == "fp32" else choices[u][1] for u in names],
                                 name=scheme, marker_color=color))
    fig.update_layout(title="Chosen assignment: bits per layer", yaxis_title="bits", barmode="overlay",
                      xaxis=dict(categoryorder="array", categoryarray=list(units), tickangle=45))
    return fig


def progress_figure(studies: Sequence[optuna.Study]) -> go.Figure:
    """Best feasible memory against trial number and against wall time, one line per study."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by trial", "by wall time"))
    for study in studies:
        trials = sorted((t for t in trials_of(study) if t.datetime_complete), key=lambda t: t.datetime_complete)
        if not trials:
            continue
        start = min(t.datetime_start for t in trials)
        best, xs, ts, ys = None, [], [], []
        for i, t in enumerate(trials, 1):
            if is_feasible(t) and (best is None or t.values[1] < best):
                best = t.values[1]
            if best is not None:
                xs.append(i)
                ts.append((t.datetime_complete - start).total_seconds())
                ys.append(best / 1024)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=study.study_name, line_shape="hv"), 1, 1)
        fig.add_trace(go.Scatter(x=ts, y=ys, mode="lines", name=study.study_name, line_shape="hv",
                                 showlegend=False), 1, 2)
    fig.update_xaxes(title_text="trials", row=1, col=1)
    fig.update_xaxes(title_text="seconds", row=1, col=2)
    fig.update_yaxes(title_text="best feasible memory (KiB)", row=1, col=1)
    fig.update_layout(title="Search progress")
    return fig


def drift_figure(study: optuna.Study, delta: float, tau: float | None, calibrated: bool = False) -> go.Figure:
    """Drift against accuracy drop for every trial that measured both, with delta drawn, and tau
    when the pruner used one (a fixed ``tau``, or ``calibrated`` online: then as calibrated now)."""
    pts = [t for t in trials_of(study) if DRIFT_ATTR in t.user_attrs and DROP_ATTR in t.user_attrs]
    if tau is None and calibrated and pts:
        tau = calibrate_tau([t.user_attrs[DRIFT_ATTR] for t in pts], [t.user_attrs[DROP_ATTR] for t in pts], delta)
    fig = go.Figure(go.Scatter(x=[t.user_attrs[DRIFT_ATTR] for t in pts], y=[t.user_attrs[DROP_ATTR] for t in pts],
                               mode="markers", name="trials", text=[f"trial {t.number}: {t.state.name}" for t in pts]))
    fig.add_hline(y=delta, line_dash="dash", annotation_text=f"delta = {delta}")
    if tau is not None and tau != float("inf"):
        fig.add_vline(x=tau, line_dash="dot", annotation_text=f"tau = {tau:.3g}")
    fig.update_layout(title="Drift vs accuracy drop", xaxis_title="drift", yaxis_title="accuracy drop (points)")
    return fig


def write_html(path: Path, title: str, figures: Sequence[go.Figure], intro: str = "") -> Path:
    """One self-contained HTML page (plotly.js embedded once)."""
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)]
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
                    f"<h1>{title}</h1>{intro}" + "".join(f"<div class='figure'>{p}</div>" for p in parts)
                    + "</body></html>")
    return path


def _static_lines(ax, fig: go.Figure, xref: str, yref: str) -> None:
    """The figure's horizontal and vertical lines (``add_hline``/``add_vline``) on this panel, each
    with its annotation's text."""
    dashes = {"dash": "--", "dot": ":", "dashdot": "-."}
    for shape in fig.layout.shapes:
        horizontal = shape.y0 == shape.y1 and (shape.yref or "y") == yref and "domain" in (shape.xref or "")
        vertical = shape.x0 == shape.x1 and (shape.xref or "x") == xref and "domain" in (shape.yref or "")
        if not (horizontal or vertical):
            continue
        at = shape.y0 if horizontal else shape.x0
        style = dict(linestyle=dashes.get(shape.line.dash, "-"), color=shape.line.color or "grey", linewidth=1)
        (ax.axhline if horizontal else ax.axvline)(at, **style)
        for note in fig.layout.annotations:
            if horizontal and note.yref == yref and note.y == at:
                ax.annotate(note.text, (0.01, at), xycoords=("axes fraction", "data"), fontsize=7,
                            va="top" if note.yanchor == "top" else "bottom")
            elif vertical and note.xref == xref and note.x == at:
                ax.annotate(note.text, (at, 0.98), xycoords=("data", "axes fraction"), fontsize=7, va="top")


def _static_heatmap(ax, figure: Figure, trace: go.Heatmap, xaxis) -> None:
    """A heatmap trace as an image: its rows top to bottom, its tick labels and cell texts; a cell
    without a value (a gap) in light grey."""
    import matplotlib
    import numpy as np

    values = np.array([[np.nan if v is None else v for v in row] for row in trace.z], dtype=float)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e5ecf6")
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=trace.zmin, vmax=trace.zmax, interpolation="nearest")
    ax.set_yticks(range(len(trace.y)), [str(y) for y in trace.y], fontsize=6)
    ticks = list(xaxis.ticktext or trace.x or [])
    ax.set_xticks(range(len(ticks)), ticks, rotation=90, fontsize=6)
    if trace.text is not None and values.size <= 600:
        low, high = (trace.zmin, trace.zmax) if trace.zmin is not None else (np.nanmin(values), np.nanmax(values))
        middle = (low + high) / 2
        size = 8 if values.size <= 60 else 6 if values.size <= 200 else 5
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, trace.text[i][j], ha="center", va="center", fontsize=size,
                    color="black" if np.isnan(value) or value > middle else "white")
    bar = figure.colorbar(image, ax=ax, label=trace.colorbar.title.text or "")
    if trace.colorbar.dtick == 1:
        bar.set_ticks(range(int(np.ceil(image.norm.vmin)), int(np.floor(image.norm.vmax)) + 1))


def static_figure(fig: go.Figure, name: str) -> Figure:
    """``fig``'s scatter, bar, line and heatmap traces and its horizontal and vertical lines drawn
    with matplotlib (no browser needed): one panel per plotly x axis, each with its own traces, axis
    titles and scale, so that the traces of one subplot (trials) never land on another's axis (seconds)."""
    from matplotlib.figure import Figure  # not pyplot: no backend to pick, no figure to close

    xaxes = list(fig.select_xaxes())
    figure = Figure(figsize=(4 + 4 * len(xaxes), 5))
    panels = figure.subplots(1, len(xaxes), squeeze=False)
    for ax, xaxis in zip(panels[0], xaxes):
        axis_id = xaxis.plotly_name.replace("axis", "")  # "xaxis2" -> "x2", what a trace names
        yaxis_name = (xaxis.anchor or "y").replace("y", "yaxis")
        for trace in fig.data:
            if (trace.xaxis or "x") != axis_id or trace.x is None or trace.y is None or len(trace.x) == 0:
                continue
            label = trace.name if trace.showlegend is not False else None
            if trace.type == "heatmap":
                _static_heatmap(ax, figure, trace, xaxis)
            elif trace.type == "bar":
                ax.bar(list(trace.x), list(trace.y), label=label, color=trace.marker.color)
                ax.tick_params(axis="x", rotation=90, labelsize=6)
            elif trace.mode and "lines" in trace.mode:
                ax.step(list(trace.x), list(trace.y), where="post", label=label,
                        marker="o" if "markers" in trace.mode else None, markersize=4)
            else:
                color = trace.marker.color if isinstance(trace.marker.color, str) else None
                symbol = trace.marker.symbol or "circle"
                marker = {"star": "*", "diamond": "D", "x": "x"}.get(symbol, "o")
                hollow = symbol.endswith("-open")
                style = dict(facecolors="none", edgecolors=color) if hollow else dict(color=color)
                ax.scatter(list(trace.x), list(trace.y), label=label, s=60 if marker == "*" or hollow else 20,
                           marker=marker, zorder=3 if marker == "*" else 2, alpha=trace.marker.opacity, **style)
                if trace.mode and "text" in trace.mode and trace.text is not None:
                    for x, y, text in zip(trace.x, trace.y, trace.text):
                        ax.annotate(str(text), (x, y), fontsize=6, textcoords="offset points", xytext=(4, -8))
        _static_lines(ax, fig, axis_id, yaxis_name.replace("axis", ""))
        if xaxis.type == "log":
            ax.set_xscale("log")
        ax.set_xlabel(xaxis.title.text or "")
        ax.set_ylabel(fig.layout[yaxis_name].title.text or "")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    figure.suptitle(fig.layout.title.text or name)
    figure.tight_layout()
    return figure


def write_pngs(folder: Path, figures: Mapping[str, go.Figure]) -> list[Path]:
    """Static PNGs of the figures (:func:`static_figure`)."""
    paths = []
    for name, fig in figures.items():
        path = folder / f"{name}.png"
        static_figure(fig, name).savefig(path, dpi=100)
        paths.append(path)
    return paths
