"""Settings of the flow-matching network and of its ODE solve (plain dataclasses; no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adbench.errors import ConfigError
from adbench.settings import ADDED_LATER

SOLVERS = ("dopri5", "rk4", "midpoint", "euler")
ARCHITECTURE_NAMES = ("sigma", "gated-bias")
#: How the training times of the path are drawn (``adbench.models.flow_matching.path.training_times``).
TIME_SAMPLINGS = ("uniform", "logit-normal")
CHECKPOINT_USES = ("split", "average")
#: Events per ODE solve when ``SolverConfig.batch`` is None: cache-sized chunks are several times
#: faster on a CPU, large batches fill a GPU.
CPU_CHUNK, GPU_CHUNK = 4096, 262_144


@dataclass(frozen=True)
class NetworkConfig:
    """The velocity network ``v(x | t, m)``.

    Attributes:
        architecture: ``sigma`` (the published network) or ``gated-bias`` (adbench's first one); see
            ``adbench.models.flow_matching.network``.
        width: hidden units of every layer.
        blocks: residual blocks.
        dropout: dropout rate inside each block.
        batch_norm: batch norm inside the blocks (and before the output head).
        mass_frequencies: K of the mass embedding ``alpha(m)``, k = 0..K-1 (SIGMA: 9).
        time_frequencies: J of the time embedding ``beta(t)``, k = 1..J (SIGMA: 3).
        sigma: the minimal width of the probability path.
        time_sampling: how the training times are drawn: ``uniform`` on [0, 1] (the paper's) or
            ``logit-normal``, t = sigmoid(time_location + N(0, 1)) (fewer draws at the ends; a positive
            location moves them towards the data at t = 1). The validation loss keeps uniform times.
        time_location: the logit-normal's location, in [-5, 5] (0 with ``uniform``).
    """

    architecture: str = "sigma"
    width: int = 256
    blocks: int = 4
    dropout: float = 0.2
    batch_norm: bool = True
    mass_frequencies: int = 9
    time_frequencies: int = 3
    sigma: float = 1e-3
    time_sampling: str = field(default="uniform", metadata=ADDED_LATER)
    time_location: float = field(default=0.0, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        if self.time_sampling not in TIME_SAMPLINGS:
            raise ConfigError(
                f"unknown time_sampling {self.time_sampling!r}; choose one of {', '.join(TIME_SAMPLINGS)}"
            )
        if not -5.0 <= self.time_location <= 5.0:
            raise ConfigError(f"time_location must be in [-5, 5], got {self.time_location}")
        if self.time_sampling == "uniform" and self.time_location != 0.0:
            raise ConfigError(f"time_location {self.time_location} needs time_sampling = 'logit-normal'")
        if self.architecture not in ARCHITECTURE_NAMES:
            raise ConfigError(
                f"unknown network architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURE_NAMES)}"
            )
        if self.width < 1 or self.blocks < 1:
            raise ConfigError(f"the velocity network needs width and blocks >= 1, got {self.width}, {self.blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.mass_frequencies < 1 or self.time_frequencies < 1:
            raise ConfigError("the velocity network needs at least one mass and one time frequency")
        if not 0.0 <= self.sigma < 1.0:
            raise ConfigError(f"the path's sigma must be in [0, 1), got {self.sigma}")


@dataclass(frozen=True)
class SolverConfig:
    """ODE integration from t = 0 (noise) to t = 1 (data).

    Attributes:
        method: ``dopri5`` (adaptive Dormand-Prince) or a fixed-step ``rk4``, ``midpoint``, ``euler``.
        atol, rtol: tolerances of ``dopri5``.
        steps: number of steps of a fixed-step method.
        batch: events integrated together; None picks by device (``CPU_CHUNK`` or ``GPU_CHUNK``).
        checkpoints: how the kept checkpoints make the template: ``split`` (each integrates an equal
            share of the events: the cost of one model) or ``average`` (the velocity is their mean:
            K times the cost per step).
    """

    method: str = "dopri5"
    atol: float = 1e-5
    rtol: float = 1e-5
    steps: int = 20
    batch: int | None = None
    checkpoints: Literal["split", "average"] = "split"

    def __post_init__(self) -> None:
        if self.method not in SOLVERS:
            raise ConfigError(f"unknown ODE solver {self.method!r}; choose one of {', '.join(SOLVERS)}")
        if self.checkpoints not in CHECKPOINT_USES:
            raise ConfigError(f"checkpoints must be 'split' or 'average', got {self.checkpoints!r}")
        if self.steps < 1 or (self.batch is not None and self.batch < 1) or not (self.atol > 0 and self.rtol > 0):
            raise ConfigError(f"bad ODE solver settings {self}")

    def chunk(self, device_type: str) -> int:
        """Events per ODE solve on a device of this type ("cpu", "cuda")."""
        return self.batch or (CPU_CHUNK if device_type == "cpu" else GPU_CHUNK)


SELECTION_METRICS = ("loss", "nll")


@dataclass(frozen=True)
class SelectionConfig:
    """How the epochs to keep are ranked.

    Attributes:
        metric: ``nll`` (the exact validation negative log-likelihood, as the paper selected) or
            ``loss`` (the CFM loss on the validation split with fixed noise; cheaper).
        events: validation events the NLL is computed on (a fixed random subset of the split).
        solver: the backward ODE solve of the NLL.
    """

    metric: str = "nll"
    events: int = 20_000
    solver: SolverConfig = field(default_factory=lambda: SolverConfig(method="rk4", steps=8))

    def __post_init__(self) -> None:
        if self.metric not in SELECTION_METRICS:
            raise ConfigError(f"unknown selection metric {self.metric!r}; choose one of {', '.join(SELECTION_METRICS)}")
        if self.events < 10:
            raise ConfigError(f"selection events must be >= 10, got {self.events}")
