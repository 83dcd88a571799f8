"""SIGMA and its flow-matching baselines (arXiv:2410.20537), on ``adbench.models.flow_matching``.

- ``vdata``: one CFM trained on all data, evaluated directly at the SR masses (it learns the signal).
- ``vcr``: a CFM trained per window on the sidebands only, evaluated at the SR masses.
- ``sigma-linear``: the all-data CFM with the velocity mixed between the anchors m1 and m2 of the
  window at every ODE step, ``xi v(x | t, m1) + (1 - xi) v(x | t, m2)``.
- ``sigma-context`` (alias ``sigma``): the all-data CFM with the context features of every layer
  mixed between the anchors.

``vdata``, ``sigma-linear`` and ``sigma-context`` train the same model: with equal network and
training settings their ``fit_signature`` is equal and the harness trains one CFM per dataset and
seed for all three; their per-window cost is sampling only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, MethodFailure
from adbench.methods.base import BackgroundModel, Truth, require
from adbench.methods.mass_trend import MassTrendSettings, trend_columns
from adbench.methods.registry import register
from adbench.models.flow_matching.configs import NetworkConfig, SelectionConfig, SolverConfig
from adbench.models.training import TrainConfig
from adbench.preprocessing import SCALERS
from adbench.settings import ADDED_LATER, settings_dict
from adbench.windows import Window, check_anchor_offset, check_sideband_width

PREPROCESSING = tuple(SCALERS)


@dataclass(frozen=True)
class FlowMatchingSettings(MassTrendSettings):
    """The settings of the flow-matching methods: ``[profile.network]``, ``[profile.train]``,
    ``[profile.selection]`` (with ``[profile.selection.solver]``) and ``[profile.solver]`` (sampling)
    tables of a preset, and ``mass_trend`` (``MassTrendSettings``; the shared all-data methods fit
    the trend on all data, as their model, and SIGMA's templates read a fitted one between the anchors,
    the dijet edge at the SR masses)."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    #: The feature transform: ``logit`` (the paper's) or ``quantile`` (see adbench.preprocessing).
    preprocessing: str = "logit"
    #: SIGMA's anchors at this distance from the SR edges, as a fraction of the SR width (None: the
    #: window's, 0.25: the published 3.2 / 3.8 TeV for 3.3-3.7). Sampling only: the fit is shared.
    anchor_offset: float | None = field(default=None, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preprocessing not in PREPROCESSING:
            raise ConfigError(f"unknown preprocessing {self.preprocessing!r}; choose one of {', '.join(PREPROCESSING)}")
        if self.anchor_offset is not None:
            check_anchor_offset(self.anchor_offset)


@dataclass(frozen=True)
class VCRSettings(FlowMatchingSettings):
    """v_CR's settings: those of the family plus the sideband width.

    Attributes:
        sideband_width: sideband width on each side in TeV; None takes all data outside the SR.
    """

    sideband_width: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sideband_width(self.sideband_width)


class _CFMMethod(BackgroundModel):
    """Training and sampling shared by the flow-matching methods."""

    family = "flow matching"
    Settings = FlowMatchingSettings
    #: How the velocity is evaluated at the SR masses: direct, linear or context.
    mode = "direct"

    def check_ready(self) -> None:
        for module in ("torch", "zuko"):
            require(module, "pip install 'adbench[torch]'")
        config = self.config
        if self.mode == "direct" and config.anchor_offset is not None:
            raise ConfigError(f"{self.name} samples at the SR masses: anchor_offset applies to sigma-linear and "
                              "sigma-context only")
        if config.solver.method != "dopri5":
            require("torchdiffeq", f"pip install torchdiffeq (the {config.solver.method} ODE solver)")
        if config.selection.metric == "nll":
            require("torchdiffeq", "pip install torchdiffeq (the log-likelihood for checkpoint selection)")

    def check_features(self, features: Sequence[str]) -> None:
        trend_columns(self.name, self.config, features)

    def _train(self, events: Events):
        from adbench.models.flow_matching.model import FlowMatcher

        config = self.config
        columns = trend_columns(self.name, config, events.features)
        model = FlowMatcher(config.network, config.train, self.device, self.seed, config.selection,
                            config.preprocessing, columns, config.mass_trend_kind)
        return model.fit(events.x, events.m)

    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """(n,) SR masses in TeV -> (n, d) float32 template in physical features."""
        model = getattr(self, "model_", None)
        if model is None:
            raise MethodFailure(f"{self.name}: sample() before fit()")
        masses = np.asarray(masses, dtype=np.float64)
        anchors, xi = None, None
        if self.mode != "direct":
            if self.config.anchor_offset is not None:
                window = dataclasses.replace(window, anchor_offset=self.config.anchor_offset)
            anchors = window.anchors
            low, high = model.mass_range_
            if anchors[0] < low or anchors[1] > high:
                raise MethodFailure(
                    f"{window}: interpolation anchors {anchors[0]:.3g}/{anchors[1]:.3g} TeV lie outside the "
                    f"training mass range {low:.3g}-{high:.3g} TeV"
                )
            xi = window.interpolation_weight(masses)
        # The initial noise depends on the seed and the window only: the three all-data methods
        # integrate the same x0 in a window (common random numbers for their comparison).
        entropy = [self.seed, round(window.low * 1000), round(window.high * 1000)]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        drawn = model.sample(masses, self.config.solver, self.mode, anchors, xi, seed)
        self.sample_info_ = drawn.facts()
        return drawn.x

    def info(self) -> dict[str, Any]:
        model = getattr(self, "model_", None)
        facts: dict[str, Any] = {"velocity_mode": self.mode}
        if model is not None:
            facts.update(model.summary())
        facts.update(getattr(self, "sample_info_", {}))
        return facts


class _SharedCFM(_CFMMethod):
    """A CFM trained once on all data (signal included) and reused for every window."""

    per_window = False

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> _SharedCFM:
        self.model_ = self._train(events)
        return self

    def fit_signature(self) -> str:
        """The network and training settings, seed and device (the solver is excluded: it only
        changes sampling). Computed from the settings, whichever preset file they came from."""
        config = self.config
        return json.dumps(
            {"model": "cfm on all data", "network": settings_dict(config.network),
             "train": settings_dict(config.train), "selection": settings_dict(config.selection),
             "preprocessing": config.preprocessing, "mass_trend": list(config.mass_trend),
             "mass_trend_kind": config.mass_trend_kind,
             "seed": self.seed, "device": self.device},
            sort_keys=True,
        )

    def share_fit_from(self, other: BackgroundModel) -> _SharedCFM:
        if not isinstance(other, _SharedCFM) or getattr(other, "model_", None) is None:
            raise MethodFailure(f"{self.name} can only share a fitted all-data CFM, got {other.name}")
        if other.fit_signature() != self.fit_signature():
            raise MethodFailure(f"{self.name} and {other.name} have different training settings")
        self.model_ = other.model_
        return self


@register
class VData(_SharedCFM):
    """v_data: the all-data CFM evaluated at the SR masses (learns the signal: a lower bound)."""

    name = "vdata"
    mode = "direct"


@register
class SigmaLinear(_SharedCFM):
    """SIGMA with linear velocity interpolation between the window's anchors."""

    name = "sigma-linear"
    mode = "linear"


@register
class SigmaContext(_SharedCFM):
    """SIGMA with context-feature interpolation between the window's anchors."""

    name = "sigma-context"
    aliases = ("sigma",)
    mode = "context"


@register
class VCR(_CFMMethod):
    """v_CR: a CFM retrained per window on the sidebands, evaluated at the SR masses."""

    name = "vcr"
    per_window = True
    mode = "direct"
    Settings = VCRSettings

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> VCR:
        if window is None:
            raise MethodFailure("vcr is trained per window; the harness passed no window")
        sidebands = events.select(window.in_sidebands(events.m, self.config.sideband_width))
        if len(sidebands) < 100:
            raise MethodFailure(f"{window}: only {len(sidebands)} sideband events to train v_CR")
        if not (sidebands.m < window.low).any() or not (sidebands.m >= window.high).any():
            raise MethodFailure(f"{window}: v_CR needs sideband events on both sides of the SR")
        self.model_ = self._train(sidebands)
        return self
