"""Dask clusters for the scan: local worker processes, or batch jobs through dask-jobqueue.

Options reach dask-jobqueue's cluster classes unchanged (``--cluster-option queue=gpu`` is
``SLURMCluster(queue="gpu")``), with a few defaults for this workload:

- every task is single-threaded Python/torch/BLAS, so on a CPU cluster each job runs one worker
  process per core (``processes = cores``) unless told otherwise;
- with ``--device cuda`` each worker process owns one GPU: it is started with the Dask resource
  ``GPU=1`` (every task asks for it, so two tasks never share a card) and one process per job;
  ``gpus=N`` asks the batch system for the cards (Slurm ``--gres=gpu:N``, HTCondor ``request_gpus``).

The scheduler of a cluster created here gives a task up as soon as a worker holding it is lost
(``allowed-failures = 0``): the client then decides whether it runs again (``DaskBackend``).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from typing import Any

from adbench.errors import ConfigError

#: --cluster value -> dask_jobqueue cluster class.
CLUSTERS = {"slurm": "SLURMCluster", "htcondor": "HTCondorCluster", "pbs": "PBSCluster"}
#: The scheduler settings of the clusters adbench creates.
SCHEDULER_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
}
#: The worker settings. Dask's default environment of worker processes sets MALLOC_TRIM_THRESHOLD_,
#: which switches off glibc's adaptive mmap threshold: every large numpy temporary is then mapped and
#: unmapped again, and the classifier (scikit-learn's histogram binning) ran 2-3 times slower in a
#: worker than in the client (measured here: 9-12 s against 4-6 s for the same fits). The statistical
#: profiler cost another quarter of that. Threads stay at one per worker process, as in Dask.
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
}
#: The worker command of batch jobs (Dask's, with WORKER_CONFIG).
WORKER_COMMAND = "adbench.executors.dask_worker"
INSTALL_HINT = "pip install 'adbench[dask]'"


def parse_cluster_options(items: list[str] | None) -> dict[str, Any]:
    """``["queue=gpu", "cores=8", 'job_extra_directives=["--gres=gpu:1"]']`` -> keyword arguments.
    Values that parse as JSON (numbers, booleans, lists, objects) are taken as such, others as text."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--cluster-option expects KEY=VALUE (e.g. queue=gpu), got {item!r}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def jobqueue_kwargs(kind: str, options: dict[str, Any], device: str) -> dict[str, Any]:
    """The keyword arguments of the dask-jobqueue cluster for ``kind`` (see the module docstring)."""
    if kind not in CLUSTERS:
        raise ConfigError(f"--cluster {kind!r}: choose one of {', '.join(CLUSTERS)}")
    kwargs = dict(options)
    kwargs.setdefault("job_name", "adbench-worker")
    gpus = kwargs.pop("gpus", None)
    gpu = device.startswith("cuda")
    if gpus is not None:
        if not isinstance(gpus, int) or gpus < 1:
            raise ConfigError(f"--cluster-option gpus expects a positive integer, got {gpus!r}")
        if kind == "slurm":
            kwargs["job_extra_directives"] = [*_as_list(kwargs.get("job_extra_directives")), f"--gres=gpu:{gpus}"]
        elif kind == "htcondor":
            kwargs["job_extra_directives"] = {**dict(kwargs.get("job_extra_directives") or {}), "request_gpus": gpus}
        else:
            raise ConfigError(
                "--cluster-option gpus is not known for pbs (its GPU syntax is site-specific): pass it as "
                "job_extra_directives, e.g. 'job_extra_directives=[\"-l select=1:ngpus=1\"]'"
            )
    extra = _as_list(kwargs.get("worker_extra_args"))
    if gpu:
        kwargs.setdefault("processes", 1)
        extra += ["--resources", "GPU=1"]
    elif "cores" in kwargs:
        kwargs.setdefault("processes", kwargs["cores"])
    if kwargs.setdefault("worker_command", WORKER_COMMAND) == WORKER_COMMAND:
        # dask-jobqueue adds these two only to its own worker command
        processes = int(kwargs.get("processes") or 1)
        extra += (["--nworkers", str(processes)] if processes > 1 else []) + ["--nanny"]
    kwargs["worker_extra_args"] = extra
    return kwargs


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _jobqueue_class(name: str) -> Any:
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError(f"--cluster needs dask-jobqueue: {INSTALL_HINT}") from None
    return getattr(dask_jobqueue, name)


def job_script(kind: str, options: dict[str, Any], device: str = "cpu",
               scheduler: str = "tcp://SCHEDULER:8786") -> str:
    """The batch script dask-jobqueue submits for one worker job with these options (nothing is
    submitted; ``ConfigError`` naming the option when dask-jobqueue refuses them)."""
    kwargs = jobqueue_kwargs(kind, options, device)
    cluster_cls = _jobqueue_class(CLUSTERS[kind])
    # what the cluster keeps for itself (its scheduler's options...); it hands on the rest to each job
    base = _jobqueue_class("JobQueueCluster")
    own = set(inspect.signature(base.__init__).parameters) - {"interface", "protocol", "config_name"}
    try:
        return cluster_cls.job_cls(scheduler, name="adbench-worker",
                                   **{k: v for k, v in kwargs.items() if k not in own}).job_script()
    except (TypeError, ValueError, KeyError) as error:
        text = " ".join(str(error).split())
        raise ConfigError(f"--cluster {kind} with --cluster-option {_show(options)}: {text}") from None


def _show(options: dict[str, Any]) -> str:
    return " ".join(f"{key}={json.dumps(value)}" for key, value in options.items()) or "(none)"


def make_jobqueue_cluster(kind: str, options: dict[str, Any], device: str) -> Any:
    """Start the dask-jobqueue cluster (its scheduler runs in this process; jobs are submitted
    when the cluster is scaled)."""
    import dask

    cluster_cls = _jobqueue_class(CLUSTERS[kind])
    with dask.config.set(SCHEDULER_CONFIG):
        return cluster_cls(**jobqueue_kwargs(kind, options, device))


def gpu_ids() -> list[str]:
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES`` when set, else all torch sees)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v.strip() for v in visible.split(",") if v.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def local_worker_specs(n_workers: int, device: str, cores: int, gpus: list[str]) -> dict[str, dict[str, Any]]:
    """``SpecCluster`` worker specs: on a CPU one single-threaded worker process per task slot; on
    GPUs one worker per card, which sees only that card, holds the resource ``GPU=1`` and gets an
    equal share of the cores for its one task (its classifier, data and BLAS)."""
    from distributed import Nanny

    if n_workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {n_workers}")
    quiet = {"silence_logs": logging.ERROR}
    if not device.startswith("cuda"):
        return {f"adbench-{i}": {"cls": Nanny, "options": {"nthreads": 1, **quiet}} for i in range(n_workers)}
    if device != "cuda":
        raise ConfigError(f"--device {device} with --executor dask: use --device cuda (each worker gets one GPU)")
    if n_workers > len(gpus):
        raise ConfigError(f"--workers {n_workers} with --device cuda: only {len(gpus)} GPU(s) visible, one per worker")
    threads = max(1, cores // n_workers)
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    return {
        f"adbench-gpu{gpus[i]}": {"cls": Nanny, "options": {
            "nthreads": threads, "resources": {"GPU": 1}, "env": {**env, "CUDA_VISIBLE_DEVICES": gpus[i]}, **quiet,
        }}
        for i in range(n_workers)
    }


def make_local_cluster(n_workers: int, device: str = "cpu") -> Any:
    """Worker processes on this machine (a ``SpecCluster`` of nannies: a killed worker is restarted)."""
    import dask
    from distributed import Scheduler, SpecCluster

    gpus = gpu_ids() if device.startswith("cuda") else []
    workers = local_worker_specs(n_workers, device, os.cpu_count() or 1, gpus)
    with dask.config.set({**SCHEDULER_CONFIG, **WORKER_CONFIG}):  # the nannies read it, and hand it on
        return SpecCluster(
            workers=workers,
            scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
            silence_logs=logging.ERROR,
            name="adbench",
        )
