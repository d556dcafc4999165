"""The sensitivity start on the real digits model: probes cost only a calibration batch and
measure the KL divergence from the precise assignment's outputs, one per unit and scheme, and the
walk from the program's pick ends feasible on the whole split, smaller than the walk from the
precise start."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from optuna.trial import TrialState
from spikingjelly.activation_based import functional

from aqsvit.search.evaluator import Evaluator
from aqsvit.search.run import prepare, run, summarize
from aqsvit.search.settings import SearchSettings
from aqsvit.search.vocabulary import IDLE_ATTR, KEY_ATTR, PROBE_PREFIX, PROBED


@torch.no_grad()
def whole_forward(evaluator, assignment, x):
    """The logits of the plain forward (no stage cache) of ``assignment``."""
    with evaluator.quantizer.applied(assignment) as model:
        logits = model(x)
        functional.reset_net(model)
    return logits


@pytest.mark.slow
def test_probes_stop_after_the_drift_and_the_walk_ends_feasible_below_the_precise_walk(reference, digits_data,
                                                                                        tmp_path):
    summaries = {}
    for start in ("sensitivity", "precise"):
        evaluator = Evaluator(reference.build(), digits_data, reference.fp_accuracy)
        # the default widths: with 8, 4, 2 alone the two walks end within 2% of each other, on either side
        # depending on the reference (78484 against 77140 bytes with this session's packages)
        settings = SearchSettings(schemes=("uniform", "pot"), start=start,
                                  storage_url=f"sqlite:///{tmp_path}/s.db", study_name=start)
        search = prepare(evaluator, settings, "digits")
        run(search, progress=False)
        summaries[start] = summarize(search)
        if start != "sensitivity":
            continue
        trials = [t for t in search.study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]
        probes = [t for t in trials if t.system_attrs[KEY_ATTR].startswith(PROBE_PREFIX)]
        # each unit at the cheapest choice of each scheme (the weight noise scales the others)
        assert len(probes) == 1 + len(search.space.units) * len(search.space.schemes)
        first_batch = len(search.objective.reference.images[0])
        for t in probes:
            assert t.state == TrialState.PRUNED
            assert t.user_attrs["sensitivity"] >= 0 and "errors" not in t.user_attrs and "drift" not in t.user_attrs
            assert t.user_attrs["images"] == first_batch  # the first calibration batch only
        assert all(t.user_attrs["pruned_by"] == PROBED for t in probes)
        # a probe's sensitivity is KL(precise || probe) on the first batch: recompute it from whole forwards
        batch = search.objective.reference.images[0]
        by_key = {t.system_attrs[KEY_ATTR]: t for t in probes}
        precise = search.space.uniform(search.space.start)
        changed = {**precise, search.space.units[-1].name: search.space.candidates()[0]}
        log_p, log_q = (F.log_softmax(whole_forward(evaluator, search.space.assignment(c), batch), 1)
                        for c in (precise, changed))
        expected = float((log_p.exp() * (log_p - log_q)).sum()) / len(batch)
        assert by_key[PROBE_PREFIX + search.space.key(precise)].user_attrs["sensitivity"] == 0.0
        assert by_key[PROBE_PREFIX + search.space.key(changed)].user_attrs["sensitivity"] == \
            pytest.approx(expected, rel=1e-5)
        assert expected > 0
        chosen = summaries[start].choices
        measured = evaluator.measure(search.space.assignment(chosen))
        assert measured.drop <= settings.delta
    assert summaries["sensitivity"].measurement.memory_bytes < summaries["precise"].measurement.memory_bytes
