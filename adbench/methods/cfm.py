"""Conditional flow matching (CFM): the generative model behind SIGMA, v_data and v_CR.

Small separate pieces, in the spirit of facebookresearch/flow_matching:

- ``CFMConfig``: the ResNet velocity field ``v(x | t, m)`` (width, blocks, batch norm, dropout).
- ``VelocityField``: the network. Its context features ``gamma`` (one per layer, functions of
  ``(m, t)`` only) are computed by ``context`` and consumed by ``velocity``, so SIGMA's context
  interpolation is "compute the gammas at m1 and m2 and mix", with one network.
- ``path_sample`` / ``cfm_loss``: the path ``x_t = t x1 + (1 - (1 - sigma) t) x0`` and its target
  ``x1 - (1 - sigma) x0`` (x0 ~ N(0, I) at t = 0, data at t = 1).
- ``TrainConfig`` and ``FlowMatcher.fit``: data resident on the device, random-permutation batches
  (no DataLoader), AdamW with a one-cycle / cosine / plateau schedule, a seeded validation split with
  fixed validation noise, and the ``keep_best`` epochs with the lowest validation loss kept.
- ``SolverConfig`` and ``integrate``: ODE integration t = 0 -> 1 with torchdiffeq (adaptive
  Dormand-Prince ``dopri5`` or a fixed-step ``euler``/``midpoint``/``rk4``); without torchdiffeq,
  ``dopri5`` falls back to zuko's ``odeint``.
- ``FlowMatcher.sample``: the template, with the velocity taken directly at ``m`` ("direct"), mixed
  between two anchors ("linear") or with mixed context features ("context"). The template is split
  evenly between the kept checkpoints (each checkpoint integrates its share of the events), so the
  cost does not grow with ``keep_best``.
- ``FlowMatcher.save`` / ``FlowMatcher.load``: a directory with ``cfm.json`` (configs, scaler, mass
  range, training record) and ``states.pt`` (plain tensors, loadable with ``weights_only=True``).

Masses are scaled to [-1, 1] over the training mass range before the frequency embeddings
``alpha(m) = (sin(2^k pi m), cos(2^k pi m))``, k = 0..K-1, and ``beta(t) = (sin(k pi t), cos(k pi t))``,
k = 1..J.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from adbench.errors import ConfigError, MethodFailure
from adbench.preprocessing import LogitScaler

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SCHEDULES = ("onecycle", "cosine", "plateau", "constant")
SOLVERS = ("dopri5", "rk4", "midpoint", "euler")
MODES = ("direct", "linear", "context")
REFERENCE_BATCH = 4096
CPU_CHUNK, GPU_CHUNK = 4096, 262_144  # default events per ODE solve (SolverConfig.batch = None)


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("the flow-matching methods need PyTorch: pip install 'adbench[torch]'") from None
    return torch


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CFMConfig:
    """The velocity network.

    Attributes:
        features: d, the number of modelled features.
        width: hidden units of every layer.
        blocks: residual blocks.
        dropout: dropout rate inside each block.
        batch_norm: batch norm before each activation of the blocks and of the output head.
        mass_frequencies: K of alpha(m) (k = 0..K-1; SIGMA: 9).
        time_frequencies: J of beta(t) (k = 1..J; SIGMA: 3).
        sigma: the minimal width of the probability path.
    """

    features: int
    width: int = 256
    blocks: int = 4
    dropout: float = 0.2
    batch_norm: bool = True
    mass_frequencies: int = 9
    time_frequencies: int = 3
    sigma: float = 1e-3

    def __post_init__(self) -> None:
        if self.features < 1 or self.width < 1 or self.blocks < 1:
            raise ConfigError(f"CFM needs features, width and blocks >= 1, got {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"CFM dropout must be in [0, 1), got {self.dropout}")
        if self.mass_frequencies < 1 or self.time_frequencies < 1:
            raise ConfigError("CFM needs at least one mass and one time frequency")
        if not 0.0 <= self.sigma < 1.0:
            raise ConfigError(f"CFM sigma must be in [0, 1), got {self.sigma}")


@dataclass(frozen=True)
class TrainConfig:
    """Training of a CFM.

    Attributes:
        epochs: passes over the training split (the maximum when ``patience`` is set).
        batch_size: events per step.
        lr: peak learning rate at the reference batch of 4096; the rate used is
            ``lr * sqrt(batch_size / 4096)`` (square-root scaling, the usual rule for Adam).
        weight_decay: AdamW's.
        schedule: ``onecycle`` (linear warm-up over the first 10% of the steps, then cosine
            annealing to 0, per step), ``cosine`` (cosine annealing without warm-up),
            ``plateau`` (ReduceLROnPlateau on the validation loss, the published recipe) or
            ``constant``.
        val_fraction: fraction of the events held out (split by the seed) for model selection.
        keep_best: number of epochs with the lowest validation loss whose weights are kept.
        patience: stop after this many epochs without a new best validation loss (None: never).
        compile: ``torch.compile`` the training step's network (CUDA only; ignored on CPU).
        amp: bf16 autocast for training and sampling (CUDA only; ignored on CPU).
    """

    epochs: int = 20
    batch_size: int = 4096
    lr: float = 1e-3
    weight_decay: float = 1e-5
    schedule: str = "onecycle"
    val_fraction: float = 0.2
    keep_best: int = 10
    patience: int | None = None
    compile: bool = False
    amp: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.keep_best < 1:
            raise ConfigError(f"CFM training needs epochs >= 1, batch_size >= 2, keep_best >= 1, got {self}")
        if not self.lr > 0:
            raise ConfigError(f"CFM learning rate must be positive, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown CFM schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or None, got {self.patience}")

    @property
    def effective_lr(self) -> float:
        return self.lr * math.sqrt(self.batch_size / REFERENCE_BATCH)


@dataclass(frozen=True)
class SolverConfig:
    """ODE integration from t = 0 (noise) to t = 1 (data).

    Attributes:
        method: ``dopri5`` (adaptive Dormand-Prince) or a fixed-step ``rk4``, ``midpoint``, ``euler``.
        atol, rtol: tolerances of ``dopri5``.
        steps: number of steps of a fixed-step method.
        batch: events integrated together (the template is solved in chunks of this size);
            ``None`` picks by device: 4096 on a CPU (cache-sized chunks are several times faster
            there) and 262144 on a GPU (large batches fill it).
        checkpoints: how the kept checkpoints make the template: ``split`` (each integrates an
            equal share of the events; the cost of one model) or ``average`` (the velocity is the
            mean of all of them; K times the cost per step).
    """

    method: str = "dopri5"
    atol: float = 1e-5
    rtol: float = 1e-5
    steps: int = 20
    batch: int | None = None
    checkpoints: Literal["split", "average"] = "split"

    def __post_init__(self) -> None:
        if self.checkpoints not in ("split", "average"):
            raise ConfigError(f"checkpoints must be 'split' or 'average', got {self.checkpoints!r}")
        if self.method not in SOLVERS:
            raise ConfigError(f"unknown ODE solver {self.method!r}; choose one of {', '.join(SOLVERS)}")
        if self.steps < 1 or (self.batch is not None and self.batch < 1) or not (self.atol > 0 and self.rtol > 0):
            raise ConfigError(f"bad ODE solver settings {self}")


# ----------------------------------------------------------------------------- network


def frequency_embedding(value: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """(n,) values, (K,) angular multipliers -> (n, 2K) ``(sin(k v), cos(k v))``."""
    angle = value[:, None] * ks[None, :]
    return _torch().cat([angle.sin(), angle.cos()], dim=1)


def _make_network_class():
    torch = _torch()
    nn = torch.nn

    class ResidualBlock(nn.Module):
        """``h + W2 drop(act(BN(W1 act(BN(h)) + gamma)))``; gamma is the block's context feature."""

        def __init__(self, width: int, dropout: float, batch_norm: bool) -> None:
            super().__init__()
            norm = (lambda: nn.BatchNorm1d(width)) if batch_norm else nn.Identity
            self.norm1, self.norm2 = norm(), norm()
            self.linear1, self.linear2 = nn.Linear(width, width), nn.Linear(width, width)
            self.act = nn.SiLU()
            self.dropout = nn.Dropout(dropout)

        def forward(self, h: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
            z = self.linear1(self.act(self.norm1(h))) + gamma
            return h + self.linear2(self.dropout(self.act(self.norm2(z))))

    class VelocityField(nn.Module):
        """The ResNet velocity field ``v(x | t, m)`` with context features split out.

        ``context(m, t)`` returns one feature per layer, ``gamma_0`` (the first layer's context
        term, added to ``W_x x``) and ``gamma_b`` for every block, a gated linear projection of the
        embeddings ``(W_b c) * sigmoid(G_b c)``. ``velocity(x, gammas)`` runs the rest. SIGMA's
        context interpolation mixes the gammas of two masses; since the first layer is linear,
        mixing ``gamma_0`` equals mixing the whole first-layer feature ``gamma_i(x, m, t)``.
        """

        def __init__(self, config: CFMConfig) -> None:
            super().__init__()
            self.config = config
            n_context = 2 * (config.mass_frequencies + config.time_frequencies)
            self.register_buffer(
                "mass_ks", math.pi * 2.0 ** torch.arange(config.mass_frequencies, dtype=torch.float32)
            )
            self.register_buffer(
                "time_ks", math.pi * torch.arange(1, config.time_frequencies + 1, dtype=torch.float32)
            )
            self.input = nn.Linear(config.features, config.width)
            # All context projections in one matrix (one kernel instead of blocks + 1): the first
            # layer's gamma_0, then a (value, gate) pair per block.
            self.context_projection = nn.Linear(n_context, config.width * (1 + 2 * config.blocks))
            self.blocks = nn.ModuleList(
                ResidualBlock(config.width, config.dropout, config.batch_norm) for _ in range(config.blocks)
            )
            self.head_norm = nn.BatchNorm1d(config.width) if config.batch_norm else nn.Identity()
            self.head = nn.Linear(config.width, config.features)
            self.act = nn.SiLU()

        def context(self, m: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
            """m: (n,) scaled masses in [-1, 1]; t: (n,) or a scalar time, broadcast to n.

            Returns:
                ``blocks + 1`` tensors of shape (n, width).
            """
            t = t.expand(m.shape) if t.dim() == 0 else t
            c = torch.cat([frequency_embedding(m, self.mass_ks), frequency_embedding(t, self.time_ks)], dim=1)
            projected = self.context_projection(c).split(self.config.width, dim=1)
            gated = [value * torch.sigmoid(gate) for value, gate in zip(projected[1::2], projected[2::2])]
            return [projected[0], *gated]

        def velocity(self, x: torch.Tensor, gammas: list[torch.Tensor]) -> torch.Tensor:
            """x: (n, d); gammas: from ``context`` (each (n, width) or (1, width)) -> (n, d)."""
            h = self.input(x) + gammas[0]
            for block, gamma in zip(self.blocks, gammas[1:]):
                h = block(h, gamma)
            return self.head(self.act(self.head_norm(h)))

        def forward(self, x: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            """x: (n, d), t: (n,) or scalar, m: (n,) scaled -> (n, d) velocity."""
            return self.velocity(x, self.context(m, t))

    return VelocityField


_NETWORK_CLASS = None


def VelocityField(config: CFMConfig):  # noqa: N802 - a factory that reads like the class
    """Build the velocity network (the class is created on first use, so importing this module
    does not import torch)."""
    global _NETWORK_CLASS
    if _NETWORK_CLASS is None:
        _NETWORK_CLASS = _make_network_class()
    return _NETWORK_CLASS(config)


# ----------------------------------------------------------------------------- path and loss


def path_sample(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The conditional path and its velocity.

    Args:
        x0: (n, d) noise, x1: (n, d) data, t: (n,) times in [0, 1].

    Returns:
        ``x_t = t x1 + (1 - (1 - sigma) t) x0`` and the target ``x1 - (1 - sigma) x0``, both (n, d).
    """
    t = t[:, None]
    return t * x1 + (1.0 - (1.0 - sigma) * t) * x0, x1 - (1.0 - sigma) * x0


def cfm_loss(
    net: Callable[..., torch.Tensor], x1: torch.Tensor, m: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Mean squared error between ``net(x_t, t, m)`` and the path's target velocity (a scalar)."""
    xt, target = path_sample(x0, x1, t, sigma)
    return (net(xt, t, m) - target).pow(2).mean()


# ----------------------------------------------------------------------------- ODE integration


@dataclass
class Integration:
    """The solution of one ODE solve: ``x`` (n, d) at t = 1 and the number of function evaluations."""

    x: Any
    nfe: int
    backend: str


def integrate(
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor, solver: SolverConfig
) -> Integration:
    """Solve ``dx/dt = f(t, x)`` from t = 0 to 1 with a library solver (torchdiffeq, or zuko's
    Dormand-Prince when torchdiffeq is missing), counting the function evaluations."""
    torch = _torch()
    calls = [0]

    def counted(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return f(t, x)

    try:
        import torchdiffeq
    except ImportError:
        torchdiffeq = None
    if torchdiffeq is None:
        if solver.method != "dopri5":
            raise ConfigError(f"the {solver.method} ODE solver needs torchdiffeq: pip install torchdiffeq")
        from zuko.utils import odeint

        x1 = odeint(counted, x0, 0.0, 1.0, atol=solver.atol, rtol=solver.rtol)
        return Integration(x1, calls[0], "zuko")
    times = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
    if solver.method == "dopri5":
        out = torchdiffeq.odeint(counted, x0, times, method="dopri5", atol=solver.atol, rtol=solver.rtol)
    else:
        out = torchdiffeq.odeint(counted, x0, times, method=solver.method, options={"step_size": 1.0 / solver.steps})
    return Integration(out[-1], calls[0], "torchdiffeq")


# ----------------------------------------------------------------------------- the fitted model


def _one_cycle(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine annealing to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class TrainingRecord:
    """What happened during ``fit`` (recorded with each result)."""

    epochs_run: int = 0
    best_val_loss: float = float("nan")
    best_epochs: list[int] = field(default_factory=list)
    best_val_losses: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    seconds: float = 0.0
    effective_lr: float = 0.0


class FlowMatcher:
    """A CFM model of ``p(x | m)`` in the scaled feature space, with its preprocessing.

    Args:
        config: the network.
        train: the training settings.
        device: torch device text ("cpu", "cuda", "cuda:0").
        seed: fixes the validation split, the initialisation, the batches and the noise.
    """

    def __init__(self, config: CFMConfig, train: TrainConfig, device: str = "cpu", seed: int = 0) -> None:
        self.config = config
        self.train = train
        self.device = device
        self.seed = seed

    # -- preprocessing -------------------------------------------------------------------------

    def scale_mass(self, m: np.ndarray) -> np.ndarray:
        """(n,) TeV -> (n,) in [-1, 1] over the training mass range (float32)."""
        low, high = self.mass_range_
        return (2.0 * (np.asarray(m, dtype=np.float64) - low) / (high - low) - 1.0).astype(np.float32)

    # -- training ------------------------------------------------------------------------------

    def fit(self, x: np.ndarray, m: np.ndarray) -> FlowMatcher:
        """Train on x: (n, d) physical features, m: (n,) masses in TeV."""
        torch = _torch()
        x = np.asarray(x, dtype=np.float32)
        m = np.asarray(m, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.config.features or len(m) != len(x):
            raise MethodFailure(f"CFM expects x (n, {self.config.features}) and m (n,), got {x.shape}, {m.shape}")
        n_val = int(round(self.train.val_fraction * len(x)))
        if len(x) - n_val < 32 or n_val < 10:
            raise MethodFailure(f"CFM: {len(x)} events are too few to train on")
        started = time.perf_counter()
        self.scaler_ = LogitScaler().fit(x)
        low, high = float(m.min()), float(m.max())
        if not high > low:
            raise MethodFailure("CFM: all training events have the same mass")
        self.mass_range_ = (low, high)
        device = torch.device(self.device)
        order = np.random.default_rng([self.seed, 1]).permutation(len(x))
        val, train = order[:n_val], order[n_val:]
        z = torch.from_numpy(self.scaler_.transform(x))
        ms = torch.from_numpy(self.scale_mass(m))
        z_train, m_train = z[train].to(device), ms[train].to(device)
        z_val, m_val = z[val].to(device), ms[val].to(device)
        noise = torch.Generator().manual_seed(self.seed + 7919)
        x0_val = torch.randn(z_val.shape, generator=noise).to(device)
        t_val = torch.rand(len(val), generator=noise).to(device)

        cuda = device.type == "cuda"
        with torch.random.fork_rng(devices=[device] if cuda else []):
            torch.manual_seed(self.seed)
            self.network_ = VelocityField(self.config).to(device)
            self.record_ = self._train(z_train, m_train, (z_val, m_val, x0_val, t_val), cuda)
        self.record_.seconds = time.perf_counter() - started
        self.network_.eval()
        return self

    def _train(self, z, m, validation, cuda: bool) -> TrainingRecord:
        torch = _torch()
        net, cfg, sigma = self.network_, self.train, self.config.sigma
        step_net = torch.compile(net) if (cfg.compile and cuda) else net
        if cfg.amp and cuda:
            autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
        else:
            autocast = contextlib.nullcontext
        n = len(z)
        batch = min(cfg.batch_size, n)
        steps_per_epoch = n // batch  # the last partial batch is dropped (batch norm statistics)
        lr = cfg.effective_lr
        try:  # the fused kernel: one launch per step (CPU support needs torch >= 2.4)
            optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        total = cfg.epochs * steps_per_epoch
        scheduler, per_step = None, True
        if cfg.schedule in ("onecycle", "cosine"):
            warmup = max(1, total // 10) if cfg.schedule == "onecycle" else 0
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _one_cycle(step, warmup, total))
        elif cfg.schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)
            per_step = False
        record = TrainingRecord(n_train=n, n_val=len(validation[0]), effective_lr=lr)
        kept: list[tuple[float, int, dict]] = []
        since_best = 0
        for epoch in range(cfg.epochs):
            net.train()
            perm = torch.randperm(n, device=z.device)
            total_loss = torch.zeros((), device=z.device)
            for step in range(steps_per_epoch):
                idx = perm[step * batch:(step + 1) * batch]
                x1, mb = z[idx], m[idx]
                x0 = torch.randn_like(x1)
                t = torch.rand(batch, device=z.device)
                with autocast():
                    loss = cfm_loss(step_net, x1, mb, x0, t, sigma)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None and per_step:
                    scheduler.step()
                total_loss += loss.detach()
            val_loss = self._validation_loss(validation, autocast)
            train_loss = float(total_loss) / steps_per_epoch
            if not (math.isfinite(val_loss) and math.isfinite(train_loss)):
                raise MethodFailure(
                    f"CFM training diverged at epoch {epoch + 1} (loss {train_loss}, validation {val_loss})"
                )
            if scheduler is not None and not per_step:
                scheduler.step(val_loss)
            record.train_losses.append(train_loss)
            record.val_losses.append(val_loss)
            record.epochs_run = epoch + 1
            if len(kept) < cfg.keep_best or val_loss < kept[-1][0]:
                state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                kept = sorted(kept + [(val_loss, epoch + 1, state)], key=lambda item: item[0])[: cfg.keep_best]
            if val_loss <= kept[0][0]:
                since_best = 0
            else:
                since_best += 1
                if cfg.patience is not None and since_best >= cfg.patience:
                    break
            log.debug("CFM epoch %d: train %.5f, validation %.5f", epoch + 1, train_loss, val_loss)
        self.states_ = [state for _, _, state in kept]
        record.best_epochs = [epoch for _, epoch, _ in kept]
        record.best_val_losses = [loss for loss, _, _ in kept]
        record.best_val_loss = kept[0][0]
        return record

    def _validation_loss(self, validation, autocast) -> float:
        """Mean CFM loss on the validation split with its fixed noise and times."""
        torch = _torch()
        z, m, x0, t = validation
        chunk = 4 * CPU_CHUNK if z.device.type == "cpu" else GPU_CHUNK
        self.network_.eval()
        total = torch.zeros((), device=z.device)
        with torch.inference_mode(), autocast():
            for start in range(0, len(z), chunk):
                s = slice(start, start + chunk)
                total += cfm_loss(self.network_, z[s], m[s], x0[s], t[s], self.config.sigma).float() * len(z[s])
        return float(total) / len(z)

    # -- sampling ------------------------------------------------------------------------------

    def velocity(
        self,
        m: torch.Tensor,
        mode: str = "direct",
        anchors: tuple[float, float] | None = None,
        xi: torch.Tensor | None = None,
        net: Any = None,
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The ODE right-hand side ``f(t, x)`` for the events with scaled masses m: (n,).

        Args:
            mode: ``direct`` ``v(x | t, m)``; ``linear`` ``xi v(x | t, m1) + (1 - xi) v(x | t, m2)``;
                ``context`` the gammas of every layer mixed as ``xi gamma(m1, t) + (1 - xi) gamma(m2, t)``.
            anchors: (m1, m2) in TeV, for ``linear`` and ``context``.
            xi: (n,) interpolation weights, for ``linear`` and ``context``.
            net: the network to evaluate (default: ``network_``, the best checkpoint).
        """
        torch = _torch()
        net = self.network_ if net is None else net
        if mode == "direct":
            return lambda t, x: net(x, t, m)
        if mode not in MODES or anchors is None or xi is None:
            raise ConfigError(f"velocity mode {mode!r} needs anchors and weights (modes: {', '.join(MODES)})")
        a = torch.tensor(self.scale_mass(np.asarray(anchors)), device=m.device)
        w = xi[:, None]
        if mode == "linear":
            def linear(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                n = len(x)
                v = net(torch.cat([x, x]), t, torch.cat([a[0].expand(n), a[1].expand(n)]))
                return w * v[:n] + (1.0 - w) * v[n:]

            return linear

        def context(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            g1, g2 = net.context(a[:1], t), net.context(a[1:], t)
            return net.velocity(x, [w * p + (1.0 - w) * q for p, q in zip(g1, g2)])

        return context

    def sample(
        self,
        masses: np.ndarray,
        solver: SolverConfig = SolverConfig(),
        mode: str = "direct",
        anchors: tuple[float, float] | None = None,
        xi: np.ndarray | None = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw one event per mass.

        With ``solver.checkpoints = "split"`` the events are split evenly between the kept
        checkpoints (checkpoint k integrates the k-th contiguous share); with ``"average"`` the
        velocity is the mean over the checkpoints. Solved in chunks of ``solver.batch`` events.

        Args:
            masses: (n,) masses in TeV.
            xi: (n,) interpolation weights (``linear`` and ``context`` modes).
            seed: fixes the initial noise x0.

        Returns:
            (n, d) float32 physical features and facts about the solve (solver, NFE...).
        """
        torch = _torch()
        device = torch.device(self.device)
        masses = np.asarray(masses, dtype=np.float64)
        n = len(masses)
        generator = torch.Generator().manual_seed(int(seed))
        x0_all = torch.randn((n, self.config.features), generator=generator)
        m_all = torch.from_numpy(self.scale_mass(masses))
        xi_all = None if xi is None else torch.as_tensor(np.asarray(xi, dtype=np.float32))
        amp = self.train.amp and device.type == "cuda"
        out = np.empty((n, self.config.features), dtype=np.float32)
        chunk = solver.batch or (CPU_CHUNK if device.type == "cpu" else GPU_CHUNK)
        nets = []
        for state in self.states_:
            net = copy.deepcopy(self.network_)
            net.load_state_dict(state)
            nets.append(net.eval())
        if solver.checkpoints == "average":
            groups = [(nets, np.arange(n))]
        else:
            groups = [([net], share) for net, share in zip(nets, np.array_split(np.arange(n), len(nets)))]
        nfes: list[int] = []
        backend = ""
        started = time.perf_counter()
        for members, share in groups:
            for start in range(0, len(share), chunk):
                idx = share[start:start + chunk]
                m = m_all[idx].to(device)
                w = None if xi_all is None else xi_all[idx].to(device)
                fields = [self.velocity(m, mode, anchors, w, net) for net in members]

                def f(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
                    return torch.stack([field(t, x).float() for field in fields]).mean(dim=0)

                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    solved = integrate(f, x0_all[idx].to(device), solver)
                out[idx] = solved.x.float().cpu().numpy()
                nfes.append(solved.nfe)
                backend = solved.backend
        if not np.isfinite(out).all():
            raise MethodFailure(f"CFM sampling gave {int((~np.isfinite(out)).any(axis=1).sum())} non-finite events")
        facts = {
            "ode_solver": solver.method,
            "ode_backend": backend,
            "ode_atol": solver.atol if solver.method == "dopri5" else None,
            "ode_rtol": solver.rtol if solver.method == "dopri5" else None,
            "ode_steps": solver.steps if solver.method != "dopri5" else None,
            "nfe_mean": float(np.mean(nfes)) if nfes else 0.0,
            "nfe_total": int(np.sum(nfes)),
            "ode_solves": len(nfes),
            "velocity_mode": mode,
            "checkpoints_used": len(nets),
            "checkpoint_use": {
                "split": "events split evenly between the kept checkpoints",
                "average": "velocity averaged over the kept checkpoints",
            }[solver.checkpoints],
            "sample_seconds": time.perf_counter() - started,
        }
        return self.scaler_.inverse_transform(out), facts

    # -- checkpoints ---------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``cfm.json`` and ``states.pt`` (a list of plain state_dicts) into ``directory``."""
        torch = _torch()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": asdict(self.config),
            "train": asdict(self.train),
            "seed": self.seed,
            "scaler": self.scaler_.state_dict(),
            "mass_range": list(self.mass_range_),
            "record": asdict(self.record_),
        }
        (directory / "cfm.json").write_text(json.dumps(meta, indent=1))
        states = [{k: v.detach().cpu() for k, v in state.items()} for state in self.states_]
        torch.save(states, directory / "states.pt")
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> FlowMatcher:
        """Inverse of ``save``; the weights are loaded with ``weights_only=True``."""
        torch = _torch()
        directory = Path(directory)
        meta = json.loads((directory / "cfm.json").read_text())
        model = cls(CFMConfig(**meta["config"]), TrainConfig(**meta["train"]), device, int(meta["seed"]))
        model.scaler_ = LogitScaler.from_state_dict(meta["scaler"])
        model.mass_range_ = tuple(meta["mass_range"])
        model.record_ = TrainingRecord(**meta["record"])
        states = torch.load(directory / "states.pt", map_location=device, weights_only=True)
        model.states_ = states
        model.network_ = VelocityField(model.config).to(device)
        model.network_.load_state_dict(states[0])
        model.network_.eval()
        return model

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable training facts."""
        r = self.record_
        return {
            "epochs_run": r.epochs_run,
            "best_val_loss": r.best_val_loss,
            "best_epochs": r.best_epochs,
            "checkpoints_kept": len(self.states_),
            "n_train": r.n_train,
            "n_val": r.n_val,
            "train_seconds": r.seconds,
            "effective_lr": r.effective_lr,
            "mass_range_tev": list(self.mass_range_),
        }
