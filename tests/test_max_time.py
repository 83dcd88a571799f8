"""--max-time: the loop that starts tasks within a time box, stop and resume, and the chunked
`make reference-gpu` on a CPU (the cost estimates: test_costs.py). The time boxes run on fake clocks
where a verdict depends on time; the chunked make target uses a time box so short that each chunk
starts exactly one task whatever the machine's speed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adbench.costs import Estimate, format_duration, parse_duration
from adbench.errors import ConfigError
from adbench.executors.base import Budget, drive
from adbench.executors.local import LocalExecutor
from adbench.harness import MethodSpec, RunConfig, run_benchmark
from adbench.methods import registry
from adbench.methods.base import BackgroundModel
from adbench.methods.presets import Preset, TemplateSpec
from adbench.planning import FitTask, Plan, WindowTask
from adbench.results import Record, ResultStore
from adbench.windows import Window
from tests.conftest import lhco_columns, write_lhco_file

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the loop, with a backend that "runs" each task by moving a fake clock --------------------------

SPEC = MethodSpec("idealized", Preset("idealized", "fast", {}, TemplateSpec()))


def window(name: str, index: int, fit: str | None = None) -> WindowTask:
    return WindowTask(name, ("d", name, "idealized", 0, 0, "h"), SPEC, Window(), 0, 0, "h", index, fit)


class StubCosts:
    def __init__(self, estimates: dict[str, float]) -> None:
        self.estimates = estimates

    def to_start(self, task, plan) -> Estimate:
        if isinstance(task, FitTask):
            return Estimate(self.estimates[task.key] + self.estimates[plan.users_of(task)[0].key], "results")
        return Estimate(self.estimates[task.key], "results")

    def learn(self, task, record, seconds) -> None:
        pass


class StubBackend:
    """Runs a task when it is submitted, taking ``durations[key]`` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, durations: dict[str, float]) -> None:
        self.clock, self.durations = clock, durations
        self.ran: list[str] = []
        self.released: list[str] = []
        self._done: list = []

    def slots(self) -> int:
        return 1

    def _run(self, task) -> tuple:
        self.clock.now += self.durations[task.key]
        self.ran.append(task.key)
        handle = (task.key,)
        self._done.append((handle, None if isinstance(task, FitTask) else (Record("d", task.key, "m", 0, 0, "h"), 1.0)))
        return handle

    def submit_fit(self, task):
        return self._run(task)

    def submit_window(self, task, fit):
        assert (fit is None) == (task.fit is None)
        return self._run(task)

    def wait(self, handles):
        done, self._done = self._done, []
        return done

    def release(self, handle) -> None:
        self.released.append(handle[0])


class Sink:
    def __init__(self) -> None:
        self.records: list[str] = []

    def started(self, task) -> None:
        pass

    def finished(self, task, record, seconds) -> None:
        self.records.append(task.key)


def run_plan(tasks, estimates, durations, max_time=None):
    clock = FakeClock()
    plan = Plan(tasks, len([t for t in tasks if isinstance(t, WindowTask)]), 0, {})
    backend, sink = StubBackend(clock, durations), Sink()
    left = drive(plan, backend, StubCosts(estimates), Budget(max_time, clock), sink)
    return left, backend, sink


def test_without_a_time_box_every_task_runs_in_plan_order_and_fits_are_released():
    fit = FitTask("F", SPEC, 0, 0, "h", 1)
    tasks = [window("a", 0), fit, window("b", 2, "F"), window("c", 3, "F"), window("d", 4)]
    left, backend, sink = run_plan(tasks, {}, {t.key: 1.0 for t in tasks})
    assert left == 0 and backend.ran == ["a", "F", "b", "c", "d"] and sink.records == ["a", "b", "c", "d"]
    assert backend.released == ["F"]


def test_the_time_box_stops_starting_tasks_that_would_not_finish():
    tasks = [window(k, i) for i, k in enumerate("abcd")]
    left, backend, _ = run_plan(tasks, dict.fromkeys("abcd", 40.0), dict.fromkeys("abcd", 40.0), max_time=100)
    assert (left, backend.ran) == (2, ["a", "b"])  # 40 + 40 = 80; a third would end at 120


def test_the_first_task_starts_whatever_its_estimate():
    tasks = [window(k, i) for i, k in enumerate("ab")]
    left, backend, _ = run_plan(tasks, dict.fromkeys("ab", 500.0), dict.fromkeys("ab", 500.0), max_time=100)
    assert (left, backend.ran) == (1, ["a"])


def test_a_fit_starts_only_when_its_first_window_fits_too():
    fit = FitTask("F", SPEC, 0, 0, "h", 1)
    tasks = [window("a", 0), fit, window("b", 2, "F"), window("c", 3, "F"), window("d", 4)]
    estimates = {"a": 10.0, "F": 50.0, "b": 30.0, "c": 30.0, "d": 10.0}
    left, backend, _ = run_plan(tasks, estimates, estimates, max_time=70)
    # a (10), then F + b = 80 would end at 90 > 70: F and its two windows wait for the next run; d fits
    assert (left, backend.ran) == (2, ["a", "d"])


class TwoSlots(StubBackend):
    def slots(self) -> int:
        return 2


def test_with_two_slots_a_variant_of_a_running_task_waits_while_other_tasks_can_start():
    """Two R-ANODE variants on one window, N_sig and seed may train the same background flow: the
    second starts after the first (and reads it back) while another task fills the second slot, but
    no slot idles for it."""
    def task(key, index, name, profile, window=None):
        window = window or Window()
        spec = MethodSpec(name, Preset(name, profile, {}, TemplateSpec()))
        return WindowTask(key, ("d", window.name, name, 0, 0, key), spec, window, 0, 0, key, index)

    tasks = [task("A", 0, "ranode", "cpu"), task("B", 1, "ranode", "cpu-warm"), task("C", 2, "cathode", "cpu"),
             task("D", 3, "ranode", "cpu", Window(3.5, 3.9))]
    plan = Plan(tasks, len(tasks), 0, {})
    clock = FakeClock()
    backend = TwoSlots(clock, dict.fromkeys("ABCD", 1.0))
    assert drive(plan, backend, StubCosts({}), Budget(None, clock), Sink()) == 0
    # A and C start together; B (A's variant) only once A has finished, D (another window) at once after
    assert backend.ran == ["A", "C", "B", "D"]
    only_variants = TwoSlots(clock, dict.fromkeys("AB", 1.0))
    drive(Plan(tasks[:2], 2, 0, {}), only_variants, StubCosts({}), Budget(None, clock), Sink())
    assert only_variants.ran == ["A", "B"]  # nothing else to start: B runs beside A rather than idle a slot
    one_slot = StubBackend(clock, dict.fromkeys("ABCD", 1.0))
    drive(plan, one_slot, StubCosts({}), Budget(None, clock), Sink())
    assert one_slot.ran == ["A", "B", "C", "D"]  # one slot: the plan's order


# --- the time box through run_benchmark: stop, then resume -----------------------------------------

CLOCK = FakeClock()


class Ticking(BackgroundModel):
    """A per-window score whose fit takes 40 seconds of ``CLOCK`` (and no real time)."""

    name = "ticking-toy"
    family = "test"
    per_window = True
    produces = "score"

    def fit(self, events, window, truth=None):
        CLOCK.now += 40.0
        return self

    def score(self, events, window):
        return events.x[:, 0].astype(np.float64)


def test_max_time_stops_and_the_rerun_resumes(tmp_path, small_dataset, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, Ticking.name, Ticking)
    config = RunConfig(methods=[MethodSpec(Ticking.name, Preset(Ticking.name, "fast", {}, TemplateSpec()))],
                       windows=[Window(3.3, 3.7), Window(3.5, 3.9)], n_sigs=[1000], seeds=[0, 1], output=tmp_path,
                       bootstrap=0)
    CLOCK.now = 0.0
    first = run_benchmark(small_dataset, config, executor=LocalExecutor(max_time=100, clock=CLOCK))
    # the first task starts on a guess and takes 40 s; the second (now estimated at 40 s) ends at 80
    assert (first.finished, first.left, first.total) == (2, 2, 4)
    CLOCK.now = 0.0
    second = run_benchmark(small_dataset, config, executor=LocalExecutor(max_time=100, clock=CLOCK))
    assert (second.finished, second.skipped, second.left) == (2, 2, 0)
    records = ResultStore(tmp_path).load()
    assert len(records) == 4 and len({r.key for r in records}) == 4 and all(r.ok for r in records)


@pytest.mark.parametrize("text, seconds", [
    ("50m", 3000), ("9m", 540), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("45", 45), ("500ms", 0.5),
    ("01:30:00", 5400), ("30:00", 1800), ("1-00:00:00", 86400), (" 2H ", 7200),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5q", "-5m", "0", "0s", "m", "1h-5m", "1:2:3:4"])
def test_bad_durations_name_the_option(text):
    with pytest.raises(ConfigError, match=r"--max-time expects a positive duration"):
        parse_duration(text)


def test_durations_read_back():
    assert [format_duration(s) for s in (3.2, 42, 95, 3725)] == ["3.2s", "42s", "1m35s", "1h02m"]


# --- the command line -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lhco_file(tmp_path_factory):
    """A small labelled file in the official layout: 40k events, mjj uniform in 2-6 TeV, 10% signal."""
    return write_lhco_file(tmp_path_factory.mktemp("lhco") / "small.h5", lhco_columns(40_000, np.random.default_rng(0)))


def test_plan_prints_the_tasks_and_runs_nothing(capsys, lhco_file, tmp_path):
    import json

    from adbench.cli import main

    out = tmp_path / "run"
    code = main(["plan", "--methods", "idealized,sigma-context,vdata", "--dataset", str(lhco_file), "--scan",
                 "3.1,3.9,0.4,0.4", "--n-sig", "400", "--seeds", "0,1", "--device", "cpu", "--output", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    lines = [json.loads(line) for line in stdout.splitlines()]
    fits = [line for line in lines if line["kind"] == "fit"]
    windows = [line for line in lines if line["kind"] == "window"]
    assert len(windows) == 3 * 2 * 2 and len(fits) == 2  # one shared fit per seed for sigma-context and vdata
    assert all(f["method"] == "sigma-context" and f["used_by"] == ["sigma-context", "vdata"] for f in fits)
    by_key = {line["key"]: i for i, line in enumerate(lines)}
    for line in windows:
        assert {"key", "method", "window", "n_sig", "seed", "depends_on", "cost_s", "cost_from"} <= set(line)
        if line["method"] == "idealized":
            assert line["depends_on"] == []
        else:
            (fit,) = line["depends_on"]
            assert by_key[fit] < by_key[line["key"]]  # the fit comes first
            assert line["shared_fit_from"] == (None if line["method"] == "sigma-context" else "sigma-context")
    assert all(line["cost_s"] > 0 and line["cost_from"] == "guess" for line in lines)
    assert "12 of 12 tasks to run" in err and not out.exists()


def test_reference_gpu_target_runs_in_resuming_chunks(lhco_file, tmp_path):
    """`make reference-gpu` on a CPU with a 1 ms time box: each chunk starts exactly one task (the
    first task of a run always starts), so two tasks take two chunks, then the report is written."""
    venv = Path(sys.prefix)
    command = [
        "make", "-s", "-C", str(REPO), "-o", str(venv / ".adbench-installed"), "reference-gpu", f"VENV={venv}",
        f"REFERENCE_GPU_DATASETS={lhco_file}", "REFERENCE_GPU_METHODS=idealized,supervised",
        "REFERENCE_GPU_ARGS=--profile fast --device cpu --n-sig 400 --seeds 0", "REFERENCE_GPU_CHUNK=1ms",
        f"REFERENCE_GPU_DIR={tmp_path}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("1 of 2 tasks left: rerun to continue") == 1, done.stderr
    out = tmp_path / "small-gpu"
    records = ResultStore(out).load()
    assert sorted(r.method for r in records) == ["idealized", "supervised"] and all(r.ok for r in records)
    assert (out / "report.md").is_file() and str(out / "report.md") in done.stdout


def test_device_chunk_packs_what_a_fresh_machine_needs_to_go_on(lhco_file, tmp_path):
    """`make device-chunk` on a CPU, four tasks with a 1 ms time box (one task per chunk, as in the
    test above): the records and status come back in DEVICE_OUT, the unfinished run's resume/ folder as
    parts that the next chunk, on a run folder holding what came back, unpacks before it runs, over any
    older resume/ there (a progress file survives the round trip byte for byte)."""
    venv = Path(sys.prefix)
    run = tmp_path / "run"
    progress = run / "resume" / "fit_x" / "01-CFM.pt"
    progress.parent.mkdir(parents=True)
    progress.write_bytes(expected := os.urandom(4096))

    def chunk(out: Path) -> str:
        command = ["make", "-s", "-C", str(REPO), "-o", str(venv / ".adbench-installed"), "device-chunk",
                   f"VENV={venv}", f"DEVICE_RUN={run}", f"DEVICE_OUT={out}",
                   f"DEVICE_ARGS=--methods idealized,supervised --dataset {lhco_file} "
                   "--device cpu --n-sig 400 --seeds 0,1 --max-time 1ms"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "MAKEFLAGS": ""})
        assert done.returncode == 0, done.stderr
        assert '"state": "time-boxed"' in (out / "run-status.json").read_text()
        assert sorted(p.name for p in out.iterdir()) == ["chunk.log", "results.jsonl", "resume.tgz.part-00",
                                                         "run-status.json"]
        return (out / "chunk.log").read_text()

    assert "3 of 4 tasks left" in chunk(tmp_path / "out1")
    # a fresh machine: the run folder holds what came back, beside a stale resume/ the parts replace
    shutil.rmtree(run)
    shutil.copytree(tmp_path / "out1", run)
    progress.parent.mkdir(parents=True)
    progress.write_bytes(b"an older save")
    log = chunk(tmp_path / "out2")
    assert "2 of 4 tasks left" in log and "1 already done" in log
    assert progress.read_bytes() == expected and not list(run.glob("resume.tgz.part-*"))
    assert len(ResultStore(tmp_path / "out2").load()) == 2


def test_a_time_boxed_run_says_so_in_its_report_until_a_rerun_finishes_it(capsys, lhco_file, tmp_path):
    """The first task of a run always starts, so a 1 ms time box leaves the second of two tasks: the
    report says the scan is unfinished and names the command that continues it; the rerun that
    finishes it clears the note."""
    from adbench.cli import main
    from adbench.run_status import STATUS_FILE, read_status

    out = tmp_path / "run"
    argv = ["run", "--methods", "idealized,supervised", "--dataset", str(lhco_file), "--n-sig", "400", "--seeds", "0",
            "--device", "cpu", "--no-progress", "--max-time", "1ms", "--output", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    status = read_status(out)
    assert (status.state, status.total, status.left) == ("time-boxed", 2, 1)
    assert status.command == "adbench " + " ".join(argv)
    report = (out / "report.md").read_text()
    assert "Unfinished scan" in report and "1 of 2 planned tasks not run yet" in report
    assert f"`{status.command}` continues it" in report

    assert main(argv) == 0, capsys.readouterr().err
    assert read_status(out).state == "complete" and (read_status(out).total, read_status(out).left) == (2, 0)
    assert "Unfinished scan" not in (out / "report.md").read_text()

    (out / STATUS_FILE).write_text("{not json")  # a damaged status file costs the note, not the report
    assert read_status(out) is None
    assert main(["report", str(out)]) == 0


def test_an_interrupted_run_leaves_an_interrupted_status(tmp_path, monkeypatch, lhco_file):
    import adbench.harness
    from adbench.cli import main
    from adbench.run_status import read_status

    out = tmp_path / "run"
    out.mkdir()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(adbench.harness, "run_benchmark", interrupt)
    code = main(["run", "--methods", "idealized", "--dataset", str(lhco_file), "--n-sig", "400", "--device", "cpu",
                 "--no-progress", "--output", str(out)])
    status = read_status(out)
    assert code == 130 and status.state == "interrupted" and status.left is None
    assert "interrupted on" in status.incomplete_note()
