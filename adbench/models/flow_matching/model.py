"""``FlowMatcher``: a conditional flow-matching model of p(x | m) with its preprocessing.

Features are mapped by the shared ``LogitScaler`` and masses scaled to [-1, 1] over the training
mass range. Training is ``adbench.models.training.train_module`` with the CFM loss; the validation
metric is the CFM loss on the validation split with fixed noise and times. Sampling integrates the
ODE from noise with the velocity taken directly at each mass (``direct``), mixed between two anchor
masses (``linear``) or with mixed context features (``context``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adbench.errors import ConfigError, MethodFailure
from adbench.mass_trends import MASS_TRENDS, MassTrend
from adbench.models.checkpoints import load_checkpoint, save_checkpoint
from adbench.models.flow_matching.configs import NetworkConfig, SelectionConfig, SolverConfig
from adbench.models.flow_matching.likelihood import log_likelihood
from adbench.models.flow_matching.network import velocity_field
from adbench.models.flow_matching.path import cfm_loss, cfm_training_loss
from adbench.models.flow_matching.solver import integrate
from adbench.models.training import (
    TrainConfig,
    TrainingRecord,
    chunked_sum,
    train_module,
    validation_split,
)
from adbench.preprocessing import SCALERS, scaler_from_state_dict
from adbench.progress import progress

MODES = ("direct", "linear", "context")
CHECKPOINT_KIND = "cfm"


@dataclass
class ODESample:
    """A template drawn by ODE integration.

    Attributes:
        x: (n, d) float32 features in physical units.
        solver: the solver settings used.
        mode: how the velocity was evaluated (direct, linear, context).
        nfe: function evaluations of each ODE solve (one solve per chunk of events).
        backend: the ODE library (torchdiffeq or zuko).
        checkpoints_used: kept checkpoints that contributed.
        seconds: wall-clock time of the solves.
    """

    x: np.ndarray
    solver: SolverConfig
    mode: str
    nfe: list[int]
    backend: str
    checkpoints_used: int
    seconds: float

    def facts(self) -> dict[str, Any]:
        """JSON-serialisable facts for the result record."""
        adaptive = self.solver.method == "dopri5"
        return {
            "ode_solver": self.solver.method,
            "ode_backend": self.backend,
            "ode_atol": self.solver.atol if adaptive else None,
            "ode_rtol": self.solver.rtol if adaptive else None,
            "ode_steps": None if adaptive else self.solver.steps,
            "nfe_mean": float(np.mean(self.nfe)) if self.nfe else 0.0,
            "nfe_total": int(np.sum(self.nfe)),
            "ode_solves": len(self.nfe),
            "velocity_mode": self.mode,
            "checkpoints_used": self.checkpoints_used,
            "checkpoint_use": {
                "split": "events split evenly between the kept checkpoints",
                "average": "velocity averaged over the kept checkpoints",
            }[self.solver.checkpoints],
            "sample_seconds": self.seconds,
        }


class FlowMatcher:
    """A CFM model of ``p(x | m)`` in the scaled feature space.

    Args:
        network: the velocity network's settings.
        train: the training settings.
        device: torch device text ("cpu", "cuda", "cuda:0").
        seed: fixes the validation split, the initialisation, the batches and the noise.
        selection: how the kept epochs are ranked (validation NLL or CFM loss).
        preprocessing: the feature transform, ``logit`` (min/max -> logit -> standardise, the paper's)
            or ``quantile`` (marginal quantiles -> standard normal); see ``adbench.preprocessing``.
        mass_trend: indices of the features whose mass dependence is removed before the feature
            transform (none by default), the way ``trend_kind`` says.
        trend_kind: a key of ``adbench.mass_trends.MASS_TRENDS``: ``location-scale`` (``MassTrend``),
            ``quantile`` (``MassQuantileTrend``), ``dijet-edge`` (``DijetEdgeTrend``) or ``dijet-stretch``
            (``DijetStretchTrend``).
    """

    #: The fitted ``MassTrend`` (None without one; a class default, so models pickled before the
    #: option existed load as models without it).
    trend_: MassTrend | None = None
    mass_trend: tuple[int, ...] = ()
    trend_kind: str = MassTrend.kind

    def __init__(
        self, network: NetworkConfig, train: TrainConfig, device: str = "cpu", seed: int = 0,
        selection: SelectionConfig | None = None, preprocessing: str = "logit",
        mass_trend: tuple[int, ...] = (), trend_kind: str = "location-scale",
    ) -> None:
        self.network = network
        self.train = train
        self.device = device
        self.seed = seed
        self.selection = SelectionConfig() if selection is None else selection
        self.preprocessing = preprocessing
        self.mass_trend = tuple(mass_trend)
        self.trend_kind = trend_kind

    def scale_mass(self, m: np.ndarray) -> np.ndarray:
        """(n,) TeV -> (n,) in [-1, 1] over the training mass range (float32)."""
        low, high = self.mass_range_
        return (2.0 * (np.asarray(m, dtype=np.float64) - low) / (high - low) - 1.0).astype(np.float32)

    def fit(self, x: np.ndarray, m: np.ndarray) -> FlowMatcher:
        """Train on x: (n, d) physical features and m: (n,) masses in TeV."""
        x = np.asarray(x, dtype=np.float32)
        m = np.asarray(m, dtype=np.float64)
        if x.ndim != 2 or len(m) != len(x):
            raise MethodFailure(f"CFM expects x (n, d) and m (n,), got {x.shape} and {m.shape}")
        train_index, val_index = validation_split(len(x), self.train, self.seed)
        if len(train_index) < 32 or len(val_index) < 10:
            raise MethodFailure(f"CFM: {len(x)} events are too few to train on")
        if self.preprocessing not in SCALERS:
            raise ConfigError(f"unknown preprocessing {self.preprocessing!r}; choose one of {', '.join(SCALERS)}")
        self.n_features_ = x.shape[1]
        if self.trend_kind not in MASS_TRENDS:
            raise ConfigError(f"unknown mass trend kind {self.trend_kind!r}; choose one of {', '.join(MASS_TRENDS)}")
        self.trend_ = MASS_TRENDS[self.trend_kind](self.mass_trend).fit(x, m) if self.mass_trend else None
        if self.trend_ is not None:
            x = self.trend_.transform(x, m)
        self.scaler_ = SCALERS[self.preprocessing]().fit(x)
        low, high = float(m.min()), float(m.max())
        if not high > low:
            raise MethodFailure("CFM: all training events have the same mass")
        self.mass_range_ = (low, high)
        device = torch.device(self.device)
        z = torch.from_numpy(self.scaler_.transform(x))
        ms = torch.from_numpy(self.scale_mass(m))
        noise = torch.Generator().manual_seed(self.seed + 7919)  # fixed validation noise and times
        validation = (
            z[val_index].to(device), ms[val_index].to(device),
            torch.randn((len(val_index), x.shape[1]), generator=noise).to(device),
            torch.rand(len(val_index), generator=noise).to(device),
        )
        sigma, sampling, location = self.network.sigma, self.network.time_sampling, self.network.time_location

        def loss(net: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x1, mb = batch
            return cfm_training_loss(net, x1, mb, sigma, sampling, location)

        trained = train_module(
            lambda: velocity_field(x.shape[1], self.network),
            (z[train_index].to(device), ms[train_index].to(device)),
            validation,
            loss,
            self._validation_loss if self.selection.metric == "loss" else self._validation_nll,
            self.train,
            seed=self.seed,
            device=self.device,
            label="CFM",
        )
        self.network_, self.states_, self.record_ = trained.module, trained.states, trained.record
        return self

    def _validation_loss(self, net: torch.nn.Module, validation: tuple[torch.Tensor, ...]) -> float:
        """Mean CFM loss on the validation split with its fixed noise and times."""
        def chunk_total(z: torch.Tensor, m: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return cfm_loss(net, z, m, x0, t, self.network.sigma).float() * len(z)

        with torch.inference_mode():
            return chunked_sum(chunk_total, validation, self.train.eval_batch_size) / len(validation[0])

    def _validation_nll(self, net: torch.nn.Module, validation: tuple[torch.Tensor, ...]) -> float:
        """Mean negative log-likelihood (per event, scaled space) of the first ``selection.events``
        validation events (a fixed random subset: the split is shuffled)."""
        z, m = validation[0][: self.selection.events], validation[1][: self.selection.events]
        chunk = self.train.eval_batch_size
        total = 0.0
        for start in range(0, len(z), chunk):
            mb = m[start:start + chunk]
            logp = log_likelihood(lambda t, x, mb=mb: net(x, t, mb), z[start:start + chunk], self.selection.solver)
            total -= float(logp.sum())
        return total / len(z)

    def velocity(
        self,
        m: torch.Tensor,
        mode: str = "direct",
        anchors: tuple[float, float] | None = None,
        xi: torch.Tensor | None = None,
        net: torch.nn.Module | None = None,
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The ODE right-hand side ``f(t, x)`` for the events with scaled masses m: (n,).

        Args:
            mode: ``direct`` ``v(x | t, m)``; ``linear`` ``xi v(x | t, m1) + (1 - xi) v(x | t, m2)``;
                ``context`` the layer features of the two anchors mixed by the network
                (``mixed_velocity``).
            anchors: (m1, m2) in TeV, for ``linear`` and ``context``.
            xi: (n,) interpolation weights, for ``linear`` and ``context``.
            net: the network to evaluate (default: ``network_``, the best checkpoint).
        """
        net = self.network_ if net is None else net
        if mode == "direct":
            return lambda t, x: net(x, t, m)
        if mode not in MODES or anchors is None or xi is None:
            raise ConfigError(f"velocity mode {mode!r} needs anchors and weights (modes: {', '.join(MODES)})")
        a = torch.tensor(self.scale_mass(np.asarray(anchors)), device=m.device)
        w = xi[:, None]
        if mode == "linear":
            n = len(m)
            both_anchors = torch.cat([a[0].expand(n), a[1].expand(n)])  # x has one row per mass

            def linear(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                v = net(torch.cat([x, x]), t, both_anchors)
                return w * v[:n] + (1.0 - w) * v[n:]

            return linear

        def context(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return net.mixed_velocity(x, net.context(a[:1], t), net.context(a[1:], t), w)

        return context

    def _kept_networks(self) -> list[torch.nn.Module]:
        nets = []
        for state in self.states_:
            net = copy.deepcopy(self.network_)
            net.load_state_dict(state)
            nets.append(net.eval())
        return nets

    def sample(
        self,
        masses: np.ndarray,
        solver: SolverConfig | None = None,
        mode: str = "direct",
        anchors: tuple[float, float] | None = None,
        xi: np.ndarray | None = None,
        seed: int = 0,
    ) -> ODESample:
        """Draw one event per mass.

        With ``solver.checkpoints = "split"`` the events are split evenly between the kept checkpoints
        (checkpoint k integrates the k-th contiguous share); with ``"average"`` the velocity is the
        mean over them. Solved in chunks of ``solver.chunk(device)`` events.

        Args:
            masses: (n,) masses in TeV.
            xi: (n,) interpolation weights (``linear`` and ``context`` modes).
            seed: fixes the initial noise x0.
        """
        solver = SolverConfig() if solver is None else solver
        device = torch.device(self.device)
        masses = np.asarray(masses, dtype=np.float64)
        n = len(masses)
        x0_all = torch.randn((n, self.n_features_), generator=torch.Generator().manual_seed(int(seed)))
        m_all = torch.from_numpy(self.scale_mass(masses))
        xi_all = None if xi is None else torch.as_tensor(np.asarray(xi, dtype=np.float32))
        amp = self.train.amp and device.type == "cuda"
        out = np.empty((n, self.n_features_), dtype=np.float32)
        chunk = solver.chunk(device.type)
        nets = self._kept_networks()
        if solver.checkpoints == "average":
            groups = [(nets, np.arange(n))]
        else:
            groups = [([net], share) for net, share in zip(nets, np.array_split(np.arange(n), len(nets)), strict=True)]
        nfes: list[int] = []
        backend = ""
        started = time.perf_counter()
        n_solves = sum(-(-len(share) // chunk) for _, share in groups)
        with progress("ODE solves", n_solves) as tick:
            for members, share in groups:
                for start in range(0, len(share), chunk):
                    idx = share[start:start + chunk]
                    m = m_all[idx].to(device)
                    w = None if xi_all is None else xi_all[idx].to(device)
                    fields = [self.velocity(m, mode, anchors, w, net) for net in members]

                    if len(fields) == 1:
                        def f(t: torch.Tensor, x: torch.Tensor, field=fields[0]) -> torch.Tensor:
                            return field(t, x).float()
                    else:
                        def f(t: torch.Tensor, x: torch.Tensor, fields=fields) -> torch.Tensor:
                            return torch.stack([field(t, x).float() for field in fields]).mean(dim=0)

                    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                        solved = integrate(f, x0_all[idx].to(device), solver)
                    out[idx] = solved.x.float().cpu().numpy()
                    nfes.append(solved.nfe)
                    backend = solved.backend
                    tick(f"NFE {solved.nfe}")
        if not np.isfinite(out).all():
            raise MethodFailure(f"CFM sampling gave {int((~np.isfinite(out)).any(axis=1).sum())} non-finite events")
        x = self.scaler_.inverse_transform(out)
        if self.trend_ is not None:
            # A fitted trend is interpolated between the anchors like the velocity (linear and context
            # modes); the dijet edge, fitted to nothing, is read at the events' own masses.
            x = self.trend_.inverse_transform(x, masses, anchors, None if xi is None else np.asarray(xi))
        return ODESample(
            x=x, solver=solver, mode=mode, nfe=nfes, backend=backend,
            checkpoints_used=len(nets), seconds=time.perf_counter() - started,
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``cfm.json`` (settings, scaler, mass range, training record) and ``states.pt``."""
        meta = {
            "network": asdict(self.network),
            "train": asdict(self.train),
            "selection": asdict(self.selection),
            "seed": self.seed,
            "preprocessing": self.preprocessing,
            "n_features": self.n_features_,
            "scaler": self.scaler_.state_dict(),
            "mass_trend": None if self.trend_ is None else self.trend_.state_dict(),
            "mass_range": list(self.mass_range_),
            "record": asdict(self.record_),
        }
        return save_checkpoint(directory, CHECKPOINT_KIND, meta, self.states_)

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> FlowMatcher:
        """Inverse of ``save``."""
        meta, states = load_checkpoint(directory, CHECKPOINT_KIND, device)
        selection = dict(meta["selection"])
        selection["solver"] = SolverConfig(**selection["solver"])
        model = cls(NetworkConfig(**meta["network"]), TrainConfig(**meta["train"]), device, int(meta["seed"]),
                    SelectionConfig(**selection), meta["preprocessing"])
        model.n_features_ = int(meta["n_features"])
        model.scaler_ = scaler_from_state_dict(meta["scaler"])
        trend = meta.get("mass_trend")
        model.trend_ = None if trend is None else MassTrend.from_state_dict(trend)
        model.mass_trend = () if model.trend_ is None else model.trend_.columns
        model.trend_kind = MassTrend.kind if model.trend_ is None else model.trend_.kind
        model.mass_range_ = tuple(meta["mass_range"])
        model.record_ = TrainingRecord(**meta["record"])
        model.states_ = states
        model.network_ = velocity_field(model.n_features_, model.network).to(device)
        model.network_.load_state_dict(states[0])
        model.network_.eval()
        return model

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable training facts."""
        return {
            **self.record_.summary(),
            "selection": self.selection.metric,
            "preprocessing": self.preprocessing,
            "mass_trend_columns": list(self.mass_trend),
            "mass_trend_kind": self.trend_kind if self.mass_trend else "",
            "checkpoints_kept": len(self.states_),
            "lr": self.train.lr,
            "mass_range_tev": list(self.mass_range_),
        }
