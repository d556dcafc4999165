"""optuna-dashboard on a study's storage, with a note on what the study is about."""
from __future__ import annotations

import optuna

CONTEXT_ATTR = "aqsvit:context"


def study_note(study: optuna.Study) -> str:
    """Markdown note: model, data, delta, FP accuracy, tau, sampler (from the study's context)."""
    ctx = study.user_attrs.get(CONTEXT_ATTR, {})
    lines = [f"# {study.study_name}", "",
             "| | |", "|---|---|"]
    for label, key in (("model", "model"), ("data", "dataset"), ("FP accuracy %", "fp_accuracy"),
                       ("delta (points)", "delta"), ("tau", "tau"), ("sampler", "sampler"),
                       ("granularity", "granularity"), ("quantizable layers", "layers")):
        lines.append(f"| {label} | {ctx.get(key, '-')} |")
    lines += ["", "Objectives: accuracy (maximize), memory_bytes (minimize). Constraints: the first is "
              "drop - delta (<= 0: feasible); a second one (1) marks a result decided on the screen only "
              "(user attr `screened`, an upper bound), drawn as infeasible, apart from the measured front."]
    return "\n".join(lines)


def serve(storage: optuna.storages.BaseStorage, study_name: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Write the note and serve the dashboard (blocks). Binds to 127.0.0.1 unless told otherwise."""
    import optuna_dashboard

    study = optuna.load_study(study_name=study_name, storage=storage)
    optuna_dashboard.save_note(study, study_note(study))
    optuna_dashboard.run_server(storage, host=host, port=port)
