"""The velocity field ``v(x | t, m)``: a residual network whose context features are split out.

``context(m, t)`` returns one feature per layer (functions of the mass and time only) and
``velocity(x, gammas)`` runs the rest, so SIGMA's context interpolation is "compute the gammas at the
two anchor masses and mix them", with one network.

Masses enter scaled to [-1, 1] through ``alpha(m) = (sin(2^k pi m), cos(2^k pi m))``, k = 0..K-1, and
times through ``beta(t) = (sin(k pi t), cos(k pi t))``, k = 1..J.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adbench.models.flow_matching.configs import NetworkConfig


def frequency_embedding(value: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """(n,) values, (K,) angular multipliers -> (n, 2K) ``(sin(k v), cos(k v))``."""
    angle = value[:, None] * ks[None, :]
    return torch.cat([angle.sin(), angle.cos()], dim=1)


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
    """The residual velocity network.

    ``context`` gives ``gamma_0`` (the first layer's context term, added to ``W_x x``) and, for every
    block, the gated projection ``(W_b c) * sigmoid(G_b c)`` of the embeddings c. Since the first
    layer is linear, mixing ``gamma_0`` equals mixing the first layer's whole output.

    Args:
        features: d, the number of modelled features.
        config: the layer sizes and embeddings.
    """

    def __init__(self, features: int, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        n_context = 2 * (config.mass_frequencies + config.time_frequencies)
        self.register_buffer("mass_ks", math.pi * 2.0 ** torch.arange(config.mass_frequencies, dtype=torch.float32))
        self.register_buffer("time_ks", math.pi * torch.arange(1, config.time_frequencies + 1, dtype=torch.float32))
        self.input = nn.Linear(features, config.width)
        # all context projections in one matrix (one kernel instead of blocks + 1): gamma_0, then a
        # (value, gate) pair per block
        self.context_projection = nn.Linear(n_context, config.width * (1 + 2 * config.blocks))
        self.blocks = nn.ModuleList(
            ResidualBlock(config.width, config.dropout, config.batch_norm) for _ in range(config.blocks)
        )
        self.head_norm = nn.BatchNorm1d(config.width) if config.batch_norm else nn.Identity()
        self.head = nn.Linear(config.width, features)
        self.act = nn.SiLU()

    def context(self, m: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """m: (n,) scaled masses in [-1, 1]; t: (n,) or a scalar time, broadcast to n.

        Returns:
            ``blocks + 1`` tensors of shape (n, width).
        """
        t = t.expand(m.shape) if t.dim() == 0 else t
        c = torch.cat([frequency_embedding(m, self.mass_ks), frequency_embedding(t, self.time_ks)], dim=1)
        projected = self.context_projection(c).split(self.config.width, dim=1)
        gated = [value * torch.sigmoid(gate) for value, gate in zip(projected[1::2], projected[2::2], strict=True)]
        return [projected[0], *gated]

    def velocity(self, x: torch.Tensor, gammas: list[torch.Tensor]) -> torch.Tensor:
        """x: (n, d); gammas: from ``context`` (each (n, width) or (1, width)) -> (n, d)."""
        h = self.input(x) + gammas[0]
        for block, gamma in zip(self.blocks, gammas[1:], strict=True):
            h = block(h, gamma)
        return self.head(self.act(self.head_norm(h)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """x: (n, d), t: (n,) or scalar, m: (n,) scaled -> (n, d) velocity."""
        return self.velocity(x, self.context(m, t))
