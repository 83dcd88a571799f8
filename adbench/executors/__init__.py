"""Where the tasks of a scan run: ``LocalExecutor`` (this process) or ``DaskExecutor`` (a Dask
cluster: local processes, a running scheduler, or Slurm / HTCondor / PBS through dask-jobqueue).

Imported lazily (``adbench.executors.cli`` is imported by the command line, which must stay light).
"""

from __future__ import annotations

from typing import Any

_WHERE = {
    "Budget": "adbench.executors.base", "Executor": "adbench.executors.base",
    "LocalExecutor": "adbench.executors.local", "DaskExecutor": "adbench.executors.dask_executor",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'adbench.executors' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
