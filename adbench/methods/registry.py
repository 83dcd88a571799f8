"""Method name -> class. A method registers itself with ``@register``; modules of this package are
imported on the first look-up, so adding a method is one module here plus one preset file."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from adbench.errors import ConfigError

_REGISTRY: dict[str, type] = {}
_ALIASES: dict[str, str] = {}
_INFRASTRUCTURE = {"base", "registry", "presets"}
T = TypeVar("T", bound=type)


def register(cls: T) -> T:
    """Class decorator: make ``cls`` available under ``cls.name`` and its ``aliases``."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ConfigError(f"two methods registered as {name!r}: {_REGISTRY[name]} and {cls}")
    _REGISTRY[name] = cls
    for alias in getattr(cls, "aliases", ()):
        _ALIASES[alias] = name
    return cls


def _import_all() -> None:
    import adbench.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _INFRASTRUCTURE and not module.name.startswith("_"):
            importlib.import_module(f"adbench.methods.{module.name}")


def method_names() -> list[str]:
    """Every registered method name, sorted."""
    _import_all()
    return sorted(_REGISTRY)


def canonical_name(name: str) -> str:
    """Resolve an alias ("sigma" -> "sigma-context"); unknown names raise ``ConfigError``."""
    _import_all()
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY) + sorted(_ALIASES))
        raise ConfigError(f"unknown method {name!r}; known methods: {known}")
    return name


def get_method_class(name: str) -> type:
    """The registered class for a method name or alias."""
    return _REGISTRY[canonical_name(name)]
