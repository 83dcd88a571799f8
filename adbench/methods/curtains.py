"""CURTAINs Flows for Flows (CURTAINsF4F, arXiv:2305.04646; CURTAINs, arXiv:2203.09470).

- Trained once per dataset, N_sig and seed (``per_window = False``): a conditional base flow p(x | m),
  the normalizing-flow family's conditional MAF (CATHODE's ``ConditionalFlow``), on **all** the data
  over the full mass range. This is the paper's efficient configuration, and the only one a fit that
  is shared across windows can have: the base flow does learn the signal around its mass, but the
  transport training below evaluates it only at sideband masses, and the template is made by the
  transport flow alone, so the base density is never used inside a signal region.
- Per signal region, inside ``sample`` (the harness times it as the per-SR cost): a light transport
  flow T(x; m_in, m_out) (``adbench.models.transport``) trained by maximum likelihood under the frozen
  base density, on the events of the two sidebands of ``sideband_width`` next to the SR, with target
  masses from those sidebands (``pairing``). The template moves sideband events, each reused about
  template size / sideband size times (``template_sources`` groups the copies), to the SR masses the
  harness draws.

Choices and their sources are listed in ``methods/curtains4f4.toml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, MethodFailure
from adbench.methods.base import BackgroundModel, Truth
from adbench.methods.cathode import MIN_TRAIN_EVENTS, FlowMethodSettings, _FlowMethod
from adbench.methods.registry import register
from adbench.models.training import TrainConfig, TrainingRecord
from adbench.models.transport import PAIRINGS, TransportConfig
from adbench.settings import settings_dict
from adbench.windows import Window, check_sideband_width


@dataclass(frozen=True)
class TransportSettings:
    """The ``[profile.transport.flow]`` and ``[profile.transport.train]`` tables: the per-SR flow. The
    defaults are the ``paper`` profile's (so a profile without these tables, ``paper-gpu``, gets them)."""

    flow: TransportConfig = field(default_factory=lambda: TransportConfig(layers=8, hidden=128))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, batch_size=512, lr=3e-4, optimizer="adam",
                                            schedule="cosine", final_lr_fraction=0.01, keep_best=5)
    )


@dataclass(frozen=True)
class Curtains4F4Settings(FlowMethodSettings):
    """CURTAINsF4F's settings: ``flow`` and ``train`` are the base density's (the family's tables),
    ``transport`` the per-SR flow's.

    Attributes:
        sideband_width: width in TeV of each sideband the transport flow trains on and moves events from.
        pairing: target masses of the transport training: ``shuffle`` (a permutation of the batch's own
            sideband masses) or ``cross`` (from the other sideband).
    """

    transport: TransportSettings = field(default_factory=TransportSettings)
    sideband_width: float = 0.2
    pairing: str = "shuffle"

    def __post_init__(self) -> None:
        check_sideband_width(self.sideband_width, allow_none=False)
        if self.pairing not in PAIRINGS:
            raise ConfigError(f"unknown pairing {self.pairing!r}; choose one of {', '.join(PAIRINGS)}")


@dataclass
class _WindowTransport:
    """The per-SR state: the trained transport flow and the sideband events it moves."""

    module: Any
    states: list
    record: TrainingRecord
    z: np.ndarray  # (n, d) scaled sideband features
    m: np.ndarray  # (n,) window-local sideband masses
    n_lower: int
    n_upper: int


def local_mass(m: np.ndarray, window: Window) -> np.ndarray:
    """(n,) masses in TeV -> (n,) window-local masses ``(m - centre) / width``."""
    return (np.asarray(m, dtype=np.float64) - window.center) / window.width


@register
class Curtains4F4(_FlowMethod):
    """CURTAINsF4F: one base flow for all windows, a transport flow per SR moving sideband events in.

    Settings: ``Curtains4F4Settings``.
    """

    name = "curtains4f4"
    aliases = ("curtainsf4f",)
    per_window = False
    produces = "template"
    Settings = Curtains4F4Settings
    needs_zuko = True  # the transport flow

    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> Curtains4F4:
        """Train the base flow p(x | m) on all of ``events`` (any ``window`` is ignored: the fit is shared)."""
        if len(events) < MIN_TRAIN_EVENTS:
            raise MethodFailure(f"only {len(events)} events to train the base flow")
        self.base_ = self._new_flow(self.seed).fit(events.x, events.m)
        self.events_ = events
        self.transports_: dict[str, _WindowTransport] = {}
        self.frozen_base_ = None
        return self

    def fit_signature(self) -> str:
        """The base flow's settings, seed and device: profiles that differ only in the transport share it."""
        config = self.config
        return json.dumps(
            {"model": "curtains4f4 base flow on all data", "flow": settings_dict(config.flow),
             "train": settings_dict(config.train), "seed": self.seed, "device": self.device},
            sort_keys=True,
        )

    def share_fit_from(self, other: BackgroundModel) -> Curtains4F4:
        if not isinstance(other, Curtains4F4) or getattr(other, "base_", None) is None:
            raise MethodFailure(f"{self.name} can only share a fitted curtains4f4 base flow, got {other.name}")
        if other.fit_signature() != self.fit_signature():
            raise MethodFailure(f"{self.name} and {other.name} have different base-flow settings")
        self.base_, self.events_ = other.base_, other.events_
        self.transports_, self.frozen_base_ = {}, None
        return self

    def _log_base(self, window: Window):
        """log p_base(y | m_out) on tensors, m_out window-local: the best kept epoch, frozen."""
        import torch

        from adbench.models.flows import build_flow, flow_log_prob

        base = self.base_
        if getattr(self, "frozen_base_", None) is None:
            module = build_flow(base.n_features_, base.config, base.spline_bound_).to(torch.device(self.device))
            module.load_state_dict(base.states_[0])
            module.eval()
            module.requires_grad_(False)
            self.frozen_base_ = module
        module, backend = self.frozen_base_, base.config.backend

        def log_base(y, m_out):
            return flow_log_prob(module, backend, y, base.context_of(window.center + window.width * m_out)[:, None])

        return log_base

    def _train_window(self, window: Window) -> _WindowTransport:
        from adbench.models.transport import fit_transport

        config = self.config
        events = self.events_
        width = config.sideband_width
        lower, upper = window.lower_sideband(events.m, width), window.upper_sideband(events.m, width)
        n_lower, n_upper = int(lower.sum()), int(upper.sum())
        if n_lower == 0 or n_upper == 0:
            raise MethodFailure(f"{window}: curtains4f4 needs events in both {width:g} TeV sidebands "
                                f"(lower {n_lower}, upper {n_upper})")
        if n_lower + n_upper < MIN_TRAIN_EVENTS:
            raise MethodFailure(f"{window}: only {n_lower + n_upper} sideband events to train the transport flow")
        sidebands = events.select(lower | upper)
        z = self.base_.scaler_.transform(sidebands.x)
        m = local_mass(sidebands.m, window)
        entropy = [self.seed, round(window.low * 1000), round(window.high * 1000)]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0] % (2**31))
        trained = fit_transport(z, m, sidebands.m >= window.high, self._log_base(window),
                                config.transport.flow, config.transport.train, pairing=config.pairing,
                                seed=seed, device=self.device)
        return _WindowTransport(trained.module, trained.states, trained.record, z, m, n_lower, n_upper)

    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """(n,) SR masses -> (n, d) float32 template: sideband events moved to these masses (the
        window's transport flow is trained on the first call for that window)."""
        from adbench.models.transport import apply_transport

        if getattr(self, "base_", None) is None:
            raise MethodFailure(f"{self.name}: sample() before fit()")
        state = self.transports_.get(window.name)
        if state is None:
            state = self.transports_[window.name] = self._train_window(window)
        masses = np.asarray(masses, dtype=np.float64)
        rng = np.random.default_rng([self.seed, round(window.low * 1000), round(window.high * 1000), 5])
        n_sources = len(state.z)
        repeats = -(-len(masses) // n_sources)  # every source used equally often (to within one)
        sources = np.concatenate([rng.permutation(n_sources) for _ in range(repeats)])[:len(masses)]
        moved = apply_transport(state.module, state.states, state.z[sources], state.m[sources],
                                local_mass(masses, window), seed=self.seed, device=self.device)
        self.sources_ = sources
        self.last_window_ = window.name
        return self.base_.scaler_.inverse_transform(moved)

    def template_sources(self) -> np.ndarray | None:
        """(n,) index of the sideband event each template event was moved from."""
        return getattr(self, "sources_", None)

    def info(self) -> dict[str, Any]:
        base = getattr(self, "base_", None)
        if base is None:
            return {}
        facts: dict[str, Any] = {"base_flow": base.info(), "base_training_events": "all data (full mass range)"}
        state = self.transports_.get(getattr(self, "last_window_", ""))
        if state is not None:
            config = self.config
            facts.update({
                "window": self.last_window_,
                "sideband_width": config.sideband_width,
                "pairing": config.pairing,
                "sideband_events": {"lower": state.n_lower, "upper": state.n_upper},
                "transport_layers": config.transport.flow.layers,
                "transport": state.record.summary(),
                "transport_kept_val_losses": list(state.record.kept_val_losses),
                "template_per_source": round(len(self.sources_) / len(state.z), 3),
            })
        return facts
