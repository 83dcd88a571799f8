"""What every executor shares: the time box (``Budget``) and the loop that hands the plan's tasks to
a backend (the client process itself, or Dask) as their dependencies finish.

The loop decides only *whether and when a task is handed over*: a task is submitted when what it
waits for has finished, a slot is free (the backend's worker threads or GPUs) and, under
``--max-time``, its cost estimate fits in the time left. Where it runs, data transfers, worker loss
and retries are the backend's business (Dask's scheduler for the Dask executor).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Collection, Hashable
from typing import Any, Protocol

from adbench.costs import CostModel
from adbench.data.dataset import Dataset
from adbench.planning import FitTask, Plan, Task, WindowTask
from adbench.results import Record
from adbench.tasks import TaskContext


class Budget:
    """``--max-time``: the seconds this run may use from its start (None: no limit)."""

    def __init__(self, max_time: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_time = max_time
        self.clock = clock
        self.start = clock()

    def remaining(self) -> float:
        return math.inf if self.max_time is None else self.max_time - (self.clock() - self.start)

    def allows(self, seconds: float) -> bool:
        return self.max_time is None or seconds <= self.remaining()


class Sink(Protocol):
    """Where the loop reports: ``started`` when a task is handed over, ``finished`` with each record
    (in completion order; the only writer of results.jsonl)."""

    def started(self, task: Task) -> None: ...

    def finished(self, task: WindowTask, record: Record, seconds: float) -> None: ...


class Backend(Protocol):
    """Runs tasks. Handles are hashable; ``wait`` returns at least one finished ``(handle, result)``:
    for a fit, None (its result stays with the backend and is passed on as the handle); for a
    window task, ``(record, seconds)``."""

    def slots(self) -> int: ...

    def submit_fit(self, task: FitTask) -> Hashable: ...

    def submit_window(self, task: WindowTask, fit: Hashable | None) -> Hashable: ...

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, Any]]: ...

    def release(self, handle: Hashable) -> None: ...


class Executor:
    """Runs a plan. ``max_time``: stop starting tasks that would not finish within that many
    seconds of the start; running ones finish."""

    max_time: float | None = None

    def run(self, plan: Plan, dataset: Dataset, context: TaskContext, costs: CostModel, sink: Sink) -> int:
        """Run the plan; returns the number of window tasks left for a later run."""
        raise NotImplementedError


def next_ready(ready: list[tuple[int, Task]], running: Collection[Task]) -> Task:
    """Pop from the heap ``ready`` the first task in plan order that would not repeat a training a
    running task is doing (``WindowTask.may_repeat_trainings_of``); the first task if every one would.
    With one slot nothing is running when a task is taken, so the order is the plan's."""
    busy = [task for task in running if isinstance(task, WindowTask)]
    skipped: list[tuple[int, Task]] = []
    entry = heapq.heappop(ready)
    while busy and isinstance(entry[1], WindowTask) and any(entry[1].may_repeat_trainings_of(t) for t in busy):
        skipped.append(entry)
        if not ready:
            entry = skipped.pop(0)  # every ready task would: the first one, rather than an idle slot
            break
        entry = heapq.heappop(ready)
    for other in skipped:
        heapq.heappush(ready, other)
    return entry[1]


def drive(plan: Plan, backend: Backend, costs: CostModel, budget: Budget, sink: Sink) -> int:
    """Hand the plan's tasks to ``backend`` as their dependencies finish, in plan order but for the
    deferral below; returns the number of window tasks not started because the time box would have
    been exceeded.

    With several slots, a task that may repeat a running task's training (variants of one method, or
    ANODE and R-ANODE, on one window, N_sig and seed) waits while other tasks can start, so that it
    reads that training back instead of training it a second time (``next_ready``); no slot is left
    idle for it.

    The first task of a run always starts (until one record is written), whatever its estimate, so
    that every chunk of a time-boxed scan makes progress; a fit is started only when the fit and its
    first window fit in the time left.
    """
    waiting: dict[str, list[WindowTask]] = {}
    ready: list[tuple[int, Task]] = []
    for task in plan.tasks:
        if isinstance(task, WindowTask) and task.fit is not None:
            waiting.setdefault(task.fit, []).append(task)
        else:
            ready.append((task.index, task))
    heapq.heapify(ready)
    users_left = {fit: len(users) for fit, users in waiting.items()}
    fits: dict[str, Hashable] = {}
    running: dict[Hashable, Task] = {}
    left = recorded = 0

    def done_with(fit: str) -> None:
        users_left[fit] -= 1
        if users_left[fit] == 0 and fit in fits:
            backend.release(fits.pop(fit))  # frees the fitted model on the worker

    while ready or running:
        while ready and len(running) < backend.slots():
            task = next_ready(ready, running.values())
            forced = not running and recorded == 0
            if budget.max_time is not None and not forced and not budget.allows(costs.to_start(task, plan).seconds):
                if isinstance(task, FitTask):
                    left += len(waiting.pop(task.key, []))
                else:
                    left += 1
                    if task.fit is not None:
                        done_with(task.fit)
                continue
            sink.started(task)
            if isinstance(task, FitTask):
                running[backend.submit_fit(task)] = task
            else:
                running[backend.submit_window(task, fits.get(task.fit) if task.fit else None)] = task
        if not running:
            break
        for handle, result in backend.wait(list(running)):
            task = running.pop(handle)
            if isinstance(task, FitTask):
                fits[task.key] = handle
                for user in waiting.pop(task.key, []):
                    heapq.heappush(ready, (user.index, user))
            else:
                record, seconds = result
                recorded += 1
                costs.learn(task, record, seconds)
                sink.finished(task, record, seconds)
                if task.fit is not None:
                    done_with(task.fit)
    return left
