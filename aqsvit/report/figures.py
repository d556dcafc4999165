"""The HTML report (plotly), its static PNGs (matplotlib) and a Markdown summary."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from aqsvit.proxy.calibrate import calibrate_tau
from aqsvit.search.trials import is_feasible
from aqsvit.search.vocabulary import DRIFT_ATTR, DROP_ATTR, IDLE_ATTR, KEY_ATTR, SCREENED_ATTR, VERIFY_PREFIX

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCHEME_COLORS = {"uniform": "#1f77b4", "pot": "#ff7f0e", "fp32": "#7f7f7f"}


def _trials(study: optuna.Study):
    return [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]


def pareto_figure(study: optuna.Study, chosen_key: str | None, fp: tuple[float, float],
                  baselines: Sequence[tuple[str, float, float]], delta: float | None = None) -> go.Figure:
    """Accuracy against memory: feasible and infeasible trials, the chosen one, FP and baselines.
    With ``delta``, the accuracy axis opens on the feasible band (FP - 2 delta .. FP + delta/2); the
    trials below it stay on the plot (plotly's Autoscale shows them)."""
    done = [t for t in _trials(study) if t.state == TrialState.COMPLETE]
    groups = {"feasible trials": ("#2ca02c", lambda t: is_feasible(t) and not t.user_attrs.get(SCREENED_ATTR)),
              "accepted on the screen (accuracy: upper bound)": ("#98df8a", lambda t: bool(t.user_attrs.get(SCREENED_ATTR))),
              "infeasible trials": ("#d62728", lambda t: not is_feasible(t))}
    fig = go.Figure()
    for name, (color, member) in groups.items():
        pts = [t for t in done if member(t)]
        fig.add_trace(go.Scatter(x=[t.values[1] / 1024 for t in pts], y=[t.values[0] for t in pts], mode="markers",
                                 name=name, marker=dict(color=color, size=7, opacity=0.7),
                                 text=[f"trial {t.number}" for t in pts]))
    # the chosen assignment as measured on the whole split (its verification, when it was screened)
    chosen = sorted((t for t in done if t.system_attrs.get(KEY_ATTR) in (chosen_key, VERIFY_PREFIX + str(chosen_key))),
                    key=lambda t: bool(t.user_attrs.get(SCREENED_ATTR)))
    if chosen:
        fig.add_trace(go.Scatter(x=[chosen[0].values[1] / 1024], y=[chosen[0].values[0]], mode="markers",
                                 name="chosen", marker=dict(symbol="star", size=18, color="gold",
                                                            line=dict(color="black", width=1))))
    fig.add_trace(go.Scatter(x=[fp[1] / 1024], y=[fp[0]], mode="markers", name="FP32",
                             marker=dict(symbol="diamond", size=12, color="black")))
    if baselines:
        fig.add_trace(go.Scatter(x=[b[2] / 1024 for b in baselines], y=[b[1] for b in baselines], mode="markers+text",
                                 name="one width for all", text=[b[0] for b in baselines], textposition="top center",
                                 marker=dict(symbol="x", size=9, color="#9467bd")))
    fig.update_layout(title="Pareto front: accuracy vs memory", xaxis_title="memory (KiB)",
                      yaxis_title="accuracy (%)", xaxis_type="log")
    if delta is not None:
        pad = max(delta / 2, 0.25)
        fig.update_yaxes(range=[fp[0] - 2 * delta - pad, fp[0] + pad])
        fig.update_layout(title="Pareto front: accuracy vs memory (opens on the feasible band; Autoscale: all)")
        fig.add_hline(y=fp[0] - delta, line_dash="dash", annotation_text=f"FP - delta ({fp[0] - delta:.2f})")
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
        trials = sorted((t for t in _trials(study) if t.datetime_complete), key=lambda t: t.datetime_complete)
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
    pts = [t for t in _trials(study) if DRIFT_ATTR in t.user_attrs and DROP_ATTR in t.user_attrs]
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


def static_figure(fig: go.Figure, name: str) -> Figure:
    """``fig``'s scatter, bar and line traces drawn with matplotlib (no browser needed): one panel per
    plotly x axis, each with its own traces, axis titles and scale, so that the traces of one subplot
    (trials) never land on another's axis (seconds)."""
    from matplotlib.figure import Figure  # not pyplot: no backend to pick, no figure to close

    xaxes = list(fig.select_xaxes())
    figure = Figure(figsize=(4 + 4 * len(xaxes), 5))
    panels = figure.subplots(1, len(xaxes), squeeze=False)
    for ax, xaxis in zip(panels[0], xaxes):
        axis_id = xaxis.plotly_name.replace("axis", "")  # "xaxis2" -> "x2", what a trace names
        for trace in fig.data:
            if (trace.xaxis or "x") != axis_id or trace.x is None or trace.y is None or len(trace.x) == 0:
                continue
            label = trace.name if trace.showlegend is not False else None
            if trace.type == "bar":
                ax.bar(list(trace.x), list(trace.y), label=label, color=trace.marker.color)
                ax.tick_params(axis="x", rotation=90, labelsize=6)
            elif trace.mode and "lines" in trace.mode:
                ax.step(list(trace.x), list(trace.y), where="post", label=label)
            else:
                color = trace.marker.color if isinstance(trace.marker.color, str) else None
                marker = {"star": "*", "diamond": "D", "x": "x"}.get(trace.marker.symbol, "o")
                ax.scatter(list(trace.x), list(trace.y), label=label, s=60 if marker == "*" else 20,
                           color=color, marker=marker, zorder=3 if marker == "*" else 2)
        if xaxis.type == "log":
            ax.set_xscale("log")
        ax.set_xlabel(xaxis.title.text or "")
        ax.set_ylabel(fig.layout[(xaxis.anchor or "y").replace("y", "yaxis")].title.text or "")
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
