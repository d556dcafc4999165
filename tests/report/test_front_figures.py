"""The searched front as the report and the dashboard draw it: the front figure (its points are
exactly ``front(trials)``, a line and a pick for each Δ answered, the chosen point), the widths of
each front point, the front table, their PNGs, and the dashboard's plots written from the study alone."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from aqsvit.report.dashboard import FRONT_PLOT, WIDTHS_PLOT, front_plots, save_front_plots, walk_order
from aqsvit.report.figures import answered_deltas, front_figure, front_widths_figure, static_figure, write_pngs
from aqsvit.report.tables import FRONT_HEADERS, front_rows
from aqsvit.search.front import front, measured, pick
from aqsvit.search.space import SearchSpace
from aqsvit.search.trials import dashboard_constraints
from aqsvit.search.vocabulary import CONTEXT_ATTR, COST_ATTRS
from test_dashboard import study_detail  # the dashboard's study API, called as a WSGI server would

FP, DELTA, DELTAS = 98.0, 1.0, [0.5, 1.0, 2.0]
SPACE = SearchSpace.from_units({"patch_embed.proj": 1000, "blocks.0.attn.q": 4000, "head": 500},
                               schemes=("uniform", "pot", "fp32"), bits=(8, 4, 3, 2))
UNITS = [u.name for u in SPACE.units]
F, U8, U4, P3, U2 = ("fp32", 8), ("uniform", 8), ("uniform", 4), ("pot", 3), ("uniform", 2)


def assignment(*choices: tuple[str, int]) -> dict[str, tuple[str, int]]:
    return dict(zip(UNITS, choices))


def add(study: optuna.Study, choices: dict[str, tuple[str, int]], accuracy: float | None, *,
        screened: bool = False) -> None:
    """A trial as the objective records it: params, cost attrs, drop and constraint (None: stopped)."""
    memory = SPACE.cost(choices) / 8
    attrs: dict[str, object] = {name: 0.0 for name in COST_ATTRS} | {
        "memory_bytes": memory, "weight_compression": 32 * sum(u.numel for u in SPACE.units) / SPACE.cost(choices),
        "model_compression": 2.5, "effective_bits": SPACE.cost(choices) / sum(u.numel for u in SPACE.units)}
    if screened:
        attrs["screened"] = True
    if accuracy is None:  # stopped by the staged evaluation: a lower bound on the drop
        study.add_trial(create_trial(state=TrialState.PRUNED, params=SPACE.params(choices),
                                     distributions=SPACE.distributions(), user_attrs=attrs | {"drop": 5.0}))
        return
    attrs |= {"accuracy": accuracy, "drop": FP - accuracy}
    constraint = FP - accuracy - DELTA
    study.add_trial(create_trial(values=[accuracy, memory], params=SPACE.params(choices),
                                 distributions=SPACE.distributions(), user_attrs=attrs,
                                 system_attrs={"constraints": dashboard_constraints(constraint, screened)},
                                 constraints={"accuracy": constraint}))


def make_study(storage=None, context: dict | None = None) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name="front", directions=["maximize", "minimize"])
    study.set_user_attr(CONTEXT_ATTR, {"fp_accuracy": FP, "delta": DELTA, "front": DELTAS}
                        if context is None else context)
    add(study, SPACE.uniform(F), FP)                      # FP32 everywhere: on the front, drop 0
    add(study, assignment(U8, U8, F), 97.8)               # drop 0.2: the pick for 0.5
    add(study, assignment(U8, U4, U8), 97.7)              # drop 0.3, less memory: the pick for 0.5 instead
    add(study, assignment(U8, U8, U8), 97.5)              # more memory than the one above, less accurate: off
    add(study, assignment(U4, P3, U8), 97.2)              # drop 0.8: the pick for 1
    add(study, assignment(P3, P3, U4), 96.5)              # drop 1.5: infeasible at Δ 1, the pick for 2
    add(study, SPACE.uniform(U2), 60.0)                   # cheapest, far below: on the front all the same
    add(study, assignment(U2, U2, U8), 99.0, screened=True)  # screened (an upper bound): never on the front
    add(study, assignment(U2, P3, U2), None)              # stopped: not measured
    return study


def trace(fig, name: str):
    (found,) = [t for t in fig.data if t.name == name]
    return found


def test_front_figure_draws_exactly_the_front_the_delta_lines_and_the_picks():
    study = make_study()
    trials = study.get_trials(deepcopy=False)
    points = front(trials)
    assert len(points) == 6 and not any(t.user_attrs.get("screened") for t in points)
    fig = front_figure(study, answered_deltas(study))
    drawn = trace(fig, "front")
    assert list(zip(drawn.x, drawn.y)) == [(t.values[1] / 1024, t.values[0]) for t in points]
    others = trace(fig, "other measured trials")
    assert sorted(zip(others.x, others.y)) == sorted((t.values[1] / 1024, t.values[0]) for t in measured(trials)
                                                      if t not in points)
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("memory (KiB)", "accuracy (%)")
    lines = {a.text: a.y for a in fig.layout.annotations}
    assert lines == {"FP 98.00%": FP, "Δ = 0.5": FP - 0.5, "Δ = 1": FP - 1.0, "Δ = 2": FP - 2.0}
    assert sorted(s.y0 for s in fig.layout.shapes if s.line.dash == "dash") == [FP - 2, FP - 1, FP - 0.5]
    picked = trace(fig, "pick for Δ")
    expected = {pick(trials, d).number: d for d in DELTAS}
    assert len(expected) == 3
    assert list(zip(picked.x, picked.y, picked.text)) == [
        (t.values[1] / 1024, t.values[0], f"Δ = {expected[t.number]:g}") for t in points if t.number in expected]
    chosen = trace(fig, "chosen")  # no key: the pick for the study's own Δ
    assert (chosen.x[0], chosen.y[0]) == (pick(trials, DELTA).values[1] / 1024, pick(trials, DELTA).values[0])


def test_the_chosen_key_stars_its_measured_trial_and_a_study_without_front_answers_its_own_delta():
    study = make_study(context={"fp_accuracy": FP, "delta": DELTA})
    assert answered_deltas(study) == [DELTA]
    choices = assignment(U8, U8, F)
    fig = front_figure(study, answered_deltas(study), SPACE.key(choices))
    (trial,) = [t for t in study.trials if t.params == SPACE.params(choices)]
    assert tuple(trace(fig, "chosen").text) == (f"trial {trial.number}",)
    assert [a.text for a in fig.layout.annotations] == ["FP 98.00%", "Δ = 1"]
    assert answered_deltas(optuna.create_study(directions=["maximize", "minimize"]), 1.5) == [1.5]


def test_front_widths_heatmap_is_layers_by_front_points():
    study = make_study()
    points = front(study.trials)
    (heat,) = front_widths_figure(study, UNITS).data
    assert list(heat.y) == UNITS and list(heat.x) == list(range(len(points)))
    assert len(heat.z) == len(UNITS) and all(len(row) == len(points) for row in heat.z)
    columns = [SPACE.choices_from_params(t.params) for t in points]
    assert [list(row) for row in heat.z] == [[None if c[u][0] == "fp32" else c[u][1] for c in columns] for u in UNITS]
    assert [heat.text[i][0] for i in range(3)] == ["u2", "u2", "u2"]  # the cheapest point first
    assert [heat.text[i][-1] for i in range(3)] == ["fp", "fp", "fp"]  # FP32 everywhere last
    assert heat.text[UNITS.index("blocks.0.attn.q")][1] == "p3" and "pot 3-bit" in heat.customdata[1][1]
    fig = front_widths_figure(study, UNITS)
    ticks = list(fig.layout.xaxis.ticktext)
    assert ticks[0] == f"{points[0].values[1] / 1024:.1f} KiB / {FP - 60.0:.2f}"


def test_front_table_has_a_row_per_front_point_with_its_picks_and_compression():
    study = make_study()
    rows = front_rows(study.trials, DELTAS)
    points = front(study.trials)
    assert [r[1] for r in rows] == [t.number for t in points]
    assert [r[0] for r in rows] == ["", "2", "1", "0.5", "", ""]
    memory, weight = FRONT_HEADERS.index("memory KiB"), FRONT_HEADERS.index("weight x")
    assert [r[memory] for r in rows] == [t.values[1] / 1024 for t in points]
    assert [r[weight] for r in rows] == [t.user_attrs["weight_compression"] for t in points]


def test_front_pngs_draw_the_lines_the_labels_and_the_heatmap(tmp_path):
    study = make_study()
    front_png = static_figure(front_figure(study, DELTAS), "front")
    (ax,) = front_png.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("memory (KiB)", "accuracy (%)")
    flat = sorted(line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1
                  and list(line.get_xdata()) == [0, 1])
    assert flat == [FP - 2, FP - 1, FP - 0.5, FP]
    assert {"Δ = 0.5", "Δ = 1", "Δ = 2", "FP 98.00%"} <= {t.get_text() for t in ax.texts}
    widths = static_figure(front_widths_figure(study, UNITS), "front_widths")
    heat = widths.axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == UNITS and heat.get_ylabel() == "layer"
    assert len(heat.get_xticklabels()) == len(front(study.trials))
    paths = write_pngs(tmp_path, {"front": front_figure(study, DELTAS),
                                  "front_widths": front_widths_figure(study, UNITS)})
    assert all(p.stat().st_size > 5_000 for p in paths)


def test_dashboard_plots_come_from_the_study_alone_and_leave_its_trials_as_they_were(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/front.db")
    study = make_study(storage)
    assert walk_order(study.trials) == UNITS
    before = study.get_trials()
    attrs_before = storage.get_study_system_attrs(study._study_id), dict(study.user_attrs)
    for _ in range(2):  # a second start writes the same plots in place
        save_front_plots(study)
    reloaded = optuna.load_study(study_name="front", storage=storage)
    assert reloaded.get_trials() == before
    assert reloaded.user_attrs == attrs_before[1]
    added = {k for k in storage.get_study_system_attrs(study._study_id) if k not in attrs_before[0]}
    assert added and all(k.startswith((f"dashboard:plot_data:{FRONT_PLOT}:", f"dashboard:plot_data:{WIDTHS_PLOT}:"))
                         for k in added)
    plots = {p["id"]: json.loads(p["graph_object"])
             for p in study_detail(storage, reloaded)["plotly_graph_objects"]}
    assert set(plots) == {FRONT_PLOT, WIDTHS_PLOT}
    expected = front_plots(reloaded)
    for plot_id, figure in plots.items():
        assert figure["data"] == json.loads(expected[plot_id].to_json())["data"]
    layout = plots[FRONT_PLOT]["layout"]
    assert (layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]) == ("memory (KiB)", "accuracy (%)")


@pytest.mark.parametrize("context", [{}, {"delta": DELTA}], ids=["no context", "no front"])
def test_dashboard_plots_of_a_study_with_little_context_or_no_measured_trial(context):
    study = make_study(context=context)
    fig = front_plots(study)[FRONT_PLOT]
    assert [a.text for a in fig.layout.annotations if a.text.startswith("Δ")] == ([] if not context else ["Δ = 1"])
    empty = optuna.create_study(directions=["maximize", "minimize"])
    plots = front_plots(empty)
    assert len(plots[FRONT_PLOT].data) == 2 and plots[FRONT_PLOT].layout.xaxis.title.text == "memory (KiB)"
    assert list(plots[WIDTHS_PLOT].data[0].y) == []
