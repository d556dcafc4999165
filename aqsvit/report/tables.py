"""Plain-text (Markdown) tables for terminals, result files and the README."""
from __future__ import annotations

from collections.abc import Sequence


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
