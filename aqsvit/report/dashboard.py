"""optuna-dashboard on a study's storage, with a note on what the study is about, the verified
front as its best trials, and the searched front and its widths as two user-defined plots."""
from __future__ import annotations

import errno
import functools
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer, make_server

import optuna
from optuna.study import StudyDirection
from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
from optuna.trial import FrozenTrial

from aqsvit.errors import AqsvitError, invalid
from aqsvit.report.figures import answered_deltas, front_figure, front_widths_figure, trials_of
from aqsvit.search.front import measured, stored_choices
from aqsvit.search.vocabulary import CONTEXT_ATTR

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    import plotly.graph_objects as go

# the ids of the plots :func:`save_front_plots` writes (written again, in place, at every start)
FRONT_PLOT, WIDTHS_PLOT = "aqsvit-front", "aqsvit-front-widths"


def study_note(study: optuna.Study) -> str:
    """Markdown note: model, data, delta, FP accuracy, tau, sampler (from the study's context)."""
    ctx = study.user_attrs.get(CONTEXT_ATTR, {})
    lines = [f"# {study.study_name}", "",
             "| | |", "|---|---|"]
    for label, key in (("model", "model"), ("data", "dataset"), ("FP accuracy %", "fp_accuracy"),
                       ("delta (points)", "delta"), ("tau", "tau"), ("sampler", "sampler"),
                       ("granularity", "granularity"), ("quantizable layers", "layers"),
                       ("hardware target", "target")):
        lines.append(f"| {label} | {ctx.get(key, '-')} |")
    lines += ["", "Objectives: accuracy (maximize), memory_bytes (minimize). Constraints: the first is "
              "drop - delta (<= 0: feasible); a second one (1) marks a result decided on the screen only "
              "(user attr `screened`, an upper bound), drawn as infeasible, apart from the measured front. "
              "Best Trials: the Pareto front of the feasible trials alone (Optuna's `study.best_trials`)."]
    return "\n".join(lines)


def walk_order(trials: Sequence[FrozenTrial]) -> list[str]:
    """The study's units in walk order, read from a measured trial's params alone (stored in the
    order the objective suggested them: the space's unit order)."""
    done = measured(trials)
    return list(stored_choices(done[0])) if done else []


def front_plots(study: optuna.Study) -> dict[str, go.Figure]:
    """The report's front figures, from the study alone (nothing evaluated): the front with the Δ
    values the search answered and the pick for its own Δ starred, and the widths of its points."""
    return {FRONT_PLOT: front_figure(study, answered_deltas(study)),
            WIDTHS_PLOT: front_widths_figure(study, walk_order(trials_of(study)))}


def save_front_plots(study: optuna.Study) -> None:
    """Write :func:`front_plots` where optuna-dashboard reads user-defined plots (study system attrs
    ``dashboard:plot_data:<id>:<chunk>``, as its ``save_plotly_graph_object``), replacing those of
    an earlier start; no trial is touched."""
    import optuna_dashboard

    for plot_id, figure in front_plots(study).items():
        optuna_dashboard.save_plotly_graph_object(study, figure, graph_object_id=plot_id)


def feasible_front(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The Pareto front of the COMPLETE trials whose constraints all hold, the list form's too:
    Optuna's ``study.best_trials`` of a constrained study. optuna-dashboard 0.21 ranks every
    COMPLETE trial instead (constraints unread, its issue 772), so there a screened result, whose
    accuracy is an upper bound, outranks its own verification, and a cheap infeasible trial joins
    the front."""
    return _get_pareto_front_trials_by_trials(trials, directions, consider_constraint=True)


def wsgi(storage: optuna.storages.BaseStorage) -> WSGIApplication:
    """optuna-dashboard's WSGI app on ``storage``, its best trials (the ``best_trials`` of the study
    API: the Best Trials card, the trial list's filter) being :func:`feasible_front`. Its study
    view computes them with the module's ``get_pareto_front_trials``, replaced here for the process."""
    import optuna_dashboard
    from optuna_dashboard import _app

    _app.get_pareto_front_trials = feasible_front
    return optuna_dashboard.wsgi(storage)


class _Server(WSGIServer):
    """wsgiref's server for the address family of its host (it assumes IPv4)."""

    def __init__(self, address: tuple[str, int], handler: type, family: socket.AddressFamily) -> None:
        self.address_family = family
        super().__init__(address, handler)


def bind(host: str, port: int, app: WSGIApplication) -> WSGIServer:
    """A server listening on ``host:port`` for ``app``, or the one-line error naming the field at fault."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return make_server(host, port, app, server_class=functools.partial(_Server, family=family))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            other = port + 1 if port < 65535 else port - 1
            raise AqsvitError(f"dashboard.port: {host}:{port} is already in use; "
                              f"allowed: a free port, e.g. dashboard.port={other}") from None
        raise invalid("dashboard.host", host, "an address of this machine, e.g. 127.0.0.1") from None


def serve(storage: optuna.storages.BaseStorage, study_name: str, host: str = "127.0.0.1", port: int = 8080,
          where: str = "") -> None:
    """Write the note and the front plots (:func:`save_front_plots`) and serve the dashboard (blocks
    until interrupted). Binds to 127.0.0.1 unless told otherwise. The study and the address are
    checked before the note and the plots are written, so a refused call leaves the study as it
    was; the address line (with ``where``, e.g. the redacted storage URL) is printed once the
    server is bound."""
    import optuna_dashboard

    from aqsvit.search.existing import load_existing

    study = load_existing(storage, study_name)
    server = bind(host, port, wsgi(storage))
    print(f"optuna-dashboard for study {study_name!r}{f' ({where})' if where else ''} on http://{host}:{port}",
          flush=True)
    try:
        optuna_dashboard.save_note(study, study_note(study))
        save_front_plots(study)
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C: the way to stop it
        pass
    finally:
        server.server_close()
