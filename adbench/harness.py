"""The benchmark: for each seed x N_sig x method x window, fit, build the template, classify, score
and time; one ``Record`` per task, appended as soon as it is finished.

The pieces: ``adbench.runconfig`` (what to run), ``adbench.planning`` (the tasks and what they wait
for), ``adbench.tasks`` (running one task), ``adbench.executors`` (where: this process, or Dask) and
``adbench.costs`` (estimates for ``--max-time``). This module wires them and is the only writer of
``results.jsonl``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from adbench.costs import CostModel, format_duration
from adbench.data.dataset import Dataset
from adbench.errors import ConfigError
from adbench.executors.base import Executor
from adbench.executors.local import LocalExecutor
from adbench.models.resume import RESUME_DIR, discard, shared_directory, task_directory
from adbench.planning import Plan, Task, WindowTask, make_plan
from adbench.results import Record, ResultStore
from adbench.runconfig import (
    DEFAULT_TEMPLATE_SIZE,
    MethodSpec,
    RunConfig,
    RunSummary,
    check_methods,
    check_windows,
    config_hash,
    make_model,
)
from adbench.tasks import MIN_TEST_EVENTS, TaskContext

__all__ = [
    "DEFAULT_TEMPLATE_SIZE", "MIN_TEST_EVENTS", "MethodSpec", "RunConfig", "RunSummary", "check_methods",
    "check_windows", "config_hash", "make_model", "prepare", "run_benchmark",
]
log = logging.getLogger(__name__)


def prepare(dataset: Dataset, config: RunConfig) -> tuple[Plan, ResultStore, list[Record]]:
    """Check the run's windows and methods and plan its pending tasks (nothing runs); also returns
    the store and the records it holds."""
    check_windows(dataset, config.windows)
    check_methods(config.methods, config.device, dataset.features)
    store = ResultStore(config.output)
    records = store.load()
    check_same_data(dataset, records, store)
    return make_plan(dataset, config, {r.key for r in records if r.ok}), store, records


def check_same_data(dataset: Dataset, records: list[Record], store: ResultStore) -> None:
    """Refuse to add to a directory whose records of this dataset came from another generator version
    or from other files (a replaced file, by its sha256): a report would mix seeds of two different
    datasets. Records written before adbench kept the files' digest cannot be checked for the latter."""
    ours = [r for r in records if r.dataset == dataset.name]
    versions = sorted({r.dataset_version for r in ours} - {dataset.version})
    digests = sorted({r.dataset_digest for r in ours if r.dataset_digest} - {dataset.source_digest})

    def name(version: str) -> str:
        return f"version {version!r}" if version else "no version (a file, or the synthetic generator before 3)"

    if versions:
        what = f"data with {', '.join(name(v) for v in versions)}; this run's data has {name(dataset.version)}"
    elif digests:
        what = (f"other data files (sha256 {', '.join(digests)}; this run's files: "
                f"{dataset.source_digest or 'none, generated data'})")
    else:
        return
    raise ConfigError(f"{store.path} holds {dataset.name!r} results of {what}: write to a new --output "
                      "(results of different data must not be mixed)")


def run_benchmark(
    dataset: Dataset,
    config: RunConfig,
    progress: Callable[[int], Any] | None = None,
    executor: Executor | None = None,
) -> RunSummary:
    """Run every pending task of ``config`` on ``dataset``; records go to ``config.output``.

    Args:
        progress: called with the number of pending tasks, returns a tqdm-like bar (``update``,
            ``set_postfix_str``, ``close``), or None for no bar.
        executor: where the tasks run (default: this process, ``LocalExecutor()``).
    """
    executor = executor or LocalExecutor()
    plan, store, records = prepare(dataset, config)
    summary = RunSummary(skipped=plan.done, output=store.path, total=plan.total)
    # A task cut off (Ctrl-C, a lost worker, a killed process) resumes its trainings from here next time.
    resume_dir = str((store.directory / RESUME_DIR).resolve())
    costs = CostModel(dataset, config, plan, records, config.device.startswith("cuda"), resume_dir)
    del records
    _warn_overlong(plan, costs, executor.max_time)
    context = TaskContext(config, dataset.name, tuple(dataset.features), dataset.sizes(), dataset.version,
                          dataset.source_digest, resume_dir=resume_dir)
    pending = len(plan.windows)
    bar = progress(pending) if progress and pending else None
    sink = _Writer(store, summary, bar, {task.key: task for task in plan.windows}, context.resume_dir)
    try:
        if plan.tasks:
            summary.left = executor.run(plan, dataset, context, costs, sink)
    finally:
        if bar:
            bar.close()
    if not summary.left and not summary.failed:
        discard(context.resume_dir)  # the shared fits' saved trainings too: no task needs them now
    return summary


class _Writer:
    """The one writer: appends each record to the store as the executor hands it over."""

    def __init__(self, store: ResultStore, summary: RunSummary, bar: Any, tasks: dict[str, WindowTask],
                 resume_dir: str = "") -> None:
        self.store, self.summary, self.bar, self.tasks = store, summary, bar, tasks
        self.resume_dir = resume_dir
        # the shared trainings of a group go once its last task that may read them has its record
        self.open_groups = Counter(task.share_group for task in tasks.values() if task.shares_trainings)
        self.failed_groups: set[str] = set()

    def started(self, task: Task) -> None:
        if self.bar:
            self.bar.set_postfix_str(task.label)

    def finished(self, task: WindowTask, record: Record, seconds: float) -> None:
        record.timestamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        assert record.key == task.record_key, (record.key, task.record_key)
        self.store.append(record)
        if record.ok:
            # Only now, the record safe: a failed task is tried again next run and resumes its trainings.
            discard(task_directory(self.resume_dir, task.key))
            self.summary.finished += 1
        else:
            self.summary.failed += 1
            if task.shares_trainings:
                self.failed_groups.add(task.share_group)
            log.warning("%s %s N_sig=%d seed=%d failed: %s", record.method, record.window, record.n_sig, record.seed,
                        record.error)
        if task.shares_trainings:
            self.open_groups[task.share_group] -= 1
            if not self.open_groups[task.share_group] and task.share_group not in self.failed_groups:
                discard(shared_directory(self.resume_dir, task.share_group))  # no task of the group is left
        if self.bar:
            note = getattr(self.bar, "task_seconds", None)  # console.TaskLines prints the task's own time
            if note is not None:
                note(seconds)
            self.bar.update(1)


def _warn_overlong(plan: Plan, costs: CostModel, max_time: float | None) -> None:
    """Say so when a task measured earlier took longer than the whole time box: each chunk of the
    scan would start it and overrun."""
    if max_time is None:
        return
    for task in plan.tasks:
        estimate = costs.to_start(task, plan)
        if estimate.measured and estimate.seconds > max_time:
            log.warning("%s took about %s before, more than --max-time %s: it will overrun the time box",
                        task.key, format_duration(estimate.seconds), format_duration(max_time))
            return

