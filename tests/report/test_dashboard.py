"""The dashboard aqsvit serves: its best trials are the verified front, and a refused start leaves the study alone."""
from __future__ import annotations

import json
import socket
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from aqsvit.errors import AqsvitError
from aqsvit.report.dashboard import serve, wsgi
from aqsvit.search.vocabulary import CONTEXT_ATTR
from aqsvit.report.export import read_assignment


def study_detail(storage: optuna.storages.BaseStorage, study: optuna.Study) -> dict:
    """GET /api/studies/<id> of the dashboard app, called in this process as a WSGI server would."""
    environ: dict = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = f"/api/studies/{study._study_id}"
    status = []
    body = b"".join(wsgi(storage)(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"], body
    return json.loads(body)


def test_best_trials_are_the_verified_front_with_the_chosen_trial(finished_search):
    """Issue 38: a screened result's accuracy is an upper bound (it can beat its own verification, at
    the same memory, and even FP), so no screened trial may take a verified one's place, the chosen
    trial's least of all."""
    storage = optuna.storages.RDBStorage(finished_search["url"])
    study = optuna.load_study(study_name=finished_search["name"], storage=storage)
    best = {t["number"] for t in study_detail(storage, study)["best_trials"]}
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    screened = {t.number for t in complete if t.user_attrs.get("screened")}
    assert screened, "the default search screens (else this test could not fail)"
    assert best and not best & screened
    assert best == {t.number for t in study.best_trials}  # Optuna's front of the feasible trials
    _, assignment = read_assignment(finished_search["report"] / "assignment.json")  # the search's result
    (chosen,) = [t for t in complete if not t.user_attrs.get("screened")
                 and {name: (t.params[f"{name}.scheme"], t.params[f"{name}.bits"]) for name in assignment} == assignment]
    assert chosen.number in best


def test_best_trials_leave_out_infeasible_and_screened_trials():
    """The front of the feasible trials only: a cheaper infeasible trial and a screened one with a
    better (upper bound) accuracy would dominate the measured trials on plain objective values."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])

    def add(accuracy: float, memory: float, constraints: list[float], **attrs) -> int:
        study.add_trial(create_trial(values=[accuracy, memory], user_attrs=attrs,
                                     system_attrs={"constraints": constraints}))
        return study.trials[-1].number

    measured = add(98.0, 100.0, [-0.5])
    cheaper = add(97.5, 80.0, [0.0])  # FP 98.5, delta 1: drop - delta = 97.5 - accuracy
    add(90.0, 50.0, [7.5])  # drop > delta
    add(99.0, 60.0, [-1.5, 1.0], screened=True)
    verified = add(97.9, 60.0, [-0.4])  # the screened one on the whole split
    add(97.6, 100.0, [-0.1])  # dominated
    best = {t["number"] for t in study_detail(storage, study)["best_trials"]}
    assert best == {measured, verified}
    assert cheaper not in best  # dominated by the verified trial, which the screened one dominated


@pytest.fixture
def studies(tmp_path) -> optuna.storages.BaseStorage:
    """A storage with two studies, one with the context the note is made from."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/studies.db")
    optuna.create_study(storage=storage, study_name="digits", directions=["maximize", "minimize"]).set_user_attr(
        CONTEXT_ATTR, {"model": "spikformer_digits", "delta": 1.0})
    optuna.create_study(storage=storage, study_name="wide", directions=["maximize", "minimize"])
    return storage


def attrs(storage: optuna.storages.BaseStorage) -> list[tuple[dict, dict]]:
    return [(s.user_attrs, s.system_attrs) for s in storage.get_all_studies()]


@pytest.mark.parametrize("study_name, host, busy, message", [
    ("digits", "127.0.0.1", True,
     "dashboard.port: 127.0.0.1:{port} is already in use; allowed: a free port, e.g. dashboard.port={next}"),
    ("digits", "999.1.1.1", False,
     "dashboard.host: got '999.1.1.1'; allowed: an address of this machine, e.g. 127.0.0.1"),
    ("digitz", "127.0.0.1", False, "search.study_name: got 'digitz'; allowed: digits, wide"),
], ids=["busy port", "bad host", "missing study"])
def test_a_refused_serve_is_one_line_and_writes_nothing(studies, study_name, host, busy, message):
    before = attrs(studies)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        if busy:
            taken.listen()
        else:
            taken.close()
        with pytest.raises(AqsvitError) as refused:
            serve(studies, study_name, host, port)
    assert str(refused.value) == message.format(port=port, next=port + 1)
    assert attrs(studies) == before


def test_a_missing_study_in_an_empty_storage_says_so(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(AqsvitError, match=r"^search.study_name: got 'digits'; allowed: none: this storage holds no study yet$"):
        serve(storage, "digits")
