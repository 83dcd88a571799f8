"""Settings dataclasses filled from (nested) mappings: a preset's TOML tables or a user's dict.

Every method declares its settings once, as a frozen dataclass whose fields may themselves be
dataclasses (``network``, ``train``, ``solver``...). ``build_settings`` turns a nested mapping into
it, naming the unknown keys and their place when there are any.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from adbench.errors import ConfigError

T = TypeVar("T")


def build_settings(cls: type[T], given: T | Mapping[str, Any] | None, where: str = "") -> T:
    """An instance of the settings dataclass ``cls`` from ``given``.

    Args:
        given: an instance (returned as is), a mapping of field names to values (a nested mapping for
            a field that is itself a dataclass), or None for the defaults.
        where: names the source in errors ("methods/vcr.toml [fast]").

    Raises:
        ConfigError: naming unknown or invalid keys.
    """
    label = where or cls.__name__
    if given is None:
        return cls()
    if isinstance(given, cls):
        return given
    if not isinstance(given, Mapping):
        raise ConfigError(f"{label}: expected a table of settings, got {type(given).__name__} {given!r}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ConfigError(f"{label}: unknown settings {unknown}; known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in given.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and (isinstance(value, Mapping) or value is None):
            values[name] = build_settings(hint, value, f"{label}.{name}")
        else:
            values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{label}: {error}") from None


#: Field metadata of a setting added after results were stored: while it holds its default (which
#: reproduces the earlier behaviour) ``hashed_settings`` leaves it out, so the stored results of the
#: unchanged method keep their task hash and a rerun does not repeat them.
ADDED_LATER = {"added_later": True}


def settings_dict(settings: Any) -> dict[str, Any]:
    """The nested dict of a settings dataclass (for records and signatures)."""
    return dataclasses.asdict(settings)


def hashed_settings(settings: Any) -> dict[str, Any]:
    """``settings_dict`` without the ``ADDED_LATER`` fields at their defaults (for task hashes)."""
    full = dataclasses.asdict(settings)
    out = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.metadata.get("added_later") and value == _default(field):
            continue
        out[field.name] = hashed_settings(value) if dataclasses.is_dataclass(value) else full[field.name]
    return out


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default
