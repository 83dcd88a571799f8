"""One training loop for every generative model of adbench.

A model supplies a module builder, its training loss and its validation metric; this module does the
rest, the same way for all of them:

- ``TrainConfig``: optimiser, learning-rate schedule, batches, epochs, model selection, EMA.
- ``validation_split``: the seeded (optionally subsampled) train / validation split; ``split_sizes`` and
  ``steps_per_epoch`` give its sizes and an epoch's optimiser steps without drawing it, ``planned_epochs``
  the epochs a training will run (``epochs``, raised to reach ``min_steps`` on small data).
- ``train_module``: the epoch loop over random batches (drawn from a CPU generator, so the order is
  the same on every device), the keep-best checkpoints, patience, the divergence policy, progress.
- ``chunked_sum`` and ``kept_log_prob``: validation metrics and the density of the kept checkpoints'
  equal-weight mixture, evaluated in chunks without gradients.
- Trained models are written and read by ``adbench.models.checkpoints``.
- Inside a harness task (``adbench.models.resume.resumable``) the epoch loop saves its whole state
  now and then and when it ends, and an interrupted task run again continues from the last save.

Divergence policy: an epoch whose training or validation loss is not finite ends the training
(``stopped = "diverged"``); the checkpoints kept so far are used. If no epoch was finite, the fit
fails with ``MethodFailure`` and the harness records the task as failed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from adbench.errors import ConfigError, MethodFailure
from adbench.models.resume import SAVE_EVERY_S, LoopState, next_progress_file
from adbench.progress import progress
from adbench.settings import ADDED_LATER

if TYPE_CHECKING:
    import torch

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("constant", "onecycle", "cosine", "plateau")
#: Batch tensors -> scalar loss to minimise.
LossFn = Callable[["torch.nn.Module", tuple["torch.Tensor", ...]], "torch.Tensor"]
#: Validation tensors -> the selection metric (lower is better), computed in eval mode.
ValidateFn = Callable[["torch.nn.Module", tuple["torch.Tensor", ...]], float]


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained and which epochs are kept.

    Attributes:
        epochs: passes over the training split (the maximum when ``patience`` is set).
        min_steps: train at least this many optimiser steps: on a training split so small that
            ``epochs`` epochs take fewer steps, the epochs rise to ``ceil(min_steps / steps per epoch)``
            (``planned_epochs``), so that a budget set at LHCO size does not shrink with the data
            (None: ``epochs`` whatever the size).
        batch_size: events per optimiser step (the ragged last batch of an epoch is dropped).
        lr: peak learning rate.
        optimizer: ``adamw`` (decoupled weight decay) or ``adam`` (L2 penalty).
        weight_decay: of the optimiser.
        schedule: ``constant``; ``onecycle`` (linear warm-up over the first 10% of the steps, then
            cosine annealing); ``cosine`` (cosine annealing from the first step); both per step down
            to ``final_lr_fraction * lr``; ``plateau`` (ReduceLROnPlateau on the validation metric,
            per epoch, with ``plateau_factor`` and ``plateau_patience``).
        final_lr_fraction: end point of ``onecycle`` and ``cosine`` as a fraction of ``lr``.
        plateau_factor, plateau_patience: of ``plateau``: the rate is multiplied by the factor after
            this many epochs without improvement.
        val_fraction: fraction of the events held out (seeded) for model selection.
        keep_best: number of epochs with the lowest validation metric whose weights are kept.
        keep_spacing: at most one kept epoch per block of this many epochs (epochs 1..N, N+1..2N...;
            the best of each block competes), so that the kept checkpoints differ (1: any epochs; a
            decaying schedule's last epochs are nearly the same model).
        patience: stop after this many epochs without a new best validation metric (None: never).
        max_events: train on a seeded random subset of at most this many events (None: all).
        eval_batch_size: events per forward pass when validating.
        ema_decay: keep an exponential moving average of the weights with this decay per step and
            validate, keep and sample the averaged weights (None: the raw weights).
        compile: ``torch.compile`` the module for the training steps (CUDA only; ignored on CPU).
        amp: bf16 autocast for the training steps (CUDA only; ignored on CPU).
    """

    epochs: int = 20
    batch_size: int = 4096
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    schedule: str = "constant"
    final_lr_fraction: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    val_fraction: float = 0.2
    keep_best: int = 10
    keep_spacing: int = 1
    patience: int | None = None
    max_events: int | None = None
    eval_batch_size: int = 65_536
    ema_decay: float | None = None
    compile: bool = False
    amp: bool = False
    min_steps: int | None = field(default=None, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.keep_best < 1 or self.eval_batch_size < 1:
            raise ConfigError(
                f"training needs epochs >= 1, batch_size >= 2, keep_best >= 1 and eval_batch_size >= 1: {self}"
            )
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"training needs lr > 0 and weight_decay >= 0, got {self.lr} and {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ConfigError(f"final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")
        if not 0.0 < self.plateau_factor < 1.0 or self.plateau_patience < 0:
            raise ConfigError(
                f"plateau_factor must be in (0, 1) and plateau_patience >= 0, got {self.plateau_factor}, "
                f"{self.plateau_patience}"
            )
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or None, got {self.patience}")
        if self.keep_spacing < 1:
            raise ConfigError(f"keep_spacing must be >= 1, got {self.keep_spacing}")
        if self.max_events is not None and self.max_events < 10:
            raise ConfigError(f"max_events must be >= 10 or None, got {self.max_events}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if self.min_steps is not None and self.min_steps < 1:
            raise ConfigError(f"min_steps must be >= 1 or None, got {self.min_steps}")


@dataclass
class TrainingRecord:
    """What happened during training (JSON-serialisable; reported with every result)."""

    epochs_run: int = 0
    train_losses: list[float] = field(default_factory=list)  # per epoch, mean over the batches
    val_losses: list[float] = field(default_factory=list)  # per epoch, the selection metric
    kept_epochs: list[int] = field(default_factory=list)  # 1-based, best first
    kept_val_losses: list[float] = field(default_factory=list)
    stopped: str = "epochs"  # epochs | patience | diverged
    n_train: int = 0
    n_val: int = 0
    seconds: float = 0.0

    @property
    def best_val_loss(self) -> float:
        return self.kept_val_losses[0] if self.kept_val_losses else float("nan")

    def summary(self) -> dict[str, Any]:
        """The facts a result record carries (the per-epoch curves are left out)."""
        return {
            "epochs_run": self.epochs_run,
            "stopped": self.stopped,
            "kept_epochs": list(self.kept_epochs),
            "best_val_loss": self.best_val_loss,
            "final_train_loss": self.train_losses[-1] if self.train_losses else None,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "train_seconds": round(self.seconds, 3),
        }


@dataclass
class Trained:
    """The result of ``train_module``: the module (holding the best kept weights), the kept
    ``state_dict``s (best first) and the record."""

    module: Any
    states: list[dict[str, Any]]
    record: TrainingRecord


def validation_split(n: int, config: TrainConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) index arrays into ``range(n)``; with ``max_events`` a random subset
    of that size is split instead of all events."""
    rng = np.random.default_rng([seed, 1])
    chosen = np.arange(n)
    if config.max_events is not None and n > config.max_events:
        chosen = np.sort(rng.choice(n, config.max_events, replace=False))
    order = chosen[rng.permutation(len(chosen))]
    _, n_val = split_sizes(n, config)
    return order[n_val:], order[:n_val]


def split_sizes(n: int, config: TrainConfig) -> tuple[int, int]:
    """(training, validation) sizes of ``validation_split`` for ``n`` events."""
    used = min(n, config.max_events) if config.max_events is not None else n
    n_val = int(round(config.val_fraction * used))
    return used - n_val, n_val


def steps_per_epoch(n_train: int, config: TrainConfig) -> int:
    """Optimiser steps of one epoch over ``n_train`` events (the ragged last batch dropped)."""
    return n_train // min(config.batch_size, n_train) if n_train else 0


def planned_epochs(n_train: int, config: TrainConfig) -> int:
    """Epochs of a training over ``n_train`` events: ``config.epochs``, or more where they would take
    fewer than ``config.min_steps`` optimiser steps."""
    steps = steps_per_epoch(n_train, config)
    if config.min_steps is None or steps == 0 or config.epochs * steps >= config.min_steps:
        return config.epochs
    return math.ceil(config.min_steps / steps)


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose random state ``torch.random.fork_rng`` must save for ``device``."""
    import torch

    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _lr_factor(step: int, warmup: int, total: int, final: float) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine annealing to ``final``."""
    if step < warmup:
        return (step + 1) / warmup
    done = (step - warmup) / max(1, total - warmup)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


def _optimizer(module: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    import torch

    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    try:  # the fused kernel: one launch per step (CPU support from torch 2.4)
        return kind(module.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return kind(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """(scheduler or None, whether it steps per batch)."""
    import torch

    if config.schedule in ("onecycle", "cosine"):
        warmup = max(1, total_steps // 10) if config.schedule == "onecycle" else 0
        final = config.final_lr_fraction
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _lr_factor(step, warmup, total_steps, final)
        ), True
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.plateau_factor, patience=config.plateau_patience
        ), False
    return None, True


def _state_copy(module: torch.nn.Module) -> dict[str, Any]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def train_module(
    build: Callable[[], torch.nn.Module],
    train_data: tuple[torch.Tensor, ...],
    val_data: tuple[torch.Tensor, ...],
    loss_fn: LossFn,
    validate: ValidateFn,
    config: TrainConfig,
    *,
    seed: int,
    device: str,
    label: str = "model",
    share_key: Any = None,
) -> Trained:
    """Build a module and train it.

    Args:
        build: makes the untrained module (called with the torch RNG seeded by ``seed``).
        train_data, val_data: tensors on ``device`` with the events along the first axis.
        loss_fn: ``(module, batch) -> loss``; may draw noise from the global torch RNG, which is
            seeded by ``seed`` for the whole training and restored afterwards.
        validate: ``(module, val_data) -> metric`` (lower is better), called in eval mode.
        label: names the model in errors and progress ("CFM", "flow").
        share_key: where other tasks of a run may repeat this training exactly, everything besides
            the data, ``config``, ``seed``, ``label`` and the parameters' shapes that decides its result
            (the module's settings, the loss and the validation metric): a task finds an identical
            finished training of another task by it and reads it back (``adbench.models.resume``).
            None: never shared.
    """
    import torch

    started = time.perf_counter()
    torch_device = torch.device(device)
    cuda = torch_device.type == "cuda"
    with torch.random.fork_rng(devices=rng_devices(torch_device)):
        torch.manual_seed(seed)
        module = build().to(torch_device)
        trained = _epochs(module, train_data, val_data, loss_fn, validate, config, seed, cuda, label, share_key,
                          started)
    trained.record.seconds += time.perf_counter() - started  # plus an interrupted attempt's, if resumed
    return trained


def _epochs(module, train_data, val_data, loss_fn, validate, config, seed, cuda, label, share_key,
            started: float) -> Trained:
    """The epoch loop of ``train_module`` (``started``: its clock at the call, which the saves count from)."""
    import torch

    n = len(train_data[0])
    batch = min(config.batch_size, n)
    steps = steps_per_epoch(n, config)
    epochs = planned_epochs(n, config)
    optimizer = _optimizer(module, config)
    scheduler, per_step = _scheduler(optimizer, config, epochs * steps)
    averaged = None
    if config.ema_decay is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    selected = module if averaged is None else averaged.module
    step_module = torch.compile(module) if (config.compile and cuda) else module
    if config.amp and cuda:
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    generator = torch.Generator().manual_seed(seed)
    record = TrainingRecord(n_train=n, n_val=len(val_data[0]))
    kept: list[tuple[float, int, dict[str, Any]]] = []  # (metric, epoch, state), best first
    since_best = 0
    first_epoch, finished = 1, False
    state = LoopState(module, optimizer, scheduler, averaged, generator, cuda)
    tensors = (*train_data, *val_data)
    saver = next_progress_file(label, module, tensors, config, seed, share_key)
    resumed = saver.load(train_data[0].device) if saver is not None else None
    if resumed is not None:
        first_epoch, finished, since_best, fields, kept = state.restore(resumed)
        record = TrainingRecord(**fields)
    earlier, last_save = record.seconds, time.perf_counter()

    def save(done: bool) -> None:
        saver.save(state.snapshot(epoch, done, since_best, record, kept, earlier + time.perf_counter() - started))

    with progress(f"{label} epochs", epochs) as tick:
        for epoch in range(first_epoch, 0 if finished else epochs + 1):
            module.train()
            permutation = torch.randperm(n, generator=generator).to(train_data[0].device)
            total = torch.zeros((), device=train_data[0].device)
            for step in range(steps):
                index = permutation[step * batch:(step + 1) * batch]
                with autocast():
                    loss = loss_fn(step_module, tuple(tensor[index] for tensor in train_data))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(module)
                if scheduler is not None and per_step:
                    scheduler.step()
                total += loss.detach().float()
            train_loss = float(total) / steps  # one host synchronisation per epoch
            selected.eval()
            val_loss = float(validate(selected, val_data))
            record.train_losses.append(train_loss)
            record.val_losses.append(val_loss)
            record.epochs_run = epoch
            tick(f"validation {val_loss:.4g}")
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                record.stopped = "diverged"
                break
            if scheduler is not None and not per_step:
                scheduler.step(val_loss)
            _keep(kept, val_loss, epoch, selected, config)
            if val_loss <= kept[0][0]:
                since_best = 0
            else:
                since_best += 1
                if config.patience is not None and since_best >= config.patience:
                    record.stopped = "patience"
                    break
            if saver is not None and epoch < epochs and time.perf_counter() - last_save >= SAVE_EVERY_S:
                save(done=False)
                last_save = time.perf_counter()
    record.seconds = earlier
    if saver is not None and not finished:
        epoch = record.epochs_run
        save(done=True)
    if not kept:
        raise MethodFailure(
            f"{label} training diverged at epoch {record.epochs_run} (training loss {record.train_losses[-1]}, "
            f"validation {record.val_losses[-1]}) before any finite epoch"
        )
    record.kept_epochs = [epoch for _, epoch, _ in kept]
    record.kept_val_losses = [loss for loss, _, _ in kept]
    states = [state for _, _, state in kept]
    module.load_state_dict(states[0])
    module.eval()
    return Trained(module, states, record)


def _keep(
    kept: list[tuple[float, int, dict[str, Any]]], val_loss: float, epoch: int, module, config: TrainConfig
) -> None:
    """Add this epoch to ``kept`` (best first) if it is among the ``keep_best`` best and no better kept
    epoch lies in its block of ``keep_spacing`` epochs; a worse one of the same block makes way."""
    block = (epoch - 1) // config.keep_spacing
    same = [item for item in kept if (item[1] - 1) // config.keep_spacing == block]
    if any(item[0] <= val_loss for item in same):
        return
    rest = [item for item in kept if (item[1] - 1) // config.keep_spacing != block]
    if len(rest) >= config.keep_best and val_loss >= rest[-1][0]:
        return
    kept[:] = sorted([*rest, (val_loss, epoch, _state_copy(module))], key=lambda item: item[0])[: config.keep_best]


def chunked_sum(per_chunk: Callable[..., torch.Tensor], tensors: tuple[torch.Tensor, ...], chunk: int) -> float:
    """The sum over chunks of ``chunk`` events of ``per_chunk(*chunk_tensors).sum()``, without
    gradients, accumulated in float64 on the tensors' device (one synchronisation at the end).

    Args:
        per_chunk: (the chunk's slices of ``tensors``) -> a tensor whose sum is the chunk's total.
        tensors: (n, ...) tensors sliced together along their first axis.
    """
    import torch

    total = torch.zeros((), dtype=torch.float64, device=tensors[0].device)
    with torch.no_grad():
        for lo in range(0, len(tensors[0]), chunk):
            total += per_chunk(*(t[lo:lo + chunk] for t in tensors)).double().sum()
    return float(total)


def kept_log_prob(
    module: torch.nn.Module, states: list[dict[str, Any]], log_prob: Callable[[slice], torch.Tensor],
    n: int, chunk: int, device: torch.device,
) -> np.ndarray:
    """log of the equal-weight mixture of the kept ``states`` of ``module``: (n,) float64.

    Args:
        log_prob: a slice of the n events -> their (chunk,) log-densities under ``module`` as loaded.
    """
    import torch

    per_state = torch.empty((len(states), n), dtype=torch.float64, device=device)
    with torch.no_grad():
        for k, state in enumerate(states):
            module.load_state_dict(state)
            module.eval()
            for lo in range(0, n, chunk):
                per_state[k, lo:lo + chunk] = log_prob(slice(lo, lo + chunk)).double()
    return (torch.logsumexp(per_state, dim=0) - math.log(len(states))).cpu().numpy()
