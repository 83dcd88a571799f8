"""R-ANODE (Residual ANODE, arXiv:2312.11629): a signal density fitted on top of a fixed background.

Per window:

1. p_bkg(x | m): the normalizing-flow family's conditional flow trained on the sidebands, exactly as
   ANODE's background flow (``_FlowMethod``: CATHODE's settings, one ``LogitScaler`` fitted on all the
   data shared with the signal model, so the scaler's Jacobian cancels). With ``background_flows`` =
   K > 1, K such flows from different seeds, p_bkg their mean density (``BackgroundEnsemble``).
2. p_bkg(m) in the SR: the dijet function fitted to the sidebands (``adbench.masses``), normalised
   over the SR. As in the paper, the SR events are modelled jointly in (m, x):
   p_bkg(m, x) = p_bkg(m) p_bkg(x | m).
3. In the SR, an unconditional signal flow p_sig(m, x) and the signal fraction w are fitted to the
   SR data by maximum likelihood of (1 - w) p_bkg(m, x) + w p_sig(m, x) with p_bkg fixed
   (``adbench.models.signal_mixture``). The mass enters the signal flow as the standardised logit of
   its position in the SR, so the signal density does not leak outside the window.
4. Score: the fitted likelihood ratio at fixed mass, log p_sig(x | m) - log p_bkg(x | m), with
   p_sig(x | m) = p_sig(m, x) / p_sig(m) and p_sig(m) a histogram of masses drawn from the signal flow
   (the paper's score: the mass itself does not discriminate, as for every classifier-based method).

With ``signal_splits`` = K > 1, step 3 is repeated on K train/validation splits of the SR data (each
with its own initialisation), as the authors' code does (20 splits), and the K signal models are
ensembled: p_sig is the equal-weight mixture of every split's kept states, w the mean of all their
kept w (each split's mean, then their mean). Split 0 is the single fit of K = 1, so one run also
gives the unensembled w. With ``signal_split_selection = "likelihood"`` only the splits whose
held-out likelihood ratio (below) is near the best split's (``likely_splits``) enter p_sig and w; the
held-out w of the chosen splits is then a post-selection estimate (the same events ranked them).

``info()`` reports the fitted w (the trained parameter, averaged over the kept epochs, the paper's
estimate) and the held-out w: the maximum-likelihood w on the validation events with p_sig held fixed,
with its Fisher error (with K splits: the mean of the splits' estimates and of their errors; the
validation sets overlap, so the error is not divided by sqrt(K)). p_sig is not trained on those
events, though they choose its kept epochs. ``heldout_llr`` is log L(w) - log L(0) there (mean over
the chosen splits): sqrt(2 heldout_llr) would be the one-sided significance of w > 0 on a validation set alone
(val_fraction of the SR) were both densities fixed in advance; the epoch choice on the same events
pushes it up a little, a p_bkg that misses the SR data more.
The harness knows the true SR signal fraction (``n_sig_sr / n_sr_data`` of the record) to compare
them with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, MethodFailure
from adbench.masses import dijet_density, fit_dijet_function
from adbench.methods.base import Truth
from adbench.methods.cathode import (
    MIN_TRAIN_EVENTS,
    Anode,
    SidebandFlowSettings,
    _SidebandFlowMethod,
    likelihood_ratio,
)
from adbench.methods.mass_trend import MassTrendSettings, fit_trend, trend_columns, trend_info, trended_features
from adbench.methods.registry import register
from adbench.models.flows import ConditionalFlow
from adbench.models.signal_mixture import SignalFlowConfig, check_w_warmup
from adbench.models.training import TrainConfig
from adbench.preprocessing import LogitScaler
from adbench.settings import ADDED_LATER, hashed_settings
from adbench.windows import Window, check_sideband_width

MASS_EPS = 1e-6  # keeps the logit of the SR position finite at the window's edges
SIGNAL_SEED = 7919  # the signal fit's seed offset from the method's seed
SPLIT_SEED_STEP = 1009  # between the seeds of consecutive signal splits
BACKGROUND_SEED_STEP = 104_729  # between the seeds of the background flows of an ensemble
MAX_BACKGROUND_FLOWS = 20  # each is a full sideband training: more is a typo, not a plan
#: How the signal splits are combined: every split (the paper's), or the splits whose held-out
#: log-likelihood ratio is near the best split's (``likely_splits`` at SPLIT_SELECTION_LEVEL: K equally
#: good splits lose one of theirs in 5% of runs).
SPLIT_SELECTIONS = ("all", "likelihood")
SPLIT_SELECTION_LEVEL = 0.05


@dataclass(frozen=True)
class SignalSettings:
    """The ``[profile.signal.flow]`` and ``[profile.signal.train]`` tables; the defaults are the
    R-ANODE code's (2 spline transforms of 2 x 32 units, 8 bins; AdamW 3e-4 with torch's default weight
    decay 0.01, batch 256, 300 epochs, the 10 epochs with the lowest validation loss)."""

    flow: SignalFlowConfig = field(default_factory=SignalFlowConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=300, batch_size=256, lr=3e-4, optimizer="adamw",
                                            weight_decay=0.01, keep_best=10)
    )


@dataclass(frozen=True)
class RanodeSettings(MassTrendSettings, SidebandFlowSettings):
    """R-ANODE's settings: ``flow`` and ``train`` are the background flow's (the family's tables);
    ``mass_trend`` (fitted on the sidebands) transforms the features before both densities see them,
    so its Jacobian cancels in the mixture's w and in the score.

    Attributes:
        signal: the signal flow and its training.
        w_init: initial signal fraction (the paper draws it in [0.001, 0.01]).
        learn_w: fit w (True) or keep it at ``w_init`` (the paper's fixed-w mode).
        w_step_scale: the logit of w is this factor times its trained parameter (1: the paper's).
        mass_sideband_width: TeV on each side of the SR for the dijet fit of p_bkg(m) (the background
            flow's own sidebands are ``sideband_width``, ``SidebandFlowSettings``).
        mass_bins: bins of the histogram of p_sig(m) over the SR.
        mass_samples: signal-flow draws for that histogram.
        signal_splits: signal fits on different train/validation splits of the SR data, ensembled
            (the authors' code: 20).
        background_flows: background flows trained on the same sidebands from different seeds
            (initialisation, batches and train/validation split), p_bkg(x | m) their equal-weight
            mixture (1: the paper's single flow). Not in the paper: it lowers the variance of the
            learnt background, which w takes up at small S/B.
        signal_split_selection: ``all`` splits are ensembled (the paper's), or with ``likelihood`` only
            those that describe their held-out SR events about as well as the best split does
            (``likely_splits``). Not in the paper: a split's fit can settle where its signal density
            finds nothing (w near 0, held-out likelihood ratio near 1) while others find the signal,
            and averaging the two pulls w and the score towards no signal.
        w_warmup_epochs: of the signal training's epochs, the first ones hold w at ``w_init`` (the
            paper's fixed-w mode), the rest fit it, starting from the warm-up's best epoch with a new
            optimiser and schedule (0: fitted from the first step, the paper's; ``fit_mixture``). Not in
            the paper: while w is small, the likelihood rewards a signal density that sits on the few
            events where p_bkg is smallest more than one that covers a signal, and a w that falls
            early can leave the fit there.
    """

    signal: SignalSettings = field(default_factory=SignalSettings)
    w_init: float = 0.005
    learn_w: bool = True
    w_step_scale: float = 1.0
    mass_sideband_width: float = 0.2
    mass_bins: int = 50
    mass_samples: int = 200_000
    signal_splits: int = field(default=1, metadata=ADDED_LATER)
    background_flows: int = field(default=1, metadata=ADDED_LATER)
    signal_split_selection: str = field(default="all", metadata=ADDED_LATER)
    w_warmup_epochs: int = field(default=0, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.w_init < 1.0:
            raise ConfigError(f"w_init must be in (0, 1), got {self.w_init}")
        if not self.w_step_scale > 0:
            raise ConfigError(f"w_step_scale must be positive, got {self.w_step_scale}")
        check_sideband_width(self.mass_sideband_width, "mass_sideband_width", allow_none=False)
        if self.mass_bins < 1 or self.mass_samples < 10 * self.mass_bins:
            raise ConfigError(f"mass_bins must be >= 1 and mass_samples >= 10 mass_bins, got "
                              f"{self.mass_bins} and {self.mass_samples}")
        if not isinstance(self.signal_splits, int) or not 1 <= self.signal_splits <= self.mass_samples:
            raise ConfigError(f"signal_splits must be an integer from 1 to mass_samples, got {self.signal_splits!r}")
        if (not isinstance(self.background_flows, int) or isinstance(self.background_flows, bool)
                or not 1 <= self.background_flows <= MAX_BACKGROUND_FLOWS):
            raise ConfigError(f"background_flows must be an integer from 1 to {MAX_BACKGROUND_FLOWS}, "
                              f"got {self.background_flows!r}")
        if self.signal_split_selection not in SPLIT_SELECTIONS:
            raise ConfigError(f"signal_split_selection must be one of {', '.join(SPLIT_SELECTIONS)}, "
                              f"got {self.signal_split_selection!r}")
        check_w_warmup(self.w_warmup_epochs, self.signal.train.epochs, self.learn_w)
        if self.signal_split_selection != "all" and self.signal_splits < 2:
            raise ConfigError(f"signal_split_selection = {self.signal_split_selection!r} chooses among signal "
                              f"splits: it needs signal_splits >= 2, got {self.signal_splits}")


@dataclass
class MassCoordinate:
    """The signal flow's mass coordinate: t = (logit((m - low) / width) - mean) / std over the SR."""

    low: float
    width: float
    mean: float = 0.0
    std: float = 1.0

    def _position(self, m: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(m, dtype=np.float64) - self.low) / self.width, MASS_EPS, 1 - MASS_EPS)

    def fit(self, m: np.ndarray) -> MassCoordinate:
        logit = self.transform(m) * self.std + self.mean
        self.mean, self.std = float(logit.mean()), float(logit.std()) or 1.0
        return self

    def transform(self, m: np.ndarray) -> np.ndarray:
        """(n,) masses in TeV -> (n,) t."""
        p = self._position(m)
        return (np.log(p) - np.log1p(-p) - self.mean) / self.std

    def inverse(self, t: np.ndarray) -> np.ndarray:
        """(n,) t -> (n,) masses in TeV (inside the SR)."""
        p = 1.0 / (1.0 + np.exp(-(np.asarray(t, dtype=np.float64) * self.std + self.mean)))
        return self.low + self.width * p

    def log_jacobian(self, m: np.ndarray) -> np.ndarray:
        """(n,) log |dt/dm|."""
        p = self._position(m)
        return -np.log(self.width) - np.log(p) - np.log1p(-p) - np.log(self.std)


@dataclass
class BackgroundEnsemble:
    """p_bkg(x | m) as the equal-weight mixture of conditional flows trained on the same sidebands from
    different seeds (each a ``ConditionalFlow`` sharing one scaler)."""

    flows: list[ConditionalFlow]

    def log_prob(self, x: np.ndarray, m: np.ndarray, physical: bool = True) -> np.ndarray:
        """(n, d) features, (n,) masses -> (n,) log of the members' mean density."""
        per_flow = [flow.log_prob(x, m, physical=physical) for flow in self.flows]
        return np.logaddexp.reduce(per_flow, axis=0) - np.log(len(per_flow))

    def info(self) -> dict[str, Any]:
        """The first member's training facts, with every member's best validation loss and the total
        training time."""
        members = [flow.info() for flow in self.flows]
        return {**members[0], "ensemble": len(members),
                "best_val_loss_members": [info.get("best_val_loss") for info in members],
                "train_seconds": round(sum(info.get("train_seconds", 0.0) for info in members), 3)}


def background_mass_log_density(events_m: np.ndarray, window: Window, sideband_width: float):
    """log p_bkg(m) over the SR: the dijet function fitted to the sidebands, normalised on the SR.

    Returns a function (n,) masses -> (n,) log densities (per TeV) and the fitted parameters.
    """
    params = fit_dijet_function(events_m, window, sideband_width)
    grid = np.linspace(window.low, window.high, 2001)
    norm = np.trapezoid(dijet_density(grid, *params), grid)
    if not (np.isfinite(norm) and norm > 0):
        raise MethodFailure(f"{window}: the dijet fit to the sidebands does not normalise on the SR")

    def log_density(m: np.ndarray) -> np.ndarray:
        return np.log(dijet_density(np.asarray(m, dtype=np.float64), *params)) - np.log(norm)

    return log_density, params


@register
class Ranode(_SidebandFlowMethod):
    """R-ANODE: score = log p_sig(x | m) - log p_bkg(x | m), p_sig fitted on top of a fixed p_bkg.

    Settings: ``RanodeSettings``.
    """

    name = "ranode"
    aliases = ("r-anode",)
    produces = "score"
    Settings = RanodeSettings
    shares_trainings_with = Anode.shares_trainings_with
    needs_zuko = True  # the signal flow

    def check_features(self, features: Sequence[str]) -> None:
        trend_columns(self.name, self.config, features)

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> Ranode:
        from adbench.models.signal_mixture import build_signal_flow, fit_mixture

        config = self.config
        sidebands = self._sidebands(events, window)
        sr = events.select(window.in_sr(events.m))
        if len(sr) < MIN_TRAIN_EVENTS:
            raise MethodFailure(f"{window}: only {len(sr)} SR data events to fit the signal model")
        self.trend_ = fit_trend(self.name, config, sidebands)
        self.scaler_ = LogitScaler().fit(self._features(events))
        self._fit_background(events, sidebands, window)
        self.coordinate_ = MassCoordinate(window.low, window.width).fit(sr.m)
        u, log_bkg = self._coordinates(sr)
        features = u.shape[1]
        self.splits_ = [
            fit_mixture(
                u, log_bkg, lambda: build_signal_flow(features, config.signal.flow), config.signal.train,
                w_init=config.w_init, learn_w=config.learn_w, w_step_scale=config.w_step_scale,
                w_warmup_epochs=config.w_warmup_epochs, seed=self._split_seed(split), device=self.device,
                share_key=("Ranode signal flow", hashed_settings(config.signal.flow)),
            )
            for split in range(config.signal_splits)
        ]
        self._estimate_w(u, log_bkg)
        self._fit_mass_histogram(window)
        self.n_sideband_, self.n_sr_ = len(sidebands), len(sr)
        return self

    def _features(self, events: Events) -> np.ndarray:
        """(n, d) the features both densities model: the events' own, or after the mass trend."""
        return trended_features(self.trend_, events)

    def _split_seed(self, split: int) -> int:
        return self.seed + SIGNAL_SEED + SPLIT_SEED_STEP * split

    def _signal_log_prob(self, u: np.ndarray) -> np.ndarray:
        """(n, 1 + d) -> (n,) log p_sig(u): the equal-weight mixture of the chosen splits' kept states."""
        from adbench.models.signal_mixture import signal_log_prob

        per_split = [signal_log_prob(self.splits_[k].module, self.splits_[k].states, u, device=self.device)
                     for k in self.chosen_splits_]
        return np.logaddexp.reduce(per_split, axis=0) - np.log(len(per_split))

    def _fit_background(self, events: Events, sidebands: Events, window: Window) -> None:
        """The fixed background model: ``background_flow_`` (p_bkg(x | m), anything with the flow's
        ``log_prob(x, m, physical=False)`` and ``info()``), ``log_mass_bkg_`` and ``mass_fit_``."""
        x = self._features(sidebands)
        flows = [self._new_flow(self.seed + BACKGROUND_SEED_STEP * k).fit(x, sidebands.m, self.scaler_)
                 for k in range(self.config.background_flows)]
        self.background_flow_ = flows[0] if len(flows) == 1 else BackgroundEnsemble(flows)
        self.log_mass_bkg_, self.mass_fit_ = background_mass_log_density(events.m, window,
                                                                        self.config.mass_sideband_width)

    def _coordinates(self, events: Events) -> tuple[np.ndarray, np.ndarray]:
        """SR events -> u = (t, z) (n, 1 + d) float32 and log p_bkg(u) (n,): the background in the
        signal flow's coordinates, p_bkg(z | m) p_bkg(m) |dm/dt|."""
        t = self.coordinate_.transform(events.m)
        x = self._features(events)
        z = self.scaler_.transform(x)
        log_bkg = (self.background_flow_.log_prob(x, events.m, physical=False)
                   + self.log_mass_bkg_(events.m) - self.coordinate_.log_jacobian(events.m))
        return np.column_stack([t, z]).astype(np.float32), log_bkg

    def _fit_mass_histogram(self, window: Window) -> None:
        """p_sig(m) over the SR from draws of the signal flow (one pseudo-count per bin keeps every
        bin's density positive)."""
        from adbench.models.signal_mixture import sample_signal

        config = self.config
        chosen = self.chosen_splits_
        counts = np.bincount(np.arange(config.mass_samples) % len(chosen), minlength=len(chosen))
        draws = np.concatenate([
            sample_signal(self.splits_[k].module, self.splits_[k].states, int(n), seed=self.seed + k,
                          device=self.device)
            for k, n in zip(chosen, counts, strict=True)
        ])
        masses = self.coordinate_.inverse(draws[:, 0])
        counts, edges = np.histogram(masses, bins=config.mass_bins, range=(window.low, window.high))
        counts = counts + 1.0
        self.mass_edges_ = edges
        self.log_mass_sig_ = np.log(counts / counts.sum() / np.diff(edges))

    def _estimate_w(self, u: np.ndarray, log_bkg: np.ndarray) -> None:
        """Each split's kept w and its held-out fit (w, error and likelihood ratio with p_sig fixed, on
        the SR events it was not trained on), then the splits the ensemble keeps (``chosen_splits_``)
        and their mean w."""
        from adbench.models.signal_mixture import fixed_density_fit, likely_splits, signal_log_prob, state_w
        from adbench.models.training import validation_split

        config = self.config
        self.split_kept_w_ = [state_w(t.states, config.w_step_scale) for t in self.splits_]
        self.split_heldout_ = []
        for split, trained in enumerate(self.splits_):
            _, val_index = validation_split(len(u), config.signal.train, self._split_seed(split))
            log_sig = signal_log_prob(trained.module, trained.states, u[val_index], device=self.device)
            self.split_heldout_.append(fixed_density_fit(log_sig, log_bkg[val_index]))
        every = list(range(len(self.splits_)))
        self.chosen_splits_ = (likely_splits(self.split_heldout_, SPLIT_SELECTION_LEVEL)
                               if config.signal_split_selection == "likelihood" else every)
        self.kept_w_ = [w for k in self.chosen_splits_ for w in self.split_kept_w_[k]]
        (self.fitted_w_, self.heldout_w_, self.heldout_w_error_,
         self.heldout_llr_) = self._mean_estimates(self.chosen_splits_)
        self.all_split_w_ = self._mean_estimates(every)[:2]

    def _mean_estimates(self, splits: list[int]) -> tuple[float, float, float, float]:
        """(fitted w, held-out w, its error, held-out log-likelihood ratio), each the mean over ``splits``."""
        return (float(np.mean([np.mean(self.split_kept_w_[k]) for k in splits])),
                float(np.mean([self.split_heldout_[k].w for k in splits])),
                float(np.mean([self.split_heldout_[k].error for k in splits])),
                float(np.mean([self.split_heldout_[k].llr for k in splits])))

    def score(self, events: Events, window: Window) -> np.ndarray:
        """(n,) log p_sig(x | m) - log p_bkg(x | m) of SR events (higher = more signal-like)."""
        m = np.asarray(events.m, dtype=np.float64)
        t = self.coordinate_.transform(m)
        x = self._features(events)
        z = self.scaler_.transform(x)
        log_joint = self._signal_log_prob(np.column_stack([t, z]))
        bins = np.clip(np.searchsorted(self.mass_edges_, m, side="right") - 1, 0, len(self.log_mass_sig_) - 1)
        # p_sig(z | m) = p_sig(t, z) |dt/dm| / p_sig(m)
        log_sig = log_joint + self.coordinate_.log_jacobian(m) - self.log_mass_sig_[bins]
        log_bkg = self.background_flow_.log_prob(x, m, physical=False)
        return likelihood_ratio(log_sig, log_bkg, "ranode", "signal")

    def info(self) -> dict[str, Any]:
        if not hasattr(self, "splits_"):
            return {}
        config = self.config
        record = self.splits_[0].record
        splits = {} if len(self.splits_) == 1 else {
            "fitted_w_splits": [round(float(np.mean(kept)), 6) for kept in self.split_kept_w_],
            "heldout_w_splits": [[round(fit.w, 6), round(fit.error, 6)] for fit in self.split_heldout_],
            "heldout_llr_splits": [round(fit.llr, 3) for fit in self.split_heldout_],
            "heldout_llr_error_splits": [round(fit.llr_error, 3) for fit in self.split_heldout_],
            "best_val_loss_splits": [t.record.best_val_loss for t in self.splits_],
        }
        if config.signal_split_selection != "all":
            splits.update({
                "signal_split_selection": config.signal_split_selection,
                "chosen_splits": list(self.chosen_splits_),
                # the paper's estimates, over every split, beside those of the chosen ones
                "fitted_w_all_splits": self.all_split_w_[0],
                "heldout_w_all_splits": self.all_split_w_[1],
            })
        return {
            "sideband_events": self.n_sideband_,
            "sr_events": self.n_sr_,
            "fitted_w": self.fitted_w_,
            "fitted_w_kept": [round(w, 6) for w in self.kept_w_],
            "heldout_w": self.heldout_w_,
            "heldout_w_error": self.heldout_w_error_,
            # log L(w_hat) - log L(w = 0) on each split's validation events, mean over the chosen splits:
            # how much better signal plus background describes SR events the signal density was not
            # trained on
            "heldout_llr": self.heldout_llr_,
            "w_init": config.w_init,
            "learn_w": config.learn_w,
            **({"w_warmup_epochs": config.w_warmup_epochs} if config.w_warmup_epochs else {}),
            "background_mass_fit": [float(p) for p in self.mass_fit_],
            "background_flow": self.background_flow_.info(),
            "signal_flow": {"kind": config.signal.flow.kind, "transforms": config.signal.flow.transforms,
                            **record.summary(), "kept_val_losses": list(record.kept_val_losses)},
            "signal_splits": len(self.splits_),  # signal_flow's record is split 0's
            **trend_info(self.trend_),
            "signal_train_seconds": round(sum(t.record.seconds for t in self.splits_), 3),
            **splits,
        }
