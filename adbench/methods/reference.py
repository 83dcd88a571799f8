"""The two reference methods that validate the harness: ``idealized`` and ``supervised``."""

from __future__ import annotations

from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import MethodFailure
from adbench.evaluate import ClassifierConfig, ClassifierEnsemble
from adbench.methods.base import BackgroundModel, Truth
from adbench.methods.registry import register
from adbench.windows import Window


def _require_truth(name: str, truth: Truth | None) -> Truth:
    if truth is None:
        raise MethodFailure(f"{name} needs the held-out truth samples; the harness did not pass them")
    return truth


@register
class Idealized(BackgroundModel):
    """Template = true background from a held-out sample in the SR: the best any template can do."""

    name = "idealized"
    family = "true background (reference)"
    per_window = True
    needs_truth = True

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> Idealized:
        truth = _require_truth(self.name, truth)
        if window is None:
            raise MethodFailure("idealized is fitted per window")
        self.background_ = truth.background.in_range(window.low, window.high)
        if len(self.background_) == 0:
            raise MethodFailure(f"{window}: no held-out background for the idealized template")
        return self

    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """Held-out background events in the SR, up to ``len(masses)`` of them (all if fewer)."""
        rng = np.random.default_rng(self.seed)
        n = min(len(masses), len(self.background_))
        self.n_returned_ = n
        return self.background_.x[rng.permutation(len(self.background_))[:n]]

    def info(self) -> dict[str, Any]:
        return {"template_events": int(getattr(self, "n_returned_", 0))}


@register
class Supervised(BackgroundModel):
    """Fully supervised: the shared classifier trained on truth-labelled signal versus background."""

    name = "supervised"
    family = "truth labels (reference)"
    per_window = True
    produces = "score"
    needs_truth = True
    #: The harness hands this method the run's classifier settings.
    uses_classifier = True

    def __init__(
        self, *, device: str = "cpu", seed: int = 0, settings: Any = None, classifier: ClassifierConfig | None = None
    ) -> None:
        super().__init__(device=device, seed=seed, settings=settings)
        self.classifier = classifier

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> Supervised:
        truth = _require_truth(self.name, truth)
        if window is None:
            raise MethodFailure("supervised is fitted per window")
        signal = truth.signal.in_range(window.low, window.high)
        background = truth.background.in_range(window.low, window.high)
        if len(signal) < 10 or len(background) < 10:
            raise MethodFailure(
                f"{window}: too few held-out events for supervised training "
                f"({len(signal)} signal, {len(background)} background)"
            )
        config = self.classifier or ClassifierConfig()
        self.ensemble_ = ClassifierEnsemble(config, self.seed).fit(signal.x, background.x)
        return self

    def score(self, events: Events, window: Window) -> np.ndarray:
        return self.ensemble_.predict(events.x)
