"""One exception type for every mistake a user can make, so the CLI can print one line for it."""
from __future__ import annotations

from collections.abc import Iterable


class AqsvitError(ValueError):
    """A bad input, reported as one line that names the field and what is allowed."""


def invalid(field: str, value: object, allowed: Iterable[object] | str) -> AqsvitError:
    """Build the standard error: ``<field>: got <value>; allowed: <allowed>``."""
    if not isinstance(allowed, str):
        allowed = ", ".join(str(a) for a in allowed)
    return AqsvitError(f"{field}: got {value!r}; allowed: {allowed}")


def key_listing(groups: Iterable[tuple[str, list[str]]], shown: int = 3) -> str:
    """``missing keys: a, b, c (+2 more); unexpected keys: d`` for the non-empty groups."""
    parts = []
    for label, keys in groups:
        if keys:
            more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
            parts.append(f"{label}: {', '.join(keys[:shown])}{more}")
    return "; ".join(parts)
