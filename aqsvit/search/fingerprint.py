"""The resume fingerprint: what makes two runs' trials comparable, recorded on a new study and
checked on every resume (a study is never continued with other settings)."""
from __future__ import annotations

import optuna

from aqsvit.errors import AqsvitError
from aqsvit.registry import describe
from aqsvit.search.stepwise import walk_start
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.front import DELTA_KEY, FRONT_KEY
from aqsvit.search.settings import SearchSettings
from aqsvit.search.space import SearchSpace
from aqsvit.search.vocabulary import FINGERPRINT_ATTR

REFERENCE_KEY = "reference (checkpoint, data)"


def fingerprint(evaluator: Evaluator, settings: SearchSettings, space: SearchSpace, reference_key: str) -> dict:
    """What makes two runs' trials comparable: model, reference weights and data, space, delta, sampler."""
    spec = evaluator.model.spec
    start = walk_start(settings.start).resolve(space)  # "auto" is recorded as what it chose
    # the hardware target, when not ``any`` (studies made before targets existed resume as any)
    target = {} if space.target.name == "any" else {"target": space.target.describe()}
    return {
        "model": spec.describe(),
        REFERENCE_KEY: reference_key,
        "search space": f"{settings.granularity}/{settings.order}: {[u.name for u in space.units]} "
                        f"schemes {list(space.schemes)} bits {list(space.bits)}",
        # what trials are measured against: delta, or for a front its deltas, one walk each (delta
        # then only chooses what a command reports, so it may differ on a resume)
        DELTA_KEY: settings.loosest_delta,
        **({FRONT_KEY: list(settings.front)} if settings.front else {}),
        # a stepwise sampler's start: nothing for the precise one, " from one_width", or " from
        # sensitivity (<how probes are measured>)" (WalkStart.fingerprint)
        "sampler": describe(settings.sampler, settings.sampler_settings)
                   + (start.fingerprint() if settings.stepwise else ""),
        "pruner": f"{describe(settings.pruner, settings.pruner_settings)} "
                  f"calib={settings.calib_images}/{settings.calib_batch} staged={settings.staged}"
                  f"{f' screen={settings.screen}' if settings.screen < 1 else ''}",
        **target,
    }


def check_fingerprint(study: optuna.Study, current: dict) -> None:
    """Record the fingerprint on a new study; refuse to resume one recorded with other settings. A
    front study resumed with other deltas records the union: each delta is walked on its own (the
    probes shared), so the walks it holds stay as they were and the new deltas are walked too."""
    recorded = study.user_attrs.get(FINGERPRINT_ATTR)
    if recorded is None:
        study.set_user_attr(FINGERPRINT_ATTR, current)
        return
    compare_fingerprint(study.study_name, recorded, current)
    if _fronts(recorded, current) and not set(current[FRONT_KEY]) <= set(recorded[FRONT_KEY]):
        deltas = sorted({*recorded[FRONT_KEY], *current[FRONT_KEY]})
        study.set_user_attr(FINGERPRINT_ATTR, {**recorded, FRONT_KEY: deltas, DELTA_KEY: deltas[-1]})


def compare_fingerprint(study_name: str, recorded: dict | None, current: dict) -> None:
    """Refuse a study (one line) unless its ``recorded`` fingerprint has ``current``'s values (a part
    of the fingerprint compares only those keys; two fronts' deltas may differ, see
    :func:`check_fingerprint`); writes nothing."""
    if recorded is None:
        raise AqsvitError(f"search.study_name: study {study_name!r} was not made by aqsvit search (it has no "
                          "aqsvit fingerprint); allowed: a study aqsvit search wrote")
    free = (FRONT_KEY, DELTA_KEY) if _fronts(recorded, current) else ()
    differs = [k for k in current if k not in free and recorded.get(k) != current[k]]
    if DELTA_KEY in current and (FRONT_KEY in recorded) != (FRONT_KEY in current):  # a front stays one, one delta too
        differs.insert(0, FRONT_KEY)
    if differs:
        k = differs[0]
        raise AqsvitError(f"study {study_name!r} was created with {k} = {recorded.get(k)!r}, now {current.get(k)!r}"
                          f"{f' (and {len(differs) - 1} more)' if len(differs) > 1 else ''}; resume with the same "
                          "settings, choose a new search.study_name, or pass --force-new-study")


def _fronts(recorded: dict, current: dict) -> bool:
    """Whether both fingerprints are a front search's (their deltas may then differ)."""
    return FRONT_KEY in recorded and FRONT_KEY in current
