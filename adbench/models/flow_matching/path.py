"""The probability path of conditional flow matching and its regression loss.

``x_t = t x1 + (1 - (1 - sigma) t) x0`` runs from noise ``x0 ~ N(0, I)`` at t = 0 to (nearly) the
data ``x1`` at t = 1; its velocity ``x1 - (1 - sigma) x0`` is the regression target.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def path_sample(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The conditional path and its velocity.

    Args:
        x0: (n, d) noise, x1: (n, d) data, t: (n,) times in [0, 1].

    Returns:
        ``x_t`` and the target ``x1 - (1 - sigma) x0``, both (n, d).
    """
    t = t[:, None]
    return t * x1 + (1.0 - (1.0 - sigma) * t) * x0, x1 - (1.0 - sigma) * x0


def cfm_loss(
    net: Callable[..., torch.Tensor], x1: torch.Tensor, m: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Mean squared error between ``net(x_t, t, m)`` and the path's target velocity (a scalar)."""
    xt, target = path_sample(x0, x1, t, sigma)
    return (net(xt, t, m) - target).pow(2).mean()


def training_times(n: int, sampling: str, location: float, device: torch.device | str) -> torch.Tensor:
    """(n,) training times in [0, 1]: ``uniform``, or ``logit-normal`` sigmoid(location + N(0, 1)).
    Drawn from the global torch generator, as the noise is."""
    if sampling == "uniform":
        return torch.rand(n, device=device)
    if sampling == "logit-normal":
        return torch.sigmoid(location + torch.randn(n, device=device))
    raise ValueError(f"unknown time sampling {sampling!r}")


def cfm_training_loss(
    net: Callable[..., torch.Tensor], x1: torch.Tensor, m: torch.Tensor, sigma: float, sampling: str, location: float,
) -> torch.Tensor:
    """The CFM loss of a training batch (x1 (n, d), m (n,)) with fresh noise and times from the global
    torch generator: the noise is drawn before the times, the order that fixes every stored result."""
    x0 = torch.randn_like(x1)
    return cfm_loss(net, x1, m, x0, training_times(len(x1), sampling, location, x1.device), sigma)
