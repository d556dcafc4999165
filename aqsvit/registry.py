"""Named plug-ins of one kind, in the style of timm's ``register_model``: every config group that
selects code (``sampler=``, ``pruner=``, ``dataset=``, ``pruner.definition=``) looks its name up in
one :class:`Registry`, so the "allowed" list of an error, the resume fingerprint and the CLI all
read the same names. A plug-in from outside the package registers on import (``plugins=[my.module]``).

Each registry says what it holds (``kind``, checked by ``accepts`` at registration) and, through
:meth:`Registry.built`, what an entry's build must produce: a wrong plug-in is refused in one line
naming it, at registration where possible, else when it is built.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")
B = TypeVar("B")

from aqsvit.errors import AqsvitError, invalid


def is_settings_class(obj: object) -> bool:
    """A settings dataclass with a ``build`` method (the sampler and pruner plug-ins)."""
    return isinstance(obj, type) and dataclasses.is_dataclass(obj) and callable(getattr(obj, "build", None))


def plugin_name(obj: object) -> str:
    """``module.qualname`` of a plug-in (of its type, for an object without a name)."""
    named = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{named.__module__}.{named.__qualname__}"


class Registry(Generic[T]):
    """Name -> object (a builder or a settings dataclass), plus free-form metadata per name.

    Example:
        .. code-block:: python

            from dataclasses import dataclass
            from aqsvit.registry import Registry

            TOOLS = Registry("tool.name")

            @TOOLS.register("mine", stepwise=False)
            @dataclass
            class Mine:
                depth: int = 2

            print(TOOLS["mine"], TOOLS.meta("mine"))  # TOOLS["nope"]: "tool.name: got 'nope'; allowed: mine"
    """

    def __init__(self, field: str, kind: str = "a callable", accepts: Callable[[object], bool] = callable) -> None:
        self.field = field  # the config field that selects an entry, named in errors
        self.kind, self._accepts = kind, accepts  # what an entry must be
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator registering its argument as ``name``; registering a name twice is an error
        (two plug-ins claiming one name would make ``name=`` ambiguous)."""
        def add(obj: T) -> T:
            if not self._accepts(obj):
                raise AqsvitError(f"{self.field}: plug-in {name!r} ({plugin_name(obj)}) is not {self.kind}")
            if name in self._items and self._items[name] is not obj:
                raise AqsvitError(f"{self.field}: {name!r} is registered twice")
            self._items[name], self._meta[name] = obj, meta
            return obj
        return add

    def __getitem__(self, name: object) -> T:
        if not isinstance(name, str) or name not in self._items:
            raise invalid(self.field, name, self.names())
        return self._items[name]

    def built(self, name: str, obj: B, kind: str, accepts: Callable[[object], bool]) -> B:
        """``obj``, what entry ``name`` built, once ``accepts`` it; else the one-line error naming
        the plug-in and what it should have built (``kind``)."""
        if not accepts(obj):
            raise AqsvitError(f"{self.field}: plug-in {name!r} ({plugin_name(self[name])}) built "
                              f"{type(obj).__name__}, not {kind}")
        return obj

    def meta(self, name: str) -> dict[str, Any]:
        self[name]
        return self._meta[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def build_options(registry: Registry[type], name: str, options: Mapping[str, Any], group: str) -> Any:
    """The registered settings dataclass ``name`` made from ``options`` (a config group's keys
    besides ``name``) and validated: an unknown key names the allowed ones."""
    cls = registry[name]
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in fields:
            raise AqsvitError(f"{group}.{key}: not an option of {group} {name!r}; allowed: "
                              f"{', '.join(fields) or 'none'}")
    settings = cls(**options)
    validate = getattr(settings, "validate", None)
    if validate is not None:
        validate()
    return settings


def describe(name: str, settings: Any) -> str:
    """``beam width 3``: a plug-in's name and options, for the resume fingerprint (its own
    ``describe()`` when it has one)."""
    if hasattr(settings, "describe"):
        return settings.describe()
    return " ".join([name, *(f"{f.name} {getattr(settings, f.name)}" for f in dataclasses.fields(settings))])
