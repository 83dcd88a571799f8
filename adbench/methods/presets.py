"""Method presets: one TOML file per method name in ``methods/``, with ``fast`` and ``paper`` profiles.

File layout::

    inherits = "_flow-matching"   # optional: start from methods/_flow-matching.toml, override below
    family = "flow matching"      # optional, informational
    [template]                    # how the harness draws the template's SR masses
    mass_sampler = "histogram"    # histogram | kde | dijet
    [fast.network]                # the method's Settings dataclass, one table per nested dataclass
    width = 96
    [fast.train]
    epochs = 16
    [paper.train]
    epochs = 2000
    [paper-gpu.train]             # any further table is an extra profile (``--profile paper-gpu``)
    batch_size = 16384
    [fast-qtrend]                 # a profile that starts from another one and changes a few values
    extends = "fast"
    mass_trend = ["delta_R"]
    [variants]                    # profiles that change the method itself, not only its sizes, carry
    fast = "radot-projection"     # their own name in every table of a report; a name starting with
    paper-ema = "+ema"            # "+" is appended to the method's ("sigma-context+ema")

Files whose name starts with ``_`` are shared bases, not methods. A file that inherits is merged
into its base table by table (its values win), so the methods of one family hold no copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adbench.errors import ConfigError
from adbench.resources import load_toml, resource_dir

PROFILES = ("fast", "paper")
#: Top-level keys of a preset file that are not profiles.
RESERVED_KEYS = ("family", "template", "description", "inherits", "variants")
MASS_SAMPLERS = ("histogram", "kde", "dijet")


@dataclass(frozen=True)
class TemplateSpec:
    """How the SR masses of a template are drawn (the template's size is a run setting)."""

    mass_sampler: str = "histogram"
    #: Options of the mass sampler (e.g. the sideband width of the dijet fit).
    sampler_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mass_sampler not in MASS_SAMPLERS:
            raise ConfigError(
                f"unknown mass_sampler {self.mass_sampler!r}; choose one of {', '.join(MASS_SAMPLERS)}"
            )


@dataclass(frozen=True)
class Preset:
    """One profile of a method's preset: the settings table handed to the method and the template
    spec. ``source`` names the file(s) it came from."""

    method: str
    profile: str
    params: dict[str, Any]
    template: TemplateSpec = field(default_factory=TemplateSpec)
    source: str = ""
    #: The name results of this profile carry when it is not the published method ("" when it is).
    variant: str = ""
    #: The profiles this one ``extends``, nearest first (() for one that extends none).
    lineage: tuple[str, ...] = ()


def merge_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``, recursively for nested tables."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = value
    return out


def read_preset_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The parsed table of a preset file with its ``inherits`` chain resolved."""
    if path in seen:
        raise ConfigError(f"{path}: 'inherits' forms a cycle ({' -> '.join(p.name for p in (*seen, path))})")
    table = load_toml(path)
    parent = table.pop("inherits", None)
    if parent is None:
        return table
    parent_path = path.parent / f"{parent}.toml"
    if not parent_path.is_file():
        raise ConfigError(f"{path}: inherits {parent!r}, but {parent_path} does not exist")
    return merge_tables(read_preset_file(parent_path, (*seen, path)), table)


def load_preset(method: str, profile: str = "fast") -> Preset:
    """The preset of a (canonical) method name for a profile. A method without a preset file runs
    with its class defaults and the default template spec."""
    path = resource_dir("methods") / f"{method}.toml"
    if not path.is_file():
        if profile not in PROFILES:
            raise ConfigError(f"method {method!r} has no profile {profile!r}; choose one of {', '.join(PROFILES)}")
        return Preset(method, profile, {}, TemplateSpec())
    table = read_preset_file(path)
    profiles = available_profiles(table)
    if profile not in profiles:
        raise ConfigError(
            f"method {method!r} has no profile {profile!r} ({path.name}); choose one of {', '.join(profiles)}"
        )
    template = dict(table.get("template", {}))
    try:
        spec = TemplateSpec(
            mass_sampler=template.pop("mass_sampler", "histogram"),
            sampler_options=dict(template.pop("options", {})),
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: bad [template] table ({error})") from None
    if template:
        raise ConfigError(f"{path}: unknown keys in [template]: {sorted(template)} (the template size is "
                          "a run setting now: --template-size)")
    variant = variant_name(table, method, profile)
    lineage = profile_lineage(table, profile, path)
    params = profile_params(table, profile, path, lineage)
    return Preset(method, profile, params, spec, f"{path.name} [{profile}]", variant, lineage)


def variant_name(table: dict[str, Any], method: str, profile: str) -> str:
    """The name a profile's results carry when it is not the published method ("" when it is): its
    ``[variants]`` entry, with a leading ``+`` read as appended to the method's name."""
    variant = str(table.get("variants", {}).get(profile, ""))
    return method + variant if variant.startswith("+") else variant


def method_profiles(method: str) -> dict[str, str]:
    """The profiles a (canonical) method name can run with, each with the variant name its results
    carry ("" for the published method); the built-in ``PROFILES`` for a method without a preset."""
    path = resource_dir("methods") / f"{method}.toml"
    if not path.is_file():
        return dict.fromkeys(PROFILES, "")
    table = read_preset_file(path)
    return {name: variant_name(table, method, name) for name in available_profiles(table)}


def profile_lineage(table: dict[str, Any], profile: str, path: Path) -> tuple[str, ...]:
    """The profiles ``profile`` extends (``extends = "<profile>"``, followed), nearest first."""
    chain = [profile]
    parent = table[profile].get("extends")
    while parent is not None:
        if parent in chain:
            raise ConfigError(f"{path}: 'extends' forms a cycle ({' -> '.join((*chain, parent))})")
        if parent not in available_profiles(table):
            raise ConfigError(f"{path}: profile {chain[-1]!r} extends {parent!r}, which is not a profile of the file")
        chain.append(parent)
        parent = table[parent].get("extends")
    return tuple(chain[1:])


def profile_params(
    table: dict[str, Any], profile: str, path: Path, lineage: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """A profile's settings table with its ``extends`` resolved: each profile of its lineage (from
    ``profile_lineage`` when not given) updated by the next one's values, the profile's own last."""
    if lineage is None:
        lineage = profile_lineage(table, profile, path)
    params: dict[str, Any] = {}
    for name in reversed((profile, *lineage)):
        own = dict(table[name])
        own.pop("extends", None)
        params = merge_tables(params, own)
    return params


def available_profiles(table: dict[str, Any]) -> list[str]:
    """The profile names of a parsed preset file: every table except the reserved ones."""
    return [key for key, value in table.items() if isinstance(value, dict) and key not in RESERVED_KEYS]
