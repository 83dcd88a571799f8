"""A conditional transport flow T(z; m_in, m_out) trained by maximum likelihood under a fixed base density.

The top flow of CURTAINs Flows for Flows (arXiv:2305.04646): an invertible map of the features that
moves an event observed at mass ``m_in`` to mass ``m_out``. It is trained on sideband events only, with
the loss ``-log p_base(T(z; m_in, m_out) | m_out) - log |det dT/dz|`` for target masses drawn from the
sidebands too, so the base density is never evaluated inside the signal region.

The map is a stack of masked autoregressive affine layers (zuko's ``MaskedMLP`` as the autoregressive
network, orderings alternating) whose shift and log-scale are multiplied by the mass shift
``delta = m_out - m_in``: T is exactly the identity when ``m_in = m_out``, for any weights, and moves an
event further the further its mass moves. The last layer of every network starts at zero, so training
starts from the identity (the unmodified sideband events), as the flows-for-flows code initialises its
top flow.

Masses here are window-local, ``(m - centre) / width`` of the signal region, so the networks see O(1)
inputs whatever the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adbench.errors import ConfigError, MethodFailure
from adbench.models.training import (
    TrainConfig,
    Trained,
    chunked_sum,
    rng_devices,
    train_module,
    validation_split,
)

PAIRINGS = ("shuffle", "cross")
#: ``(y (n, d), m_out (n,)) -> log p_base(y | m_out) (n,)`` on tensors, masses window-local.
LogBase = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]  # noqa: F821


@dataclass(frozen=True)
class TransportConfig:
    """The transport flow's architecture.

    Attributes:
        layers: masked autoregressive affine layers (feature order reversed between layers).
        hidden: hidden units of each layer's autoregressive network.
        hidden_layers: hidden layers of each autoregressive network.
        max_log_scale: bound of the log-scale per unit mass shift (soft, by tanh), for stability.
    """

    layers: int = 4
    hidden: int = 64
    hidden_layers: int = 2
    max_log_scale: float = 3.0

    def __post_init__(self) -> None:
        if self.layers < 1 or self.hidden < 1 or self.hidden_layers < 1:
            raise ConfigError(f"transport sizes must be positive: {self}")
        if not self.max_log_scale > 0:
            raise ConfigError(f"transport max_log_scale must be positive, got {self.max_log_scale}")


def _torch():
    import torch

    return torch


def build_transport(features: int, config: TransportConfig):
    """The untrained ``TransportFlow`` module for ``features`` features."""
    torch = _torch()
    import zuko

    class AffineLayer(torch.nn.Module):
        """One autoregressive affine layer scaled by the mass shift."""

        def __init__(self, reverse: bool) -> None:
            super().__init__()
            order = torch.arange(features)
            if reverse:
                order = order.flip(0)
            depends = order[:, None] > order[None, :]  # output i reads feature j that precedes it
            adjacency = torch.cat([depends, torch.ones(features, 2, dtype=torch.bool)], dim=1)
            # rows 0..d-1 give the shifts, rows d..2d-1 the log-scales; both read the two masses
            self.net = zuko.nn.MaskedMLP(adjacency.repeat(2, 1), [config.hidden] * config.hidden_layers)
            last = self.net[-1]
            torch.nn.init.zeros_(last.weight)
            torch.nn.init.zeros_(last.bias)

        def forward(self, z, c, delta):
            shift, log_scale = self.net(torch.cat([z, c], dim=-1)).chunk(2, dim=-1)
            log_scale = config.max_log_scale * torch.tanh(log_scale / config.max_log_scale)
            return z * torch.exp(delta * log_scale) + delta * shift, (delta * log_scale).sum(dim=-1)

    class TransportFlow(torch.nn.Module):
        """T(z; m_in, m_out): z (n, d), c (n, 2) = (m_in, m_out) window-local -> (y (n, d), log|det| (n,))."""

        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(AffineLayer(reverse=k % 2 == 1) for k in range(config.layers))

        def forward(self, z, c):
            delta = c[:, 1:2] - c[:, 0:1]
            log_det = torch.zeros(len(z), dtype=z.dtype, device=z.device)
            for layer in self.layers:
                z, step = layer(z, c, delta)
                log_det = log_det + step
            return z, log_det

    return TransportFlow()


def target_masses(m_in, side, pools, pairing: str, generator=None):
    """Target masses for a batch: ``shuffle`` permutes the batch's own masses (targets anywhere in the
    sidebands, as the flows-for-flows code pairs conditions); ``cross`` draws each target from the
    other sideband's masses.

    Args:
        m_in: (n,) tensor of source masses; side: (n,) bool tensor, True in the upper sideband.
        pools: (lower, upper) tensors of the sidebands' masses to draw ``cross`` targets from.
    """
    torch = _torch()
    if pairing == "shuffle":
        return m_in[torch.randperm(len(m_in), generator=generator).to(m_in.device)]
    lower, upper = pools
    pick_low = torch.randint(len(lower), (len(m_in),), generator=generator).to(m_in.device)
    pick_up = torch.randint(len(upper), (len(m_in),), generator=generator).to(m_in.device)
    return torch.where(side, lower[pick_low], upper[pick_up])


def fit_transport(
    z: np.ndarray,
    m: np.ndarray,
    upper: np.ndarray,
    log_base: LogBase,
    config: TransportConfig,
    train: TrainConfig,
    *,
    pairing: str = "shuffle",
    seed: int = 0,
    device: str = "cpu",
) -> Trained:
    """Train a transport flow on sideband events by maximum likelihood under ``log_base``.

    Args:
        z: (n, d) float32 scaled features of the sideband events.
        m: (n,) window-local masses of the events.
        upper: (n,) bool, True for events of the upper sideband.
        log_base: the fixed base density (a frozen module inside is fine: only the inputs get gradients).
        pairing: how target masses are drawn (``PAIRINGS``).

    Returns:
        ``Trained`` with the kept states (best validation loss first) and the record.
    """
    torch = _torch()
    if pairing not in PAIRINGS:
        raise ConfigError(f"unknown pairing {pairing!r}; choose one of {', '.join(PAIRINGS)}")
    upper = np.asarray(upper, dtype=bool)
    if upper.all() or not upper.any():
        raise MethodFailure("the transport flow needs sideband events on both sides of the signal region")
    train_index, val_index = validation_split(len(z), train, seed)
    if len(train_index) < 2 * z.shape[1] or len(val_index) < 1:
        raise MethodFailure(f"only {len(z)} sideband events to train the transport flow on")
    dev = torch.device(device)

    def tensors(index: np.ndarray) -> tuple:
        return (torch.as_tensor(np.asarray(z[index], dtype=np.float32), device=dev),
                torch.as_tensor(np.asarray(m[index], dtype=np.float32), device=dev),
                torch.as_tensor(upper[index], device=dev))

    train_data, val_data = tensors(train_index), tensors(val_index)
    pools = (train_data[1][~train_data[2]], train_data[1][train_data[2]])
    if len(pools[0]) == 0 or len(pools[1]) == 0:
        raise MethodFailure("the transport flow's training split lacks one of the sidebands")
    # fixed validation targets: the selection metric must not move with the draw
    val_targets = target_masses(val_data[1], val_data[2], pools, pairing,
                                torch.Generator().manual_seed(int(seed) + 17))

    def nll(module, zb, mb, targets):
        y, log_det = module(zb, torch.stack([mb, targets], dim=1))
        return -(log_base(y, targets) + log_det)

    def loss(module, batch):
        zb, mb, sb = batch
        return nll(module, zb, mb, target_masses(mb, sb, pools, pairing)).mean()

    def validate(module, data):
        return chunked_sum(lambda z_, m_, targets: nll(module, z_, m_, targets), (data[0], data[1], val_targets),
                           train.eval_batch_size) / len(data[0])

    return train_module(lambda: build_transport(z.shape[1], config), train_data, val_data, loss, validate,
                        train, seed=seed, device=device, label="transport flow")


def apply_transport(module, states: list, z: np.ndarray, m_in: np.ndarray, m_out: np.ndarray,
                    *, seed: int = 0, device: str = "cpu", batch_size: int = 65_536) -> np.ndarray:
    """Move events from ``m_in`` to ``m_out``, each event by one of the kept states (assigned at random,
    equally, so that no state gets one mass range).

    Args:
        z: (n, d) scaled features; m_in, m_out: (n,) window-local masses.

    Returns:
        (n, d) float32 transported scaled features, in the order of ``z``.
    """
    torch = _torch()
    dev = torch.device(device)
    out = np.empty_like(np.asarray(z, dtype=np.float32))
    chunks = np.array_split(np.random.default_rng([seed, 3]).permutation(len(z)), len(states))
    context = np.stack([m_in, m_out], axis=1).astype(np.float32)
    with torch.random.fork_rng(devices=rng_devices(dev)), torch.no_grad():
        for state, chunk in zip(states, chunks, strict=True):
            module.load_state_dict(state)
            module.eval()
            for lo in range(0, len(chunk), batch_size):
                index = chunk[lo:lo + batch_size]
                y, _ = module(torch.as_tensor(np.asarray(z[index], dtype=np.float32), device=dev),
                              torch.as_tensor(context[index], device=dev))
                out[index] = y.cpu().numpy()
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise MethodFailure(f"the transport flow produced {int(bad.sum())} of {len(z)} events with NaN/inf values")
    return out

