"""``--executor local`` (the default): every task in this process, one after another, in plan order
(the order of the records before the scan became a graph)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from adbench.costs import CostModel
from adbench.data.dataset import Dataset
from adbench.executors.base import Budget, Executor, Sink, drive
from adbench.planning import FitTask, Plan, WindowTask
from adbench.tasks import SharedFit, TaskContext, clear_caches, fit_task, window_task


class _Done:
    """A finished task of the local backend (its result, released when no longer needed)."""

    def __init__(self, result: Any) -> None:
        self.result = result


class LocalBackend:
    """Runs each task when it is submitted. Wall-clock seconds are taken with ``clock``."""

    def __init__(self, dataset: Dataset, context: TaskContext, clock: Callable[[], float] = time.monotonic) -> None:
        self.dataset = dataset
        self.context = context
        self.clock = clock
        self._finished: list[_Done] = []

    def slots(self) -> int:
        return 1

    def submit_fit(self, task: FitTask) -> Hashable:
        done = _Done(fit_task(self.dataset, task, self.context))
        self._finished.append(done)
        return done

    def submit_window(self, task: WindowTask, fit: Hashable | None) -> Hashable:
        shared: SharedFit | None = fit.result if isinstance(fit, _Done) else None
        start = self.clock()
        record, _ = window_task(self.dataset, task, self.context, shared)
        done = _Done((record, self.clock() - start))
        self._finished.append(done)
        return done

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, Any]]:
        finished, self._finished = self._finished, []
        return [(done, None if isinstance(done.result, SharedFit) else done.result) for done in finished]

    def release(self, handle: Hashable) -> None:
        if isinstance(handle, _Done):
            handle.result = None


class LocalExecutor(Executor):
    """Runs the plan in this process.

    Args:
        max_time: seconds from the start after which no task starts (None: no limit).
        clock: the clock of the time box and of the task timings it learns from.
    """

    def __init__(self, max_time: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_time = max_time
        self.clock = clock

    def run(self, plan: Plan, dataset: Dataset, context: TaskContext, costs: CostModel, sink: Sink) -> int:
        try:
            return drive(plan, LocalBackend(dataset, context, self.clock), costs, Budget(self.max_time, self.clock),
                         sink)
        finally:
            clear_caches()
