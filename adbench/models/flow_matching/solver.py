"""ODE integration t = 0 -> 1 with a library solver: torchdiffeq (adaptive Dormand-Prince ``dopri5`` or
a fixed-step ``euler`` / ``midpoint`` / ``rk4``), or zuko's Dormand-Prince when torchdiffeq is missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from adbench.errors import ConfigError
from adbench.models.flow_matching.configs import SolverConfig


@dataclass
class Integration:
    """One ODE solve: ``x`` (n, d) at t = 1, the number of function evaluations and the library used."""

    x: torch.Tensor
    nfe: int
    backend: str


def integrate(
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor, solver: SolverConfig
) -> Integration:
    """Solve ``dx/dt = f(t, x)`` from t = 0 to 1, counting the function evaluations."""
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
