"""The command line of the executors: the options that say where the tasks of ``adbench run`` run
and for how long, and ``adbench plan`` (the tasks of a run, printed, nothing run).

``adbench.cli`` calls ``add_executor_arguments`` on the ``run`` parser, ``add_plan_command`` on its
subparsers, ``check_executor_arguments`` before anything is loaded, ``resolve_run_device``,
``executor_from_args`` once the device is known, and prints ``left_message`` after a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from adbench.errors import ConfigError
from adbench.executors.clusters import CLUSTERS, INSTALL_HINT

EXECUTORS = ("local", "dask")
_DASK_ONLY = ("workers", "scheduler", "cluster", "cluster_option")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor``, ``--workers``, ``--scheduler``, ``--cluster``, ``--cluster-option``, ``--max-time``."""
    group = parser.add_argument_group("where and for how long the tasks run")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help=f"local: one task after another in this process; dask: on a Dask cluster ({INSTALL_HINT})")
    group.add_argument("--workers", type=int, metavar="N",
                       help="dask: worker processes of a local cluster (default: one per core, or one per GPU "
                            "with --device cuda); with --cluster, the worker processes to keep running as batch "
                            "jobs, in whole jobs (default: one job)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="dask: a running Dask scheduler, e.g. tcp://node1:8786")
    group.add_argument("--cluster", choices=tuple(CLUSTERS),
                       help="dask: start the workers as batch jobs through dask-jobqueue")
    group.add_argument("--cluster-option", action="append", metavar="KEY=VALUE",
                       help="a keyword of dask-jobqueue's cluster for --cluster, repeatable: queue=gpu "
                            "walltime=01:00:00 cores=8 memory=32GB gpus=1 account=... ('adbench plan' prints the job "
                            "script)")
    group.add_argument("--max-time", metavar="DURATION",
                       help="start no task that would not finish within DURATION of the start (50m, 1h30m, 90s, "
                            "01:30:00); running tasks finish; rerun the same command to continue")


def add_plan_command(subparsers: Any, formatter_class: type | None = None) -> argparse.ArgumentParser:
    """``adbench plan``: the arguments of ``adbench run``; prints one JSON line per task."""
    from adbench.cli import add_run_arguments

    options = {"formatter_class": formatter_class} if formatter_class else {}
    plan = subparsers.add_parser(
        "plan", help="print the tasks a run would start (one JSON line each), run nothing",
        description="The tasks 'adbench run' would start with the same arguments, one JSON line each: key, kind "
                    "(fit: a method trained once; window: one record), method, window, N_sig, seed, what it waits "
                    "for and its cost estimate (from this run's output directory when it holds results, else a "
                    "built-in guess). Nothing is run or written.", **options)
    add_run_arguments(plan)
    add_executor_arguments(plan)
    return plan


def check_executor_arguments(args: argparse.Namespace) -> None:
    """The executor options, checked before any data is read (one-line ``ConfigError``)."""
    from adbench.costs import parse_duration

    if getattr(args, "max_time", None) is not None:
        parse_duration(args.max_time, "--max-time")
    if args.executor == "local":
        given = [name for name in _DASK_ONLY if getattr(args, name, None)]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} needs --executor dask")
        return
    from adbench.executors.clusters import parse_cluster_options
    from adbench.executors.dask_executor import check_options

    check_options(args.workers, args.scheduler, args.cluster, parse_cluster_options(args.cluster_option))


def remote_workers(args: argparse.Namespace) -> bool:
    """Whether the tasks run on other machines (a running scheduler or batch jobs)."""
    return getattr(args, "executor", "local") == "dask" and bool(args.scheduler or args.cluster)


def resolve_run_device(args: argparse.Namespace, requested: str) -> str:
    """The run's device. ``cuda`` for remote workers is taken as given (the client, e.g. a login
    node, may have no GPU; the workers check it); everything else as ``resolve_device`` says."""
    from adbench.environment import resolve_device

    if remote_workers(args) and (requested == "cuda" or requested.startswith("cuda:")):
        return requested
    return resolve_device(requested)


def executor_from_args(args: argparse.Namespace, device: str) -> Any:
    """The executor the options ask for (``check_executor_arguments`` has run)."""
    from adbench.costs import parse_duration

    max_time = parse_duration(args.max_time, "--max-time") if getattr(args, "max_time", None) else None
    if getattr(args, "executor", "local") == "local":
        from adbench.executors.local import LocalExecutor

        return LocalExecutor(max_time=max_time)
    from adbench.executors.clusters import gpu_ids, local_worker_specs, parse_cluster_options
    from adbench.executors.dask_executor import DaskExecutor
    from adbench.tasks import DatasetRef

    if not args.scheduler and not args.cluster:
        workers = args.workers or (len(gpu_ids()) if device.startswith("cuda") else os.cpu_count() or 1)
        local_worker_specs(workers, device, os.cpu_count() or 1, gpu_ids() if device.startswith("cuda") else [])
    return DaskExecutor(
        workers=args.workers, scheduler=args.scheduler, cluster=args.cluster,
        cluster_options=parse_cluster_options(args.cluster_option), device=device, max_time=max_time,
        dataset_ref=DatasetRef.card(args.dataset, args.data_dir, args.features),
    )


def left_message(summary: Any) -> str | None:
    """``N of M tasks left: rerun to continue`` after a time-boxed run that stopped early."""
    if not summary.left:
        return None
    return f"adbench: {summary.left} of {summary.total} tasks left: rerun to continue"


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the plan of ``adbench run`` with the same arguments: one JSON line per task on stdout,
    a summary on stderr (and, with --cluster, the job script dask-jobqueue would submit)."""
    from adbench.cli import load_run
    from adbench.costs import CostModel, format_duration
    from adbench.harness import prepare
    from adbench.models.resume import RESUME_DIR
    from adbench.planning import describe

    check_executor_arguments(args)
    dataset, config = load_run(args)
    executor_from_args(args, config.device)
    plan, store, records = prepare(dataset, config)
    costs = CostModel(dataset, config, plan, records, config.device.startswith("cuda"),
                      str(store.directory / RESUME_DIR))
    serial = 0.0
    for task in plan.tasks:
        estimate = costs.estimate(task)
        serial += estimate.seconds
        print(json.dumps(describe(task, estimate)))
    print(f"adbench: {len(plan.windows)} of {plan.total} tasks to run ({plan.done} done earlier) and "
          f"{len(plan.fits)} shared fit(s), about {format_duration(serial)} one after another", file=sys.stderr)
    if args.executor == "dask" and args.cluster:
        from adbench.executors.clusters import job_script, parse_cluster_options

        script = job_script(args.cluster, parse_cluster_options(args.cluster_option), config.device)
        print(f"adbench: each batch job runs:\n{script}", file=sys.stderr)
    return 0
