"""``--executor dask``: the tasks run on a Dask cluster; this process is the client and the only
writer of results.jsonl.

- A shared fit runs as one Dask task; its result (the fitted model) stays in the memory of the
  worker that computed it and is passed to the window tasks that use it as a Dask future. Dask runs
  them where the model is when it can, or copies the model to another worker (a pickle of the
  torch state: a few MB); no worker ever receives the data arrays from the client. The workers write
  only their trainings' progress, to ``<output>/resume/`` (``adbench.models.resume``); a worker that
  cannot write there warns once per training and goes on without.
- The dataset travels as a ``DatasetRef`` (each worker process loads it once) or, from the Python
  API, as one scattered copy per worker.
- A task whose worker is lost while it runs (killed, preempted) is run once more on another worker;
  a second such loss records it as failed with the reason. A task that was only queued on the lost
  worker is submitted again. See ``DaskBackend``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from adbench.costs import CostModel
from adbench.data.dataset import Dataset
from adbench.errors import ConfigError
from adbench.executors.base import Budget, Executor, Sink, drive
from adbench.executors.clusters import (
    CLUSTERS,
    INSTALL_HINT,
    job_script,
    make_jobqueue_cluster,
    make_local_cluster,
)
from adbench.planning import FitTask, Plan, Task, WindowTask
from adbench.tasks import START_TOPIC, DatasetRef, TaskContext, fit_task, lost_record, window_task

#: Seconds between two looks at the cluster's size (workers join and leave).
SLOTS_REFRESH_S = 2.0


def require_dask(what: str = "--executor dask") -> None:
    """``ConfigError`` with the install hint when dask.distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs Dask, which is not installed: {INSTALL_HINT}") from None


def check_options(
    workers: int | None, scheduler: str | None, cluster: str | None, cluster_options: dict[str, Any] | None,
    device: str = "cpu",
) -> str | None:
    """Refuse, in one line, options that cannot work together; returns the batch job script of
    ``cluster`` (dask-jobqueue has then accepted its options), else None."""
    require_dask()
    if scheduler and cluster:
        raise ConfigError("--scheduler and --cluster exclude each other: use a running scheduler or start one")
    if scheduler and workers is not None:
        raise ConfigError("--workers has no effect with --scheduler (its workers are already running)")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if cluster_options and not cluster:
        raise ConfigError("--cluster-option needs --cluster slurm|htcondor|pbs")
    if not cluster:
        return None
    if cluster not in CLUSTERS:
        raise ConfigError(f"--cluster {cluster!r}: choose one of {', '.join(CLUSTERS)}")
    return job_script(cluster, dict(cluster_options or {}), device)


class DaskExecutor(Executor):
    """Runs the plan on a Dask cluster.

    Args:
        workers: worker processes of a local cluster (default: one per core, or per GPU), or
            workers to start through the batch system with ``cluster``.
        scheduler: address of a running scheduler (``tcp://host:8786``) to use instead.
        cluster: ``slurm``, ``htcondor`` or ``pbs`` (dask-jobqueue), with ``cluster_options``.
        device: the run's device (``cuda``: every task asks for the worker resource ``GPU``).
        dataset_ref: how workers load the dataset; None scatters the client's copy to each worker.
        plugins: Dask worker plugins to register before the first task.
    """

    def __init__(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        cluster: str | None = None,
        cluster_options: dict[str, Any] | None = None,
        device: str = "cpu",
        dataset_ref: DatasetRef | None = None,
        max_time: float | None = None,
        plugins: Sequence[Any] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_script = check_options(workers, scheduler, cluster, cluster_options, device)
        self.workers, self.scheduler, self.cluster = workers, scheduler, cluster
        self.cluster_options = dict(cluster_options or {})
        self.device, self.dataset_ref, self.max_time = device, dataset_ref, max_time
        self.plugins, self.clock = list(plugins), clock

    def run(self, plan: Plan, dataset: Dataset, context: TaskContext, costs: CostModel, sink: Sink) -> int:
        from distributed import Client

        from adbench.executors.worker_plugins import GpuWorkerThreads, IgnoreInterrupt

        local = not self.scheduler and not self.cluster
        with _quiet_dask_logs():
            cluster = self._start_cluster()
            try:
                with Client(cluster if cluster is not None else self.scheduler) as client:
                    if self.scheduler and self.device.startswith("cuda"):
                        _check_gpu_workers(client, self.scheduler)
                    for plugin in [GpuWorkerThreads(), *([IgnoreInterrupt()] if local else []), *self.plugins]:
                        client.register_plugin(plugin)
                    source = self.dataset_ref or client.scatter(dataset, broadcast=True, hash=False)
                    backend = DaskBackend(client, source, context, gpu=self.device.startswith("cuda"))
                    return drive(plan, backend, costs, Budget(self.max_time, self.clock), sink)
            finally:
                if cluster is not None:
                    cluster.close()

    def _start_cluster(self) -> Any:
        if self.scheduler:
            return None
        if self.cluster:
            cluster = make_jobqueue_cluster(self.cluster, self.cluster_options, self.device)
            # adaptive with a fixed size: a job that ends (walltime, preemption) is submitted again
            cluster.adapt(minimum=self.workers or 1, maximum=self.workers or 1)
            return cluster
        if self.workers is None:
            import os

            from adbench.executors.clusters import gpu_ids

            self.workers = len(gpu_ids()) if self.device.startswith("cuda") else (os.cpu_count() or 1)
        return make_local_cluster(self.workers, self.device)


def _check_gpu_workers(client: Any, address: str) -> None:
    """GPU tasks wait for a worker with the resource ``GPU``: refuse at once when the running
    cluster has workers and none offers it (the scan would wait for ever)."""
    workers = client.scheduler_info()["workers"].values()
    if workers and not any(w.get("resources", {}).get("GPU", 0) for w in workers):
        raise ConfigError(
            f"--device cuda: no worker of {address} offers the resource GPU; start each GPU worker with "
            "'dask worker ADDRESS --nthreads N --resources GPU=1' (one per card)"
        )


@contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Dask's INFO messages (workers starting and stopping) are not the run's business: shown only
    with ``adbench -v``."""
    loggers = [logging.getLogger(name) for name in ("distributed", "dask_jobqueue")]
    levels = [logger.level for logger in loggers]
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _Job:
    """A task on the cluster: its current attempt (a Dask future) and its history of losses.

    Attributes:
        lost_running: attempts lost with their worker while they ran.
        lost: the reason, once the task is given up (a fit: its window tasks record it).
    """

    def __init__(self, task: Task) -> None:
        self.task: Task = task
        self.future: Any = None
        self.lost_running = 0
        self.resubmitted = 0
        self.lost: str | None = None


class DaskBackend:
    """Submits tasks as Dask futures; a finished fit's future is handed to its window tasks.

    Worker loss: the scheduler of a cluster started here gives a task up as soon as a worker holding
    it dies (``allowed-failures = 0``) and the client decides: every attempt logs its start with the
    scheduler (``adbench.tasks.announce_start``), so a task lost *while running* is submitted again
    once and recorded as failed after its second such loss, while a task that was only queued on
    the lost worker is simply submitted again (at most ``MAX_RESUBMITS`` times in all). A fitted
    model lost with its worker is fitted again for the window tasks that still need it.
    """

    MAX_RESUBMITS = 5

    def __init__(self, client: Any, source: Any, context: TaskContext, gpu: bool) -> None:
        self.client, self.source, self.context, self.gpu = client, source, context, gpu
        self.resources = {"GPU": 1} if gpu else None
        self.token = uuid.uuid4().hex[:8]
        self._waited: dict[Any, _Job] = {}  # futures the drive loop waits for -> their job
        self._fits: dict[str, _Job] = {}
        self._ready: list[tuple[_Job, Any]] = []  # results known without running anything
        self._slots, self._slots_at = 1, -float("inf")

    def slots(self) -> int:
        """Tasks the cluster can run at once: its threads, or its GPUs (at least 1, so that the
        first task waits on the scheduler while batch jobs start)."""
        now = time.monotonic()
        if now - self._slots_at > SLOTS_REFRESH_S:
            workers = self.client.scheduler_info()["workers"].values()
            if self.gpu:
                total = sum(w.get("resources", {}).get("GPU", 0) for w in workers)
            else:
                total = sum(w.get("nthreads", 0) for w in workers)
            self._slots, self._slots_at = max(1, int(total)), now
        return self._slots

    def _submit(self, job: _Job, waited: bool = True) -> _Job:
        """Submit (again) the job's task; ``waited``: the drive loop waits for this attempt."""
        task = job.task
        if isinstance(task, FitTask):
            function, args = fit_task, ()
        else:
            fit = self._fits.get(task.fit) if task.fit else None
            function, args = window_task, (fit.future if fit else None,)
        job.future = self.client.submit(
            function, self.source, task, self.context, *args,
            key=f"adbench-{self.token}-{task.key}-{job.resubmitted}", resources=self.resources, pure=False,
            priority=-task.index,
        )
        if waited:
            self._waited[job.future] = job
        return job

    def submit_fit(self, task: FitTask) -> Hashable:
        job = self._fits[task.key] = _Job(task)
        return self._submit(job)

    def submit_window(self, task: WindowTask, fit: Hashable | None) -> Hashable:
        job = _Job(task)
        if isinstance(fit, _Job) and fit.lost:
            self._ready.append((job, (lost_record(task, self.context, f"shared fit: {fit.lost}"), 0.0)))
            return job
        return self._submit(job)

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, Any]]:
        from distributed import wait

        if self._ready:
            out, self._ready = self._ready, []
            return out
        while True:
            futures = [job.future for job in handles if isinstance(job, _Job) and job.future in self._waited]
            done, _ = wait(futures, return_when="FIRST_COMPLETED")
            out = [result for future in done if (result := self._outcome(self._waited.pop(future))) is not None]
            if out:
                return out

    def _outcome(self, job: _Job) -> tuple[Hashable, Any] | None:
        """``(job, result)`` for a job that is done; None when it was submitted again."""
        from distributed import KilledWorker

        future, task = job.future, job.task
        if future.status == "finished":
            if isinstance(task, FitTask):
                return job, None
            result = future.result()
            future.release()
            return job, result
        error = future.exception()
        if not isinstance(error, KilledWorker):
            future.result()  # re-raises the task's error with its traceback, as the local executor would
        fit = self._fits.get(task.fit) if isinstance(task, WindowTask) and task.fit else None
        if error.task != future.key:  # the fitted model it needs was lost with its worker
            if fit is None or job.resubmitted >= self.MAX_RESUBMITS:
                return job, (lost_record(task, self.context, f"shared fit: {_lost(error, 1)}"), 0.0)
            if fit.future.status == "error":
                fit.resubmitted += 1
                self._submit(fit, waited=False)
            job.resubmitted += 1
            self._submit(job)
            return None
        job.lost_running += self._starts(future.key)
        if job.lost_running < 2 and job.resubmitted < self.MAX_RESUBMITS:
            job.resubmitted += 1
            self._submit(job)
            return None
        job.lost = _lost(error, job.lost_running)
        if isinstance(task, FitTask):
            return job, None  # its window tasks record the reason
        return job, (lost_record(task, self.context, job.lost), 0.0)

    def _starts(self, key: str) -> int:
        """How many attempts of ``key`` started (the start events the scheduler keeps)."""
        return sum(1 for _, message in self.client.get_events(START_TOPIC) if message.get("key") == key)

    def release(self, handle: Hashable) -> None:
        if isinstance(handle, _Job) and handle.future is not None:
            self._waited.pop(handle.future, None)
            self._fits.pop(handle.task.key, None)
            handle.future.release()


def _lost(error: Exception, times: int) -> str:
    text = " ".join(str(error).split())
    return f"the worker running it was lost ({times} time{'s' if times != 1 else ''}): {text}"
