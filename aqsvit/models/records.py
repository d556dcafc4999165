"""The one gate between a data file and code: how a model recorded in a file becomes a spec.

Checkpoints, packed models and assignment files record the model they belong to. A registered
model is rebuilt by name, its recorded arguments checked against its builder. A model from
outside the registry records its builder as a ``model.target`` (``package.module:builder``);
calling that would run whatever the file names (``os:system`` included), so a recorded target is
only rebuilt when the user names the same target in this run (``model.target=...`` on the command
line or in the config, ``target=...`` in Python). Otherwise the file is refused in one line that
says which target it asks for and how to allow it. Even then the recorded arguments must be
named parameters of that builder: nothing passes through ``**kwargs``.
"""
from __future__ import annotations

import inspect
from typing import Any

from aqsvit.errors import AqsvitError
from aqsvit.models.registry import ModelSpec, model_spec

PLAIN = (bool, int, float, str, type(None))


def allow_hint(target: str) -> str:
    """How a user names ``target`` so that a file recording it is rebuilt."""
    return f"to trust it, name it yourself: model.target={target} (command line) or target={target!r} (Python)"


def recorded_spec(record: Any, source: str, target: str | None = None) -> ModelSpec:
    """The spec of a file's model record (:meth:`ModelSpec.record` form), checked.

    ``source`` names the file in errors; ``target`` is the builder the user named in this run
    (None: only registered models are rebuilt)."""
    if not isinstance(record, dict) or not isinstance(record.get("name"), str) \
            or not isinstance(record.get("kwargs"), dict):
        raise AqsvitError(f"{source}: its model record is damaged (expected a name and its arguments)")
    kwargs = record["kwargs"]
    bad = next((k for k, v in kwargs.items() if not isinstance(k, str) or not _plain(v)), None)
    if bad is not None:
        raise AqsvitError(f"{source}: model argument {bad!r} is not plain data (numbers, text, lists)")
    recorded = record.get("target")
    if recorded is None:
        try:
            return model_spec(record["name"], **{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
        except AqsvitError as exc:
            raise AqsvitError(f"{source}: records a model aqsvit does not know ({exc})") from exc
    if recorded != target:
        named = f"; this run names {target!r}" if target else ""
        raise AqsvitError(f"{source}: records model.target {recorded!r}, and aqsvit builds a recorded target only "
                          f"when you name it{named}; {allow_hint(str(recorded))}")
    _check_arguments(str(recorded), kwargs, source)
    return ModelSpec.from_plain(record["name"], kwargs, recorded, record.get("input_shape"))


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, PLAIN)


def _check_arguments(target: str, kwargs: dict[str, Any], source: str) -> None:
    """Every recorded argument is a named parameter of the (user-named) builder."""
    from aqsvit.models.target import resolve

    try:
        params = inspect.signature(resolve(target)).parameters
    except (TypeError, ValueError):  # a builtin without a signature takes no recorded arguments
        params = {}
    named = {k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - named)
    if unknown:
        raise AqsvitError(f"{source}: records argument {unknown[0]!r}, which is not a parameter of {target}; "
                          f"allowed: {', '.join(sorted(named)) or 'none'}")
