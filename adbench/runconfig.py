"""What a run asks for: the methods with their presets, the windows, N_sig values and seeds, and the
checks made before any task starts. ``config_hash`` names everything that changes a task's numbers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from adbench.data.dataset import Dataset
from adbench.errors import ConfigError, DataError
from adbench.evaluate import ClassifierConfig
from adbench.methods.base import BackgroundModel
from adbench.methods.presets import Preset, load_preset
from adbench.methods.registry import canonical_name, get_method_class
from adbench.metrics import MIN_BOOTSTRAP
from adbench.settings import hashed_settings
from adbench.windows import Window

#: Template events per SR data event, the same for every method unless the run says otherwise.
DEFAULT_TEMPLATE_SIZE = 4.0


@dataclass(frozen=True, eq=False)
class MethodSpec:
    """A method as the user asked for it (``name`` or ``name:profile``): its preset and the
    classifier of that profile (``paper`` profiles use the published ensemble)."""

    name: str
    preset: Preset
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    @classmethod
    def parse(cls, text: str, default_profile: str) -> MethodSpec:
        name, _, profile = text.strip().partition(":")
        canonical = canonical_name(name)
        preset = load_preset(canonical, profile or default_profile)
        return cls(canonical, preset, ClassifierConfig.profile(preset.profile))

    @property
    def cls(self) -> type[BackgroundModel]:
        return get_method_class(self.name)


@dataclass
class RunConfig:
    """What to run and where the records go.

    Attributes:
        classifier: when set, every method uses this classifier instead of its profile's.
        template_size: template events per SR data event for every template method (the idealized
            template takes at most this many held-out events).
        bootstrap: replicas of the test set for the statistical errors (0: none; else at least
            ``MIN_BOOTSTRAP``, below which ``adbench.metrics.bootstrap_errors`` gives NaN).
    """

    methods: list[MethodSpec]
    windows: list[Window]
    n_sigs: list[int]
    seeds: list[int]
    output: Path
    device: str = "cpu"
    classifier: ClassifierConfig | None = None
    template_size: float = DEFAULT_TEMPLATE_SIZE
    min_bkg: int = 25
    bootstrap: int = 200
    command: str = ""

    def __post_init__(self) -> None:
        if not self.template_size > 0:
            raise ConfigError(f"the template size must be positive, got {self.template_size}")
        if self.min_bkg < 1:
            raise ConfigError(f"min_bkg must be at least 1 background event (max SIC is undefined at FPR 0), "
                              f"got {self.min_bkg}")
        if self.bootstrap != 0 and self.bootstrap < MIN_BOOTSTRAP:
            raise ConfigError(f"bootstrap must be 0 (no statistical errors) or at least {MIN_BOOTSTRAP} replicas, "
                              f"got {self.bootstrap}")

    def classifier_for(self, spec: MethodSpec) -> ClassifierConfig:
        return self.classifier or spec.classifier


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        skipped: tasks finished by an earlier run.
        left: tasks not started because ``--max-time`` would have been exceeded (rerun to continue).
        total: window tasks of the whole scan, those finished earlier included.
    """

    finished: int = 0
    failed: int = 0
    skipped: int = 0
    output: Path | None = None
    left: int = 0
    total: int = 0


def config_hash(dataset: Dataset, spec: MethodSpec, config: RunConfig) -> str:
    """Hash of everything that changes a task's numbers (not the seed, N_sig or window: those are
    part of the record key)."""
    payload = {
        "dataset": dataset.name,
        "dataset_sizes": dataset.sizes(),
        "holdout": asdict(dataset.holdout),
        "thinned_span": dataset.thinned_span(config.windows),
        "features": list(dataset.features),
        "method": spec.name,
        "profile": spec.preset.profile,
        "settings": hashed_settings(make_model(spec, "cpu", 0, config.classifier_for(spec)).config),
        "template": asdict(spec.preset.template),
        "template_size": config.template_size,
        "classifier": asdict(config.classifier_for(spec)),
        "min_bkg": config.min_bkg,
    }
    if dataset.version:  # absent for files and for the first synthetic generators: their hashes stand
        payload["dataset_version"] = dataset.version
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_windows(dataset: Dataset, windows: list[Window]) -> None:
    """Every window must lie inside the data's mass range, hold data events and be covered by a
    held-out background sample."""
    m = dataset.events.m
    low, high = float(m.min()), float(m.max())
    for window in windows:
        if window.high <= low or window.low >= high:
            raise ConfigError(
                f"{window} lies outside the mjj range of dataset {dataset.name!r} ({low:.2f}-{high:.2f} TeV)"
            )
        if not window.in_sr(m).any():
            raise DataError(f"{window} holds no events of dataset {dataset.name!r}")
        dataset.check_covered(window)


def check_methods(methods: list[MethodSpec], device: str = "cpu", features: Sequence[str] | None = None) -> None:
    """Before any data is loaded: no method is asked for twice with the same profile, every preset's
    settings are accepted, and every configuration can run here (``check_ready``); with the dataset's
    ``features``, also that every feature a setting names exists (``check_features``)."""
    twice = repeated_method(methods)
    if twice is not None:
        raise ConfigError(f"method {twice.name!r} with profile {twice.preset.profile!r} is listed twice")
    for spec in methods:
        model = make_model(spec, device, 0, spec.classifier)
        model.check_ready()
        if features is not None:
            model.check_features(features)


def repeated_method(methods: list[MethodSpec]) -> MethodSpec | None:
    """The first spec whose (method, profile) an earlier one already has, else None."""
    seen: set[tuple[str, str]] = set()
    for spec in methods:
        ident = (spec.name, spec.preset.profile)
        if ident in seen:
            return spec
        seen.add(ident)
    return None


def make_model(spec: MethodSpec, device: str, seed: int, classifier: ClassifierConfig) -> BackgroundModel:
    """The method of ``spec`` with its preset's settings (``ConfigError`` naming the preset when they
    are wrong)."""
    cls = spec.cls
    extra = {"classifier": classifier} if cls.uses_classifier else {}
    model = cls(device=device, seed=seed, settings=spec.preset.params, **extra)
    try:
        model.config  # noqa: B018 - validates the settings now, with the preset named
    except ConfigError as error:
        raise ConfigError(f"{spec.preset.source or spec.name}: {error}") from None
    return model
