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

A run of several variants of one method (``adbench run --methods ranode:cpu-stretch,ranode:cpu-stretch-warm``),
or of ANODE and R-ANODE at one profile, repeats trainings: their background flows of one window, N_sig
and seed are the same flow. A training that says what else decides its result (``train_module``'s
``share_key``) is then also kept, finished, in ``SHARED_DIR/<window, N_sig, seed>``, and the other
tasks of that group read it back instead of training it, with its seconds counted as theirs; the
folder goes when the group's last task has its record (a failed task keeps it for the next run).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import uuid
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


#: The folder of ``RESUME_DIR`` that holds finished trainings several tasks of a run share.
SHARED_DIR = "shared-trainings"


@dataclass
class _Scope:
    directory: Path
    shared: Path | None = None
    trainings: int = 0
    earlier_seconds: float = 0.0  # training seconds of earlier attempts taken over
    from_other_tasks: int = 0  # finished trainings read from ``shared``


_current: ContextVar[_Scope | None] = ContextVar("adbench_resume_scope", default=None)


@contextmanager
def resumable(directory: str | Path | None, shared: str | Path | None = None) -> Iterator[None]:
    """Let the trainings inside save and resume their progress in ``directory`` (None: do nothing),
    and the shareable ones (``train_module``'s ``share_key``) take a finished identical training of
    another task from ``shared``, or leave theirs there."""
    if directory is None:
        yield
        return
    token = _current.set(_Scope(Path(directory), Path(shared) if shared is not None else None))
    try:
        yield
    finally:
        _current.reset(token)


def earlier_seconds() -> float:
    """Training seconds spent by earlier, interrupted attempts of this task, or by another task of the
    run on an identical training, on the trainings it read back: add them to the task's fit time, so
    that a resumed fit reports what the whole fit cost."""
    scope = _current.get()
    return scope.earlier_seconds if scope is not None else 0.0


def trainings_from_other_tasks() -> int:
    """How many finished trainings this task took from another task of the run (identical ones)."""
    scope = _current.get()
    return scope.from_other_tasks if scope is not None else 0


def discard(directory: str | Path | None) -> None:
    """Remove a task's progress files (it has its record now)."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def task_directory(root: str, task_key: str) -> Path | None:
    """The progress folder of one task under the run's ``root`` (None when the run keeps none)."""
    if not root:
        return None
    return Path(root) / _file_name(task_key)


def shared_directory(root: str, group: str) -> Path | None:
    """The folder under the run's ``root`` of the finished shareable trainings of one ``group`` of
    tasks (those of one window, N_sig and seed; None when the run keeps none)."""
    return Path(root) / SHARED_DIR / _file_name(group) if root else None


def _file_name(text: str) -> str:
    """``text`` with every run of characters a file name should not hold replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def saved_training_seconds(root: str, gpu: bool) -> dict[str, float]:
    """The training seconds each task folder under the run's ``root`` holds (progress files of
    finished and interrupted trainings), keyed by the folder's name. Only saves this torch version made
    on this kind of device (``gpu``) count: a training saved elsewhere is started afresh. Unreadable
    files count nothing."""
    folders = ([path for path in Path(root).iterdir() if path.is_dir() and path.name != SHARED_DIR]
               if root and Path(root).is_dir() else [])
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
    """The progress of one training: ``load`` what an earlier attempt saved, ``save`` this one's.

    A shareable training also has a ``shared`` file, named by a hash of its ``shared_fingerprint``: it
    holds the finished training for any task of the run that trains the same module on the same data.
    """

    def __init__(self, scope: _Scope, path: Path, fingerprint: str, earlier: tuple[str, ...] = (),
                 shared: Path | None = None, shared_fingerprint: str | None = None) -> None:
        self.scope, self.path, self.fingerprint = scope, path, fingerprint
        self.accepted = {fingerprint, *earlier}  # the same training, saved by an earlier adbench
        self.shared, self.shared_fingerprint = shared, shared_fingerprint
        self.broken = False

    def load(self, device: Any) -> dict[str, Any] | None:
        """The saved progress of this training, or None (nothing saved, or saved by another training:
        a different model, data, seed or configuration, which is then started afresh). Where this task
        saved nothing, an identical training another task finished is taken (a shareable one)."""
        saved = _read(self.path, device, self.accepted)
        if (saved is None or not saved["done"]) and self.shared is not None and self.shared.is_file():
            finished = _read(self.shared, device, {self.shared_fingerprint})
            if finished is not None and finished["done"]:  # rather than going on with this task's own
                log.info("%s: finished by another task of the run; read back", self.shared)
                self.scope.from_other_tasks += 1
                self.scope.earlier_seconds += float(finished["seconds"])
                return {**finished, "fingerprint": self.fingerprint}
        if saved is not None:
            log.info("%s: resuming after epoch %d", self.path, saved["epoch"])
            self.scope.earlier_seconds += float(saved["seconds"])
        return saved

    def save(self, progress: dict[str, Any]) -> None:
        """Write ``progress`` (plain tensors, numbers, lists and dicts) atomically: an interruption
        while writing leaves the last complete save. A finished shareable training is written to its
        shared file too. A folder that cannot be written (a full disk, a Dask worker that does not see
        the client's output folder) costs only the resumption: the training goes on, saving nothing
        more, after one warning."""
        if self.broken:
            return
        targets = [(self.path, self.fingerprint)]
        if self.shared is not None and progress["done"]:
            targets.append((self.shared, self.shared_fingerprint))
        for path, fingerprint in targets:
            if not _write(path, {"fingerprint": fingerprint, **progress}):
                self.broken = True
                return


def _read(path: Path, device: Any, accepted: set[str | None]) -> dict[str, Any] | None:
    """The progress saved at ``path`` if its fingerprint is one of ``accepted``, else None (warned)."""
    import torch

    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any damaged file means: train from the start
        log.warning("%s: unreadable progress file (%s); training from the start", path, error)
        return None
    if not isinstance(saved, dict) or saved.get("fingerprint") not in accepted:
        log.warning("%s: saved by another training; training from the start", path)
        return None
    return saved


def _write(path: Path, saved: dict[str, Any]) -> bool:
    """``torch.save`` to a partial file, then rename it to ``path``; False (warned) where it fails."""
    import torch

    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")  # several hosts may write one shared file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(saved, partial)
        os.replace(partial, path)
    except (OSError, RuntimeError) as error:
        log.warning("%s: cannot save the training's progress (%s); it goes on without", path, error)
        with contextlib.suppress(OSError):
            partial.unlink()
        return False
    return True


def next_progress_file(label: str, module: Any, tensors: tuple[Any, ...], config: Any, seed: int,
                       share_key: Any = None) -> ProgressFile | None:
    """The progress file of the next training of the current task (None outside a scope): ``module``
    trained on ``tensors`` (its training and validation data) with ``config`` and ``seed``. Only a save
    of the same training (``fingerprint``, or one of the ``earlier_fingerprints``) is taken over.

    ``share_key``: for a training other tasks of the run may repeat exactly (R-ANODE variants that
    differ only after their background flow), everything beyond the fingerprint that decides its
    result: the module's settings and the loss. Its ``repr`` joins the fingerprint of a shared file."""
    scope = _current.get()
    if scope is None:
        return None
    scope.trainings += 1
    path = scope.directory / f"{scope.trainings:02d}-{_file_name(label)}.pt"
    own = fingerprint(module, tensors, config, seed, label)
    earlier = earlier_fingerprints(module, tensors, config, seed, label)
    if share_key is None or scope.shared is None:
        return ProgressFile(scope, path, own, earlier)
    shared_fingerprint = f"{own}|shared {share_key!r}"
    name = hashlib.blake2b(shared_fingerprint.encode(), digest_size=12).hexdigest()
    return ProgressFile(scope, path, own, earlier, scope.shared / f"{_file_name(label)}-{name}.pt", shared_fingerprint)


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
