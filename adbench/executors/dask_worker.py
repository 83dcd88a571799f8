"""``python -m adbench.executors.dask_worker ARGS``: Dask's ``dask worker`` command with the worker
settings of ``adbench.executors.clusters.WORKER_CONFIG`` (the batch jobs dask-jobqueue submits run it)."""

from __future__ import annotations


def main() -> None:
    import dask
    from distributed.cli.dask_worker import main as dask_worker  # first: importing it merges Dask's defaults

    from adbench.executors.clusters import WORKER_CONFIG

    dask.config.set(WORKER_CONFIG)
    dask_worker()


if __name__ == "__main__":
    main()
