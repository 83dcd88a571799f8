"""--max-time: the loop that starts tasks within a time box, its cost estimates, stop and resume,
and the chunked `make reference-gpu` on a CPU. The time boxes run on fake clocks where a verdict
depends on time; the chunked make target uses a time box so short that each chunk starts exactly one
task whatever the machine's speed."""

from __future__ import annotations

import math
import os
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


def test_guesses_use_a_profiles_measured_row_or_scale_fast_by_epochs():
    """A profile with its own row in the table is taken as is; one without is fast's row times the
    ratio of its epochs to fast's (vcr's fast profile trains twice the family's 16 epochs)."""
    from adbench.costs import CPU_SECONDS, _reference_seconds
    from adbench.runconfig import MethodSpec

    cpu = MethodSpec.parse("sigma-context:cpu", "fast")
    assert _reference_seconds(cpu) == (CPU_SECONDS[("sigma-context", "cpu")], 1.0)
    paper_row, paper_ratio = _reference_seconds(MethodSpec.parse("sigma-context", "paper"))
    assert paper_row == CPU_SECONDS[("sigma-context", "fast")] and paper_ratio == 2000 / 16


def test_a_profile_that_extends_a_measured_one_is_guessed_from_its_row():
    """ranode:cpu-stretch extends cpu (measured: a spline background and five signal splits, 8 x
    fast's time), so it takes cpu's row, not fast's scaled by epochs; cathode:cpu, whose nearest
    measured ancestor is fast, scales fast's row by its epochs (40 / 10)."""
    from adbench.costs import CPU_SECONDS, SIGNAL_FIT_SHARE, _reference_seconds
    from adbench.runconfig import MethodSpec

    stretch = MethodSpec.parse("ranode:cpu-stretch", "fast")
    assert stretch.preset.lineage == ("cpu", "fast")
    assert _reference_seconds(stretch) == (CPU_SECONDS[("ranode", "cpu")], pytest.approx(1.0))
    cathode = MethodSpec.parse("cathode:cpu", "fast")
    assert _reference_seconds(cathode) == (CPU_SECONDS[("cathode", "fast")], 4.0)
    # cpu-ensemble extends cpu with three background flows: three times its background's share
    share = SIGNAL_FIT_SHARE["ranode"]["cpu"]
    ensemble = MethodSpec.parse("ranode:cpu-ensemble", "fast")
    assert _reference_seconds(ensemble) == (CPU_SECONDS[("ranode", "cpu")], pytest.approx((1 - share) * 3 + share))


def test_a_superseded_scan_says_why_and_is_not_offered_for_continuing(tmp_path):
    from adbench.run_status import read_status, write_status

    with pytest.raises(ValueError, match="needs a reason"):
        write_status(tmp_path, "superseded", "make reference-reports")
    with pytest.raises(ValueError, match="only a superseded run"):
        write_status(tmp_path, "time-boxed", "make reference-reports", 10, 2, reason="why")
    write_status(tmp_path, "superseded", "make reference-reports", 110, 39, reason="The generator changed.")
    note = read_status(tmp_path).incomplete_note()
    assert "Superseded scan, not to be continued" in note and "39 of its 110" in note
    assert "The generator changed." in note and "continues it" not in note


def test_ranode_guesses_count_its_signal_splits_and_their_steps():
    """R-ANODE's paper profile repeats a 15x longer signal fit at half the batch on 20 splits: its
    guess scales that share of fast's training by 600, the background's by the epochs; paper-gpu,
    without a signal table of its own, takes the settings' defaults (the same signal fit)."""
    from adbench.costs import SIGNAL_FIT_SHARE, _reference_seconds
    from adbench.runconfig import MethodSpec

    share = SIGNAL_FIT_SHARE["ranode"]["fast"]
    _, ratio = _reference_seconds(MethodSpec.parse("ranode", "paper"))
    assert ratio == pytest.approx((1 - share) * 100 / 10 + share * 600)
    _, gpu_ratio = _reference_seconds(MethodSpec.parse("ranode", "paper-gpu"))
    assert gpu_ratio == pytest.approx((1 - share) * 60 / 10 + share * 600)


def test_ranode_guesses_count_the_signal_steps_min_steps_adds_on_a_small_sr():
    """On lhco-100k's SR (about 4,500 data events of 100k) ``fast``'s 20 signal epochs would be 7
    steps each, 140 in all, and ``min_steps`` raises them to 143 epochs (1,001 steps); the signal share
    of the guess is costed per step against the reference SR's 20 x 218 steps, not per event. On a
    dataset of the reference size and SR the factor is 1."""
    from adbench.costs import REFERENCE_SR_EVENTS, SIGNAL_FIT_SHARE, _reference_seconds
    from adbench.evaluate import ClassifierConfig
    from adbench.runconfig import MethodSpec, make_model

    spec = MethodSpec.parse("ranode", "fast")
    train = make_model(spec, "cpu", 0, ClassifierConfig()).config.signal.train
    assert (train.epochs, train.batch_size, train.min_steps, train.val_fraction) == (20, 512, 1000, 0.2)
    small_steps = math.ceil(1000 / (3600 // 512)) * (3600 // 512)  # 4,500 events, 900 for validation
    reference_steps = 20 * (int(0.8 * REFERENCE_SR_EVENTS) // 512)
    share, scale = SIGNAL_FIT_SHARE["ranode"]["fast"], 100_000 / 1_100_000
    assert _reference_seconds(spec, REFERENCE_SR_EVENTS, 1.0)[1] == pytest.approx(1.0)
    assert _reference_seconds(spec, 4500, scale)[1] == pytest.approx(
        1 - share + share * small_steps / (scale * reference_steps))


def test_a_guess_scales_a_per_window_training_by_the_events_of_its_sidebands(small_dataset):
    """A background flow on the sidebands within 0.5 TeV of the SR trains on fewer events than the
    measured row's (everything outside the SR): its guessed training shrinks in proportion; the signal
    fits of R-ANODE, on the SR, do not."""
    from dataclasses import replace

    from adbench.costs import SIGNAL_FIT_SHARE, CostModel, _reference_seconds
    from adbench.methods.presets import load_preset

    counts = {None: 1000, 0.5: 400}
    for name in ("cathode", "ranode"):
        preset = load_preset(name, "fast")
        narrow = MethodSpec(name, replace(preset, params={**preset.params, "sideband_width": 0.5}))
        _, wide_ratio = _reference_seconds(MethodSpec.parse(name, "fast"), None, 1.0, counts.get)
        _, narrow_ratio = _reference_seconds(narrow, None, 1.0, counts.get)
        share = SIGNAL_FIT_SHARE.get(name, {}).get("fast", 0.0)
        assert wide_ratio == pytest.approx(1.0)
        assert narrow_ratio == pytest.approx((1 - share) * 0.4 + share)
    window = Window(3.3, 3.7)
    config = RunConfig(methods=[MethodSpec.parse("cathode", "fast")], windows=[window], n_sigs=[0], seeds=[0],
                       output=Path("unused"), bootstrap=0)
    model = CostModel(small_dataset, config, Plan([], 0, 0, {}), [], gpu=False)
    background = small_dataset.events.m[small_dataset.events.label == 0]
    assert model._sideband_events(window, 0.5) == int(window.in_sidebands(background, 0.5).sum())
    assert model._sideband_events(window, 0.5) < model._sideband_events(window, None)


@pytest.mark.parametrize("holdout", ["covered", "sr", "random"])
def test_a_guess_counts_the_sr_data_events_the_split_leaves(small_dataset, holdout):
    """The SR data events a guess assumes (R-ANODE's signal fits train on them) are those the split
    leaves, whatever the hold-out: none held out where an extra sample covers the window, a third of
    the background kept in the SR (``sr`` also thins the signal) or everywhere (``random``). Limit:
    5 binomial standard deviations of the kept background and of the injected signal in the SR."""
    from dataclasses import replace

    from adbench.costs import CostModel
    from adbench.data.dataset import HoldOut

    dataset = small_dataset if holdout == "covered" else replace(small_dataset, held_out=(),
                                                                 holdout=HoldOut(kind=holdout))
    window = Window(3.3, 3.7)
    config = RunConfig(methods=[MethodSpec.parse("ranode", "fast")], windows=[window], n_sigs=[1000],
                       seeds=[0], output=Path("unused"), bootstrap=0)
    model = CostModel(dataset, config, Plan([], 0, 0, {}), [], gpu=False)
    guess = model._sr_data_events(window, 1000)
    data = dataset.split(1000, 0, [window]).data
    actual = int(window.in_sr(data.m).sum())
    kept = 1.0 if holdout == "covered" else 1 / 3
    limit = 5 * math.sqrt(actual * (1 - kept) + 1000 * 0.25 + 1)
    print(f"{holdout}: guessed {guess} SR data events, the split has {actual}: {abs(guess - actual)} apart "
          f"(limit {limit:.0f})")
    assert abs(guess - actual) <= limit


def test_training_saved_by_an_earlier_attempt_is_not_costed_again(tmp_path, small_dataset):
    """A shared fit whose progress files hold its training (the last chunk of a time-boxed scan fitted
    it) costs only reading back; a partly saved one its remaining training; a damaged file, a save
    made on another kind of device or by another torch nothing; a window task at most its training."""
    import torch

    from adbench.costs import READ_BACK_SHARE, CostModel
    from adbench.harness import prepare
    from adbench.models.resume import task_directory
    from adbench.planning import describe

    config = RunConfig(methods=[MethodSpec.parse("sigma-context", "fast"), MethodSpec.parse("vcr", "fast")],
                       windows=[Window(3.3, 3.7)], n_sigs=[1000], seeds=[0, 1], output=tmp_path / "run",
                       bootstrap=0)
    plan, _, records = prepare(small_dataset, config)
    fit_a, fit_b = plan.fits
    vcr = next(task for task in plan.windows if task.spec.name == "vcr")
    resume = tmp_path / "resume"
    here = f"torch {torch.__version__}"

    def estimates():
        costs = CostModel(small_dataset, config, plan, records, False, str(resume))
        return costs.estimate(fit_a), costs.estimate(fit_b), costs.estimate(vcr)

    whole_a, whole_b, whole_vcr = estimates()
    assert whole_a.seconds == whole_b.seconds > 0 and 0 < whole_vcr.training < whole_vcr.seconds

    def save(task, name, seconds, device="cpu", version=here):
        folder = task_directory(str(resume), task.key)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"fingerprint": f"velocity|0|cfg|[]|[]|Net|{device}|{version}", "seconds": seconds},
                   folder / name)

    save(fit_a, "01-velocity.pt", 10 * whole_a.seconds)
    save(fit_b, "01-velocity.pt", whole_b.seconds / 4)
    save(fit_b, "02-velocity.pt", whole_b.seconds, device="cuda:0")  # trained afresh on this CPU
    save(fit_b, "03-velocity.pt", whole_b.seconds, version="torch 0.0")
    (task_directory(str(resume), fit_b.key) / "04-velocity.pt").write_bytes(b"not a torch file")
    save(vcr, "01-velocity.pt", 10 * whole_vcr.seconds)
    saved_a, saved_b, saved_vcr = estimates()
    print(f"fully saved fit: {saved_a.seconds:.1f} s of {whole_a.seconds:.1f}; a quarter saved: "
          f"{saved_b.seconds:.1f} s; a window whose training is saved: {saved_vcr.seconds:.1f} s of "
          f"{whole_vcr.seconds:.1f} (training {whole_vcr.training:.1f})")
    assert saved_a.seconds == pytest.approx(READ_BACK_SHARE * whole_a.seconds)
    assert saved_b.seconds == pytest.approx(0.75 * whole_b.seconds)
    expected_vcr = max(whole_vcr.seconds - whole_vcr.training, READ_BACK_SHARE * whole_vcr.seconds)
    assert saved_vcr.seconds == pytest.approx(expected_vcr)
    assert describe(fit_b, saved_b)["saved_s"] == pytest.approx(0.25 * whole_b.seconds, abs=0.1)
    assert "saved_s" not in describe(fit_a, whole_a)
    gpu_costs = CostModel(small_dataset, config, plan, records, True, str(resume))
    assert gpu_costs.estimate(fit_b).seconds == pytest.approx(READ_BACK_SHARE * whole_b.seconds)  # the cuda save
