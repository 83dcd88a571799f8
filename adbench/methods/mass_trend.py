"""The ``mass_trend`` settings shared by the template methods that can take a feature's mass
dependence out before their model sees it (the kinds of ``adbench.mass_trends``). Not in the papers:
profiles that set it carry their own name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError
from adbench.mass_trends import MASS_TRENDS, MassTrend
from adbench.settings import ADDED_LATER


@dataclass(frozen=True)
class MassTrendSettings:
    """A settings base with the two ``mass_trend`` fields (both keep stored results' task hashes at
    their defaults)."""

    #: Features whose mass dependence is taken out before the feature transform (e.g. ["delta_R"]).
    mass_trend: tuple[str, ...] = field(default=(), metadata=ADDED_LATER)
    #: How: ``location-scale`` (a polynomial drift of location and scale, ``MassTrend``),
    #: ``quantile`` (conditional quantiles to a standard normal, ``MassQuantileTrend``) or
    #: ``dijet-edge`` (delta_R over its kinematic edge at the event's mjj, ``DijetEdgeTrend``;
    #: delta_R only) or ``dijet-stretch`` (delta_R's part above pi stretched so that the edge stays
    #: put, ``DijetStretchTrend``; delta_R only).
    mass_trend_kind: str = field(default="location-scale", metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        given = self.mass_trend
        names = (given,) if isinstance(given, str) else tuple(given) if isinstance(given, list | tuple) else None
        if names is None or not all(isinstance(name, str) for name in names):
            raise ConfigError(f"mass_trend must be a list of feature names, got {given!r}")
        object.__setattr__(self, "mass_trend", tuple(dict.fromkeys(names)))
        if self.mass_trend_kind not in MASS_TRENDS:
            raise ConfigError(f"unknown mass_trend_kind {self.mass_trend_kind!r}; choose one of "
                              f"{', '.join(MASS_TRENDS)}")
        allowed = MASS_TRENDS[self.mass_trend_kind].APPLIES_TO
        wrong = [name for name in self.mass_trend if allowed and name not in allowed]
        if wrong:
            raise ConfigError(f"mass_trend_kind {self.mass_trend_kind!r} applies to {', '.join(allowed)} only, "
                              f"not to {', '.join(wrong)}")
        parent = getattr(super(), "__post_init__", None)  # the other settings bases' checks
        if parent is not None:
            parent()


def trend_columns(method: str, settings: MassTrendSettings, features: Sequence[str]) -> tuple[int, ...]:
    """The column indices of ``settings.mass_trend`` among ``features``.

    Raises:
        ConfigError: naming the method and the features that do not exist.
    """
    features = list(features)
    missing = [name for name in settings.mass_trend if name not in features]
    if missing:
        raise ConfigError(f"{method}: mass_trend names {missing}, which are not among the features "
                          f"{', '.join(features)}")
    return tuple(features.index(name) for name in settings.mass_trend)


def fit_trend(method: str, settings: MassTrendSettings, events: Events) -> MassTrend | None:
    """The settings' mass trend fitted to ``events`` (a method's sidebands), or None without one."""
    columns = trend_columns(method, settings, events.features)
    return MASS_TRENDS[settings.mass_trend_kind](columns).fit(events.x, events.m) if columns else None


def trended_features(trend: MassTrend | None, events: Events) -> np.ndarray:
    """(n, d) the features a method's model sees: the events' own, or after the fitted trend."""
    return events.x if trend is None else trend.transform(events.x, events.m)


def trend_info(trend: MassTrend | None) -> dict[str, Any]:
    """The ``info()`` entries that say which trend a method used (none without one)."""
    return {} if trend is None else {"mass_trend_columns": list(trend.columns), "mass_trend_kind": trend.kind}
