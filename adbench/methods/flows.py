"""Conditional normalizing flows p(x | m): the density estimator behind CATHODE and ANODE.

A masked autoregressive flow (MAF) from a library: zuko's ``MAF`` by default, or nflows with the
original CATHODE architecture (MADE blocks with batch norm and reverse permutations). Features are
mapped by the shared ``LogitScaler`` (min/max -> logit -> standardise) and the mass context is
standardised; the flow models the scaled features given the scaled mass.

Training keeps the data resident on the device, draws batches by indexing a random permutation,
holds out a seeded validation split and keeps the state_dicts of the ``keep_best`` epochs with the
lowest validation loss. Sampling and densities use those epochs as an equal-weight mixture (the
CATHODE recipe: the template is drawn equally from the best epochs).

Checkpoints are a directory with ``flow.json`` (configuration, scaler, context scaling, training
record) and ``states.pt`` (plain tensors, loadable with ``weights_only=True``).
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adbench.errors import ConfigError, MethodFailure
from adbench.preprocessing import LogitScaler

BACKENDS = ("zuko", "nflows")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class FlowConfig:
    """The flow architecture.

    Attributes:
        features: d, the number of modelled features.
        backend: ``zuko`` (zuko.flows.MAF) or ``nflows`` (MADE blocks with batch norm and
            reverse permutations, CATHODE's architecture).
        transforms: number of MADE blocks (autoregressive transforms).
        hidden: hidden units of each MADE layer.
        hidden_layers: hidden layers per MADE (2 = input -> hidden -> hidden -> output, as in
            CATHODE's MADE).
        batch_norm: a batch-norm layer after each MADE (nflows backend only).
    """

    features: int
    backend: str = "zuko"
    transforms: int = 15
    hidden: int = 128
    hidden_layers: int = 2
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown flow backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.features < 1 or self.transforms < 1 or self.hidden < 1 or self.hidden_layers < 1:
            raise ConfigError(f"flow sizes must be positive: {self}")


@dataclass(frozen=True)
class TrainConfig:
    """Maximum-likelihood training of the flow.

    Attributes:
        epochs: passes over the training split.
        batch_size: events per optimiser step.
        lr: Adam learning rate (peak rate for the cosine schedule).
        weight_decay: Adam (L2) weight decay.
        lr_schedule: ``constant`` or ``cosine`` (per step, from ``lr`` to ``lr / 100``).
        validation_fraction: share of the events held out (seeded) for model selection.
        keep_best: how many epochs with the lowest validation loss are kept for sampling.
        patience: stop after this many epochs without a new best validation loss (None: never).
        max_events: train on a seeded random subset of at most this many events (None: all).
        eval_batch_size: events per forward pass when validating, sampling or scoring.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    validation_fraction: float = 0.2
    keep_best: int = 10
    patience: int | None = None
    max_events: int | None = None
    eval_batch_size: int = 65_536

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.keep_best < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"epochs, batch_size, keep_best and eval_batch_size must be >= 1: {self}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or None, got {self.patience}")
        if self.max_events is not None and self.max_events < 10:
            raise ConfigError(f"max_events must be >= 10 or None, got {self.max_events}")


@dataclass
class TrainRecord:
    """What happened during training (JSON-serialisable, reported through ``info()``)."""

    epochs_run: int = 0
    train_loss: list[float] = field(default_factory=list)  # per epoch, mean NLL per event
    val_loss: list[float] = field(default_factory=list)
    kept_epochs: list[int] = field(default_factory=list)  # 1-based, best first
    kept_val_loss: list[float] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    seconds: float = 0.0
    stopped: str = "epochs"  # epochs | patience | diverged


@functools.cache  # the answer cannot change within a process; asked before the run and at every fit
def _nflows_error() -> str | None:
    """None when nflows imports and builds with the installed torch, else the error in one line."""
    try:
        import torch
        from nflows.distributions.normal import StandardNormal
        from nflows.flows.base import Flow
        from nflows.transforms import BatchNorm, CompositeTransform, MaskedAffineAutoregressiveTransform

        flow = Flow(
            CompositeTransform([
                MaskedAffineAutoregressiveTransform(features=2, hidden_features=4, context_features=1),
                BatchNorm(2),
            ]),
            StandardNormal([2]),
        )
        flow.log_prob(torch.zeros(3, 2), context=torch.zeros(3, 1))
    except Exception as error:  # noqa: BLE001 - any failure means "backend unusable", reported verbatim
        return f"{type(error).__name__}: {error}"
    return None


def check_backend(backend: str) -> None:
    """Raise ``ConfigError`` with the reason when the flow ``backend`` cannot be used here."""
    if backend != "nflows":
        return
    error = _nflows_error()
    if error is not None and error.startswith("ModuleNotFoundError") and "'nflows" in error:
        raise ConfigError(
            "flow backend 'nflows' is not installed: pip install nflows (or adbench[nflows]), "
            "or use backend = \"zuko\" (the default profiles)"
        )
    if error is not None:
        import torch

        raise ConfigError(
            f"flow backend 'nflows' does not work with torch {torch.__version__} ({error}); "
            "use backend = \"zuko\" or install a compatible nflows (pip install nflows)"
        )


def build_flow(config: FlowConfig):
    """The torch module of a conditional flow with 1 context feature (the mass).

    Returns a ``torch.nn.Module``; use ``flow_log_prob`` and ``flow_sample`` on it, which hide the
    backends' different calling conventions.
    """
    import torch

    if config.backend == "zuko":
        import zuko

        return zuko.flows.MAF(
            features=config.features,
            context=1,
            transforms=config.transforms,
            hidden_features=[config.hidden] * config.hidden_layers,
        )
    check_backend(config.backend)
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms import (
        BatchNorm,
        CompositeTransform,
        MaskedAffineAutoregressiveTransform,
        ReversePermutation,
    )

    layers = []
    for _ in range(config.transforms):
        # nflows' MADE: input -> hidden, (num_blocks) hidden -> hidden, hidden -> output
        layers.append(MaskedAffineAutoregressiveTransform(
            features=config.features,
            hidden_features=config.hidden,
            context_features=1,
            num_blocks=config.hidden_layers - 1,
            use_residual_blocks=False,
        ))
        if config.batch_norm:
            layers.append(BatchNorm(config.features))
        layers.append(ReversePermutation(config.features))
    return Flow(CompositeTransform(layers), StandardNormal([config.features]))


def flow_log_prob(module, backend: str, z, c):
    """log p(z | c): z (n, d), c (n, 1) tensors -> (n,) tensor."""
    if backend == "zuko":
        return module(c).log_prob(z)
    return module.log_prob(z, context=c)


def flow_sample(module, backend: str, c):
    """One draw per context row: c (n, 1) -> (n, d) tensor."""
    if backend == "zuko":
        return module(c).sample()
    return module.sample(1, context=c)[:, 0]


def _state_copy(module) -> dict[str, Any]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


class ConditionalFlow:
    """A conditional density estimator p(x | m) with sampling, densities and checkpoints.

    Args:
        config: the architecture.
        train: the training settings.
        device: ``cpu``, ``cuda`` or ``cuda:N``; data and model live there during ``fit``.
        seed: fixes the weights' initialisation, the validation split, the batches and sampling.
    """

    def __init__(self, config: FlowConfig, train: TrainConfig = TrainConfig(), *, device: str = "cpu", seed: int = 0) -> None:
        self.config = config
        self.train = train
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------ training
    def fit(self, x: np.ndarray, m: np.ndarray, scaler: LogitScaler | None = None) -> ConditionalFlow:
        """Fit p(x | m) by maximum likelihood.

        Args:
            x: (n, d) features in physical units.
            m: (n,) masses in TeV.
            scaler: a fitted feature scaler to use (ANODE shares one between its two flows so the
                densities are comparable); fitted on ``x`` when None.
        """
        import torch

        x = np.asarray(x, dtype=np.float32)
        m = np.asarray(m, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.config.features or len(m) != len(x):
            raise MethodFailure(f"flow expects x (n, {self.config.features}) and m (n,), got {x.shape}, {m.shape}")
        rng = np.random.default_rng([self.seed, 1])
        if self.train.max_events is not None and len(x) > self.train.max_events:
            keep = np.sort(rng.choice(len(x), self.train.max_events, replace=False))
            x, m = x[keep], m[keep]
        n_val = int(round(self.train.validation_fraction * len(x)))
        if len(x) - n_val < 2 * self.config.features or n_val < 1:
            raise MethodFailure(f"only {len(x)} events to train a flow on")
        self.scaler_ = scaler if scaler is not None else LogitScaler().fit(x)
        self.m_shift_ = float(m.mean())
        self.m_scale_ = float(m.std()) if m.std() > 0 else 1.0

        device = torch.device(self.device)
        order = torch.as_tensor(rng.permutation(len(x)), device=device)
        val, trn = order[:n_val], order[n_val:]
        z = torch.as_tensor(self.scaler_.transform(x), device=device)
        c = torch.as_tensor(self._context(m), device=device)
        z_trn, c_trn, z_val, c_val = z[trn], c[trn], z[val], c[val]
        del z, c

        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(self.seed)
            module = build_flow(self.config).to(device)
            self.record_ = self._train(module, z_trn, c_trn, z_val, c_val)
        self.module_ = module
        return self

    def _train(self, module, z_trn, c_trn, z_val, c_val) -> TrainRecord:
        import torch

        t = self.train
        start = time.perf_counter()
        record = TrainRecord(n_train=len(z_trn), n_val=len(z_val))
        # one fused kernel per step on a GPU instead of several per parameter tensor
        fused = z_trn.device.type == "cuda"
        optimizer = torch.optim.Adam(module.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=fused)
        steps_per_epoch = max(1, len(z_trn) // t.batch_size)  # drop the ragged last batch (batch norm)
        scheduler = None
        if t.lr_schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=t.epochs * steps_per_epoch, eta_min=t.lr / 100
            )
        generator = torch.Generator().manual_seed(self.seed)
        kept: list[tuple[float, int, dict[str, Any]]] = []  # (val loss, epoch, state), best first
        since_best = 0
        for epoch in range(1, t.epochs + 1):
            module.train()
            permutation = torch.randperm(len(z_trn), generator=generator).to(z_trn.device)
            total = torch.zeros((), device=z_trn.device)
            for step in range(steps_per_epoch):
                index = permutation[step * t.batch_size:(step + 1) * t.batch_size]
                loss = -flow_log_prob(module, self.config.backend, z_trn[index], c_trn[index]).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total += loss.detach()
            train_loss = float(total) / steps_per_epoch  # one host sync per epoch
            val_loss = -float(self._mean_log_prob(module, z_val, c_val))
            record.train_loss.append(train_loss)
            record.val_loss.append(val_loss)
            record.epochs_run = epoch
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                record.stopped = "diverged"
                break
            if len(kept) < t.keep_best or val_loss < kept[-1][0]:
                kept.append((val_loss, epoch, _state_copy(module)))
                kept.sort(key=lambda item: item[0])
                del kept[t.keep_best:]
            if val_loss <= kept[0][0]:
                since_best = 0
            else:
                since_best += 1
                if t.patience is not None and since_best >= t.patience:
                    record.stopped = "patience"
                    break
        if not kept:
            raise MethodFailure(
                f"flow training diverged at epoch {record.epochs_run} (train loss {record.train_loss[-1]}, "
                f"validation loss {record.val_loss[-1]}) before any finite epoch"
            )
        self.states_ = [state for _, _, state in kept]
        record.kept_epochs = [epoch for _, epoch, _ in kept]
        record.kept_val_loss = [loss for loss, _, _ in kept]
        record.seconds = time.perf_counter() - start
        return record

    def _mean_log_prob(self, module, z, c):
        """Mean log-density over (z, c) in eval mode, in chunks."""
        import torch

        module.eval()
        total = torch.zeros((), dtype=torch.float64, device=z.device)
        with torch.no_grad():
            for lo in range(0, len(z), self.train.eval_batch_size):
                hi = lo + self.train.eval_batch_size
                total += flow_log_prob(module, self.config.backend, z[lo:hi], c[lo:hi]).double().sum()
        return total / len(z)

    # ------------------------------------------------------------------ use
    def _context(self, m: np.ndarray) -> np.ndarray:
        """(n,) masses -> (n, 1) float32 standardised context."""
        return ((np.asarray(m, dtype=np.float64) - self.m_shift_) / self.m_scale_).astype(np.float32)[:, None]

    def _rng_devices(self) -> list[int]:
        import torch

        device = torch.device(self.device)
        if device.type != "cuda":
            return []
        return [device.index if device.index is not None else torch.cuda.current_device()]

    @property
    def n_kept(self) -> int:
        return len(self.states_)

    def sample(self, m: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Draw one event per mass, equally from the kept epochs.

        Args:
            m: (n,) masses in TeV.
            seed: sampling seed (defaults to the flow's seed).

        Returns:
            (n, d) float32 features in physical units, in the order of ``m``.
        """
        import torch

        m = np.asarray(m, dtype=np.float64)
        seed = self.seed if seed is None else seed
        out = np.empty((len(m), self.config.features), dtype=np.float32)
        # masses are assigned to the kept epochs at random so that no epoch gets one mass range
        chunks = np.array_split(np.random.default_rng([seed, 2]).permutation(len(m)), self.n_kept)
        c_all = torch.as_tensor(self._context(m), device=torch.device(self.device))
        step = self.train.eval_batch_size
        with torch.random.fork_rng(devices=self._rng_devices()), torch.no_grad():
            torch.manual_seed(seed)
            for state, chunk in zip(self.states_, chunks):
                self.module_.load_state_dict(state)
                self.module_.eval()
                index = torch.as_tensor(chunk, device=c_all.device)
                for lo in range(0, len(chunk), step):
                    z = flow_sample(self.module_, self.config.backend, c_all[index[lo:lo + step]])
                    out[chunk[lo:lo + step]] = z.float().cpu().numpy()
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise MethodFailure(f"flow produced {int(bad.sum())} of {len(m)} samples with NaN/inf values")
        return self.scaler_.inverse_transform(out)

    def log_prob(self, x: np.ndarray, m: np.ndarray, physical: bool = True) -> np.ndarray:
        """log p(x | m) of the kept epochs' equal-weight mixture.

        Args:
            x: (n, d) features in physical units; m: (n,) masses in TeV.
            physical: add the log-Jacobian of the feature scaler, giving a density in physical
                units (per unit of x); False gives the density of the scaled features. Values
                outside the scaler's fitted range are clipped to it first.

        Returns:
            (n,) float64 log-densities.
        """
        import torch

        x = np.asarray(x, dtype=np.float32)
        device = torch.device(self.device)
        z = torch.as_tensor(self.scaler_.transform(x), device=device)
        c = torch.as_tensor(self._context(m), device=device)
        step = self.train.eval_batch_size
        per_state = torch.empty((self.n_kept, len(x)), dtype=torch.float64, device=device)
        with torch.no_grad():
            for k, state in enumerate(self.states_):
                self.module_.load_state_dict(state)
                self.module_.eval()
                for lo in range(0, len(x), step):
                    per_state[k, lo:lo + step] = flow_log_prob(
                        self.module_, self.config.backend, z[lo:lo + step], c[lo:lo + step]
                    ).double()
        out = (torch.logsumexp(per_state, dim=0) - math.log(self.n_kept)).cpu().numpy()
        if physical:
            out = out + scaler_log_jacobian(self.scaler_, x)
        return out

    # ------------------------------------------------------------------ checkpoints
    def info(self) -> dict[str, Any]:
        """JSON-serialisable training facts."""
        r = self.record_
        return {
            "backend": self.config.backend,
            "transforms": self.config.transforms,
            "hidden": self.config.hidden,
            "epochs": r.epochs_run,
            "stopped": r.stopped,
            "kept_epochs": list(r.kept_epochs),
            "best_val_loss": list(r.kept_val_loss),
            "final_train_loss": r.train_loss[-1] if r.train_loss else None,
            "n_train": r.n_train,
            "n_val": r.n_val,
            "train_seconds": round(r.seconds, 3),
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``flow.json`` and ``states.pt`` into ``directory`` (created). Returns it."""
        import torch

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "adbench-conditional-flow/1",
            "config": asdict(self.config),
            "train": asdict(self.train),
            "seed": self.seed,
            "scaler": self.scaler_.state_dict(),
            "m_shift": self.m_shift_,
            "m_scale": self.m_scale_,
            "record": asdict(self.record_),
        }
        (directory / "flow.json").write_text(json.dumps(meta, indent=1))
        states = [{key: value.cpu() for key, value in state.items()} for state in self.states_]
        torch.save(states, directory / "states.pt")
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> ConditionalFlow:
        """Rebuild a flow written by ``save`` (no pickled modules: tensors and JSON only)."""
        import torch

        directory = Path(directory)
        meta = json.loads((directory / "flow.json").read_text())
        flow = cls(FlowConfig(**meta["config"]), TrainConfig(**meta["train"]), device=device, seed=meta["seed"])
        flow.scaler_ = LogitScaler.from_state_dict(meta["scaler"])
        flow.m_shift_, flow.m_scale_ = float(meta["m_shift"]), float(meta["m_scale"])
        flow.record_ = TrainRecord(**meta["record"])
        states = torch.load(directory / "states.pt", map_location=torch.device(device), weights_only=True)
        flow.states_ = states
        flow.module_ = build_flow(flow.config).to(torch.device(device))
        flow.module_.load_state_dict(states[0])
        return flow


def scaler_log_jacobian(scaler: LogitScaler, x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n,) log |det dz/dx| of ``LogitScaler.transform`` (min/max -> logit -> standardise).

    Inside the fitted range, for each feature: z = (logit(a + b (x - min) / span) - mean) / std
    with a = margin, b = 1 - 2 margin, so dz/dx = b / (span u (1 - u) std).
    """
    x = np.asarray(x, dtype=np.float64)
    u = np.clip((x - scaler.min_) / scaler.span_, 0.0, 1.0)
    u = scaler.margin + (1.0 - 2.0 * scaler.margin) * u
    log_det = np.log(1.0 - 2.0 * scaler.margin) - np.log(scaler.span_) - np.log(u) - np.log1p(-u) - np.log(scaler.std_)
    return log_det.sum(axis=1)
