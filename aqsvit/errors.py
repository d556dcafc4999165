"""One exception type for every mistake a user can make, so the CLI can print one line for it."""
from __future__ import annotations

import math
import re
from collections.abc import Iterable


class AqsvitError(ValueError):
    """A bad input, reported as one line that names the field and what is allowed."""


def invalid(field: str, value: object, allowed: Iterable[object] | str) -> AqsvitError:
    """Build the standard error: ``<field>: got <value>; allowed: <allowed>``."""
    if not isinstance(allowed, str):
        allowed = ", ".join(str(a) for a in allowed)
    return AqsvitError(f"{field}: got {shown(value)}; allowed: {allowed}")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters with its length said (a 10,000-character name
    stays a readable line)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}… ({len(value) if isinstance(value, str) else len(text)} characters)"


def key_listing(groups: Iterable[tuple[str, list[str]]], shown: int = 3) -> str:
    """``missing keys: a, b, c (+2 more); unexpected keys: d`` for the non-empty groups."""
    parts = []
    for label, keys in groups:
        if keys:
            more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
            parts.append(f"{label}: {', '.join(keys[:shown])}{more}")
    return "; ".join(parts)


def check_int(field: str, value: object, lo: int | None = None, hi: int | None = None,
              allowed: str | None = None) -> int:
    """``value`` as an integer in [lo, hi] (either bound optional), or the standard error (whose
    "allowed" part ``allowed`` replaces, for a field that also takes other values)."""
    inside = (isinstance(value, int) and not isinstance(value, bool)
              and (lo is None or value >= lo) and (hi is None or value <= hi))
    if not inside:
        raise invalid(field, value, allowed or _range("integers", lo, hi))
    return value


def check_number(field: str, value: object, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, allowed: str | None = None) -> float:
    """``value`` as a finite number in [lo, hi] (``(lo, hi]`` when ``lo_open``), or the standard error
    (``allowed`` replaces its "allowed" part)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        allowed = allowed or (f"numbers in ({lo}, {hi}]" if lo_open and hi is not None
                              else f"numbers > {lo}" if lo_open else _range("numbers", lo, hi))
        raise invalid(field, value, allowed)
    return float(value)


def check_choice(field: str, value: object, choices: Iterable[object]) -> object:
    """``value`` if it is one of ``choices``, or the standard error listing them."""
    choices = list(choices)
    if isinstance(value, bool) or value not in choices:
        raise invalid(field, value, choices)
    return value


def check_flag(field: str, value: object) -> bool:
    """``value`` if it is a boolean (true/false in YAML), or the standard error."""
    if not isinstance(value, bool):
        raise invalid(field, value, "true, false")
    return value


def check_text(field: str, value: object, pattern: str = r"\S.*", allowed: str = "non-empty text") -> str:
    """``value`` if it is a string matching ``pattern`` in full, or the standard error."""
    if not isinstance(value, str) or not re.fullmatch(pattern, value, flags=re.DOTALL):
        raise invalid(field, value, allowed)
    return value


def _range(kind: str, lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{kind} {lo}..{hi}"
    if lo is not None:
        return f"{kind} >= {lo}"
    return f"{kind} <= {hi}" if hi is not None else kind
