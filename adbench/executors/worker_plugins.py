"""Dask worker plugins of the Dask executor (this module imports dask.distributed)."""

from __future__ import annotations

import os
import sys
from typing import Any

from distributed import WorkerPlugin


class GpuWorkerThreads(WorkerPlugin):
    """A worker holding a GPU runs one task at a time (every task asks for the ``GPU`` resource), so
    that task gets all of the worker's threads for its CPU parts (classifier, data, BLAS) instead of
    the single thread Dask gives worker processes by default."""

    name = "adbench-gpu-worker-threads"
    idempotent = True

    def setup(self, worker: Any) -> None:
        threads = int(worker.state.nthreads)
        if worker.state.total_resources.get("GPU", 0) >= 1 and threads > 1:
            set_threads(threads)


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in torch, OpenMP and BLAS from now on in this process."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # for libraries loaded later
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # for those already loaded


class IgnoreInterrupt(WorkerPlugin):
    """Worker processes on this machine ignore Ctrl-C: it reaches the whole process group, and the
    client, which keeps every finished record, shuts them down itself."""

    name = "adbench-ignore-interrupt"
    idempotent = True

    def setup(self, worker: Any) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
