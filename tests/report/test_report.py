"""The dashboard's JSON API, the HTML report in headless Chromium, and the packed export."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from aqsvit.evaluation import accuracy
from aqsvit.report.export import load_packed, read_assignment
from aqsvit.search.vocabulary import KEY_ATTR

ARTIFACTS = Path("test-artifacts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def test_dashboard_serves_the_pareto_front_with_objective_names(finished_search):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aqsvit.cli", "dashboard", f"storage.url={finished_search['url']}",
                             f"search.study_name={finished_search['name']}", f"dashboard.port={port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        studies = get_json(f"http://127.0.0.1:{port}/api/studies", deadline)["study_summaries"]
        study = next(s for s in studies if s["study_name"] == finished_search["name"])
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", deadline)
        assert detail["objective_names"] == ["accuracy", "memory_bytes"]
        assert len(detail["best_trials"]) >= 1
        assert all(t["state"] == "Complete" for t in detail["best_trials"])
        searched = optuna.load_study(study_name=finished_search["name"], storage=finished_search["url"])
        assert {t["number"] for t in detail["best_trials"]} == {t.number for t in searched.best_trials}  # feasible only
        assert "FP accuracy" in detail["note"]["body"] and "delta" in detail["note"]["body"]
        delta = 1.0  # the fixture's default
        complete = [t for t in detail["trials"] if t["state"] == "Complete"]
        attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in complete]
        screened = [t for t, a in zip(complete, attrs) if a.get("screened") == "True"]
        measured = [(t, a) for t, a in zip(complete, attrs) if a.get("screened") != "True"]
        assert screened and measured
        for t, a in measured:  # the accuracy constraint where the dashboard reads it
            assert t["constraints"] == pytest.approx([float(a["drop"]) - delta])
        # screened results (upper bounds) are kept off the measured front: a second, violated constraint
        assert all(len(t["constraints"]) == 2 and t["constraints"][1] > 0 for t in screened)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_report_opens_with_the_summary_zooms_on_the_feasible_band_and_draws_no_unused_tau(finished_search):
    from aqsvit.report.figures import drift_figure, pareto_figure
    from aqsvit.search.trials import is_feasible

    html = (finished_search["report"] / "report.html").read_text()
    summary = html.index("<section id='summary'>")
    assert summary < html.index("class='figure'")
    block = html[summary:html.index("</section>", summary)]
    for label in ("compression:", "accuracy:", "drop", "search time"):
        assert label in block
    markdown = (finished_search["report"] / "summary.md").read_text()
    chosen = next(line for line in markdown.splitlines() if line.startswith("| chosen"))
    cells = [c.strip() for c in chosen.strip("|").split("|")]
    assert f"<b>{cells[1]}%</b>" in block and f"drop <b>{cells[2]}</b>" in block  # accuracy and drop agree
    assert "tau = " not in html  # the fixture's pruner used no threshold
    study = optuna.load_study(study_name=finished_search["name"], storage=finished_search["url"])
    shapes = lambda fig: [a.text for a in fig.layout.annotations]  # noqa: E731
    assert any(text.startswith("tau = 0.3") for text in shapes(drift_figure(study, 1.0, 0.3)))
    assert not any(text.startswith("tau") for text in shapes(drift_figure(study, 1.0, None)))
    assert any(text.startswith("tau") for text in shapes(drift_figure(study, 1.0, None, calibrated=True)))
    fp = study.user_attrs["aqsvit:context"]["fp_accuracy"]
    fig = pareto_figure(study, None, (fp, 1e6), [], delta=1.0)
    low, high = fig.layout.yaxis.range
    feasible = [t.values[0] for t in study.trials if is_feasible(t) and not t.user_attrs.get("screened")]
    assert feasible and all(low <= acc <= high for acc in feasible)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    drawn = sum(len(trace.y) for trace in fig.data if trace.name.endswith(("trials", "upper bound)")))
    assert drawn == len(complete), "every trial stays on the plot, outside the opening range too"


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--virtual-time-budget=15000"]


def chromium() -> str:
    """The headless browser (required in CI, skipped elsewhere when absent)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed")
    return browser


def browse(url: str, shot: str, size: str = "1400,2400") -> str:
    """The page's DOM once its scripts ran, and a screenshot of it under test-artifacts/ (checked)."""
    browser = chromium()
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    ARTIFACTS.mkdir(exist_ok=True)
    path = (ARTIFACTS / shot).resolve()
    path.unlink(missing_ok=True)
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--screenshot={path}", f"--window-size={size}", url],
                   capture_output=True, timeout=120)
    assert path.exists() and path.stat().st_size > 10_000, f"no screenshot of {url}"
    return dom.stdout


def dashboard_page(finished_search, shot: str, size: str = "1400,2400") -> str:
    """The dashboard's study page as headless Chromium renders it (``aqsvit dashboard`` serving the
    finished search), its screenshot under test-artifacts/``shot``."""
    chromium()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aqsvit.cli", "dashboard", f"storage.url={finished_search['url']}",
                             f"search.study_name={finished_search['name']}", f"dashboard.port={port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies", time.time() + 60)["study_summaries"]
        study = next(s for s in studies if s["study_name"] == finished_search["name"])
        return browse(f"http://127.0.0.1:{port}/dashboard/studies/{study['study_id']}", shot, size)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_marks_infeasible_trials_in_headless_chromium(finished_search):
    """The dashboard's own page (React + plotly, run by a real browser) draws trials that fail
    a constraint as "Infeasible": here the results decided on the screen only."""
    dom = dashboard_page(finished_search, "dashboard.png")
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', dom)
    assert "Complete" in legend and "Infeasible" in legend, legend


def axis_titles(svg: str) -> tuple[list[str], list[str]]:
    """The x and y axis titles plotly drew in ``svg``."""
    return (re.findall(r'class="xtitle"[^>]*>([^<]+)<', svg), re.findall(r'class="ytitle"[^>]*>([^<]+)<', svg))


def labels(svg: str) -> list[str]:
    """The annotation texts plotly drew in ``svg`` (the Δ lines' labels among them)."""
    return re.findall(r'class="annotation-text"[^>]*>([^<]+)<', svg)


def searched_deltas(finished_search) -> list[float]:
    from aqsvit.report.figures import answered_deltas

    study = optuna.load_study(study_name=finished_search["name"], storage=finished_search["url"])
    return answered_deltas(study)


def test_dashboard_draws_the_searched_front_and_its_widths_in_headless_chromium(finished_search):
    """Issue 35: the dashboard's study page shows the front (labelled axes, one line per Δ answered)
    and the widths of its points, written by ``aqsvit dashboard`` from the study alone."""
    dom = dashboard_page(finished_search, "dashboard-front.png", size="1400,3200")
    plots = dict(re.findall(r'id="user-defined-plot:([\w-]+)"(.*?)(?=id="user-defined-plot:|$)', dom, re.S))
    assert set(plots) == {"aqsvit-front", "aqsvit-front-widths"}, list(plots)
    assert axis_titles(plots["aqsvit-front"]) == (["memory (KiB)"], ["accuracy (%)"])
    assert {f"Δ = {d:g}" for d in searched_deltas(finished_search)} <= set(labels(plots["aqsvit-front"]))
    legend = re.findall(r'class="legendtext"[^>]*>([^<]+)<', plots["aqsvit-front"])
    assert {"front", "pick for Δ", "chosen"} <= set(legend), legend
    xtitle, ytitle = axis_titles(plots["aqsvit-front-widths"])
    assert ytitle == ["layer"] and xtitle[0].startswith("front point")
    assert re.search(r'class="textpoint"|>u\d<|>p\d<', plots["aqsvit-front-widths"]), "no cell text drawn"


def test_html_report_draws_every_plot_in_headless_chromium(finished_search):
    browser = chromium()
    html = (finished_search["report"] / "report.html").resolve()
    flags = CHROMIUM_FLAGS
    dom = subprocess.run([browser, *flags, "--dump-dom", f"file://{html}"], capture_output=True, text=True, timeout=120)
    figures = dom.stdout.count("class=\"figure\"")
    assert figures == 6
    assert dom.stdout.count("class=\"main-svg\"") >= 2 * figures, "a plot did not draw"
    assert "Pareto front" in dom.stdout and "Search progress" in dom.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot.resolve()}", "--window-size=1200,2400", f"file://{html}"],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
    for name in ("pareto", "front", "front_widths", "progress", "drift", "layers"):
        assert (finished_search["report"] / f"{name}.png").stat().st_size > 5_000


def test_report_draws_the_searched_front_its_table_and_widths_in_headless_chromium(finished_search):
    """Issue 35: the report shows the front with labelled axes, a line per Δ answered, and a table
    of the front whose rows are the front's points."""
    from aqsvit.search.front import front

    html = (finished_search["report"] / "report.html").resolve()
    dom = browse(f"file://{html}", "report-front.png", size="1200,3400")
    figures = re.split(r'class="figure"', dom)[1:]
    (drawn,) = [f for f in figures if "Searched front" in f]
    assert axis_titles(drawn) == (["memory (KiB)"], ["accuracy (%)"])
    deltas = searched_deltas(finished_search)
    assert deltas and {f"Δ = {d:g}" for d in deltas} <= set(labels(drawn))
    (widths,) = [f for f in figures if "Widths along the front" in f]
    assert axis_titles(widths)[1] == ["layer"]
    table = re.search(r'<section id="front">(.*?)</section>', dom, re.S)
    assert table, "no front table in the rendered page"
    study = optuna.load_study(study_name=finished_search["name"], storage=finished_search["url"])
    numbers = [int(n) for n in re.findall(r"<tr><td[^>]*>[^<]*</td><td[^>]*>(\d+)</td>", table.group(1))]
    assert numbers == [t.number for t in front(study.trials)]


def test_report_summary_block_in_headless_chromium(finished_search):
    """The top of the report, as a browser shows it: the summary block with its figures."""
    html = (finished_search["report"] / "report.html").resolve()
    dom = browse(f"file://{html}", "report-summary.png", size="1200,500")
    block = re.search(r'<section id="summary">(.*?)</section>', dom, re.S)
    assert block, "no summary block in the rendered page"
    text = re.sub(r"<[^>]+>", "", block.group(1))
    assert re.search(r"compression: [\d.]+x weights", text) and re.search(r"accuracy: [\d.]+%, drop [\d.]+ points", text)
    assert re.search(r"search time [\d.]+ s", text)


def test_packed_model_reproduces_the_reported_accuracy_and_size(finished_search, digits_data):
    report = finished_search["report"]
    spec, assignment = read_assignment(report / "assignment.json")
    metrics = json.loads((report / "assignment.json").read_text())["metrics"]
    model, packed_assignment = load_packed(report / "model.aqsv")
    assert model.spec == spec and packed_assignment == {k: v for k, v in assignment.items() if v[0] != "fp32"}
    study = optuna.load_study(study_name=finished_search["name"], storage=finished_search["url"])
    chosen = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
              and t.user_attrs.get("memory_bytes") == metrics["memory_bytes"]
              and not t.user_attrs.get("screened")]  # its verification on the whole split
    assert chosen and KEY_ATTR in chosen[0].system_attrs
    assert accuracy(model, digits_data.test) == chosen[0].values[0] == metrics["accuracy"]
    size = (report / "model.aqsv").stat().st_size
    assert abs(size - metrics["memory_bytes"]) <= 0.10 * metrics["memory_bytes"]


def test_progress_png_draws_trials_and_wall_time_on_their_own_axes(tmp_path):
    """The static progress figure: the by-trial curve over trial numbers, the by-time curve over
    seconds, each on its own panel (both once shared the trials axis)."""
    from datetime import datetime, timedelta

    from optuna.trial import FrozenTrial, TrialState

    from aqsvit.report.figures import progress_figure, static_figure, write_pngs

    study = optuna.create_study(study_name="walk", directions=["maximize", "minimize"])
    start = datetime(2026, 1, 1)
    for number, (seconds, memory) in enumerate([(40, 3072.0), (300, 2048.0), (900, 1024.0)]):
        study.add_trial(FrozenTrial(
            number=number, trial_id=number, state=TrialState.COMPLETE, value=None, values=[98.0, memory],
            datetime_start=start + timedelta(seconds=seconds - 30),
            datetime_complete=start + timedelta(seconds=seconds),
            params={}, distributions={}, user_attrs={}, system_attrs={"constraints:accuracy": -0.5},
            intermediate_values={}))
    fig = progress_figure([study])
    by_trial, by_time = static_figure(fig, "progress").axes
    assert (by_trial.get_xlabel(), by_time.get_xlabel()) == ("trials", "seconds")
    assert by_trial.get_ylabel() == "best feasible memory (KiB)"
    assert [list(line.get_xdata()) for line in by_trial.lines] == [[1, 2, 3]]
    assert [list(line.get_xdata()) for line in by_time.lines] == [[30.0, 290.0, 890.0]]
    assert [list(line.get_ydata()) for line in by_time.lines] == [[3.0, 2.0, 1.0]]
    assert by_trial.get_legend() is not None and by_time.get_legend() is None  # one legend entry per study
    assert write_pngs(tmp_path, {"progress": fig})[0].stat().st_size > 5_000
