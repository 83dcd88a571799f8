"""Method presets: one TOML file per method name in ``methods/``, with ``fast`` and ``paper`` profiles.

File layout::

    family = "flow matching"      # optional, informational
    [template]                    # how the harness builds the template (shared by the profiles)
    mass_sampler = "histogram"    # histogram | kde | dijet
    oversampling = 3.0            # template size = oversampling x N_SR
    [fast]                        # keyword arguments of the method class
    epochs = 20
    [paper]
    epochs = 2000
    [paper-gpu]                   # any further table is an extra profile (``--profile paper-gpu``)
    batch_size = 4096
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adbench.errors import ConfigError
from adbench.resources import load_toml, resource_dir

PROFILES = ("fast", "paper")
#: Top-level keys of a preset file that are not profiles.
RESERVED_KEYS = ("family", "template", "description")
MASS_SAMPLERS = ("histogram", "kde", "dijet")


@dataclass(frozen=True)
class TemplateSpec:
    """How SR masses for a template are drawn and how many (``oversampling`` x N_SR)."""

    mass_sampler: str = "histogram"
    oversampling: float = 3.0
    #: Options of the mass sampler (e.g. the sideband width of the dijet fit).
    sampler_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mass_sampler not in MASS_SAMPLERS:
            raise ConfigError(
                f"unknown mass_sampler {self.mass_sampler!r}; choose one of {', '.join(MASS_SAMPLERS)}"
            )
        if not self.oversampling > 0:
            raise ConfigError(f"oversampling must be positive, got {self.oversampling}")


@dataclass(frozen=True)
class Preset:
    method: str
    profile: str
    params: dict[str, Any]
    template: TemplateSpec


def load_preset(method: str, profile: str = "fast") -> Preset:
    """The preset of a (canonical) method name for a profile. A method without a preset file runs
    with its class defaults and the default template spec."""
    path = resource_dir("methods") / f"{method}.toml"
    if not path.is_file():
        if profile not in PROFILES:
            raise ConfigError(
                f"method {method!r} has no profile {profile!r}; choose one of {', '.join(PROFILES)}"
            )
        return Preset(method, profile, {}, TemplateSpec())
    table = load_toml(path)
    profiles = available_profiles(table)
    if profile not in profiles or not isinstance(table[profile], dict):
        raise ConfigError(
            f"method {method!r} has no profile {profile!r} ({path.name}); "
            f"choose one of {', '.join(profiles)}"
        )
    template = table.get("template", {})
    try:
        spec = TemplateSpec(
            mass_sampler=template.get("mass_sampler", "histogram"),
            oversampling=float(template.get("oversampling", 3.0)),
            sampler_options=dict(template.get("options", {})),
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: bad [template] table ({error})") from None
    return Preset(method, profile, dict(table[profile]), spec)


def available_profiles(table: dict[str, Any]) -> list[str]:
    """The profile names of a parsed preset file: every table except the reserved ones."""
    return [key for key, value in table.items() if isinstance(value, dict) and key not in RESERVED_KEYS]
