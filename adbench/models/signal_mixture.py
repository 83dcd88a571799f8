"""A signal density and its fraction fitted on top of a fixed background density: R-ANODE's core.

Given events ``u`` (n, k) and their fixed background log-densities ``log p_bkg(u)`` (n,), fit an
unconditional flow p_sig(u) and the signal fraction w by maximum likelihood of

    p_data(u) = w p_sig(u) + (1 - w) p_bkg(u)

(arXiv:2312.11629). w = sigmoid(w_step_scale * theta) with theta trained with the flow's weights by the
shared training loop; ``w_step_scale`` > 1 lets Adam move the logit of w faster than the weights (1 is
the paper's parametrisation). With ``learn_w`` false, w stays at its initial value (the paper's fixed-w
mode); with ``w_warmup_epochs`` = E > 0 it stays there for the first E epochs only, and the signal
model is then trained with w for the rest (two runs of the shared loop, so a decaying learning rate
restarts after the warm-up). The signal model is any module with ``log_prob(u)``: the default is a
zuko flow; tests pass an exact density to check the fit of w alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from adbench.errors import ConfigError, MethodFailure
from adbench.models.training import (
    TrainConfig,
    Trained,
    chunked_sum,
    kept_log_prob,
    planned_epochs,
    rng_devices,
    train_module,
    validation_split,
)
from adbench.settings import hashed_settings

KINDS = ("nsf", "maf")
WARMED_SEED_KEY = 2  # with the fit's seed, seeds the training that follows a w warm-up


@dataclass(frozen=True)
class SignalFlowConfig:
    """The signal flow: an unconditional zuko flow over the k event coordinates.

    Attributes:
        kind: ``nsf`` (rational-quadratic splines, as the R-ANODE code) or ``maf`` (affine).
        transforms: autoregressive transforms.
        hidden: hidden units of each transform's network.
        hidden_layers: hidden layers of each network.
        bins: spline bins (``nsf`` only).
    """

    kind: str = "nsf"
    transforms: int = 2
    hidden: int = 32
    hidden_layers: int = 2
    bins: int = 8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown signal flow kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if min(self.transforms, self.hidden, self.hidden_layers) < 1 or self.bins < 2:
            raise ConfigError(f"signal flow sizes must be positive (bins >= 2): {self}")


def build_signal_flow(features: int, config: SignalFlowConfig):
    """A module with ``log_prob(u)`` (n, k) -> (n,) and ``sample(n)`` -> (n, k): a zuko flow."""
    import torch
    import zuko

    hidden = [config.hidden] * config.hidden_layers
    if config.kind == "nsf":
        flow = zuko.flows.NSF(features, 0, bins=config.bins, transforms=config.transforms, hidden_features=hidden)
    else:
        flow = zuko.flows.MAF(features, 0, transforms=config.transforms, hidden_features=hidden)

    class SignalFlow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.flow = flow

        def log_prob(self, u):
            return self.flow().log_prob(u)

        def sample(self, n: int):
            return self.flow().sample((n,))

    return SignalFlow()


def build_mixture(signal, w_init: float, learn_w: bool, w_step_scale: float):
    """The module holding the signal model and w: ``forward(u, log_bkg)`` gives log p_data (n,)."""
    import torch

    class Mixture(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.signal = signal
            theta = torch.tensor(math.log(w_init / (1 - w_init)) / w_step_scale)
            if learn_w:
                self.theta = torch.nn.Parameter(theta)
            else:
                self.register_buffer("theta", theta)

        def log_w(self):
            """(log w, log(1 - w)) as 0-d tensors."""
            logit = w_step_scale * self.theta
            return torch.nn.functional.logsigmoid(logit), torch.nn.functional.logsigmoid(-logit)

        def forward(self, u, log_bkg):
            log_w, log_1mw = self.log_w()
            return torch.logaddexp(log_w + self.signal.log_prob(u), log_1mw + log_bkg)

    return Mixture()


def check_w_warmup(w_warmup_epochs: object, epochs: int, learn_w: bool) -> None:
    """A ConfigError unless ``w_warmup_epochs`` is an integer from 0 to ``epochs`` - 1, and 0 where w is
    not learnt."""
    if (not isinstance(w_warmup_epochs, int) or isinstance(w_warmup_epochs, bool)
            or not 0 <= w_warmup_epochs < epochs):
        raise ConfigError(f"w_warmup_epochs must be from 0 to the signal training's epochs - 1 ({epochs - 1}), "
                          f"an integer, got {w_warmup_epochs!r}")
    if w_warmup_epochs and not learn_w:
        raise ConfigError("w_warmup_epochs holds w at w_init before fitting it: it needs learn_w = true")


def fit_mixture(
    u: np.ndarray,
    log_bkg: np.ndarray,
    build_signal: Callable[[], object],
    train: TrainConfig,
    *,
    w_init: float,
    learn_w: bool = True,
    w_step_scale: float = 1.0,
    w_warmup_epochs: int = 0,
    seed: int = 0,
    device: str = "cpu",
    share_key: Any = None,
) -> Trained:
    """Fit p_sig and w by maximum likelihood with p_bkg fixed.

    Args:
        u: (n, k) float32 event coordinates (the signal model's inputs).
        log_bkg: (n,) log p_bkg(u) in the same coordinates.
        build_signal: makes the untrained signal module (``build_signal_flow`` or an exact density).
        share_key: what, besides the data, the training settings and the w settings, decides the
            signal model (its settings): other tasks of the run that fit the same mixture read the
            finished trainings back (``train_module``); None: never shared.
        w_warmup_epochs: of ``train.epochs``, the first ones train the signal model with w held at
            ``w_init`` (scaled, rounded up, with the epochs where ``min_steps`` raises them); the rest
            start from the warm-up epoch with the best validation NLL, with a new optimiser and
            learning-rate schedule, and fit w too. Only their epochs are kept. Needs ``learn_w``.

    Returns:
        ``Trained``: kept states (best validation NLL first, each with its ``theta``) and the record
        (of the epochs after the warm-up: ``epochs_run`` and ``kept_epochs`` count from its end; its
        seconds include the warm-up's).
    """
    import torch

    if not 0.0 < w_init < 1.0:
        raise ConfigError(f"w_init must be in (0, 1), got {w_init}")
    check_w_warmup(w_warmup_epochs, train.epochs, learn_w)
    u = np.asarray(u, dtype=np.float32)
    log_bkg = np.asarray(log_bkg, dtype=np.float64)
    if not np.isfinite(log_bkg).all():
        raise MethodFailure(f"{int((~np.isfinite(log_bkg)).sum())} of {len(log_bkg)} background densities are NaN/inf")
    train_index, val_index = validation_split(len(u), train, seed)
    if len(train_index) < 2 * u.shape[1] or len(val_index) < 1:
        raise MethodFailure(f"only {len(u)} events to fit the signal model on")
    dev = torch.device(device)

    def tensors(index: np.ndarray) -> tuple:
        return (torch.as_tensor(u[index], device=dev), torch.as_tensor(log_bkg[index].astype(np.float32), device=dev))

    def loss(module, batch):
        return -module(*batch).mean()

    def validate(module, data):
        return -chunked_sum(module, data, train.eval_batch_size) / len(data[0])

    train_data, val_data = tensors(train_index), tensors(val_index)

    def key(*phase: Any) -> Any:
        return None if share_key is None else (share_key, "mixture", w_step_scale, *phase)

    if not w_warmup_epochs:
        return train_module(lambda: build_mixture(build_signal(), w_init, learn_w, w_step_scale),
                            train_data, val_data, loss, validate, train, seed=seed, device=device,
                            label="signal model", share_key=key(w_init, learn_w))
    # min_steps stretches both phases alike, so the warm-up stays the same share of the training
    total = planned_epochs(len(train_index), train)
    warm_epochs = math.ceil(w_warmup_epochs * total / train.epochs)
    warmup = replace(train, epochs=warm_epochs, keep_best=1, patience=None, min_steps=None)
    warmed = train_module(lambda: build_mixture(build_signal(), w_init, False, w_step_scale),
                          train_data, val_data, loss, validate, warmup, seed=seed, device=device,
                          label="signal model at fixed w", share_key=key(w_init, False))
    warmed_state = warmed.states[0]

    def build_warmed():
        module = build_mixture(build_signal(), w_init, True, w_step_scale)
        module.load_state_dict(warmed_state)  # theta: the warm-up's buffer, w_init, now a parameter
        return module

    rest = replace(train, epochs=total - warm_epochs, min_steps=None)
    # a seed of its own: seed + 1 would be a neighbouring fit's seed (the splits' seeds are consecutive)
    rest_seed = int(np.random.SeedSequence([seed, WARMED_SEED_KEY]).generate_state(1)[0])
    trained = train_module(build_warmed, train_data, val_data, loss, validate, rest, seed=rest_seed,
                           device=device, label="signal model",
                           share_key=key(w_init, "after the warm-up", seed, hashed_settings(warmup)))
    trained.record.seconds += warmed.record.seconds
    return trained


def state_w(states: list[dict], w_step_scale: float) -> list[float]:
    """The signal fraction w of each kept state."""
    return [float(1.0 / (1.0 + math.exp(-w_step_scale * float(state["theta"])))) for state in states]


def signal_log_prob(module, states: list[dict], u: np.ndarray, *, device: str = "cpu",
                    batch_size: int = 65_536) -> np.ndarray:
    """log p_sig(u) of the kept states' equal-weight mixture: u (n, k) -> (n,) float64."""
    import torch

    dev = torch.device(device)
    u_t = torch.as_tensor(np.asarray(u, dtype=np.float32), device=dev)
    return kept_log_prob(module, states, lambda s: module.signal.log_prob(u_t[s]), len(u_t), batch_size, dev)


def sample_signal(module, states: list[dict], n: int, *, seed: int = 0, device: str = "cpu") -> np.ndarray:
    """(n, k) float32 draws from the kept states' equal-weight mixture of signal models."""
    import torch

    dev = torch.device(device)
    counts = np.bincount(np.arange(n) % len(states), minlength=len(states))
    out = []
    with torch.random.fork_rng(devices=rng_devices(dev)), torch.no_grad():
        torch.manual_seed(seed)
        for state, count in zip(states, counts, strict=True):
            module.load_state_dict(state)
            module.eval()
            out.append(module.signal.sample(int(count)).float().cpu().numpy())
    return np.concatenate(out)


def fisher_error(log_sig: np.ndarray, log_bkg: np.ndarray, w: float) -> float:
    """The standard error of the maximum-likelihood w with both densities held fixed: 1 / sqrt(I(w)),
    I(w) = sum_i (p_sig - p_bkg)^2 / (w p_sig + (1 - w) p_bkg)^2 over the fitted events (n,)."""
    log_sig, log_bkg = np.asarray(log_sig, np.float64), np.asarray(log_bkg, np.float64)
    log_mix = np.logaddexp(np.log(w) + log_sig, np.log1p(-w) + log_bkg)
    score = np.exp(log_sig - log_mix) - np.exp(log_bkg - log_mix)
    return float(1.0 / np.sqrt(np.sum(score**2)))


@dataclass(frozen=True)
class FixedDensityFit:
    """The maximum-likelihood signal fraction of events under two fixed densities.

    Attributes:
        w: argmax over w in (0, 1) of sum_i log(w p_sig + (1 - w) p_bkg).
        error: its Fisher error (``fisher_error``).
        llr: log L(w) - log L(0) >= 0; 2 llr is the one-sided test statistic q0 of w = 0, which for
            densities fixed in advance follows (delta_0 + chi2_1) / 2 with many events (Chernoff).
        llr_error: the standard error of llr over draws of the events, sqrt(n) x the standard deviation
            of the per-event terms log(w p_sig / p_bkg + 1 - w).
    """

    w: float
    error: float
    llr: float
    llr_error: float


def fixed_density_fit(log_sig: np.ndarray, log_bkg: np.ndarray) -> FixedDensityFit:
    """w, its error and the log-likelihood ratio against w = 0 of events (n,) under fixed densities
    (a NaN ratio and error where a density is not finite)."""
    from scipy.optimize import minimize_scalar

    log_sig, log_bkg = np.asarray(log_sig, np.float64), np.asarray(log_bkg, np.float64)

    def nll(w: float) -> float:
        return -float(np.logaddexp(np.log(w) + log_sig, np.log1p(-w) + log_bkg).sum())

    best = minimize_scalar(nll, bounds=(1e-8, 1 - 1e-8), method="bounded", options={"xatol": 1e-10})
    w = float(best.x)
    terms = np.logaddexp(np.log(w) + log_sig - log_bkg, np.log1p(-w))  # per event, log L(w) - log L(0)
    if not np.isfinite(terms).all():
        return FixedDensityFit(w, math.nan, math.nan, math.nan)
    llr_error = float(np.sqrt(len(terms)) * terms.std())
    return FixedDensityFit(w, fisher_error(log_sig, log_bkg, w), max(0.0, float(terms.sum())), llr_error)


def likely_splits(fits: Sequence[FixedDensityFit], level: float) -> list[int]:
    """The indices of the fits whose held-out log-likelihood ratio lies within t combined standard
    errors of the largest: the signal fits that describe their held-out events about as well as the
    best one does (each fit's events are its own, so the errors add).

    t = q / sqrt(2), q the 1 - ``level`` quantile of the range of K standard normals (the studentized
    range with infinite degrees of freedom): K equally good fits with equal errors on independent
    events lose one of theirs in a fraction ``level`` of runs, whatever K (t = 1.96 for K = 2, 2.73 for
    5, 3.54 for 20 at level 0.05). Fits whose ratio is not finite are left out.
    """
    from scipy.stats import studentized_range

    finite = [k for k, fit in enumerate(fits) if math.isfinite(fit.llr) and math.isfinite(fit.llr_error)]
    if not finite:
        raise MethodFailure(f"none of the {len(fits)} signal fits has a finite held-out likelihood ratio")
    if len(fits) == 1:
        return finite
    t = float(studentized_range.ppf(1.0 - level, len(fits), np.inf)) / math.sqrt(2.0)
    best = fits[max(finite, key=lambda k: fits[k].llr)]
    return [k for k in finite if best.llr - fits[k].llr <= t * math.hypot(best.llr_error, fits[k].llr_error)]
