"""Conditional normalizing flows p(x | m): the density estimator behind CATHODE and ANODE.

A masked autoregressive flow from a library: zuko's ``MAF`` (affine, as published) by default or
zuko's ``NSF`` (rational-quadratic splines), or nflows with the original CATHODE architecture (MADE
blocks with batch norm and reverse permutations). Features are mapped by the shared ``LogitScaler``
(min/max -> logit -> standardise) and the context is the standardised mass (or ln mass); the flow
models the scaled features given the scaled mass. Training is ``adbench.models.training`` with
the negative log-likelihood as loss and validation metric. Sampling and densities use the kept epochs
as an equal-weight mixture (the CATHODE recipe: the template is drawn equally from the best epochs).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adbench.errors import ConfigError, MethodFailure
from adbench.models.checkpoints import load_checkpoint, save_checkpoint
from adbench.models.training import (
    TrainConfig,
    TrainingRecord,
    chunked_sum,
    kept_log_prob,
    rng_devices,
    train_module,
    validation_split,
)
from adbench.preprocessing import LogitScaler
from adbench.settings import ADDED_LATER, hashed_settings

BACKENDS = ("zuko", "nflows")
KINDS = ("maf", "nsf")
MASS_CONTEXTS = ("mass", "log-mass")
#: Spline bins when none are given. Never change it: it is left out of the task hash at this value.
DEFAULT_BINS = 8
#: zuko's spline range [-5, 5] (identity outside). Never change it: it is left out of the task hash at this value.
DEFAULT_SPLINE_BOUND = 5.0
#: ``spline_bound`` that covers every value the fitted feature scaler can give (set at fit).
COVER = "cover"
CHECKPOINT_KIND = "flow"


@dataclass(frozen=True)
class FlowConfig:
    """The flow architecture.

    Attributes:
        backend: ``zuko`` (zuko.flows.MAF or NSF, by ``kind``) or ``nflows`` (MADE blocks with batch
            norm and reverse permutations, CATHODE's architecture).
        transforms: number of autoregressive transforms (MADE blocks).
        hidden: hidden units of each MADE layer.
        hidden_layers: hidden layers per MADE (2 = input -> hidden -> hidden -> output, as in
            CATHODE's MADE).
        batch_norm: a batch-norm layer after each MADE (nflows backend only).
        kind: ``maf`` (affine autoregressive transforms, the published CATHODE / ANODE flow) or ``nsf``
            (monotonic rational-quadratic splines on [-5, 5], identity outside; zuko backend only),
            which models sharp or skewed marginals (delta_R's peak near pi) that an affine MAF
            spreads out.
        bins: spline bins per feature (``nsf`` only).
        spline_bound: the splines transform [-bound, bound] of each scaled feature and are the
            identity outside (``nsf`` only): events beyond get the base Gaussian's tail as density.
            ``"cover"``: the bound is set at fit to the largest value the fitted ``LogitScaler``
            can give any feature, so that no event, training or test, falls outside the splines.
        mass_context: the mass coordinate the context standardises: ``mass`` (m itself) or
            ``log-mass`` (ln m), in which a falling spectrum's masses are spread more evenly and the
            features' trends with mass are closer to straight.
    """

    backend: str = "zuko"
    transforms: int = 15
    hidden: int = 128
    hidden_layers: int = 2
    batch_norm: bool = True
    kind: str = field(default="maf", metadata=ADDED_LATER)
    bins: int = field(default=DEFAULT_BINS, metadata=ADDED_LATER)
    mass_context: str = field(default="mass", metadata=ADDED_LATER)
    spline_bound: float | str = field(default=DEFAULT_SPLINE_BOUND, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown flow backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.kind not in KINDS:
            raise ConfigError(f"unknown flow kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.mass_context not in MASS_CONTEXTS:
            raise ConfigError(f"unknown flow mass_context {self.mass_context!r}; "
                              f"choose one of {', '.join(MASS_CONTEXTS)}")
        if self.kind == "nsf" and self.backend != "zuko":
            raise ConfigError(f"flow kind 'nsf' needs backend = \"zuko\" (got {self.backend!r})")
        if self.transforms < 1 or self.hidden < 1 or self.hidden_layers < 1 or self.bins < 2:
            raise ConfigError(f"flow sizes must be positive (bins >= 2): {self}")
        if self.spline_bound != COVER and (
                isinstance(self.spline_bound, bool) or not isinstance(self.spline_bound, (int, float))
                or not 0 < self.spline_bound < float("inf")):
            raise ConfigError(f"flow spline_bound must be a positive number or \"{COVER}\", "
                              f"got {self.spline_bound!r}")
        if self.kind == "maf" and self.spline_bound != DEFAULT_SPLINE_BOUND:
            raise ConfigError(f"flow spline_bound = {self.spline_bound} only applies to kind = \"nsf\"")
        if self.kind == "maf" and self.bins != DEFAULT_BINS:
            # an affine flow has no bins: a value here would change the task hash, not the model
            raise ConfigError(f"flow bins = {self.bins} only applies to kind = \"nsf\" (this flow is \"maf\")")


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


def build_flow(features: int, config: FlowConfig, spline_bound: float | None = None):
    """The torch module of a conditional flow with 1 context feature (the mass).

    ``spline_bound``: the spline range to build with, in place of ``config.spline_bound`` (which
    must then be a number); a fitted ``ConditionalFlow`` passes its resolved ``spline_bound_``.
    Returns a ``torch.nn.Module``; use ``flow_log_prob`` and ``flow_sample`` on it, which hide the
    backends' different calling conventions.
    """

    if config.backend == "zuko":
        import zuko

        hidden = [config.hidden] * config.hidden_layers
        bound = config.spline_bound if spline_bound is None else spline_bound
        if bound == COVER:
            raise MethodFailure(f"spline_bound = \"{COVER}\" is set from a fitted feature scaler: "
                                "build the flow through ConditionalFlow.fit")
        if config.kind == "nsf" and bound != DEFAULT_SPLINE_BOUND:
            from zuko.transforms import MonotonicRQSTransform

            # zuko's NSF with another spline range: its MAF with the same spline transform and shapes
            return zuko.flows.MAF(features=features, context=1, transforms=config.transforms,
                                  hidden_features=hidden,
                                  univariate=functools.partial(MonotonicRQSTransform, bound=bound),
                                  shapes=[(config.bins,), (config.bins,), (config.bins - 1,)])
        if config.kind == "nsf":
            return zuko.flows.NSF(features=features, context=1, bins=config.bins,
                                  transforms=config.transforms, hidden_features=hidden)
        return zuko.flows.MAF(features=features, context=1, transforms=config.transforms, hidden_features=hidden)
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
            features=features,
            hidden_features=config.hidden,
            context_features=1,
            num_blocks=config.hidden_layers - 1,
            use_residual_blocks=False,
        ))
        if config.batch_norm:
            layers.append(BatchNorm(features))
        layers.append(ReversePermutation(features))
    return Flow(CompositeTransform(layers), StandardNormal([features]))


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


class ConditionalFlow:
    """A conditional density estimator p(x | m) with sampling, densities and checkpoints.

    Args:
        config: the architecture.
        train: the training settings.
        device: ``cpu``, ``cuda`` or ``cuda:N``; data and model live there during ``fit``.
        seed: fixes the weights' initialisation, the validation split, the batches and sampling.
    """

    def __init__(
        self, config: FlowConfig, train: TrainConfig | None = None, *, device: str = "cpu", seed: int = 0
    ) -> None:
        self.config = config
        self.train = TrainConfig() if train is None else train
        self.device = device
        self.seed = seed

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
        if x.ndim != 2 or len(m) != len(x):
            raise MethodFailure(f"flow expects x (n, d) and m (n,), got {x.shape} and {m.shape}")
        train_index, val_index = validation_split(len(x), self.train, self.seed)
        if len(train_index) < 2 * x.shape[1] or len(val_index) < 1:
            raise MethodFailure(f"only {len(x)} events to train a flow on")
        used = np.sort(np.concatenate([train_index, val_index]))
        if self.config.mass_context == "log-mass" and not (m[used] > 0).all():
            raise MethodFailure(f"flow mass_context = \"log-mass\" needs positive masses; got {m[used].min():g} TeV")
        self.n_features_ = x.shape[1]
        self.scaler_ = scaler if scaler is not None else LogitScaler().fit(x[used])
        self.spline_bound_ = self._resolved_spline_bound()
        coordinate = self._mass_coordinate(m[used])
        self.m_shift_ = float(coordinate.mean())
        self.m_scale_ = float(coordinate.std()) if coordinate.std() > 0 else 1.0
        device = torch.device(self.device)

        def tensors(index: np.ndarray) -> tuple:
            return (torch.as_tensor(self.scaler_.transform(x[index]), device=device),
                    torch.as_tensor(self._context(m[index]), device=device))

        backend = self.config.backend

        def loss(module, batch):
            zb, cb = batch
            return -flow_log_prob(module, backend, zb, cb).mean()

        trained = train_module(
            lambda: build_flow(self.n_features_, self.config, self.spline_bound_),
            tensors(train_index),
            tensors(val_index),
            loss,
            lambda module, data: -self._mean_log_prob(module, *data),
            self.train,
            seed=self.seed,
            device=self.device,
            label="flow",
            share_key=("ConditionalFlow", hashed_settings(self.config)),
        )
        self.module_, self.states_, self.record_ = trained.module, trained.states, trained.record
        return self

    def _resolved_spline_bound(self) -> float:
        """``config.spline_bound`` as a number: with ``"cover"``, the largest |value| the fitted scaler
        can give (rounded up to a tenth), so every event lies inside the splines."""
        if self.config.spline_bound != COVER:
            return float(self.config.spline_bound)
        if not hasattr(self.scaler_, "scaled_range"):
            raise MethodFailure(f"spline_bound = \"{COVER}\" needs a scaler with a bounded range "
                                f"(LogitScaler), got {type(self.scaler_).__name__}")
        low, high = self.scaler_.scaled_range()
        return float(np.ceil(10.0 * max(np.abs(low).max(), np.abs(high).max()) + 1e-6) / 10.0)

    def _mean_log_prob(self, module, z, c) -> float:
        """Mean log-density over (z, c) in eval mode, in chunks."""
        module.eval()
        total = chunked_sum(lambda zb, cb: flow_log_prob(module, self.config.backend, zb, cb), (z, c),
                            self.train.eval_batch_size)
        return total / len(z)

    def _mass_coordinate(self, m):
        """Masses in TeV (a numpy array or a torch tensor) -> the coordinate the context standardises."""
        if self.config.mass_context == "mass":
            return m
        return np.log(m) if isinstance(m, np.ndarray) else m.log()

    def _context(self, m: np.ndarray) -> np.ndarray:
        """(n,) masses -> (n, 1) float32 standardised context."""
        return self.context_of(np.asarray(m, dtype=np.float64)).astype(np.float32)[:, None]

    def context_of(self, m):
        """(n,) masses in TeV, a numpy array or a torch tensor (differentiable) -> (n,) context values
        of the same kind: the standardised mass or ln mass (``FlowConfig.mass_context``)."""
        return (self._mass_coordinate(m) - self.m_shift_) / self.m_scale_

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
        out = np.empty((len(m), self.n_features_), dtype=np.float32)
        # masses are assigned to the kept epochs at random so that no epoch gets one mass range
        chunks = np.array_split(np.random.default_rng([seed, 2]).permutation(len(m)), self.n_kept)
        device = torch.device(self.device)
        c_all = torch.as_tensor(self._context(m), device=device)
        step = self.train.eval_batch_size
        with torch.random.fork_rng(devices=rng_devices(device)), torch.no_grad():
            torch.manual_seed(seed)
            for state, chunk in zip(self.states_, chunks, strict=True):
                self.module_.load_state_dict(state)
                self.module_.eval()
                index = torch.as_tensor(chunk, device=device)
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
        out = kept_log_prob(
            self.module_, self.states_, lambda s: flow_log_prob(self.module_, self.config.backend, z[s], c[s]),
            len(x), self.train.eval_batch_size, device,
        )
        if physical:
            out = out + scaler_log_jacobian(self.scaler_, x)
        return out

    def info(self) -> dict[str, Any]:
        """JSON-serialisable training facts."""
        return {
            "backend": self.config.backend,
            "kind": self.config.kind,
            "transforms": self.config.transforms,
            "hidden": self.config.hidden,
            **({"spline_bound": self.spline_bound_} if self.config.kind == "nsf" else {}),
            **self.record_.summary(),
            "kept_val_losses": list(self.record_.kept_val_losses),
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``flow.json`` and ``states.pt`` into ``directory`` (created). Returns it."""
        meta = {
            "config": asdict(self.config),
            "train": asdict(self.train),
            "seed": self.seed,
            "n_features": self.n_features_,
            "scaler": self.scaler_.state_dict(),
            "spline_bound": self.spline_bound_,
            "m_shift": self.m_shift_,
            "m_scale": self.m_scale_,
            "record": asdict(self.record_),
        }
        return save_checkpoint(directory, CHECKPOINT_KIND, meta, self.states_)

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> ConditionalFlow:
        """Rebuild a flow written by ``save`` (no pickled modules: tensors and JSON only)."""
        import torch

        meta, states = load_checkpoint(directory, CHECKPOINT_KIND, device)
        flow = cls(FlowConfig(**meta["config"]), TrainConfig(**meta["train"]), device=device, seed=meta["seed"])
        flow.n_features_ = int(meta["n_features"])
        flow.scaler_ = LogitScaler.from_state_dict(meta["scaler"])
        if "spline_bound" not in meta and flow.config.spline_bound == COVER:
            raise ConfigError(f"{directory}: a flow with spline_bound = \"{COVER}\" but no fitted bound in its "
                              "checkpoint; refit it")
        flow.spline_bound_ = float(meta.get("spline_bound", flow.config.spline_bound))
        flow.m_shift_, flow.m_scale_ = float(meta["m_shift"]), float(meta["m_scale"])
        flow.record_ = TrainingRecord(**meta["record"])
        flow.states_ = states
        flow.module_ = build_flow(flow.n_features_, flow.config, flow.spline_bound_).to(torch.device(device))
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
