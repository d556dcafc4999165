"""The dashboard aqsvit serves: a refused start leaves the study alone."""
from __future__ import annotations

import socket

import optuna
import pytest

from aqsvit.errors import AqsvitError
from aqsvit.report.dashboard import CONTEXT_ATTR, serve


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
    with pytest.raises(AqsvitError, match=r"^search.study_name: got 'digits'; allowed: a study of this storage "
                                          r"\(it holds none yet\)$"):
        serve(storage, "digits")
