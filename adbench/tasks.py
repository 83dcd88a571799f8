"""The task runner: one shared fit, or one window task (fit, template, classifier, metrics -> one
``Record``). The same functions run in the client process (local executor) and on Dask workers.

Workers receive small arguments only: the dataset travels as a ``DatasetRef`` (loaded once per
process, ``load_dataset_ref``) or, from the Python API, once per worker as a scattered object; the
split of each (N_sig, seed) is computed where it is needed and cached per process.
"""

from __future__ import annotations

import copy
import importlib
import logging
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from adbench.data.dataset import Dataset, Split
from adbench.data.events import Events
from adbench.environment import environment_summary, git_revision, versions
from adbench.errors import DataError, MethodFailure
from adbench.evaluate import ClassifierEnsemble, auc_null, feature_histograms, two_sample_auc
from adbench.masses import MassSample, sample_masses
from adbench.methods.base import BackgroundModel
from adbench.metrics import bootstrap_errors, downsampled_curve, sensitivity
from adbench.models.resume import (
    earlier_seconds,
    resumable,
    shared_directory,
    task_directory,
    trainings_from_other_tasks,
)
from adbench.planning import FitTask, WindowTask
from adbench.results import Record
from adbench.runconfig import MethodSpec, RunConfig, make_model
from adbench.timing import Stopwatch
from adbench.windows import Window

log = logging.getLogger(__name__)
MIN_TEST_EVENTS = 20  # per class in a window's test set
#: Splits kept per process: a worker usually serves one or two (N_sig, seed) at a time.
SPLIT_CACHE_SIZE = 2
#: Dask event topic: an attempt of a task started on a worker (see ``announce_start``).
START_TOPIC = "adbench-task-started"


@dataclass(frozen=True)
class DatasetRef:
    """How a worker loads the dataset: ``function`` (``module:name``) called with ``kwargs``.

    E.g. ``DatasetRef.card("synthetic")`` or ``DatasetRef("adbench.data.synthetic:synthetic_dataset",
    (("n_background", 60000),))``. Equal references share one load per process.
    """

    function: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def card(cls, name: str, data_dir: str | None = None, features: str | None = None) -> DatasetRef:
        """A dataset card or an LHCO-layout file, as ``adbench run --dataset`` names it (paths made
        absolute: workers may start elsewhere)."""
        from pathlib import Path

        from adbench.data.cards import is_file_name

        if is_file_name(name):
            name = str(Path(name).expanduser().resolve())
        if data_dir is not None:
            data_dir = str(Path(data_dir).expanduser().resolve())
        return cls("adbench.data.cards:load_dataset", (("name", name), ("data_dir", data_dir), ("features", features)))

    def load(self) -> Dataset:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)(**dict(self.kwargs))


@dataclass
class SharedFit:
    """The result of a ``FitTask``: the fitted model (None when the fit failed) and its fit time."""

    model: BackgroundModel | None
    seconds: float
    owner: str
    error: str | None = None


@dataclass(frozen=True)
class TaskContext:
    """What every task of one run needs besides its own arguments (small: sent with each task).

    Attributes:
        sizes: ``Dataset.sizes()`` seen by the client; a worker that loads different data refuses.
        dataset_version: ``Dataset.version`` seen by the client (the same check).
        dataset_digest: ``Dataset.source_digest`` seen by the client (the same check, on the files).
        resume_dir: where each task's trainings save their progress (``adbench.models.resume``),
            one folder per task, removed once the task has its record; empty: nothing is saved.
    """

    config: RunConfig
    dataset_name: str
    features: tuple[str, ...]
    sizes: dict[str, Any] = field(default_factory=dict)
    dataset_version: str = ""
    dataset_digest: str = ""
    resume_dir: str = ""


_lock = threading.Lock()
_datasets: dict[DatasetRef, Dataset] = {}
_splits: OrderedDict[tuple, tuple[Dataset, Split]] = OrderedDict()


def resolve_dataset(source: Dataset | DatasetRef, context: TaskContext) -> Dataset:
    """The dataset itself, or the one a reference loads (once per process)."""
    if isinstance(source, Dataset):
        return source
    with _lock:
        if source not in _datasets:
            dataset = source.load()
            if context.sizes and dataset.sizes() != context.sizes:
                raise DataError(
                    f"a worker loaded dataset {dataset.name!r} with sizes {dataset.sizes()}, the client "
                    f"{context.sizes}: do the workers see the same files?"
                )
            if dataset.version != context.dataset_version:
                raise DataError(
                    f"a worker generated dataset {dataset.name!r} with version {dataset.version!r}, the client "
                    f"{context.dataset_version!r}: do the workers run the same adbench?"
                )
            if dataset.source_digest != context.dataset_digest:
                raise DataError(
                    f"a worker read dataset {dataset.name!r} from files with sha256 {dataset.source_digest!r}, "
                    f"the client {context.dataset_digest!r}: do the workers see the same files?"
                )
            _datasets.clear()  # one dataset per process
            _datasets[source] = dataset
        return _datasets[source]


def split_for(dataset: Dataset, n_sig: int, seed: int, windows: list[Window]) -> Split:
    """``dataset.split(n_sig, seed, windows)``, cached per process (the dataset is kept referenced
    by the entry, so its id cannot be reused while it is cached)."""
    key = (id(dataset), n_sig, seed, tuple(windows))
    with _lock:
        if key in _splits:
            _splits.move_to_end(key)
            return _splits[key][1]
        split = dataset.split(n_sig, seed, windows)
        _splits[key] = (dataset, split)
        while len(_splits) > SPLIT_CACHE_SIZE:
            _splits.popitem(last=False)
        return split


def clear_caches() -> None:
    """Forget the cached datasets and splits of this process."""
    with _lock:
        _datasets.clear()
        _splits.clear()


def announce_start() -> None:
    """On a Dask worker, record with the scheduler (a synchronous call, so the record cannot be lost
    with the worker a moment later) that this attempt of the current task has started: when a
    worker is lost, the client can tell a task that was running on it from one only queued there."""
    if "distributed" not in sys.modules:  # not on a worker: the local executor does not import Dask
        return
    from distributed import get_client, get_worker

    try:
        key = get_worker().get_current_task()
    except ValueError:
        return
    get_client().log_event(START_TOPIC, {"key": key})


def fit_task(source: Dataset | DatasetRef, task: FitTask, context: TaskContext) -> SharedFit:
    """Fit ``task.spec`` once on the observed data of (N_sig, seed); a ``MethodFailure`` or
    ``DataError`` becomes a failed ``SharedFit`` that its window tasks record."""
    announce_start()
    config = context.config
    split = split_for(resolve_dataset(source, context), task.n_sig, task.seed, config.windows)
    progress_dir = task_directory(context.resume_dir, task.key)
    try:
        model = make_model(task.spec, config.device, task.seed, config.classifier_for(task.spec))
        watch = Stopwatch(config.device)
        with resumable(progress_dir), watch.phase("fit"):
            model.fit(split.data, None)
            resumed_seconds = earlier_seconds()
    except (MethodFailure, DataError) as error:
        return SharedFit(None, 0.0, task.spec.name, str(error))
    # The finished trainings stay saved (the harness removes them when the run leaves no task): a later
    # chunk of the scan with windows left reads them back.
    return SharedFit(model, watch.seconds["fit"] + resumed_seconds, task.spec.name)


def window_task(
    source: Dataset | DatasetRef, task: WindowTask, context: TaskContext, shared: SharedFit | None = None
) -> tuple[Record, float]:
    """Run one window task; returns its record (failed with the reason when the method or its shared
    fit failed) and its wall-clock seconds. Unexpected errors propagate."""
    announce_start()
    started = time.perf_counter()
    config, spec, window = context.config, task.spec, task.window
    common = record_fields(task, context, environment_summary(config.device))
    if task.fit is not None and (shared is None or shared.model is None):
        reason = shared.error if shared is not None else "no fitted model was handed over"
        return failed_record(window, f"shared fit: {reason}", common), time.perf_counter() - started
    split = split_for(resolve_dataset(source, context), task.n_sig, task.seed, config.windows)
    model = None
    if shared is not None:
        try:
            model = _adopt(spec, shared, task, config)
        except (MethodFailure, DataError) as error:
            return failed_record(window, f"shared fit: {error}", common), time.perf_counter() - started
    progress_dir = task_directory(context.resume_dir, task.key)
    resumed = 0.0
    try:
        trainings = shared_directory(context.resume_dir, task.share_group) if task.shares_trainings else None
        with resumable(progress_dir, trainings):
            record = run_window(spec, model, window, split, config, common)
            resumed = earlier_seconds()
    except (MethodFailure, DataError) as error:
        record = failed_record(window, str(error), common)
    except (RuntimeError, ValueError, FloatingPointError) as error:
        log.debug("task failed", exc_info=True)
        record = failed_record(window, f"{type(error).__name__}: {error}", common)
    else:
        record.time_fit_shared_s = shared.seconds if shared is not None else 0.0
        record.shared_fit_from = task.shared_from
    # The cost of the whole task, an interrupted attempt's training included (the time box learns it).
    return record, time.perf_counter() - started + resumed


def _adopt(spec: MethodSpec, shared: SharedFit, task: WindowTask, config: RunConfig) -> BackgroundModel:
    """The model a window task samples from: a shallow copy of the owner's fitted model (what it
    sets while sampling stays with this task), or the adopter's own model sharing the fit."""
    assert shared.model is not None
    if task.shared_from is None:
        return copy.copy(shared.model)
    model = make_model(spec, config.device, task.seed, config.classifier_for(spec))
    return model.share_fit_from(shared.model)


def record_fields(task: WindowTask, context: TaskContext, env: dict[str, Any]) -> dict[str, Any]:
    """The fields every record of ``task`` carries, failed or not."""
    config, spec = context.config, task.spec
    return dict(
        dataset=context.dataset_name, dataset_version=context.dataset_version,
        dataset_digest=context.dataset_digest, method=spec.name,
        n_sig=task.n_sig, seed=task.seed,
        config_hash=task.config_hash, profile=spec.preset.profile, variant=spec.preset.variant,
        family=spec.cls.family, per_window=spec.cls.per_window, features=list(context.features),
        classifier=asdict(config.classifier_for(spec)), template_size=config.template_size,
        command=config.command, **env,
    )


def failed_record(window: Window, reason: str, common: dict[str, Any]) -> Record:
    return Record(window=window.name, window_low=window.low, window_high=window.high, status="failed",
                  error=reason, **common)


def lost_record(task: WindowTask, context: TaskContext, reason: str) -> Record:
    """A failed record written by the client for a task whose worker was lost (the client may have
    no GPU, so the device is named as configured)."""
    try:
        env = environment_summary(context.config.device)
    except Exception:  # noqa: BLE001 - e.g. no CUDA on the client: the record still has to be written
        env = {"device": context.config.device, "versions": versions(), "git_revision": git_revision()}
    return failed_record(task.window, reason, record_fields(task, context, env))


def template_masses(spec: MethodSpec, split: Split, window: Window, n: int) -> MassSample:
    """The ``n`` SR masses a template method's template is drawn at, by the sampler of its preset and
    seeded by the split's seed and the window (every method of a run gets the same masses)."""
    rng = np.random.default_rng([split.seed, int(round(window.low * 1000)), int(round(window.high * 1000))])
    template = spec.preset.template
    return sample_masses(template.mass_sampler, split.data.m, window, n, rng,
                         mass_weights=split.mass_weights(split.data.m), **template.sampler_options)


def run_window(
    spec: MethodSpec, model: BackgroundModel | None, window: Window, split: Split, config: RunConfig,
    common: dict[str, Any],
) -> Record:
    """Fit (per-window methods), template, classifier and metrics of one window."""
    cls = spec.cls
    classifier_config = config.classifier_for(spec)
    watch = Stopwatch(config.device)
    sr_data = split.data.in_range(window.low, window.high)
    test = split.test_in(window)
    n_test_sig, n_test_bkg = test.n_signal, len(test) - test.n_signal
    if n_test_sig < MIN_TEST_EVENTS or n_test_bkg < MIN_TEST_EVENTS:
        raise DataError(
            f"{window}: the test set has {n_test_sig} signal and {n_test_bkg} background events "
            f"(need {MIN_TEST_EVENTS} of each); widen the window or hold out more background"
        )
    if len(sr_data) < MIN_TEST_EVENTS:
        raise DataError(f"{window}: only {len(sr_data)} data events in the signal region")

    if cls.per_window:
        model = make_model(spec, config.device, split.seed, classifier_config)
        truth = split.truth_in(window) if cls.needs_truth else None
        with watch.phase("fit"):
            model.fit(split.data, window, truth)
        watch.seconds["fit"] += earlier_seconds()  # an interrupted attempt's training, resumed here
    assert model is not None
    resumed_in_fit = earlier_seconds()

    record = Record(
        window=window.name, window_low=window.low, window_high=window.high,
        n_sr_data=len(sr_data), n_sig_sr=sr_data.n_signal, n_test_signal=n_test_sig, n_test_background=n_test_bkg,
        min_bkg=config.min_bkg, **common,
    )
    if cls.produces == "template":
        n_template = int(round(config.template_size * len(sr_data)))
        with watch.phase("sample"):
            masses = template_masses(spec, split, window, n_template)
            template = np.asarray(model.sample(masses.masses, window))
        watch.seconds["sample"] += earlier_seconds() - resumed_in_fit  # a training inside sample (CURTAINs)
        _check_template(template, sr_data, spec.name)
        sources = model.template_sources()
        with watch.phase("classify"):
            classifier = ClassifierEnsemble(classifier_config, split.seed).fit(sr_data.x, template, sources)
            scores = classifier.predict(test.x)
        true_bkg = test.background().x
        record.n_template = len(template)
        record.n_template_sources = len(template) if sources is None else int(len(np.unique(sources)))
        record.mass_sampler = masses.note
        record.fidelity_auc = two_sample_auc(template, true_bkg, split.seed)
        record.template_data_auc = two_sample_auc(template, sr_data.x, split.seed)
        test_signal = test.signal().x
        record.histograms = feature_histograms(sr_data, template, true_bkg, test_signal if len(test_signal) else None)
    else:
        with watch.phase("classify"):
            scores = np.asarray(model.score(test, window), dtype=np.float64)
        if scores.shape != (len(test),) or not np.isfinite(scores).all():
            raise MethodFailure(f"{spec.name} returned {scores.shape} scores with non-finite values or the wrong shape")

    for name, value in sensitivity(test.label, scores, config.min_bkg).items():
        setattr(record, name, value)
    if config.bootstrap:
        record.stat_errors = bootstrap_errors(test.label, scores, config.min_bkg, config.bootstrap, split.seed)
    if record.n_template:
        # copies of one source event (RAD-OT reuses sideband pairs) are not independent: the null's
        # spread is that of as many events as there are distinct sources (conservative: copies differ)
        independent = record.n_template_sources or record.n_template
        record.stat_errors["fidelity_auc"] = auc_null(independent, n_test_bkg).std
        record.stat_errors["template_data_auc"] = auc_null(independent, len(sr_data)).std
    record.curve = downsampled_curve(test.label, scores)
    record.time_fit_window_s = watch.seconds.get("fit", 0.0)
    record.time_sample_s = watch.seconds.get("sample", 0.0)
    record.time_classify_s = watch.seconds.get("classify", 0.0)
    record.method_info = model.info()
    if reused := trainings_from_other_tasks():  # their training seconds are in the fit time, as if trained here
        record.method_info["trainings_from_other_tasks"] = reused
    return record


def _check_template(template: np.ndarray, sr_data: Events, name: str) -> None:
    if template.ndim != 2 or template.shape[1] != sr_data.n_features:
        raise MethodFailure(f"{name} returned a template of shape {template.shape}, expected (n, {sr_data.n_features})")
    if len(template) < MIN_TEST_EVENTS:
        raise MethodFailure(f"{name} returned only {len(template)} template events")
    bad = ~np.isfinite(template).all(axis=1)
    if bad.any():
        raise MethodFailure(f"{name} returned {int(bad.sum())} template events with NaN/inf features")
