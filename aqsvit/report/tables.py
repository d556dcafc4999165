"""Plain-text (Markdown) tables for terminals, result files and the README; the searched front's
rows and their HTML form for the report."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from aqsvit.search.front import front, pick
from aqsvit.search.vocabulary import DROP_ATTR

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown pipe table; floats get 2 decimals."""
    def cell(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)
    body = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


MEASUREMENT_HEADERS = ("accuracy %", "drop", "memory KiB", "model x", "weight x", "eff. bits", "energy nJ")


def measurement_cells(m) -> list[object]:
    """The standard columns of a ``Measurement``."""
    return [m.accuracy, m.drop, m.memory_bytes / 1024, m.model_compression, m.weight_compression,
            m.effective_bits, m.energy_nj]


def picks(trials: Sequence[FrozenTrial], deltas: Sequence[float]) -> dict[int, list[float]]:
    """The Δ values of ``deltas`` each picked trial answers (:func:`aqsvit.search.front.pick`; a pick
    is always a front point), by trial number, in the order of ``deltas``."""
    answers: dict[int, list[float]] = {}
    for delta in deltas:
        chosen = pick(trials, delta)
        if chosen is not None:
            answers.setdefault(chosen.number, []).append(delta)
    return answers


FRONT_HEADERS = ("Δ", "trial", "accuracy %", "drop", "memory KiB", "weight x", "model x", "eff. bits")


def front_rows(trials: Iterable[FrozenTrial], deltas: Sequence[float]) -> list[list[object]]:
    """One row per point of the measured front (:func:`aqsvit.search.front.front`, least memory first):
    the Δ values it is the pick for, its accuracy, drop, memory and the compression the objective
    recorded (``-`` where a trial lacks it)."""
    trials = list(trials)
    answers = picks(trials, deltas)
    return [[", ".join(f"{d:g}" for d in answers.get(t.number, [])), t.number, t.values[0],
             float(t.user_attrs[DROP_ATTR]), t.values[1] / 1024,
             *(t.user_attrs.get(attr, "-") for attr in ("weight_compression", "model_compression", "effective_bits"))]
            for t in front(trials)]


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table; floats get 2 decimals, text is escaped."""
    def cell(tag: str, v: object) -> str:
        return f"<{tag}{style}>{escape(f'{v:.2f}' if isinstance(v, float) else str(v))}</{tag}>"
    style = " style='border:1px solid #ccc;padding:2px 8px;text-align:right'"
    return ("<table style='border-collapse:collapse'><tr>" + "".join(cell("th", h) for h in headers) + "</tr>"
            + "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows) + "</table>")
