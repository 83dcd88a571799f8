"""Trainings that survive an interruption.

A harness task runs inside ``resumable(directory)``. Each training of the task (``train_module``; a
task may train several models, e.g. R-ANODE's background flow and its signal splits) gets the next
progress file of that directory, in the order the task trains them, and saves into it, at most every
``SAVE_EVERY_S`` seconds and once when it ends, everything its epoch loop needs to go on exactly where
it stopped: weights, optimiser, schedule, the moving average, the kept epochs, the batch-order
generator and the torch RNG. When the task is run again after a crash, a lost worker, a Ctrl-C or a
time limit that killed the process, its finished trainings are read back instead of repeated and the
interrupted one continues from its last save, to the same weights as an uninterrupted run.

The harness removes a window task's folder once its finished record is written; a failed task, which
the next run tries again, keeps it, and a shared fit keeps its finished trainings until the run ends
with no task left or failed, so that the next chunk of a time-boxed scan reads them back instead of
training again. The progress of a training is only taken over by the same training (model, data sizes
and values, configuration, seed, device, torch version). Outside a scope (tests, the Python API) nothing is saved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Seconds of training between two saves (and a save whenever a training ends).
SAVE_EVERY_S = 60.0
#: The folder of a run directory that holds the progress of its unfinished tasks.
RESUME_DIR = "resume"


@dataclass
class _Scope:
    directory: Path
    trainings: int = 0
    earlier_seconds: float = 0.0  # training seconds of earlier attempts taken over


_current: ContextVar[_Scope | None] = ContextVar("adbench_resume_scope", default=None)


@contextmanager
def resumable(directory: str | Path | None) -> Iterator[None]:
    """Let the trainings inside save and resume their progress in ``directory`` (None: do nothing)."""
    if directory is None:
        yield
        return
    token = _current.set(_Scope(Path(directory)))
    try:
        yield
    finally:
        _current.reset(token)


def earlier_seconds() -> float:
    """Training seconds spent by earlier, interrupted attempts of this task on the trainings it read
    back: add them to the task's fit time, so that a resumed fit reports what the whole fit cost."""
    scope = _current.get()
    return scope.earlier_seconds if scope is not None else 0.0


def discard(directory: str | Path | None) -> None:
    """Remove a task's progress files (it has its record now)."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def task_directory(root: str, task_key: str) -> Path | None:
    """The progress folder of one task under the run's ``root`` (None when the run keeps none)."""
    if not root:
        return None
    return Path(root) / _file_name(task_key)


def _file_name(text: str) -> str:
    """``text`` with every run of characters a file name should not hold replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def saved_training_seconds(root: str, gpu: bool) -> dict[str, float]:
    """The training seconds each task folder under the run's ``root`` holds (progress files of
    finished and interrupted trainings), keyed by the folder's name. Only saves this torch version made
    on this kind of device (``gpu``) count: a training saved elsewhere is started afresh. Unreadable
    files count nothing."""
    folders = [path for path in Path(root).iterdir() if path.is_dir()] if root and Path(root).is_dir() else []
    if not folders:
        return {}
    import torch

    seconds: dict[str, float] = {}
    for folder in folders:
        total = 0.0
        for path in folder.glob("*.pt"):
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                *_, device, version = str(saved["fingerprint"]).split("|")
                if version == f"torch {torch.__version__}" and device.startswith("cuda") == gpu:
                    total += float(saved["seconds"])
            except Exception:  # noqa: BLE001 - a damaged or foreign file is trained again: it saves nothing
                continue
        seconds[folder.name] = total
    return seconds


class ProgressFile:
    """The progress of one training: ``load`` what an earlier attempt saved, ``save`` this one's."""

    def __init__(self, scope: _Scope, path: Path, fingerprint: str, earlier: tuple[str, ...] = ()) -> None:
        self.scope, self.path, self.fingerprint = scope, path, fingerprint
        self.accepted = {fingerprint, *earlier}  # the same training, saved by an earlier adbench
        self.broken = False

    def load(self, device: Any) -> dict[str, Any] | None:
        """The saved progress of this training, or None (nothing saved, or saved by another training:
        a different model, data, seed or configuration, which is then started afresh)."""
        import torch

        if not self.path.is_file():
            return None
        try:
            saved = torch.load(self.path, map_location=device, weights_only=True)
        except Exception as error:  # noqa: BLE001 - any damaged file means: train from the start
            log.warning("%s: unreadable progress file (%s); training from the start", self.path, error)
            return None
        if not isinstance(saved, dict) or saved.get("fingerprint") not in self.accepted:
            log.warning("%s: saved by another training; training from the start", self.path)
            return None
        self.scope.earlier_seconds += float(saved["seconds"])
        log.info("%s: resuming after epoch %d", self.path, saved["epoch"])
        return saved

    def save(self, progress: dict[str, Any]) -> None:
        """Write ``progress`` (plain tensors, numbers, lists and dicts) atomically: an interruption
        while writing leaves the last complete save. A folder that cannot be written (a full disk, a
        Dask worker that does not see the client's output folder) costs only the resumption: the
        training goes on, saving nothing more, after one warning."""
        import torch

        if self.broken:
            return
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}-{threading.get_ident()}.partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"fingerprint": self.fingerprint, **progress}, partial)
            os.replace(partial, self.path)
        except (OSError, RuntimeError) as error:
            self.broken = True
            log.warning("%s: cannot save the training's progress (%s); it goes on without", self.path, error)
            with contextlib.suppress(OSError):
                partial.unlink()


def next_progress_file(label: str, module: Any, tensors: tuple[Any, ...], config: Any,
                       seed: int) -> ProgressFile | None:
    """The progress file of the next training of the current task (None outside a scope): ``module``
    trained on ``tensors`` (its training and validation data) with ``config`` and ``seed``. Only a save
    of the same training (``fingerprint``, or one of the ``earlier_fingerprints``) is taken over."""
    scope = _current.get()
    if scope is None:
        return None
    scope.trainings += 1
    path = scope.directory / f"{scope.trainings:02d}-{_file_name(label)}.pt"
    return ProgressFile(scope, path, fingerprint(module, tensors, config, seed, label),
                        earlier_fingerprints(module, tensors, config, seed, label))


def fingerprint(module: Any, tensors: tuple[Any, ...], config: Any, seed: int, label: str,
                full_repr: bool = False, data_values: bool = True) -> str:
    """What a saved training must match to be taken over: model, data (sizes and a hash of every
    value), configuration, seed, device and torch version. A configuration dataclass is written
    without its ``ADDED_LATER`` fields at their defaults, so that adding a setting does not make every
    interrupted training start again. Earlier adbench wrote it without the data's values
    (``data_values=False``, before 2026-11-25) and before that with the whole ``repr`` of the
    configuration (``full_repr``)."""
    import torch

    from adbench.settings import hashed_settings

    shapes = [tuple(value.shape) for value in module.state_dict().values()]
    sizes = [tuple(t.shape) for t in tensors]
    settings = hashed_settings(config) if is_dataclass(config) and not full_repr else config
    values = f"|data {tensors_digest(tensors)}" if data_values else ""
    return (f"{label}|{seed}|{settings!r}|{shapes}|{sizes}{values}|{type(module).__name__}|{tensors[0].device}"
            f"|torch {torch.__version__}")


def earlier_fingerprints(module: Any, tensors: tuple[Any, ...], config: Any, seed: int, label: str) -> tuple[str, ...]:
    """The fingerprints earlier adbench versions wrote for the same training (``fingerprint``), so that
    their saves are still taken over; they could not tell data of equal sizes apart."""
    return tuple(fingerprint(module, tensors, config, seed, label, full_repr=full, data_values=False)
                 for full in (False, True))


def tensors_digest(tensors: tuple[Any, ...]) -> str:
    """A hash of every value of ``tensors`` (any device and dtype): two datasets of the same sizes
    differ in it, so that a training never takes over progress made on other events."""
    import hashlib

    import torch

    digest = hashlib.blake2b(digest_size=8)
    for tensor in tensors:
        flat = tensor.detach().contiguous().reshape(-1).cpu()
        digest.update(f"{flat.dtype}{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().data)
    return digest.hexdigest()


def module_device(module: Any) -> Any:
    """The device of a module's first parameter or buffer (the CPU for an empty one)."""
    import torch

    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@dataclass
class LoopState:
    """The objects of one epoch loop whose state a save holds (``scheduler`` and ``averaged`` may be None)."""

    module: Any
    optimizer: Any
    scheduler: Any
    averaged: Any
    generator: Any
    cuda: bool

    def snapshot(self, epoch: int, done: bool, since_best: int, record: Any, kept: list, seconds: float) -> dict:
        """Everything the loop needs to go on after ``epoch`` (for ``ProgressFile.save``); ``record`` is
        the loop's ``TrainingRecord``, ``kept`` its (metric, epoch, state) list."""
        import torch

        return {
            "epoch": epoch, "done": done, "since_best": since_best, "seconds": seconds,
            "record": {k: v for k, v in vars(record).items() if k != "seconds"},
            "kept": [list(item) for item in kept],
            "module": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "averaged": self.averaged.state_dict() if self.averaged is not None else None,
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(module_device(self.module)) if self.cuda else None,
        }

    def restore(self, saved: dict) -> tuple[int, bool, int, dict, list]:
        """Load a ``snapshot`` into the loop's objects; returns (first epoch to run, finished,
        since_best, the record's fields with its seconds, kept)."""
        import torch

        self.module.load_state_dict(saved["module"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        if self.averaged is not None:
            self.averaged.load_state_dict(saved["averaged"])
        self.generator.set_state(saved["generator"].cpu())
        torch.set_rng_state(saved["torch_rng"].cpu())
        if self.cuda and saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), module_device(self.module))
        fields = {**saved["record"], "seconds": float(saved["seconds"])}
        kept = [(float(loss), int(epoch), state) for loss, epoch, state in saved["kept"]]
        return saved["epoch"] + 1, bool(saved["done"]), int(saved["since_best"]), fields, kept
