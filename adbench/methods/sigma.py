"""SIGMA and its flow-matching baselines (arXiv:2410.20537), all built on ``adbench.methods.cfm``.

- ``vdata``: one CFM trained on all data, evaluated directly at the SR masses (it learns the signal).
- ``vcr``: a CFM trained per window on the sidebands only, evaluated at the SR masses.
- ``sigma-linear``: the all-data CFM with the velocity mixed between the anchors m1 and m2 of the
  window at every ODE step, ``xi v(x | t, m1) + (1 - xi) v(x | t, m2)``.
- ``sigma-context`` (alias ``sigma``): the all-data CFM with the context features of every layer
  mixed between the anchors.

``vdata``, ``sigma-linear`` and ``sigma-context`` train the same model: with equal training settings
their ``fit_signature`` is equal and the harness trains one CFM per dataset and seed for all three;
their per-window cost is sampling only.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, MethodFailure
from adbench.methods.base import BackgroundModel, Truth, require
from adbench.methods.cfm import CFMConfig, FlowMatcher, SolverConfig, TrainConfig
from adbench.methods.registry import register
from adbench.windows import Window


class _CFMMethod(BackgroundModel):
    """Shared keyword arguments and sampling of the flow-matching methods.

    Network (``CFMConfig``): width, blocks, dropout, batch_norm, mass_frequencies,
    time_frequencies, sigma. Training (``TrainConfig``): epochs, batch_size, lr, weight_decay,
    schedule, val_fraction, keep_best, patience, compile, amp. Sampling (``SolverConfig``): solver,
    atol, rtol, steps, sample_batch, checkpoints (``split`` the template between the kept
    checkpoints or ``average`` their velocities).
    """

    family = "flow matching"
    #: How the velocity is evaluated at the SR masses: direct, linear or context.
    mode = "direct"

    def __init__(
        self,
        *,
        device: str = "cpu",
        seed: int = 0,
        width: int = 256,
        blocks: int = 4,
        dropout: float = 0.2,
        batch_norm: bool = True,
        mass_frequencies: int = 9,
        time_frequencies: int = 3,
        sigma: float = 1e-3,
        epochs: int = 20,
        batch_size: int = 4096,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        schedule: str = "onecycle",
        val_fraction: float = 0.2,
        keep_best: int = 10,
        patience: int | None = None,
        compile: bool = False,
        amp: bool = False,
        solver: str = "dopri5",
        atol: float = 1e-5,
        rtol: float = 1e-5,
        steps: int = 20,
        sample_batch: int | None = None,
        checkpoints: str = "split",
    ) -> None:
        self.device = device
        self.seed = seed
        self.width = width
        self.blocks = blocks
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.mass_frequencies = mass_frequencies
        self.time_frequencies = time_frequencies
        self.sigma = sigma
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.val_fraction = val_fraction
        self.keep_best = keep_best
        self.patience = patience
        self.compile = compile
        self.amp = amp
        self.solver = solver
        self.atol = atol
        self.rtol = rtol
        self.steps = steps
        self.sample_batch = sample_batch
        self.checkpoints = checkpoints

    # -- configuration -------------------------------------------------------------------------

    def _configs(self, n_features: int) -> tuple[CFMConfig, TrainConfig]:
        network = CFMConfig(
            features=n_features, width=self.width, blocks=self.blocks, dropout=self.dropout,
            batch_norm=self.batch_norm, mass_frequencies=self.mass_frequencies,
            time_frequencies=self.time_frequencies, sigma=self.sigma,
        )
        train = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            schedule=self.schedule, val_fraction=self.val_fraction, keep_best=self.keep_best,
            patience=self.patience, compile=self.compile, amp=self.amp,
        )
        return network, train

    def check_ready(self) -> None:
        for module in ("torch", "zuko"):
            require(module, "pip install 'adbench[torch]'")
        if self.solver != "dopri5":
            require("torchdiffeq", f"pip install torchdiffeq (the {self.solver} ODE solver)")
        self._configs(1)
        self._solver()

    def _solver(self) -> SolverConfig:
        return SolverConfig(
            method=self.solver, atol=self.atol, rtol=self.rtol, steps=self.steps, batch=self.sample_batch,
            checkpoints=self.checkpoints,
        )

    def _train(self, events: Events) -> FlowMatcher:
        network, train = self._configs(events.n_features)
        return FlowMatcher(network, train, self.device, self.seed).fit(events.x, events.m)

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """(n,) SR masses in TeV -> (n, d) float32 template in physical features."""
        model = getattr(self, "model_", None)
        if model is None:
            raise MethodFailure(f"{self.name}: sample() before fit()")
        masses = np.asarray(masses, dtype=np.float64)
        anchors, xi = None, None
        if self.mode != "direct":
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
        template, facts = model.sample(masses, self._solver(), self.mode, anchors, xi, seed)
        self.sample_info_ = facts
        return template

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
        """The training settings (network, training, seed, device); sampling settings excluded."""
        network, train = self._configs(1)
        network_params = {k: v for k, v in asdict(network).items() if k != "features"}
        return json.dumps(
            {"model": "cfm on all data", "network": network_params, "train": asdict(train),
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
    """v_CR: a CFM retrained per window on the sidebands, evaluated at the SR masses.

    Extra argument:
        sideband_width: sideband width on each side in TeV; ``None`` takes all data outside the SR.
    """

    name = "vcr"
    per_window = True
    mode = "direct"

    def __init__(self, *, sideband_width: float | None = None, **kwargs: Any) -> None:
        accepted = inspect.signature(_CFMMethod.__init__).parameters
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ConfigError(f"vcr has no settings {unknown}")
        super().__init__(**kwargs)
        self.sideband_width = sideband_width

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> VCR:
        if window is None:
            raise MethodFailure("vcr is trained per window; the harness passed no window")
        sidebands = events.select(window.in_sidebands(events.m, self.sideband_width))
        if len(sidebands) < 100:
            raise MethodFailure(f"{window}: only {len(sidebands)} sideband events to train v_CR")
        if not (sidebands.m < window.low).any() or not (sidebands.m >= window.high).any():
            raise MethodFailure(f"{window}: v_CR needs sideband events on both sides of the SR")
        self.model_ = self._train(sidebands)
        return self
