"""Benchmark of the executors: one scan, local versus a Dask LocalCluster of worker processes.

Not a unit test (the file name does not start with ``test_``). Run it as a script::

    .venv/bin/python tests/benchmarks/bench_executors.py                  # the issue's setup (heavy)
    .venv/bin/python tests/benchmarks/bench_executors.py --n-background 30000 --windows 4 --tiny   # minutes

The scan: ``--windows`` sliding windows (width 0.2 TeV, step 0.1 from 3.0 TeV) x ``--seeds`` of
sigma-context (trained once per seed, its fit handed to the window tasks) and idealized on the
synthetic dataset (1M background, 100k signal pool, 3M held-out by default), run once with the local
executor and once on ``--workers`` single-threaded worker processes. Both runs use one thread per
process (torch, OpenMP, BLAS), so the ratio measures the executor, not thread counts.

Printed (JSON, also to ``--output``): both wall-clock times and their ratio, the cluster start, and
the scheduling overhead per task: for each window task on the cluster, the time from its submission
to the client seeing it finished, minus the seconds the task itself ran on its worker (serialisation,
scheduler, transfers of the fitted model, the result back, the client's loop; the first task of
each worker process also imports torch and scikit-learn), as median, 90% quantile, mean and maximum;
plus the round trip of an empty Dask task for comparison. Records of both runs are
compared (they must be equal up to timings): ``differing_fields`` names any field that is not
(``--compare LOCAL DASK`` compares two kept output directories without running anything).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TINY_CFM = {"train": {"epochs": 2}, "network": {"width": 32}, "solver": {"steps": 2}}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-background", type=int, default=1_000_000)
    parser.add_argument("--n-signal", type=int, default=100_000, help="signal pool")
    parser.add_argument("--n-reference", type=int, default=None, help="held-out background (default 3 x background)")
    parser.add_argument("--n-sig", type=int, default=1000, help="injected signal events")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="sigma-context with 2 epochs of a width-32 network")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("LOCAL", "DASK"), default=None,
                        help="only compare the records of two earlier output directories (runs nothing)")
    return parser.parse_args(argv)


def _specs(tiny: bool) -> list[Any]:
    from adbench.harness import MethodSpec
    from adbench.methods.presets import Preset, load_preset, merge_tables

    specs = []
    for name in ("sigma-context", "idealized"):
        spec = MethodSpec.parse(name, "fast")
        if tiny and name == "sigma-context":
            base = load_preset(name, "fast")
            preset = Preset(base.method, "fast", merge_tables(base.params, TINY_CFM), base.template, base.source)
            spec = MethodSpec(spec.name, preset, spec.classifier)
        specs.append(spec)
    return specs


def _instrumented_backend() -> tuple[type, list[tuple[float, float, float]]]:
    """A DaskBackend that notes (submitted, seen finished, seconds on the worker) of window tasks."""
    from adbench.executors.dask_executor import DaskBackend

    log: list[tuple[float, float, float]] = []

    class Timed(DaskBackend):
        submitted: dict[int, float] = {}

        def _submit(self, job, waited=True):
            job = super()._submit(job, waited)
            self.submitted[id(job)] = time.perf_counter()
            return job

        def wait(self, handles):
            out = super().wait(handles)
            now = time.perf_counter()
            for job, result in out:
                if result is not None:
                    log.append((self.submitted[id(job)], now, result[1]))
            return out

    return Timed, log


def _empty_round_trip(address: str, n: int = 50) -> float:
    from distributed import Client

    with Client(address) as client:
        client.submit(int, 0, pure=False).result()  # warm
        start = time.perf_counter()
        for i in range(n):
            client.submit(int, i, pure=False).result()
        return (time.perf_counter() - start) / n


#: Fields of a record that may differ between two runs of the same tasks: timings.
TIMING_FIELDS = ("timestamp", "time_fit_shared_s", "time_fit_window_s", "time_sample_s", "time_classify_s")


def differing_fields(first: Path, second: Path) -> list[str]:
    """Names of the record fields (``method_info.KEY`` inside the method's facts) that differ between
    the results files of two output directories, the timings left out; ``["records"]`` when the two
    hold different tasks."""
    from adbench.results import ResultStore

    def by_key(directory: Path) -> dict[tuple, dict[str, Any]]:
        out = {}
        for record in ResultStore(directory).load():
            values = record.to_dict()
            for name in TIMING_FIELDS:
                values.pop(name)
            info = values.pop("method_info")
            values.update({f"method_info.{k}": v for k, v in info.items() if "second" not in k})
            out[(record.method, record.window, record.n_sig, record.seed, record.config_hash)] = values
        return out

    a, b = by_key(first), by_key(second)
    if a.keys() != b.keys():
        return ["records"]
    fields = {name for key in a for name in a[key].keys() | b[key].keys()
              if json.dumps(a[key].get(name), sort_keys=True) != json.dumps(b[key].get(name), sort_keys=True)}
    return sorted(fields)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    if args.compare:
        result = {"differing_fields": differing_fields(*args.compare)}
        print(json.dumps(result))
        return result
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    import torch
    from threadpoolctl import threadpool_limits

    import adbench.executors.dask_executor as dask_executor
    from adbench.environment import device_name, versions
    from adbench.executors.clusters import make_local_cluster
    from adbench.harness import RunConfig, run_benchmark
    from adbench.tasks import DatasetRef
    from adbench.windows import Window

    torch.set_num_threads(1)
    data = (("n_background", args.n_background), ("n_signal", args.n_signal),
            ("n_reference", args.n_reference or 3 * args.n_background), ("seed", 0))
    ref = DatasetRef("adbench.data.synthetic:synthetic_dataset", data)
    dataset = ref.load()
    windows = [Window(round(3.0 + 0.1 * i, 2), round(3.2 + 0.1 * i, 2)) for i in range(args.windows)]
    root = Path(tempfile.mkdtemp(prefix="bench-executors-"))

    def config(name: str) -> RunConfig:
        return RunConfig(methods=_specs(args.tiny), windows=windows, n_sigs=[args.n_sig],
                         seeds=list(range(args.seeds)), output=root / name)

    start = time.perf_counter()
    with threadpool_limits(1):
        local = run_benchmark(dataset, config("local"))
    local_s = time.perf_counter() - start

    start = time.perf_counter()
    cluster = make_local_cluster(args.workers, "cpu")
    cluster_s = time.perf_counter() - start
    timed, log = _instrumented_backend()
    dask_executor.DaskBackend = timed
    try:
        start = time.perf_counter()
        remote = run_benchmark(dataset, config("dask"),
                               executor=dask_executor.DaskExecutor(scheduler=cluster.scheduler_address,
                                                                   dataset_ref=ref))
        dask_s = time.perf_counter() - start
        empty = _empty_round_trip(cluster.scheduler_address)
    finally:
        cluster.close()
    overhead = [done - submitted - seconds for submitted, done, seconds in log]

    differing = differing_fields(root / "local", root / "dask")
    result = {
        "scan": {"windows": args.windows, "seeds": args.seeds, "methods": ["sigma-context", "idealized"],
                 "window_tasks": local.finished + local.failed, "events": len(dataset.events),
                 "tiny_sigma": args.tiny},
        "local_s": round(local_s, 2), "dask_s": round(dask_s, 2), "workers": args.workers,
        "ratio_local_over_dask": round(local_s / dask_s, 3), "cluster_start_s": round(cluster_s, 2),
        "overhead_per_task_ms": {"median": round(1000 * statistics.median(overhead), 1),
                                 "p90": round(1000 * statistics.quantiles(overhead, n=10)[-1], 1),
                                 "mean": round(1000 * statistics.mean(overhead), 1),
                                 "max": round(1000 * max(overhead), 1), "tasks": len(overhead),
                                 # a worker's first task imports torch and scikit-learn before it starts
                                 "over_1s": sum(o > 1 for o in overhead)},
        "empty_task_round_trip_ms": round(1000 * empty, 2),
        "records_equal": not differing, "differing_fields": differing, "failed": [local.failed, remote.failed],
        "hardware": f"{device_name('cpu')}, load average {os.getloadavg()[0]:.1f} at the end",
        "python": platform.python_version(), "versions": {k: versions()[k] for k in ("torch", "scikit-learn")},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
