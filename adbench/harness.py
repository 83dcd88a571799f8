"""The benchmark loop: for each seed x N_sig x method x window, fit, build the template, classify,
score and time; one ``Record`` per task, appended as soon as it is finished."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adbench.data.dataset import Dataset, Split
from adbench.data.events import Events
from adbench.environment import environment_summary
from adbench.errors import ConfigError, DataError, MethodFailure
from adbench.evaluate import ClassifierConfig, ClassifierEnsemble, auc_null, feature_histograms, two_sample_auc
from adbench.masses import sample_masses
from adbench.methods.base import BackgroundModel
from adbench.methods.presets import Preset, load_preset
from adbench.methods.registry import canonical_name, get_method_class
from adbench.metrics import bootstrap_errors, downsampled_curve, sensitivity
from adbench.results import Record, ResultStore
from adbench.settings import settings_dict
from adbench.timing import Stopwatch
from adbench.windows import Window

log = logging.getLogger(__name__)
MIN_TEST_EVENTS = 20  # per class in a window's test set
#: Template events per SR data event, the same for every method unless the run says otherwise.
DEFAULT_TEMPLATE_SIZE = 4.0


@dataclass(frozen=True, eq=False)
class MethodSpec:
    """A method as the user asked for it (``name`` or ``name:profile``): its preset and the
    classifier of that profile (``paper`` profiles use the published ensemble)."""

    name: str
    preset: Preset
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    @classmethod
    def parse(cls, text: str, default_profile: str) -> MethodSpec:
        name, _, profile = text.strip().partition(":")
        canonical = canonical_name(name)
        preset = load_preset(canonical, profile or default_profile)
        return cls(canonical, preset, ClassifierConfig.profile(preset.profile))

    @property
    def cls(self) -> type[BackgroundModel]:
        return get_method_class(self.name)


@dataclass
class RunConfig:
    """What to run and where the records go.

    Attributes:
        classifier: when set, every method uses this classifier instead of its profile's.
        template_size: template events per SR data event for every template method (the idealized
            template takes at most this many held-out events).
        bootstrap: replicas of the test set for the statistical errors (0: none).
    """

    methods: list[MethodSpec]
    windows: list[Window]
    n_sigs: list[int]
    seeds: list[int]
    output: Path
    device: str = "cpu"
    classifier: ClassifierConfig | None = None
    template_size: float = DEFAULT_TEMPLATE_SIZE
    min_bkg: int = 25
    bootstrap: int = 200
    command: str = ""

    def __post_init__(self) -> None:
        if not self.template_size > 0:
            raise ConfigError(f"the template size must be positive, got {self.template_size}")

    def classifier_for(self, spec: MethodSpec) -> ClassifierConfig:
        return self.classifier or spec.classifier


@dataclass
class RunSummary:
    finished: int = 0
    failed: int = 0
    skipped: int = 0
    output: Path | None = None


def config_hash(dataset: Dataset, spec: MethodSpec, config: RunConfig) -> str:
    """Hash of everything that changes a task's numbers (not the seed, N_sig or window: those are
    part of the record key)."""
    payload = {
        "dataset": dataset.name,
        "dataset_sizes": dataset.sizes(),
        "holdout": asdict(dataset.holdout),
        "thinned_span": dataset.thinned_span(config.windows),
        "features": list(dataset.features),
        "method": spec.name,
        "profile": spec.preset.profile,
        "settings": settings_dict(make_model(spec, "cpu", 0, config.classifier_for(spec)).config),
        "template": asdict(spec.preset.template),
        "template_size": config.template_size,
        "classifier": asdict(config.classifier_for(spec)),
        "min_bkg": config.min_bkg,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_windows(dataset: Dataset, windows: list[Window]) -> None:
    """Every window must lie inside the data's mass range, hold data events and be covered by a
    held-out background sample."""
    m = dataset.events.m
    low, high = float(m.min()), float(m.max())
    for window in windows:
        if window.high <= low or window.low >= high:
            raise ConfigError(
                f"{window} lies outside the mjj range of dataset {dataset.name!r} ({low:.2f}-{high:.2f} TeV)"
            )
        if not window.in_sr(m).any():
            raise DataError(f"{window} holds no events of dataset {dataset.name!r}")
        dataset.check_covered(window)


def check_methods(methods: list[MethodSpec], device: str = "cpu") -> None:
    """Before any data is loaded: no method is asked for twice with the same profile, every preset's
    settings are accepted, and every configuration can run here (``check_ready``)."""
    seen: set[tuple[str, str]] = set()
    for spec in methods:
        ident = (spec.name, spec.preset.profile)
        if ident in seen:
            raise ConfigError(f"method {spec.name!r} with profile {spec.preset.profile!r} is listed twice")
        seen.add(ident)
        make_model(spec, device, 0, spec.classifier).check_ready()


def make_model(spec: MethodSpec, device: str, seed: int, classifier: ClassifierConfig) -> BackgroundModel:
    """The method of ``spec`` with its preset's settings (``ConfigError`` naming the preset when they
    are wrong)."""
    cls = spec.cls
    extra = {"classifier": classifier} if cls.uses_classifier else {}
    model = cls(device=device, seed=seed, settings=spec.preset.params, **extra)
    try:
        model.config  # noqa: B018 - validates the settings now, with the preset named
    except ConfigError as error:
        raise ConfigError(f"{spec.preset.source or spec.name}: {error}") from None
    return model


def run_benchmark(dataset: Dataset, config: RunConfig, progress: Callable[[int], Any] | None = None) -> RunSummary:
    """Run every pending task of ``config`` on ``dataset``; records go to ``config.output``.

    Args:
        progress: called with the number of pending tasks, returns a tqdm-like bar (``update``,
            ``set_postfix_str``, ``close``), or None for no bar.
    """
    check_windows(dataset, config.windows)
    check_methods(config.methods, config.device)
    store = ResultStore(config.output)
    done = store.finished_keys()
    env = environment_summary(config.device)
    hashes = {spec: config_hash(dataset, spec, config) for spec in config.methods}

    def key(spec: MethodSpec, window: Window, n_sig: int, seed: int) -> tuple:
        return (dataset.name, window.name, spec.name, n_sig, seed, hashes[spec])

    plan = [(seed, n_sig, spec, window) for seed in config.seeds for n_sig in config.n_sigs
            for spec in config.methods for window in config.windows]
    pending = [task for task in plan if key(task[2], task[3], task[1], task[0]) not in done]
    summary = RunSummary(skipped=len(plan) - len(pending), output=store.path)
    bar = progress(len(pending)) if progress and pending else None
    try:
        for seed in config.seeds:
            for n_sig in config.n_sigs:
                todo = [(s, w) for (sd, ns, s, w) in pending if sd == seed and ns == n_sig]
                if not todo:
                    continue
                split = dataset.split(n_sig, seed, config.windows)
                shared: dict[str, tuple[BackgroundModel, float, str]] = {}
                for spec in config.methods:
                    windows = [w for (s, w) in todo if s is spec]
                    if not windows:
                        continue
                    if bar:
                        bar.set_postfix_str(f"seed {seed}, N_sig {n_sig}, {spec.name}")
                    common = dict(
                        dataset=dataset.name, method=spec.name, n_sig=n_sig, seed=seed, config_hash=hashes[spec],
                        profile=spec.preset.profile, variant=spec.preset.variant, family=spec.cls.family,
                        per_window=spec.cls.per_window,
                        features=list(dataset.features), classifier=asdict(config.classifier_for(spec)),
                        template_size=config.template_size, command=config.command, **env,
                    )
                    for record in _run_method(spec, windows, split, config, shared, common):
                        record.timestamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                        assert record.key == key(spec, Window(record.window_low, record.window_high), n_sig, seed)
                        store.append(record)
                        if record.ok:
                            summary.finished += 1
                        else:
                            summary.failed += 1
                            log.warning("%s %s N_sig=%d seed=%d failed: %s", spec.name, record.window, n_sig, seed,
                                        record.error)
                        if bar:
                            bar.update(1)
    finally:
        if bar:
            bar.close()
    return summary


def _run_method(
    spec: MethodSpec,
    windows: list[Window],
    split: Split,
    config: RunConfig,
    shared: dict[str, tuple[BackgroundModel, float, str]],
    common: dict[str, Any],
) -> Iterator[Record]:
    """One record per window for one method (the shared fit first, for a method trained once)."""
    cls = spec.cls
    shared_time, shared_note = 0.0, None
    model: BackgroundModel | None = None
    if not cls.per_window:
        try:
            model = make_model(spec, config.device, split.seed, config.classifier_for(spec))
            signature = model.fit_signature()
            if signature is not None and signature in shared:
                source, shared_time, source_name = shared[signature]
                model.share_fit_from(source)
                shared_note = source_name
            else:
                watch = Stopwatch(config.device)
                with watch.phase("fit"):
                    model.fit(split.data, None)
                shared_time = watch.seconds["fit"]
                if signature is not None:
                    shared[signature] = (model, shared_time, spec.name)
        except (MethodFailure, DataError) as error:
            for window in windows:
                yield _failed(window, f"shared fit: {error}", common)
            return
    for window in windows:
        try:
            record = _run_window(spec, model, window, split, config, common)
        except (MethodFailure, DataError) as error:
            yield _failed(window, str(error), common)
            continue
        except (RuntimeError, ValueError, FloatingPointError) as error:
            log.debug("task failed", exc_info=True)
            yield _failed(window, f"{type(error).__name__}: {error}", common)
            continue
        record.time_fit_shared_s = shared_time
        record.shared_fit_from = shared_note
        yield record


def _failed(window: Window, reason: str, common: dict[str, Any]) -> Record:
    return Record(window=window.name, window_low=window.low, window_high=window.high, status="failed",
                  error=reason, **common)


def _run_window(
    spec: MethodSpec, model: BackgroundModel | None, window: Window, split: Split, config: RunConfig,
    common: dict[str, Any],
) -> Record:
    cls = spec.cls
    classifier_config = config.classifier_for(spec)
    watch = Stopwatch(config.device)
    rng = np.random.default_rng([split.seed, int(round(window.low * 1000)), int(round(window.high * 1000))])
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
    assert model is not None

    record = Record(
        window=window.name, window_low=window.low, window_high=window.high,
        n_sr_data=len(sr_data), n_sig_sr=sr_data.n_signal, n_test_signal=n_test_sig, n_test_background=n_test_bkg,
        min_bkg=config.min_bkg, **common,
    )
    if cls.produces == "template":
        template_spec = spec.preset.template
        n_template = int(round(config.template_size * len(sr_data)))
        with watch.phase("sample"):
            masses = sample_masses(
                template_spec.mass_sampler, split.data.m, window, n_template, rng,
                mass_weights=split.mass_weights(split.data.m), **template_spec.sampler_options,
            )
            template = np.asarray(model.sample(masses.masses, window))
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
        record.histograms = feature_histograms(sr_data, template, true_bkg)
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
        record.stat_errors["fidelity_auc"] = auc_null(record.n_template, n_test_bkg).std
        record.stat_errors["template_data_auc"] = auc_null(record.n_template, len(sr_data)).std
    record.curve = downsampled_curve(test.label, scores)
    record.time_fit_window_s = watch.seconds.get("fit", 0.0)
    record.time_sample_s = watch.seconds.get("sample", 0.0)
    record.time_classify_s = watch.seconds.get("classify", 0.0)
    record.method_info = model.info()
    return record


def _check_template(template: np.ndarray, sr_data: Events, name: str) -> None:
    if template.ndim != 2 or template.shape[1] != sr_data.n_features:
        raise MethodFailure(f"{name} returned a template of shape {template.shape}, expected (n, {sr_data.n_features})")
    if len(template) < MIN_TEST_EVENTS:
        raise MethodFailure(f"{name} returned only {len(template)} template events")
    bad = ~np.isfinite(template).all(axis=1)
    if bad.any():
        raise MethodFailure(f"{name} returned {int(bad.sum())} template events with NaN/inf features")
