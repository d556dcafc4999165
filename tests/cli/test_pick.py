"""One front search answers every delta: aqsvit pick reads each back from the stored trials without
a single forward, as small as a search for that delta alone (the session's finished default search)."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import optuna
import pytest
import torch

from aqsvit.search.front import front, pick

CACHE = os.environ.get("AQSVIT_TEST_CHECKPOINTS", "studies/checkpoints")

FRONT = (0.5, 1.0, 2.0)


@pytest.fixture(scope="module")
def front_search(reference, tmp_path_factory):
    folder = tmp_path_factory.mktemp("front")
    url = f"sqlite:///{folder}/front.db"
    common = [f"storage.url={url}", "search.study_name=front", "progress=false", f"checkpoint_dir={CACHE}",
              f"hydra.run.dir={folder}/run"]
    result = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", *common,
                             f"search.front=[{','.join(map(str, FRONT))}]"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    front_table = result.stdout.split("the front (aqsvit pick delta=X", 1)[1]
    assert all(f"| {delta:g} " in front_table or f", {delta:g}" in front_table or f"| {delta:g}," in front_table
               for delta in FRONT), front_table  # each delta is some front point's pick
    return url, common


def pick_in_process(capsys, *args: str) -> tuple[int, str, str, int]:
    """``aqsvit pick`` in this process: exit code, stdout, stderr and the module forwards it ran."""
    from aqsvit.cli import main
    forwards = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *_: forwards.append(1))
    code = 0
    capsys.readouterr()
    try:
        main(["pick", *args])
    except SystemExit as exit_:
        code = exit_.code or 0
    finally:
        handle.remove()
    out = capsys.readouterr()
    return code, out.out, out.err, len(forwards)


@pytest.mark.slow
def test_pick_answers_every_delta_without_evaluating_and_as_small_as_a_search_for_it(front_search, finished_search,
                                                                                      capsys):
    url, common = front_search
    study = optuna.load_study(study_name="front", storage=url)
    trials = study.get_trials()
    rows_before = [(t.number, t.state, t.values, t.user_attrs, t.system_attrs) for t in trials]
    single = optuna.load_study(study_name=finished_search["name"], storage=finished_search["url"])
    alone = pick(single.get_trials(), 1.0)  # the default search's result (delta 1)
    for delta in (*FRONT, 0.7, 3.0):
        code, out, err, forwards = pick_in_process(capsys, *common, f"delta={delta}")
        assert code == 0 and not forwards, (err, forwards)  # read from the stored trials: not one forward
        chosen = pick(trials, delta)
        assert f"trial {chosen.number}, accuracy {chosen.values[0]:.2f}%" in out
        assert float(chosen.user_attrs["drop"]) <= delta and not chosen.user_attrs.get("screened")
        assert "memory KiB" in out and "| unit" in out
        if delta == 1.0:
            assert chosen.values[1] <= alone.values[1]  # as small as the search for delta 1 alone, or smaller
    assert len(front(trials)) >= 2
    after = optuna.load_study(study_name="front", storage=url).get_trials()
    assert [(t.number, t.state, t.values, t.user_attrs, t.system_attrs) for t in after] == rows_before


def test_pick_of_a_delta_the_study_cannot_answer_is_one_line(front_search, capsys, tmp_path):
    """A copy of the front study whose every point lost a point more (its stored drops raised by 1):
    no point within 0.01 (the study itself may hold one at or above the FP accuracy)."""
    url, common = front_search
    copy = tmp_path / "worse.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE trial_user_attributes SET value_json = CAST(value_json AS REAL) + 1 WHERE key = 'drop'")
    args = [f"storage.url=sqlite:///{copy}" if arg.startswith("storage.url=") else arg for arg in common]
    code, _, err, _ = pick_in_process(capsys, *args, "delta=0.01")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("aqsvit: error: delta: got 0.01"), err
    code, out, err, _ = pick_in_process(capsys, *args, "delta=3")  # the copy still answers a looser delta
    assert code == 0 and "trial " in out, err


@pytest.mark.slow
def test_a_delta_the_front_did_not_walk_is_walked_alone_when_the_search_resumes_with_it(front_search, capsys,
                                                                                          tmp_path):
    """pick 0.7 on the 0.5/1/2 front names the command that adds its walk; the search resumed with
    0.7 walks it alone in the same study (no other walk's trial changes, no probe measured again)
    and lists the whole front, and pick 0.7 then answers from its walk, still without a forward."""
    from aqsvit.search.vocabulary import CONTEXT_ATTR, DELTA_ATTR, FINGERPRINT_ATTR, IDLE_ATTR

    url, common = front_search
    copy = tmp_path / "more.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    args = [f"storage.url=sqlite:///{copy}" if arg.startswith("storage.url=") else arg for arg in common]
    code, out, err, _ = pick_in_process(capsys, *args, "delta=0.7")
    more = "search.front=[0.5,0.7,1,2]"
    assert code == 0 and f"a search for 0.7 may find less; walk it in this study: aqsvit search {more}" in out, err
    before = optuna.load_study(study_name="front", storage=f"sqlite:///{copy}").get_trials()
    # the hinted list, or only the new delta: either walks 0.7 alone (here the latter)
    result = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", *args, "search.front=[0.7]"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("the front (aqsvit pick delta=X", 1)[1].split("\n\n", 2)[1]
    answers = {d for line in table.splitlines()[2:] for d in line.split("|")[1].replace(",", " ").split()}
    assert answers == {"0.5", "0.7", "1", "2"}, table  # every delta the study walked, not only this run's list
    study = optuna.load_study(study_name="front", storage=f"sqlite:///{copy}")
    after = study.get_trials()
    assert [(t.number, t.state, t.values, t.system_attrs) for t in after[:len(before)]] == \
        [(t.number, t.state, t.values, t.system_attrs) for t in before]
    added = [t for t in after[len(before):] if not t.system_attrs.get(IDLE_ATTR)]
    assert added and {t.system_attrs.get(DELTA_ATTR) for t in added} == {0.7}
    assert study.user_attrs[FINGERPRINT_ATTR]["front"] == [0.5, 0.7, 1.0, 2.0]
    assert study.user_attrs[CONTEXT_ATTR]["front"] == [0.5, 0.7, 1.0, 2.0]
    code, out, err, forwards = pick_in_process(capsys, *args, "delta=0.7")
    assert code == 0 and not forwards and "may find less" not in out, (err, forwards)
    chosen = pick(after, 0.7)
    assert f"trial {chosen.number}, accuracy {chosen.values[0]:.2f}%" in out
    walked = [t for t in added if t.state.name == "COMPLETE" and not t.user_attrs.get("screened")]
    assert chosen.values[1] <= min(t.values[1] for t in walked if float(t.user_attrs["drop"]) <= 0.7)
