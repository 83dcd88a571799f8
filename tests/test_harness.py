import re
from dataclasses import dataclass

import numpy as np
import pytest

from adbench.errors import ConfigError, MethodFailure
from adbench.evaluate import ClassifierConfig
from adbench.harness import MethodSpec, RunConfig, run_benchmark
from adbench.methods import registry
from adbench.methods.base import BackgroundModel
from adbench.methods.presets import Preset, TemplateSpec
from adbench.results import ResultStore
from adbench.windows import Window
from tests.conftest import stored_auc_sigmas

FAST = ClassifierConfig(n_models=2, max_iter=60)


def config(tmp_path, methods, n_sigs=(2000,), seeds=(0,)):
    return RunConfig(methods=[MethodSpec.parse(m, "fast") for m in methods], windows=[Window()],
                     n_sigs=list(n_sigs), seeds=list(seeds), output=tmp_path, classifier=FAST)


@pytest.mark.slow
def test_reference_methods_and_resume(tmp_path, small_dataset):
    summary = run_benchmark(small_dataset, config(tmp_path, ["idealized", "supervised"], n_sigs=(0, 3000)))
    assert (summary.finished, summary.failed) == (4, 0)
    records = ResultStore(tmp_path).load()
    assert all(r.ok and r.device and r.versions and r.template_size == 4.0 for r in records)
    by = {(r.method, r.n_sig): r for r in records}
    # no signal: the idealized template is true background, so both AUCs follow the null (two-sided)
    ideal = by[("idealized", 0)]
    for auc, n_b, what in ((ideal.template_data_auc, ideal.n_sr_data, "idealized vs SR data"),
                           (ideal.fidelity_auc, ideal.n_test_background, "idealized vs test background")):
        assert abs(stored_auc_sigmas(auc, ideal.n_template, n_b, 4.0, what)) < 4.0
    # with signal: supervised >= idealized > 1, each with a bootstrap error from the test set
    assert by[("supervised", 3000)].max_sic >= by[("idealized", 3000)].max_sic > 1.5
    assert 0 < by[("idealized", 3000)].stat_errors["max_sic"] < by[("idealized", 3000)].max_sic / 2
    assert set(by[("idealized", 3000)].histograms) == set(small_dataset.features)
    # the test set's signal is stored for the data-versus-template figures
    assert sum(by[("idealized", 3000)].histograms[small_dataset.features[0]]["signal"]) > 0
    assert by[("idealized", 3000)].s_over_b == pytest.approx(
        by[("idealized", 3000)].n_sig_sr / (by[("idealized", 3000)].n_sr_data - by[("idealized", 3000)].n_sig_sr))
    again = run_benchmark(small_dataset, config(tmp_path, ["idealized", "supervised"], n_sigs=(0, 3000)))
    assert (again.finished, again.skipped) == (0, 4)
    assert len(ResultStore(tmp_path).load()) == 4


class _Failing(BackgroundModel):
    name = "always-fails"
    per_window = True

    def fit(self, events, window, truth=None):
        raise MethodFailure("the flow diverged (test)")


class _Shared(BackgroundModel):
    """Trained once, shares its fit: samples the SR data's own features (a cheating template)."""

    name = "shared-toy"
    per_window = False
    fits = 0

    @dataclass(frozen=True)
    class Settings:
        tag: str = "x"

    def fit(self, events, window, truth=None):
        type(self).fits += 1
        self.events_ = events
        return self

    def fit_signature(self):
        return "toy"

    def share_fit_from(self, other):
        self.events_ = other.events_
        return self

    def sample(self, masses, window):
        sr = self.events_.in_range(window.low, window.high)
        return sr.x[np.random.default_rng(0).integers(0, len(sr), len(masses))]


def spec(cls, profile="fast", **params):
    return MethodSpec(cls.name, Preset(cls.name, profile, params, TemplateSpec()))


def test_failures_are_recorded_and_the_scan_goes_on(tmp_path, small_dataset, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, _Failing.name, _Failing)
    monkeypatch.setitem(registry._REGISTRY, _Shared.name, _Shared)
    cfg = config(tmp_path, ["idealized"])
    cfg.methods = [spec(_Failing), spec(_Shared), spec(_Shared, "paper", tag="y")]
    cfg.windows = [Window(3.3, 3.7), Window(3.5, 3.9)]
    _Shared.fits = 0
    summary = run_benchmark(small_dataset, cfg)
    records = ResultStore(tmp_path).load()
    failed = [r for r in records if not r.ok]
    assert len(failed) == 2 and all("diverged" in r.error for r in failed)
    assert summary.failed == 2
    shared = [r for r in records if r.method == "shared-toy"]
    # two profiles x two windows, each once; the "y" profile has its own config hash
    assert sorted((r.profile, r.window) for r in shared) == [
        ("fast", "3.30-3.70"), ("fast", "3.50-3.90"), ("paper", "3.30-3.70"), ("paper", "3.50-3.90")]
    assert all(r.ok for r in shared)
    assert len({r.config_hash for r in shared}) == 2
    assert _Shared.fits == 1  # one fit for two windows and both profiles (same fit signature)


def test_shared_fit_is_handed_to_methods_with_the_same_signature(tmp_path, small_dataset, monkeypatch):
    class Other(_Shared):
        name = "shared-toy-2"

    monkeypatch.setitem(registry._REGISTRY, _Shared.name, _Shared)
    monkeypatch.setitem(registry._REGISTRY, Other.name, Other)
    cfg = config(tmp_path, ["idealized"])
    cfg.methods = [spec(_Shared), spec(Other)]
    _Shared.fits = 0
    run_benchmark(small_dataset, cfg)
    records = {r.method: r for r in ResultStore(tmp_path).load()}
    assert _Shared.fits == 1
    assert records["shared-toy-2"].shared_fit_from == "shared-toy"
    assert records["shared-toy-2"].time_fit_shared_s == records["shared-toy"].time_fit_shared_s


def test_a_method_listed_twice_with_one_profile_is_a_config_error(tmp_path, small_dataset):
    from adbench.errors import ConfigError

    with pytest.raises(ConfigError, match="'idealized' with profile 'fast' is listed twice"):
        run_benchmark(small_dataset, config(tmp_path, ["idealized", "idealized"]))


def test_a_method_profile_sets_its_own_classifier(tmp_path, small_dataset):
    """``cathode:paper`` runs with the published classifier ensemble even in a fast run; the config
    hash (and so the record key) follows the classifier."""
    from adbench.evaluate import ClassifierConfig
    from adbench.harness import config_hash

    fast, paper = MethodSpec.parse("idealized", "fast"), MethodSpec.parse("idealized:paper", "fast")
    assert fast.classifier == ClassifierConfig() and paper.classifier == ClassifierConfig.profile("paper")
    assert paper.classifier.n_models == 50
    run = RunConfig(methods=[fast, paper], windows=[Window()], n_sigs=[0], seeds=[0], output=tmp_path)
    assert config_hash(small_dataset, fast, run) != config_hash(small_dataset, paper, run)
    assert run.classifier_for(paper) is paper.classifier
    run.classifier = FAST
    assert run.classifier_for(paper) is FAST  # an explicit run classifier overrides every profile


def test_a_new_generator_version_gives_new_task_hashes(tmp_path, small_dataset):
    """Results of an older synthetic generator are never taken for the current one's; a dataset read
    from a file (no version) keeps the hashes it always had."""
    from dataclasses import replace

    from adbench.harness import config_hash

    spec = MethodSpec.parse("idealized", "fast")
    run = RunConfig(methods=[spec], windows=[Window()], n_sigs=[0], seeds=[0], output=tmp_path)
    unversioned = config_hash(replace(small_dataset, version=""), spec, run)
    v3, v4 = (config_hash(replace(small_dataset, version=v), spec, run) for v in ("synthetic/3", "synthetic/4"))
    assert len({unversioned, v3, v4}) == 3
    assert config_hash(replace(small_dataset, version=""), spec, run) == unversioned
    # records carry the version, and a directory of one version takes no records of another
    run_benchmark(replace(small_dataset, version="synthetic/3"), config(tmp_path, ["idealized"]))
    assert {r.dataset_version for r in ResultStore(tmp_path).load()} == {"synthetic/3"}
    from adbench.report import build_report

    markdown = build_report(ResultStore(tmp_path).load(), tmp_path, figures=False).write_markdown(tmp_path / "r.md")
    assert "`synthetic` generated by version synthetic/3." in markdown.read_text()
    for other in ("synthetic/4", ""):
        with pytest.raises(ConfigError, match="must not be mixed") as error:
            run_benchmark(replace(small_dataset, version=other), config(tmp_path, ["idealized"]))
        print(error.value)
    other_name = replace(small_dataset, name="other", version="")
    assert run_benchmark(other_name, config(tmp_path, ["idealized"])).finished == 1


def test_the_shared_trainings_of_a_window_n_sig_and_seed_go_once_its_last_task_has_its_record(tmp_path,
                                                                                               small_dataset):
    """A run of methods that share a training (ANODE and R-ANODE, or two variants of one method) keeps
    each finished shareable training for the other such tasks of its window, N_sig and seed, and removes
    them when the last of those tasks is recorded, without waiting for the run's other methods; a failed
    sharing task keeps its group's trainings for the next run, a failed task of another method does not."""
    from adbench.harness import _Writer
    from adbench.models.resume import shared_directory
    from adbench.planning import make_plan
    from adbench.results import Record
    from adbench.runconfig import RunSummary

    cfg = config(tmp_path, ["ranode", "anode", "idealized"], seeds=(0, 1))
    cfg.windows = [Window(3.3, 3.7), Window(3.5, 3.9)]
    plan = make_plan(small_dataset, cfg)
    assert {t.spec.name: t.shares_trainings for t in plan.windows} == {"ranode": True, "anode": True,
                                                                      "idealized": False}
    def sharing(methods: list[str]) -> list[bool]:
        return [t.shares_trainings for t in make_plan(small_dataset, config(tmp_path, methods)).windows]

    assert sharing(["ranode", "ranode:cpu"]) == [True, True] and sharing(["ranode", "cathode"]) == [False, False]
    writer = _Writer(ResultStore(tmp_path), RunSummary(), None, {t.key: t for t in plan.windows}, str(tmp_path / "r"))
    groups = {t.share_group for t in plan.windows}
    assert len(groups) == 4 and len(plan.windows) == 12
    for group in groups:
        (shared_directory(str(tmp_path / "r"), group) / "flow-1.pt").parent.mkdir(parents=True)
    failing = {(3.5, 1, "anode"), (3.3, 0, "idealized")}
    for task in plan.windows:
        status = "failed" if (task.window.low, task.seed, task.spec.name) in failing else "ok"
        writer.finished(task, Record(small_dataset.name, task.window.name, task.spec.name, task.n_sig, task.seed,
                                     task.config_hash, status=status), 1.0)
        group = [t for t in plan.windows if t.share_group == task.share_group and t.shares_trainings]
        kept = any(t.index > task.index for t in group) or any(
            t.index <= task.index and (t.window.low, t.seed, t.spec.name) in failing for t in group)
        assert shared_directory(str(tmp_path / "r"), task.share_group).exists() == kept, (task.label, task.window)


def test_the_plan_puts_each_shared_fit_before_the_windows_that_use_it(tmp_path, small_dataset, monkeypatch):
    """One fit per (N_sig, seed) for the methods that share it, owned by the first listed method with
    windows left; a rerun plans only what is not finished."""
    from adbench.planning import make_plan

    class Other(_Shared):
        name = "shared-toy-2"

    monkeypatch.setitem(registry._REGISTRY, _Shared.name, _Shared)
    monkeypatch.setitem(registry._REGISTRY, Other.name, Other)
    cfg = config(tmp_path, ["idealized"], seeds=(0, 1))
    cfg.methods = [spec(_Shared), MethodSpec.parse("idealized", "fast"), spec(Other)]
    cfg.windows = [Window(3.3, 3.7), Window(3.5, 3.9)]
    plan = make_plan(small_dataset, cfg)
    assert (plan.total, plan.done, len(plan.windows)) == (12, 0, 12)
    shape = [(type(t).__name__[0], t.spec.name, t.seed) for t in plan.tasks]
    assert shape[:7] == [("F", "shared-toy", 0), ("W", "shared-toy", 0), ("W", "shared-toy", 0),
                         ("W", "idealized", 0), ("W", "idealized", 0), ("W", "shared-toy-2", 0),
                         ("W", "shared-toy-2", 0)]
    assert [t.index for t in plan.tasks] == list(range(len(plan.tasks)))
    fits = plan.fits
    assert len(fits) == 2 and all(f.users == ["shared-toy", "shared-toy-2"] for f in fits)
    for task in plan.windows:
        if task.spec.name == "idealized":
            assert task.fit is None
        else:
            assert task.fit == fits[task.seed].key
            assert task.shared_from == (None if task.spec.name == "shared-toy" else "shared-toy")
    # seed 0 of the owner done: the other method owns that fit now; both done: no fit for seed 0
    finished = {t.record_key for t in plan.windows if t.spec.name == "shared-toy" and t.seed == 0}
    replan = make_plan(small_dataset, cfg, finished)
    fit0 = next(f for f in replan.fits if f.seed == 0)
    assert (replan.done, fit0.spec.name, fit0.users) == (2, "shared-toy-2", ["shared-toy-2"])
    assert all(t.shared_from is None for t in replan.windows if t.seed == 0)
    finished |= {t.record_key for t in plan.windows if t.spec.name == "shared-toy-2" and t.seed == 0}
    assert [f.seed for f in make_plan(small_dataset, cfg, finished).fits] == [1]


@pytest.mark.parametrize("option, value, fragment", [
    ("min_bkg", 0, "min_bkg must be at least 1"),
    ("bootstrap", 5, "bootstrap must be 0 (no statistical errors) or at least 10"),
])
def test_run_settings_that_would_give_nan_metrics_are_config_errors(tmp_path, option, value, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        RunConfig(methods=[], windows=[], n_sigs=[0], seeds=[0], output=tmp_path, **{option: value})


class _Trains(BackgroundModel):
    """Per window, two short trainings through the shared loop (a stand-in for R-ANODE's background and
    signal fits), 16 steps per epoch; after ``interrupt_after`` steps a KeyboardInterrupt, once, as a Ctrl-C."""

    name = "trains-toy"
    per_window = True
    steps = 0
    interrupt_after: int | None = None
    fail_in_sample = False

    @dataclass(frozen=True)
    class Settings:
        tag: str = "x"

    def fit(self, events, window, truth=None):
        import torch

        from adbench.models.training import TrainConfig, train_module

        sr = events.in_range(window.low, window.high) if window is not None else events
        x = torch.as_tensor(sr.x[:2000, :2], dtype=torch.float32)
        y = torch.as_tensor(sr.x[:2000, 2:3], dtype=torch.float32)
        self.weights_ = []
        for training in (1, 2):
            def loss(module, batch, training=training):
                cls = type(self)
                cls.steps += 1
                if cls.interrupt_after is not None and cls.steps > cls.interrupt_after:
                    cls.interrupt_after = None
                    raise KeyboardInterrupt
                return (module(batch[0]) - batch[1]).pow(2).mean()

            def check(module, data):
                with torch.no_grad():
                    return float((module(data[0]) - data[1]).pow(2).mean())

            trained = train_module(lambda: torch.nn.Linear(2, 1), (x[:1600], y[:1600]), (x[1600:], y[1600:]),
                                   loss, check, TrainConfig(epochs=2, batch_size=100, keep_best=1),
                                   seed=training, device="cpu", label=f"toy{training}")
            self.weights_.append(trained.module.weight.detach().clone())
        self.events_ = events
        return self

    def sample(self, masses, window):
        if type(self).fail_in_sample:
            raise RuntimeError("out of memory (test)")
        sr = self.events_.in_range(window.low, window.high)
        return sr.x[np.random.default_rng(0).integers(0, len(sr), len(masses))]


def test_a_task_cut_off_mid_training_resumes_its_trainings(tmp_path, small_dataset, monkeypatch):
    """Ctrl-C in the second training of a task: the run stops, the first training's progress and the
    second's last save stay in <output>/resume/; the rerun reads the first back, continues the second
    from its save (fewer steps than a whole fit), reports the whole fit's time, and leaves no resume folder."""
    monkeypatch.setitem(registry._REGISTRY, _Trains.name, _Trains)
    monkeypatch.setattr("adbench.models.training.SAVE_EVERY_S", 0.0)
    cfg = config(tmp_path, ["idealized"])
    cfg.methods = [spec(_Trains)]
    _Trains.steps, _Trains.interrupt_after = 0, 2 * 16 + 16 + 3  # 3 steps into the second training's epoch 2
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(small_dataset, cfg)
    saved = sorted(p.name for p in (tmp_path / "resume").rglob("*.pt"))
    assert saved == ["01-toy1.pt", "02-toy2.pt"]
    assert not ResultStore(tmp_path).load()

    _Trains.steps = 0
    run_benchmark(small_dataset, cfg)
    assert _Trains.steps == 16  # the second training's epoch 2 only: the rest was read back
    (record,) = ResultStore(tmp_path).load()
    assert record.ok and record.time_fit_window_s > 0
    assert not (tmp_path / "resume").exists()

    # The same task uninterrupted, in another directory: the same trainings, so the same template source.
    other = config(tmp_path / "whole", ["idealized"])
    other.methods = [spec(_Trains)]
    _Trains.steps = 0
    run_benchmark(small_dataset, other)
    assert _Trains.steps == 2 * 2 * 16
    (whole,) = ResultStore(tmp_path / "whole").load()
    assert whole.max_sic == record.max_sic


def test_a_shared_fit_stays_saved_until_no_window_needs_it(tmp_path, small_dataset, monkeypatch):
    """A time-boxed chunk that leaves windows of a shared fit keeps the fit's finished trainings, and the
    next chunk reads them back instead of training again; the last chunk removes them."""
    from adbench.executors.local import LocalExecutor

    class SharedTrains(_Trains):
        name = "shared-trains-toy"
        per_window = False

        def fit_signature(self):
            return "trains"

        def share_fit_from(self, other):
            self.events_ = other.events_
            return self

    monkeypatch.setitem(registry._REGISTRY, SharedTrains.name, SharedTrains)
    cfg = config(tmp_path, ["idealized"])
    cfg.methods = [spec(SharedTrains)]
    cfg.windows = [Window(3.3, 3.7), Window(3.5, 3.9)]
    SharedTrains.steps, SharedTrains.interrupt_after = 0, None
    first = run_benchmark(small_dataset, cfg, executor=LocalExecutor(max_time=1e-3))
    assert (first.finished, first.left) == (1, 1) and SharedTrains.steps == 2 * 2 * 16
    assert len(list((tmp_path / "resume").rglob("*.pt"))) == 2
    SharedTrains.steps = 0
    second = run_benchmark(small_dataset, cfg)
    assert (second.finished, second.left) == (1, 0) and SharedTrains.steps == 0
    records = ResultStore(tmp_path).load()
    assert records[1].ok and records[1].time_fit_shared_s > 0  # the earlier attempt's training seconds
    assert not (tmp_path / "resume").exists()


def test_a_failed_task_keeps_its_trainings_for_the_retry(tmp_path, small_dataset, monkeypatch):
    """A task that fails after its fit (an out-of-memory error while sampling) is recorded as failed and
    tried again by the next run, which reads its finished trainings back instead of training again."""
    monkeypatch.setitem(registry._REGISTRY, _Trains.name, _Trains)
    cfg = config(tmp_path, ["idealized"])
    cfg.methods = [spec(_Trains)]
    _Trains.steps, _Trains.interrupt_after, _Trains.fail_in_sample = 0, None, True
    try:
        first = run_benchmark(small_dataset, cfg)
    finally:
        _Trains.fail_in_sample = False
    assert first.failed == 1 and len(list((tmp_path / "resume").rglob("*.pt"))) == 2
    _Trains.steps = 0
    second = run_benchmark(small_dataset, cfg)
    assert second.finished == 1 and _Trains.steps == 0
    assert not (tmp_path / "resume").exists()


def test_a_task_that_may_repeat_a_running_training_waits_while_others_can_start():
    """With several slots, ``next_ready`` defers a window task whose method shares a training with a
    running task on the same window, N_sig and seed (ANODE and R-ANODE train the same background
    flow; started later, one reads the other's training back), but never leaves a slot idle."""
    import heapq

    from adbench.executors.base import next_ready
    from adbench.planning import WindowTask

    def task(name: str, index: int, seed: int = 0) -> WindowTask:
        return WindowTask(key=f"{name}-{index}", record_key=(name, index), spec=MethodSpec.parse(name, "fast"),
                          window=Window(), n_sig=1000, seed=seed, config_hash="h", index=index)

    anode, ranode, vcr, radot = task("anode", 0), task("ranode", 1), task("vcr", 2), task("radot", 3)
    assert ranode.may_repeat_trainings_of(anode) and anode.may_repeat_trainings_of(ranode)
    assert not vcr.may_repeat_trainings_of(anode)
    assert radot.may_repeat_trainings_of(task("radot", 5)) and not radot.may_repeat_trainings_of(task("radot", 6, 1))
    # CATHODE's flow has its scaler fitted on the sidebands; sigma-context's window tasks train no CFM
    assert not task("cathode", 4).may_repeat_trainings_of(anode)
    assert not task("sigma-context", 4).may_repeat_trainings_of(vcr)

    ready = [(t.index, t) for t in (ranode, vcr, radot)]
    heapq.heapify(ready)
    assert next_ready(ready, [anode]) is vcr  # ranode waits for anode's flow
    assert next_ready(ready, [anode]) is radot
    assert next_ready(ready, [anode]) is ranode  # nothing else left: it starts rather than idle
    ready = [(ranode.index, ranode)]
    assert next_ready(ready, []) is ranode
