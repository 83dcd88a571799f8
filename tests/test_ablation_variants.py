"""The flow-matching ablation's variants (tests/benchmarks/ablation_sigma.py) are valid settings.

A variant is a profile plus overrides written by hand; a misspelt key or a table in the wrong place
would otherwise surface only after the first long training of a benchmark run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from adbench.methods.registry import get_method_class

SCRIPT = Path(__file__).parent / "benchmarks" / "ablation_sigma.py"
FLOW_MATCHING = ("vdata", "sigma-linear", "sigma-context", "vcr")


def _ablation_module():
    spec = importlib.util.spec_from_file_location("ablation_sigma", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ABLATION = _ablation_module()


@pytest.mark.parametrize("variant", sorted(ABLATION.VARIANTS))
def test_every_ablation_variant_builds_the_settings_of_every_flow_matching_method(variant: str) -> None:
    for spec in ABLATION.specs(variant, list(FLOW_MATCHING), epochs=None):
        method = get_method_class(spec.name)(settings=spec.preset.params)
        config = method.config  # raises ConfigError naming a wrong key
        assert spec.preset.profile == variant
        _, overrides, _ = ABLATION.VARIANTS[variant]
        _assert_holds(config, overrides, f"{variant} {spec.name}")


def _assert_holds(settings: object, overrides: dict, where: str) -> None:
    """Every value of the (nested) ``overrides`` is the settings' value (lists as the tuples kept)."""
    for key, value in overrides.items():
        held = getattr(settings, key)
        if isinstance(value, dict):
            _assert_holds(held, value, f"{where}.{key}")
        else:
            assert held == (tuple(value) if isinstance(value, list) else value), f"{where}.{key}"


def test_the_epochs_option_overrides_every_variant() -> None:
    (spec, *_) = ABLATION.specs("cpu-e160", ["sigma-context"], epochs=3)
    assert get_method_class(spec.name)(settings=spec.preset.params).config.train.epochs == 3
