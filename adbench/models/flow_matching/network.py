"""The velocity field ``v(x | t, m)``: residual networks whose context features are split out.

Every network has ``context(m, t)`` (one feature per layer, functions of the mass and time only),
``velocity(x, gammas)`` (the rest), and ``mixed_velocity(x, gammas_1, gammas_2, xi)``: SIGMA's
context interpolation, the layer features of two anchor masses mixed with weight ``xi`` in the way
the architecture defines, with one network.

Masses enter scaled to [-1, 1] through ``alpha(m) = (sin(2^k pi m), cos(2^k pi m))``, k = 0..K-1, and
times through ``beta(t) = (sin(k pi t), cos(k pi t))``, k = 1..J; c = (alpha, beta).

Architectures (``NetworkConfig.architecture``):

- ``sigma``, the published network (arXiv:2410.20537, as in the authors' code): a first layer on
  [x, c] followed by ReLU; blocks ``h + branch(h) * sigmoid(relu(W_b c))`` with the branch
  BN -> ReLU -> linear -> BN -> ReLU -> dropout -> linear (last layer initialised near zero, batch
  norm eps 1e-3); a linear output. Context interpolation mixes the activated first-layer outputs
  ``relu(W x + U c_1)`` and ``relu(W x + U c_2)`` and the activated block contexts ``relu(W_b c)``.
- ``gated-bias``, adbench's first network: the context enters each block as an additive gated bias
  ``(W_b c) * sigmoid(G_b c)`` inside the branch, SiLU, a normalised output head; interpolation mixes
  every context feature linearly (the first layer before its activation).
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


class _Embedding(nn.Module):
    """The frequency embedding c(m, t) shared by both architectures."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.register_buffer("mass_ks", math.pi * 2.0 ** torch.arange(config.mass_frequencies, dtype=torch.float32))
        self.register_buffer("time_ks", math.pi * torch.arange(1, config.time_frequencies + 1, dtype=torch.float32))
        self.size = 2 * (config.mass_frequencies + config.time_frequencies)

    def forward(self, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """m: (n,) scaled masses; t: (n,) or a scalar time -> (n, size)."""
        t = t.expand(m.shape) if t.dim() == 0 else t
        return torch.cat([frequency_embedding(m, self.mass_ks), frequency_embedding(t, self.time_ks)], dim=1)


class SigmaBlock(nn.Module):
    """``h + branch(h) * sigmoid(gate)``: the published block, gated by its activated context."""

    def __init__(self, width: int, dropout: float, batch_norm: bool) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(width, eps=1e-3)) if batch_norm else nn.Identity
        self.norm1, self.norm2 = norm(), norm()
        self.linear1, self.linear2 = nn.Linear(width, width), nn.Linear(width, width)
        nn.init.uniform_(self.linear2.weight, -1e-3, 1e-3)  # each block starts as the identity
        nn.init.uniform_(self.linear2.bias, -1e-3, 1e-3)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        branch = self.linear1(torch.relu(self.norm1(h)))
        branch = self.linear2(self.dropout(torch.relu(self.norm2(branch))))
        return h + branch * torch.sigmoid(gate)


class SigmaVelocityField(nn.Module):
    """The published residual network (see the module docstring).

    ``context`` returns the first layer's context term ``U c + b`` (before the activation, since the
    first layer also sees x) and every block's activated context ``relu(W_b c)``.

    Args:
        features: d, the number of modelled features.
        config: the layer sizes and embeddings.
    """

    def __init__(self, features: int, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = _Embedding(config)
        self.input = nn.Linear(features, config.width, bias=False)  # the bias sits in the context part
        # every context projection in one matrix (one kernel): the first layer's U c + b, then W_b c per block
        self.context_projection = nn.Linear(self.embedding.size, config.width * (1 + config.blocks))
        self.blocks = nn.ModuleList(
            SigmaBlock(config.width, config.dropout, config.batch_norm) for _ in range(config.blocks)
        )
        self.head = nn.Linear(config.width, features)

    def context(self, m: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """m: (n,) scaled masses in [-1, 1]; t: (n,) or scalar -> ``blocks + 1`` tensors (n, width)."""
        first, *gates = self.context_projection(self.embedding(m, t)).split(self.config.width, dim=1)
        return [first, *(torch.relu(gate) for gate in gates)]

    def _blocks(self, h: torch.Tensor, gates: list[torch.Tensor]) -> torch.Tensor:
        for block, gate in zip(self.blocks, gates, strict=True):
            h = block(h, gate)
        return self.head(h)

    def velocity(self, x: torch.Tensor, gammas: list[torch.Tensor]) -> torch.Tensor:
        """x: (n, d); gammas: from ``context`` (each (n, width) or (1, width)) -> (n, d)."""
        return self._blocks(torch.relu(self.input(x) + gammas[0]), gammas[1:])

    def mixed_velocity(
        self, x: torch.Tensor, first: list[torch.Tensor], second: list[torch.Tensor], xi: torch.Tensor
    ) -> torch.Tensor:
        """The velocity with every layer's activated features mixed ``xi * first + (1 - xi) * second``.

        Args:
            x: (n, d); first, second: ``context`` at the two anchors; xi: (n, 1) weights.
        """
        projected = self.input(x)
        h = xi * torch.relu(projected + first[0]) + (1.0 - xi) * torch.relu(projected + second[0])
        gates = [xi * a + (1.0 - xi) * b for a, b in zip(first[1:], second[1:], strict=True)]
        return self._blocks(h, gates)

    def forward(self, x: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """x: (n, d), t: (n,) or scalar, m: (n,) scaled -> (n, d) velocity."""
        return self.velocity(x, self.context(m, t))


class GatedBiasBlock(nn.Module):
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


class GatedBiasVelocityField(nn.Module):
    """adbench's first network (see the module docstring): ``context`` gives ``gamma_0`` (added to
    ``W x``) and, for every block, ``(W_b c) * sigmoid(G_b c)``. The first layer is linear, so mixing
    ``gamma_0`` mixes the whole first-layer feature.

    Args:
        features: d, the number of modelled features.
        config: the layer sizes and embeddings.
    """

    def __init__(self, features: int, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = _Embedding(config)
        self.input = nn.Linear(features, config.width)
        # all context projections in one matrix: gamma_0, then a (value, gate) pair per block
        self.context_projection = nn.Linear(self.embedding.size, config.width * (1 + 2 * config.blocks))
        self.blocks = nn.ModuleList(
            GatedBiasBlock(config.width, config.dropout, config.batch_norm) for _ in range(config.blocks)
        )
        self.head_norm = nn.BatchNorm1d(config.width) if config.batch_norm else nn.Identity()
        self.head = nn.Linear(config.width, features)
        self.act = nn.SiLU()

    def context(self, m: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """m: (n,) scaled masses in [-1, 1]; t: (n,) or scalar -> ``blocks + 1`` tensors (n, width)."""
        projected = self.context_projection(self.embedding(m, t)).split(self.config.width, dim=1)
        gated = [value * torch.sigmoid(gate) for value, gate in zip(projected[1::2], projected[2::2], strict=True)]
        return [projected[0], *gated]

    def velocity(self, x: torch.Tensor, gammas: list[torch.Tensor]) -> torch.Tensor:
        """x: (n, d); gammas: from ``context`` (each (n, width) or (1, width)) -> (n, d)."""
        h = self.input(x) + gammas[0]
        for block, gamma in zip(self.blocks, gammas[1:], strict=True):
            h = block(h, gamma)
        return self.head(self.act(self.head_norm(h)))

    def mixed_velocity(
        self, x: torch.Tensor, first: list[torch.Tensor], second: list[torch.Tensor], xi: torch.Tensor
    ) -> torch.Tensor:
        """The velocity with every context feature mixed ``xi * first + (1 - xi) * second``."""
        return self.velocity(x, [xi * a + (1.0 - xi) * b for a, b in zip(first, second, strict=True)])

    def forward(self, x: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """x: (n, d), t: (n,) or scalar, m: (n,) scaled -> (n, d) velocity."""
        return self.velocity(x, self.context(m, t))


#: ``NetworkConfig.architecture`` -> the network class.
ARCHITECTURES: dict[str, type[nn.Module]] = {"sigma": SigmaVelocityField, "gated-bias": GatedBiasVelocityField}


def velocity_field(features: int, config: NetworkConfig) -> nn.Module:
    """The network of ``config.architecture`` for ``features`` modelled features."""
    return ARCHITECTURES[config.architecture](features, config)
