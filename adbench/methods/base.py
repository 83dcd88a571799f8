"""The contract between the harness and a background-template method."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from adbench.data.dataset import Truth
from adbench.data.events import Events
from adbench.errors import ConfigError
from adbench.settings import build_settings
from adbench.windows import Window

__all__ = ["BackgroundModel", "NoSettings", "Truth", "require"]


@dataclass(frozen=True)
class NoSettings:
    """The settings of a method that has none."""


class BackgroundModel:
    """Base class of every method. Subclasses set the class attributes and implement ``fit`` and
    either ``sample`` (``produces = "template"``) or ``score`` (``produces = "score"``).

    Conventions (scikit-learn's): ``__init__`` only stores its keyword arguments (``device``,
    ``seed`` and ``settings``); learned state ends in ``_``; ``fit`` returns ``self``. A method's
    settings are one frozen dataclass, ``Settings``, which a preset profile fills (nested tables for
    nested dataclasses); ``config`` is that dataclass for this instance.

    The harness calls, for a method trained once (``per_window = False``)::

        model.fit(data, None)                     # timed once as the shared fit
        for window in windows:
            model.sample(masses, window)          # timed per window

    and for a per-window method ``model.fit(data, window)`` before each window's ``sample``.
    ``data`` is the observed data over the full mass range (background plus injected signal; its
    ``label`` must not be read by a background-template method).
    """

    name: ClassVar[str]
    #: The generative model in words, for the timing table ("flow matching", "optimal transport").
    family: ClassVar[str] = ""
    per_window: ClassVar[bool] = True
    produces: ClassVar[Literal["template", "score"]] = "template"
    needs_truth: ClassVar[bool] = False
    #: Names a training this method shares with other methods on one window, N_sig and seed (ANODE's
    #: and R-ANODE's background flow: the same scaler, data and settings); "" when it shares only with
    #: its own variants. The scheduler starts such tasks one after the other so that one reads back
    #: the other's training (``WindowTask.may_repeat_trainings_of``).
    shares_trainings_with: ClassVar[str] = ""
    #: Other names the registry resolves to this method (e.g. "sigma" for "sigma-context").
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The dataclass of this method's settings.
    Settings: ClassVar[type] = NoSettings
    #: Whether ``__init__`` takes the run's ``classifier`` settings (the supervised reference).
    uses_classifier: ClassVar[bool] = False

    def __init__(self, *, device: str = "cpu", seed: int = 0, settings: Any = None) -> None:
        """
        Args:
            device: torch device text for methods that use one ("cpu", "cuda", "cuda:N").
            seed: fixes every random choice of the method.
            settings: a ``Settings`` instance, a (nested) mapping of its fields, or None for the defaults.
        """
        self.device = device
        self.seed = seed
        self.settings = settings

    @functools.cached_property
    def config(self) -> Any:
        """This instance's settings as the ``Settings`` dataclass (``ConfigError`` for unknown keys)."""
        return build_settings(self.Settings, self.settings, f"{self.name} settings")

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> BackgroundModel:
        """Learn what the method needs from the observed data.

        Args:
            events: the observed data over the full mass range (background plus injected signal);
                a background-template method must not read ``events.label``.
            window: the signal region, or None for a method trained once (``per_window = False``).
            truth: held-out true background and signal, only for ``needs_truth`` methods.

        Returns:
            self.
        """
        raise NotImplementedError

    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """Background template at the given SR masses.

        Args:
            masses: (n,) dijet masses in TeV, inside ``window``.

        Returns:
            (n, d) float32 features in the original (physical) feature space.
        """
        raise NotImplementedError(f"{self.name} produces {self.produces}s, not templates")

    def template_sources(self) -> np.ndarray | None:
        """(n,) ids of the source of each event of the last template, or None when every event is
        independent. Events with one id derive from the same data (RAD-OT reuses each sideband pair
        several times): the classifier keeps them on one side of its validation split, and the
        record counts the distinct sources as the template's effective size."""
        return None

    def score(self, events: Events, window: Window) -> np.ndarray:
        """(n,) anomaly scores of the test events (higher = more signal-like)."""
        raise NotImplementedError(f"{self.name} produces {self.produces}s, not scores")

    def fit_signature(self) -> str | None:
        """Text that names this method's shared fit, or ``None``.

        Methods trained once (``per_window = False``) whose training is identical (same model, same
        hyper-parameters, same data) return the same text, e.g. v_data, sigma-linear and
        sigma-context all train one CFM on all data. The harness then fits the first of them and
        hands the fitted model to the others with ``share_fit_from``, so a scan trains it once.
        """
        return None

    def share_fit_from(self, other: BackgroundModel) -> BackgroundModel:
        """Adopt the fitted state of ``other`` (same ``fit_signature``) instead of fitting."""
        raise NotImplementedError(f"{self.name} cannot share a fit")

    def check_ready(self) -> None:
        """Raise ``ConfigError`` if this configuration cannot run on this machine (an optional
        library missing, a setting out of range). The CLI calls it before loading any data and the
        harness before the first task, so a long scan does not stop halfway on a method that could
        never have run. The default validates the settings."""
        self.config  # noqa: B018 - builds the settings, raising ConfigError when they are wrong

    def check_features(self, features: Sequence[str]) -> None:
        """Raise ``ConfigError`` if a setting names a feature the dataset lacks. The harness calls it
        with the dataset's feature names before the first task. The default checks nothing."""

    def info(self) -> dict[str, Any]:
        """JSON-serialisable facts for the result record (ODE solver, NFE, epochs, losses...)."""
        return {}


def require(module: str, install: str) -> None:
    """Raise ``ConfigError`` naming ``install`` when the optional library ``module`` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{module} is not installed: {install}")
