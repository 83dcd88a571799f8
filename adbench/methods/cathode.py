"""CATHODE (arXiv:2109.00546) and ANODE (arXiv:2001.04990) on one conditional-flow machinery.

- ``cathode``: per window, a conditional MAF p(x | m) trained on the sidebands (everything outside
  the SR); the template is sampled from it at SR masses the harness draws from a KDE of the SR data
  masses (``methods/cathode.toml``), equally from the epochs with the lowest validation loss.
- ``anode``: the same background flow plus a second flow trained on the SR data; the anomaly score
  is log p_data(x | m) - log p_bkg(x | m), no classifier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, MethodFailure
from adbench.methods.base import BackgroundModel, Truth, require
from adbench.methods.mass_trend import MassTrendSettings, fit_trend, trend_columns, trend_info, trended_features
from adbench.methods.registry import register
from adbench.models.flows import ConditionalFlow, FlowConfig, check_backend
from adbench.models.training import TrainConfig, split_sizes, steps_per_epoch
from adbench.preprocessing import LogitScaler
from adbench.settings import ADDED_LATER
from adbench.windows import Window, check_sideband_width

MIN_TRAIN_EVENTS = 100



def likelihood_ratio(log_numerator: np.ndarray, log_bkg: np.ndarray, method: str, numerator: str) -> np.ndarray:
    """(n,) score log p_numerator - log p_bkg of a density-ratio method; ``MethodFailure`` naming how
    many densities of each kind are not finite rather than NaN scores."""
    score = log_numerator - log_bkg
    bad = ~np.isfinite(score)
    if bad.any():
        raise MethodFailure(
            f"{method}: {int(bad.sum())} of {len(score)} scores are NaN/inf "
            f"({int((~np.isfinite(log_numerator)).sum())} non-finite {numerator} densities, "
            f"{int((~np.isfinite(log_bkg)).sum())} non-finite background densities)"
        )
    return score

@dataclass(frozen=True)
class FlowMethodSettings:
    """The ``[profile.flow]`` and ``[profile.train]`` tables of a CATHODE or ANODE preset; the defaults
    are the published setup (15 MADE blocks of 128 units; Adam 1e-4, batch 256, 100 epochs, the 10
    epochs with the lowest validation loss)."""

    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=100, batch_size=256, lr=1e-4, optimizer="adam", keep_best=10)
    )


@dataclass(frozen=True)
class SidebandFlowSettings(FlowMethodSettings):
    """The settings of a method whose background flow trains per window on the sidebands.

    Attributes:
        sideband_width: TeV on each side of the SR whose events the background flow (and the mass
            trend, if any) trains on; ``None`` (the default, CATHODE's): everything outside the SR.
            Narrow sidebands give fewer events but ask the flow to interpolate p(x | m) across the SR
            from the masses next to it only.
    """

    sideband_width: float | None = field(default=None, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        check_sideband_width(self.sideband_width)


class _FlowMethod(BackgroundModel):
    """Builds the conditional flows of a method from its settings."""

    family = "normalizing flows"
    per_window = True
    Settings = FlowMethodSettings

    #: Parts built with zuko whatever the base flow's backend (CURTAINs' transport, R-ANODE's signal flow).
    needs_zuko: ClassVar[bool] = False

    def check_ready(self) -> None:
        require("torch", "pip install 'adbench[torch]'")
        backend = self.config.flow.backend
        if backend == "zuko" or self.needs_zuko:
            require("zuko", "pip install 'adbench[torch]'")
        check_backend(backend)

    def _new_flow(self, seed: int, train: TrainConfig | None = None) -> ConditionalFlow:
        config = self.config
        return ConditionalFlow(config.flow, train or config.train, device=self.device, seed=seed)


class _SidebandFlowMethod(_FlowMethod):
    """A flow method whose background flow trains per window on the sidebands (``SidebandFlowSettings``)."""

    Settings = SidebandFlowSettings

    def _sidebands(self, events: Events, window: Window | None) -> Events:
        if window is None:
            raise MethodFailure(f"{self.name} is fitted per window; the harness passed no window")
        width = self.config.sideband_width
        sidebands = events.select(window.in_sidebands(events.m, width))
        if len(sidebands) < MIN_TRAIN_EVENTS:
            within = "" if width is None else f" within {width:g} TeV of the SR"
            raise MethodFailure(f"{window}: only {len(sidebands)} sideband events{within} to train the background flow")
        return sidebands


@dataclass(frozen=True)
class CathodeSettings(MassTrendSettings, SidebandFlowSettings):
    """CATHODE's settings: the flow's and its sidebands' (``SidebandFlowSettings``), plus ``mass_trend``
    (fitted on the sidebands, like the flow)."""


@register
class Cathode(_SidebandFlowMethod):
    """CATHODE: template sampled from a conditional flow trained on the sidebands.

    Settings: ``CathodeSettings`` (the published setup by default).
    """

    name = "cathode"
    produces = "template"
    Settings = CathodeSettings

    def check_features(self, features: Sequence[str]) -> None:
        trend_columns(self.name, self.config, features)

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> Cathode:
        sidebands = self._sidebands(events, window)
        config = self.config
        self.trend_ = fit_trend(self.name, config, sidebands)
        self.flow_ = self._new_flow(self.seed).fit(trended_features(self.trend_, sidebands), sidebands.m)
        self.n_sideband_ = len(sidebands)
        return self

    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """(n,) SR masses -> (n, d) float32 template, drawn equally from the kept epochs."""
        masses = np.asarray(masses, dtype=np.float64)
        x = self.flow_.sample(masses)
        return x if self.trend_ is None else self.trend_.inverse_transform(x, masses)

    def info(self) -> dict[str, Any]:
        if not hasattr(self, "flow_"):
            return {}
        return {"sideband_events": self.n_sideband_, **self.flow_.info(), **trend_info(self.trend_)}


#: How the data flow's training length is set: ``background`` (as many optimiser steps as the
#: background flow) or ``epochs`` (the same number of epochs).
DATA_FLOW_STEPS = ("background", "epochs")


@dataclass(frozen=True)
class AnodeSettings(MassTrendSettings, SidebandFlowSettings):
    """ANODE's settings: the family's tables for both flows, ``mass_trend`` (fitted on the sidebands,
    applied to the features of both flows), and

    Attributes:
        data_flow_steps: ``background`` (default, an adbench choice): the data flow trains for as many
            epochs as give it the background flow's number of optimiser steps (the SR holds 7 to 15
            times fewer events than the sidebands, so equal epochs leave the SR density far less
            trained than the one it is divided by); ``epochs``: the same epochs as the background flow.
    """

    data_flow_steps: str = "background"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data_flow_steps not in DATA_FLOW_STEPS:
            raise ConfigError(f"data_flow_steps must be one of {', '.join(DATA_FLOW_STEPS)}, "
                              f"got {self.data_flow_steps!r}")


def matched_epochs(train: TrainConfig, n_reference: int, n_events: int) -> int:
    """Epochs on ``n_events`` that take at least the optimiser steps of ``train.epochs`` epochs on
    ``n_reference`` events (after the validation split and ``max_events``; never fewer epochs)."""

    def steps(n: int) -> int:
        return max(1, steps_per_epoch(split_sizes(n, train)[0], train))

    return max(train.epochs, math.ceil(train.epochs * steps(n_reference) / steps(n_events)))


@register
class Anode(_SidebandFlowMethod):
    """ANODE: score = log p_data(x | m) - log p_bkg(x | m).

    The background flow is CATHODE's (sidebands); the data flow has the same settings and is trained
    on the SR data, by default for as many optimiser steps as the background flow
    (``AnodeSettings.data_flow_steps``). Both model the features after one shared ``LogitScaler``
    (fitted on all the data) and after the same mass trend, if any (fitted on the sidebands), so the
    Jacobians of both cancel in the ratio.
    """

    name = "anode"
    produces = "score"
    Settings = AnodeSettings
    shares_trainings_with = "sideband background flow on a scaler of all the data"  # R-ANODE's

    def check_features(self, features: Sequence[str]) -> None:
        trend_columns(self.name, self.config, features)

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> Anode:
        sidebands = self._sidebands(events, window)
        sr = events.select(window.in_sr(events.m))
        if len(sr) < MIN_TRAIN_EVENTS:
            raise MethodFailure(f"{window}: only {len(sr)} SR data events to train the data flow")
        self.trend_ = fit_trend(self.name, self.config, sidebands)
        scaler = LogitScaler().fit(trended_features(self.trend_, events))
        self.background_flow_ = self._new_flow(self.seed).fit(
            trended_features(self.trend_, sidebands), sidebands.m, scaler)
        train = self.config.train
        if self.config.data_flow_steps == "background":
            train = replace(train, epochs=matched_epochs(train, len(sidebands), len(sr)))
        self.data_flow_ = self._new_flow(self.seed + 7919, train).fit(trended_features(self.trend_, sr), sr.m, scaler)
        self.n_sideband_, self.n_sr_ = len(sidebands), len(sr)
        return self

    def score(self, events: Events, window: Window) -> np.ndarray:
        """(n,) log-likelihood ratio of the events (higher = more signal-like)."""
        x = trended_features(self.trend_, events)
        log_data = self.data_flow_.log_prob(x, events.m, physical=False)
        log_bkg = self.background_flow_.log_prob(x, events.m, physical=False)
        return likelihood_ratio(log_data, log_bkg, "anode", "data")

    def info(self) -> dict[str, Any]:
        if not hasattr(self, "data_flow_"):
            return {}
        return {
            "sideband_events": self.n_sideband_,
            "sr_events": self.n_sr_,
            "background_flow": self.background_flow_.info(),
            "data_flow": self.data_flow_.info(),
            **trend_info(self.trend_),
        }
