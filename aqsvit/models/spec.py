"""What rebuilds a model: :class:`ModelSpec`. Below both the registry and ``model.target``
builders, which each make one (so neither imports the other for it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model: the registered name and the builder's full keyword arguments.

    A model from outside the registry (``model.target=package.module:builder``) also records its
    ``target`` and the ``shape`` of one input; its ``name`` is the builder's name."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    shape: tuple[int, ...] | None = None

    def plain_kwargs(self) -> dict[str, Any]:
        """The kwargs with tuples as lists: storable as JSON and under ``weights_only`` loading."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.kwargs.items()}

    @classmethod
    def from_plain(cls, name: str, kwargs: dict[str, Any], target: str | None = None,
                   shape: list[int] | None = None) -> ModelSpec:
        """Inverse of :meth:`plain_kwargs` (lists back to the builders' tuples)."""
        return cls(name, {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}, target,
                   tuple(shape) if shape is not None else None)

    def record(self) -> dict[str, Any]:
        """Plain data for files (checkpoint, assignment, packed model); target keys only when set,
        so a registered model's files stay as they were. Read back only through
        :func:`aqsvit.models.records.recorded_spec`, which refuses a target the user did not name."""
        plain: dict[str, Any] = {"name": self.name, "kwargs": self.plain_kwargs()}
        if self.target is not None:
            plain.update(target=self.target, input_shape=list(self.input_shape))
        return plain

    def describe(self) -> str:
        """One line naming the model (the study fingerprint compares it)."""
        text = f"{self.name} {sorted(self.kwargs.items())}"
        return text + (f" target {self.target} input {list(self.input_shape)}" if self.target else "")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The ``(channels, height, width)`` the model expects; ``(frames, channels, height, width)``
        for event models (registered with a ``frames`` argument)."""
        if self.shape is not None:
            return self.shape
        size = int(self.kwargs["img_size"])
        image = (int(self.kwargs["in_channels"]), size, size)
        return (int(self.kwargs["frames"]), *image) if "frames" in self.kwargs else image
