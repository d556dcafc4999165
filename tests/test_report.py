"""The dashboard's JSON API, the HTML report in headless Chromium, and the packed export."""
from __future__ import annotations

import json
import os
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
from aqsvit.search._stepwise import KEY_ATTR

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
        assert "FP accuracy" in detail["note"]["body"] and "delta" in detail["note"]["body"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_html_report_draws_every_plot_in_headless_chromium(finished_search):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed")
    html = (finished_search["report"] / "report.html").resolve()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--virtual-time-budget=15000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", f"file://{html}"], capture_output=True, text=True, timeout=120)
    figures = dom.stdout.count("class=\"figure\"")
    assert figures == 4
    assert dom.stdout.count("class=\"main-svg\"") >= 2 * figures, "a plot did not draw"
    assert "Pareto front" in dom.stdout and "Search progress" in dom.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot.resolve()}", "--window-size=1200,2400", f"file://{html}"],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
    for name in ("pareto", "progress", "drift", "layers"):
        assert (finished_search["report"] / f"{name}.png").stat().st_size > 5_000


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
