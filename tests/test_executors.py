"""The Dask executor: the same records as the local executor, worker loss, job scripts, the CLI.

The cluster tests run two single-threaded worker processes on this machine; their verdicts depend
on no timing (a worker is killed while a task is known to be inside its fit), only the timeouts
are hang guards.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from adbench.errors import MethodFailure
from adbench.evaluate import ClassifierConfig
from adbench.harness import MethodSpec, RunConfig, run_benchmark
from adbench.methods import registry
from adbench.methods.base import BackgroundModel
from adbench.methods.presets import Preset, TemplateSpec, load_preset, merge_tables
from adbench.results import Record, ResultStore
from adbench.windows import Window
from tests.conftest import data_seed

distributed = pytest.importorskip("distributed")

FAST = ClassifierConfig(n_models=1, max_iter=30)
WINDOWS = [Window(3.3, 3.7), Window(3.5, 3.9)]
DATA = (("n_background", 15_000), ("n_signal", 3_000), ("n_reference", 15_000), ("seed", data_seed(5)))
#: sigma-context small enough to train in seconds on one thread.
TINY_CFM = {"train": {"epochs": 2}, "network": {"width": 32}, "solver": {"steps": 2}}
#: What differs between two runs of the same task: wall-clock times, and the checkout's revision, which
#: turns "-dirty" if a file is edited while the suite runs.
VOLATILE = ("timestamp", "time_fit_shared_s", "time_fit_window_s", "time_sample_s", "time_classify_s",
            "git_revision")


def comparable(record: Record) -> str:
    """A record without its timings and revision, as canonical JSON (NaN compares equal to NaN)."""
    values = record.to_dict()
    for name in VOLATILE:
        values.pop(name)
    values["method_info"] = {k: v for k, v in values["method_info"].items() if "second" not in k}
    return json.dumps(values, sort_keys=True)


def tiny(name: str) -> MethodSpec:
    parsed = MethodSpec.parse(name, "fast")
    preset = load_preset(parsed.name, "fast")
    params = merge_tables(preset.params, TINY_CFM) if name.startswith(("sigma", "vdata")) else preset.params
    return MethodSpec(parsed.name, Preset(preset.method, "fast", params, preset.template, preset.source), FAST)


@pytest.fixture(scope="module")
def dataset_ref():
    from adbench.tasks import DatasetRef

    return DatasetRef("adbench.data.synthetic:synthetic_dataset", DATA)


@pytest.fixture(scope="module")
def tiny_data(dataset_ref):
    return dataset_ref.load()


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes (nannies restart a killed one), as ``--workers 2``."""
    from adbench.executors.clusters import make_local_cluster

    cluster = make_local_cluster(2, "cpu")
    yield cluster
    cluster.close()


def run_config(out: Path, methods: list[MethodSpec], seeds=(0, 1)) -> RunConfig:
    return RunConfig(methods=methods, windows=list(WINDOWS), n_sigs=[500], seeds=list(seeds), output=out,
                     classifier=FAST, bootstrap=10, template_size=1.0)


@pytest.mark.timeout(300)
def test_two_workers_give_the_records_of_the_local_executor(tmp_path, tiny_data, dataset_ref, cluster,
                                                            one_torch_thread):
    """2 windows x 2 seeds of idealized, supervised and sigma-context (trained once per seed, its fit
    handed to the window tasks as a Dask future): equal records, in any order."""
    from threadpoolctl import threadpool_limits

    from adbench.executors.dask_executor import DaskExecutor

    methods = [tiny(name) for name in ("idealized", "supervised", "sigma-context")]
    with threadpool_limits(1):  # the workers' single thread, so both sides add up in the same order
        local = run_benchmark(tiny_data, run_config(tmp_path / "local", methods))
    executor = DaskExecutor(scheduler=cluster.scheduler_address, dataset_ref=dataset_ref)
    remote = run_benchmark(tiny_data, run_config(tmp_path / "dask", methods), executor=executor)
    assert (local.finished, local.failed) == (remote.finished, remote.failed) == (12, 0)
    a, b = ResultStore(tmp_path / "local").load(), ResultStore(tmp_path / "dask").load()
    assert sorted(r.key for r in a) == sorted(r.key for r in b) and len({r.key for r in b}) == 12
    assert sorted(map(comparable, a)) == sorted(map(comparable, b))
    sigma = [r for r in b if r.method == "sigma-context"]
    assert all(r.time_fit_shared_s > 0 and r.method_info["epochs_run"] == 2 for r in sigma)
    # one fit per seed, shared by its two windows
    assert len({(r.seed, r.time_fit_shared_s) for r in sigma}) == 2
    again = run_benchmark(tiny_data, run_config(tmp_path / "dask", methods), executor=executor)
    assert (again.finished, again.skipped) == (0, 12)


@dataclass(frozen=True)
class GateSettings:
    log: str = ""
    #: window name -> how many of its attempts wait in fit() for the test to kill their worker
    kills: dict | None = None


class Doomed(BackgroundModel):
    """A per-window score (the first feature: no classifier to train) whose fit writes ``WINDOW
    ATTEMPT PID`` to ``log``; the first ``kills[window]`` attempts then wait there (two minutes at
    most) for the test to kill their worker process, later ones go on."""

    name = "doomed-toy"
    family = "test"
    per_window = True
    produces = "score"
    Settings = GateSettings

    def fit(self, events, window, truth=None):
        log = Path(self.config.log)
        attempt = sum(line.startswith(window.name + " ") for line in log.read_text().splitlines()) \
            if log.exists() else 0
        with open(log, "a") as handle:
            handle.write(f"{window.name} {attempt} {os.getpid()}\n")
        if attempt < self.config.kills.get(window.name, 0):
            time.sleep(120)
            raise MethodFailure("the test did not kill this attempt")
        return self

    def score(self, events, window):
        return events.x[:, 0].astype(np.float64)


class RegisterToys(distributed.WorkerPlugin):
    """Registers the test's method in each worker process (the registry is per process)."""

    name = "adbench-test-toys"

    def setup(self, worker):
        registry._REGISTRY[Doomed.name] = Doomed


@pytest.mark.timeout(300)
def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path, tiny_data, dataset_ref, cluster, monkeypatch):
    """The worker process running the first window's task is killed once: the task runs again and
    finishes. The one running the second window's task is killed twice: it is recorded as failed
    with the reason, not tried a third time. Every task is written exactly once."""
    from adbench.executors.dask_executor import DaskExecutor

    first, second = WINDOWS
    kills = {first.name: 1, second.name: 2}
    monkeypatch.setitem(registry._REGISTRY, Doomed.name, Doomed)
    log = tmp_path / "attempts.log"
    toy = MethodSpec(Doomed.name, Preset(Doomed.name, "fast", {"log": str(log), "kills": kills}, TemplateSpec()),
                     FAST)
    config = run_config(tmp_path / "out", [toy, tiny("supervised")], seeds=(0,))
    executor = DaskExecutor(scheduler=cluster.scheduler_address, dataset_ref=dataset_ref, plugins=[RegisterToys()])
    outcome: dict = {}

    def scan():
        try:
            outcome["summary"] = run_benchmark(tiny_data, config, executor=executor)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=scan)
    thread.start()
    killed: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 200
    while len(killed) < sum(kills.values()) and time.monotonic() < deadline and thread.is_alive():
        for window, attempt, pid in (line.split() for line in (log.read_text() if log.exists() else "").splitlines()):
            if int(attempt) < kills[window] and (window, attempt) not in killed:
                os.kill(int(pid), signal.SIGKILL)
                killed.add((window, attempt))
        time.sleep(0.05)
    thread.join(timeout=240)
    assert not thread.is_alive() and "error" not in outcome, outcome
    assert len(killed) == 3
    records = ResultStore(config.output).load()
    assert len(records) == 4 and len({r.key for r in records}) == 4
    by = {(r.method, r.window): r for r in records}
    attempts = [line.split()[0] for line in log.read_text().splitlines()]
    assert by[(Doomed.name, first.name)].ok and attempts.count(first.name) == 2
    lost = by[(Doomed.name, second.name)]
    assert not lost.ok and "worker running it was lost (2 times)" in lost.error and attempts.count(second.name) == 2
    assert all(by[("supervised", w.name)].ok for w in WINDOWS)
    assert (outcome["summary"].finished, outcome["summary"].failed) == (3, 1)


@pytest.mark.parametrize("kind, options, expected", [
    ("slurm", ["queue=gpu", "account=hep", "walltime=01:30:00", "cores=8", "memory=32GB", "gpus=1"],
     ["#SBATCH -J adbench-worker", "#SBATCH -p gpu", "#SBATCH -A hep", "#SBATCH -t 01:30:00",
      "#SBATCH --cpus-per-task=8", "#SBATCH --mem=30G", "#SBATCH --gres=gpu:1", "--nthreads 8", "--resources GPU=1"]),
    ("htcondor",
     ["cores=4", "memory=16GB", "disk=10GB", "gpus=1", 'job_extra_directives={"+JobFlavour": "\\"longlunch\\""}'],
     ["RequestCpus = MY.DaskWorkerCores", "MY.DaskWorkerCores = 4", "request_gpus = 1", '+JobFlavour = "longlunch"',
      "--resources GPU=1"]),
])
def test_job_scripts_for_gpu_workers(kind, options, expected):
    """The batch scripts dask-jobqueue would submit, checked as text (no batch system needed)."""
    pytest.importorskip("dask_jobqueue")
    from adbench.executors.clusters import job_script, parse_cluster_options

    script = job_script(kind, parse_cluster_options(options), "cuda", scheduler="tcp://login1:8786")
    for line in expected:
        assert line in script, (line, script)
    assert "-m adbench.executors.dask_worker tcp://login1:8786" in script and "--nanny" in script


@pytest.mark.timeout(120)
def test_the_batch_job_worker_command_joins_a_scheduler_with_adbench_worker_settings():
    """The command line of the job scripts, run here: its worker processes join the scheduler without
    Dask's MALLOC_TRIM_THRESHOLD_ and without the statistical profiler, one thread each unless the
    environment says otherwise (see WORKER_CONFIG)."""
    import shlex
    import subprocess

    from distributed import Client, LocalCluster

    pytest.importorskip("dask_jobqueue")
    from adbench.executors.clusters import job_script

    with LocalCluster(n_workers=0, dashboard_address=":0") as empty, Client(empty) as client:
        script = job_script("slurm", {"cores": 2, "memory": "2GB"}, "cpu", scheduler=empty.scheduler_address)
        command = shlex.split(script.strip().splitlines()[-1])
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(2, timeout=90)
            probe = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"),
                                        __import__("dask").config.get("distributed.worker.profile.enabled")))
        finally:
            process.terminate()
            process.wait(timeout=60)
    threads = os.environ.get("OMP_NUM_THREADS", "1")  # Dask lets the submitting shell's value win
    assert list(probe.values()) == [(None, threads, False)] * 2


def test_the_slurm_cluster_submits_the_checked_script_to_a_scheduler_that_gives_up_on_lost_workers():
    """The cluster adbench starts (its scheduler runs here; no job is submitted before it is scaled)."""
    pytest.importorskip("dask_jobqueue")
    from adbench.executors.clusters import job_script, make_jobqueue_cluster

    options = {"cores": 2, "memory": "4GB", "queue": "short", "scheduler_options": {"dashboard_address": ":0"}}
    cluster = make_jobqueue_cluster("slurm", options, "cpu")
    try:
        submitted = cluster.job_script()
        assert cluster.scheduler.allowed_failures == 0
    finally:
        cluster.close()
    expected = job_script("slurm", options, "cpu", scheduler=cluster.scheduler_address)
    assert submitted.replace("dummy-name", "adbench-worker") == expected


def test_cpu_job_scripts_run_one_single_threaded_worker_per_core():
    pytest.importorskip("dask_jobqueue")
    from adbench.executors.clusters import job_script

    script = job_script("slurm", {"cores": 4, "memory": "8GB", "walltime": "00:20:00"}, "cpu")
    assert "--nworkers 4" in script and "--nthreads 1" in script and "GPU" not in script
    script = job_script("pbs", {"cores": 2, "memory": "4GB", "queue": "short"}, "cpu")
    assert "#PBS -q short" in script and "--nworkers 2" in script


@pytest.mark.parametrize("kind, options, fragment", [
    ("slurm", ["cores=4"], "You must specify how much cores and memory"),
    ("slurm", ["cores=4", "memory=8GB", "flavour=big"], "flavour"),
    ("pbs", ["cores=4", "memory=8GB", "gpus=1"], "site-specific"),
    ("slurm", ["cores=4", "memory=8GB", "gpus=two"], "gpus expects a positive integer"),
])
def test_bad_cluster_options_are_one_line_errors(kind, options, fragment):
    pytest.importorskip("dask_jobqueue")
    from adbench.errors import ConfigError
    from adbench.executors.clusters import job_script, parse_cluster_options

    with pytest.raises(ConfigError, match=fragment) as caught:
        job_script(kind, parse_cluster_options(options), "cpu")
    assert "\n" not in str(caught.value)


def test_gpu_workers_of_a_local_cluster_each_own_one_card():
    from adbench.errors import ConfigError
    from adbench.executors.clusters import local_worker_specs

    specs = local_worker_specs(2, "cuda", 16, ["2", "5"])
    options = [spec["options"] for spec in specs.values()]
    assert [o["env"]["CUDA_VISIBLE_DEVICES"] for o in options] == ["2", "5"]
    assert all(o["resources"] == {"GPU": 1} and o["nthreads"] == 8 and o["env"]["OMP_NUM_THREADS"] == "8"
               for o in options)
    cpu = local_worker_specs(3, "cpu", 2, [])
    assert len(cpu) == 3 and all(spec["options"] == {"nthreads": 1, "silence_logs": 40} for spec in cpu.values())
    with pytest.raises(ConfigError, match="--workers 3 with --device cuda: only 2 GPU"):
        local_worker_specs(3, "cuda", 16, ["0", "1"])
    with pytest.raises(ConfigError, match="use --device cuda"):
        local_worker_specs(1, "cuda:1", 16, ["0", "1"])


def test_without_dask_the_dask_executor_is_refused_in_one_line(capsys, monkeypatch, tmp_path):
    """Before any data is read (the dataset named does not exist)."""
    from adbench.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    code = main(["run", "--methods", "idealized", "--dataset", str(tmp_path / "absent.h5"), "--executor", "dask",
                 "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("adbench: error: --executor dask needs Dask") and "pip install 'adbench[dask]'" in err


@pytest.mark.parametrize("extra, fragment", [
    (["--workers", "2"], "--workers needs --executor dask"),
    (["--executor", "dask", "--workers", "0"], "--workers must be at least 1"),
    (["--executor", "dask", "--scheduler", "tcp://x:1", "--cluster", "slurm"], "exclude each other"),
    (["--executor", "dask", "--cluster-option", "queue=gpu"], "--cluster-option needs --cluster"),
    (["--executor", "dask", "--cluster", "slurm", "--cluster-option", "queue"], "KEY=VALUE"),
    (["--max-time", "soon"], "--max-time expects a positive duration"),
])
def test_bad_executor_options_are_one_line_errors_before_any_data_is_read(capsys, tmp_path, extra, fragment):
    from adbench.cli import main

    code = main(["run", "--methods", "idealized", "--dataset", str(tmp_path / "absent.h5"), "--output",
                 str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err, err


@pytest.mark.timeout(300)
def test_the_command_line_runs_on_a_dask_cluster_like_locally(capsys, tmp_path, cluster):
    """`adbench run --executor dask` (here on the test's running cluster, --scheduler) writes the
    records the local executor writes; the workers load the file themselves."""
    from threadpoolctl import threadpool_limits

    from adbench.cli import main
    from tests.conftest import lhco_columns, write_lhco_file

    path = write_lhco_file(tmp_path / "small.h5", lhco_columns(40_000, np.random.default_rng(0)))
    common = ["run", "--methods", "supervised", "--dataset", str(path), "--n-sig", "400", "--device", "cpu",
              "--no-progress", "--no-report"]
    with threadpool_limits(1):
        assert main([*common, "--output", str(tmp_path / "local")]) == 0
    assert main([*common, "--output", str(tmp_path / "dask"), "--executor", "dask", "--scheduler",
                 cluster.scheduler_address]) == 0
    capsys.readouterr()
    a, b = ResultStore(tmp_path / "local").load(), ResultStore(tmp_path / "dask").load()
    assert len(a) == len(b) == 1 and comparable(a[0]) == comparable(b[0])


def test_workers_option_builds_a_local_cluster_executor(tmp_path):
    import argparse

    from adbench.executors.cli import add_executor_arguments, executor_from_args

    parser = argparse.ArgumentParser()
    add_executor_arguments(parser)
    args = parser.parse_args(["--executor", "dask", "--workers", "2", "--max-time", "1h"])
    args.dataset, args.data_dir, args.features = "synthetic-small", None, None
    executor = executor_from_args(args, "cpu")
    assert (executor.workers, executor.scheduler, executor.cluster, executor.max_time) == (2, None, None, 3600)
    assert dict(executor.dataset_ref.kwargs)["name"] == "synthetic-small"


def test_gpu_tasks_are_refused_by_a_running_cluster_without_gpu_workers(tmp_path, tiny_data, dataset_ref, cluster):
    from adbench.errors import ConfigError
    from adbench.executors.dask_executor import DaskExecutor

    config = run_config(tmp_path, [tiny("idealized")], seeds=(0,))
    config.device = "cuda"
    executor = DaskExecutor(scheduler=cluster.scheduler_address, dataset_ref=dataset_ref, device="cuda")
    with pytest.raises(ConfigError, match="no worker of .* offers the resource GPU"):
        run_benchmark(tiny_data, config, executor=executor)
    assert not (tmp_path / "results.jsonl").exists()


@pytest.mark.timeout(300)
def test_ctrl_c_stops_a_dask_run_and_keeps_its_finished_records(tmp_path):
    """A real SIGINT to the whole process group, as a terminal's Ctrl-C sends it, once a task has
    finished: the client exits with 130 and says what it kept, the records are whole, the status says
    interrupted, and no worker process outlives it."""
    import subprocess

    from tests.conftest import lhco_columns, write_lhco_file

    path = write_lhco_file(tmp_path / "small.h5", lhco_columns(40_000, np.random.default_rng(0)))
    out = tmp_path / "run"
    # a shell without job control starts background commands with SIGINT ignored, which Python keeps:
    # give the run Python's own handler, as an interactive terminal would (no preexec_fn: pytest has threads)
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'adbench'; runpy.run_module('adbench', run_name='__main__')")
    # --max-time bounds the run should this test die before it interrupts it (it has its own session)
    command = [sys.executable, "-c", start, "run", "--methods", "supervised", "--dataset", str(path),
               "--n-sig", "400", "--seeds", "0-19", "--device", "cpu", "--no-progress", "--no-report",
               "--executor", "dask", "--workers", "1", "--max-time", "4m", "--output", str(out)]
    results, log = out / "results.jsonl", tmp_path / "run.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=stream,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 200
        while not (results.exists() and results.read_text().count("\n") >= 1):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no task finished in 200 s"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while True:  # the worker and its nanny leave with the client
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "worker processes outlived the interrupted run"
            time.sleep(0.2)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    err = log.read_text()
    lines = results.read_text().splitlines()
    print(f"{len(lines)} of 20 records kept")
    assert process.returncode == 130, err
    assert f"task(s) this run finished are kept in {results}" in err, err
    assert 1 <= len(lines) < 20 and all(json.loads(line)["status"] == "ok" for line in lines)
    assert json.loads((out / "run-status.json").read_text())["state"] == "interrupted"
