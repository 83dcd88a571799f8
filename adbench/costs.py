"""Cost estimates of tasks (for ``--max-time`` and ``adbench plan``) and duration parsing.

Where an estimate comes from, best first:

- ``run``: the wall-clock time of tasks of the same configuration finished earlier in this run;
- ``results``: the timed phases of records of the same configuration and kind of device already in
  the output directory, plus a margin for what the records do not time (split, metrics);
- ``guess``: a built-in CPU reference (below) scaled by the dataset's size, the preset's epochs and
  the classifier's size. It is rough, and for a GPU pessimistic: it only orders the first tasks of a
  fresh run, and is replaced as soon as one task of a configuration has finished.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adbench.data.dataset import Dataset
from adbench.errors import ConfigError
from adbench.evaluate import ClassifierConfig
from adbench.methods.presets import load_preset
from adbench.models.resume import saved_training_seconds, task_directory
from adbench.models.training import planned_epochs, split_sizes, steps_per_epoch
from adbench.planning import FitTask, Plan, Task, WindowTask
from adbench.results import Record
from adbench.runconfig import MethodSpec, RunConfig, make_model
from adbench.windows import Window

#: Seconds on 2 cores of an AMD EPYC at LHCO size (1.1M data events): (shared fit, per-window
#: training, per-window template + classifier), keyed by method and profile. Measured: the
#: flow-matching rows in reports/ablation-sigma-cpu (N_sig 1000); cathode, curtains4f4 and ranode in
#: reports/curtains-ranode-cpu (0.3 x LHCO size, scaled up); vcr's fast training in
#: tests/benchmarks/bench_sigma.py (one thread); radot, idealized and supervised in the first
#: reports/synthetic-v2-cpu. Derived, not measured: vcr at ``cpu`` (the shared fit's epochs on the 88% of
#: the events outside the SR) and anode (two CATHODE flows). ranode at ``cpu``: the whole fit
#: (background flow, five signal splits, held-out w) on one thread in
#: tests/benchmarks/ranode_background.py --signal-splits 5 (the median of three seeds), other jobs
#: sharing the 2 cores: an upper bound.
CPU_SECONDS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("vdata", "fast"): (181.0, 0.0, 31.3), ("sigma-linear", "fast"): (181.0, 0.0, 53.6),
    ("sigma-context", "fast"): (181.0, 0.0, 24.9), ("vcr", "fast"): (0.0, 279.0, 33.0),
    ("vdata", "cpu"): (991.0, 0.0, 43.1), ("sigma-linear", "cpu"): (991.0, 0.0, 93.6),
    ("sigma-context", "cpu"): (991.0, 0.0, 44.5), ("vcr", "cpu"): (0.0, 870.0, 45.0),
    ("cathode", "fast"): (0.0, 166.0, 52.0), ("anode", "fast"): (0.0, 332.0, 12.0),
    ("curtains4f4", "fast"): (188.0, 0.0, 58.0), ("ranode", "fast"): (0.0, 252.0, 12.0),
    ("ranode", "cpu"): (0.0, 2047.0, 12.0),
    ("radot", "fast"): (0.0, 25.0, 16.2), ("idealized", "fast"): (0.0, 0.0, 17.4),
    ("supervised", "fast"): (0.0, 9.0, 2.0),
}
#: The share of a table row's per-window training spent on a second model with its own
#: ``[<profile>.signal.train]`` table, repeated ``signal_splits`` times: R-ANODE's signal fit, by method
#: and profile (a profile without an entry: ``fast``'s). ``fast``: reports/ranode-background-cpu.json,
#: the rows with the exact background (no background flow to train, 61-76 s) over those with the
#: learned one (157-201 s), median 68 / 165. ``cpu``: reports/stretch-synthetic-cpu, seeds 0-2, the
#: five signal splits' 271-295 s against 2040-2184 s of spline background (0.118-0.119).
SIGNAL_FIT_SHARE: dict[str, dict[str, float]] = {"ranode": {"fast": 0.41, "cpu": 0.12}}
#: A method not in the table.
UNKNOWN_SECONDS = (120.0, 60.0, 15.0)
REFERENCE_EVENTS = 1_100_000
#: SR data events at the reference size where ``SIGNAL_FIT_SHARE`` was measured (synthetic, SR
#: 3.3-3.7 TeV: 140k of its 1.1M events).
REFERENCE_SR_EVENTS = 140_000
#: SR events large enough that every profile's epochs meet its ``min_steps`` (the ratio of signal
#: steps is then that of epochs / batch size).
LARGE_SR_EVENTS = 10_000_000
#: Untimed seconds per window task at the reference size (split, fidelity AUCs, bootstrap, histograms).
UNTIMED_SECONDS = 10.0
#: Margin on estimates from stored records.
MARGIN = 1.25
#: The least share of a task's estimate left when its progress files hold all of its training.
READ_BACK_SHARE = 0.1


@dataclass(frozen=True)
class Estimate:
    seconds: float
    source: str  # run | results | guess
    #: The part of ``seconds`` spent training, which progress files can save (None: all of it).
    training: float | None = None
    #: Training seconds an earlier attempt saved, already taken off ``seconds``.
    saved: float = 0.0

    @property
    def measured(self) -> bool:
        return self.source != "guess"


class CostModel:
    """Cost estimates for the tasks of one run, refined as its tasks finish.

    Args:
        earlier: records already in the output directory.
        gpu: whether this run's device is a GPU (records of the other kind of device are ignored).
    """

    def __init__(self, dataset: Dataset, config: RunConfig, plan: Plan, earlier: list[Record], gpu: bool,
                 resume_dir: str = "") -> None:
        self.scale = len(dataset.events) / REFERENCE_EVENTS
        self._dataset = dataset
        self._sr_counts: dict[tuple[Window, int], int] = {}
        self._sideband_counts: dict[tuple[Window, float | None], int] = {}
        self.config = config
        self._fit_users: dict[str, set[str]] = {fit.key: set() for fit in plan.fits}
        for task in plan.windows:
            if task.fit:
                self._fit_users[task.fit].add(task.config_hash)
        self._stored_window: dict[str, list[float]] = defaultdict(list)
        self._stored_fit: dict[str, list[float]] = defaultdict(list)
        self._stored_train: dict[str, list[float]] = defaultdict(list)
        for record in earlier:
            if not record.ok or record.device.startswith("CPU") == gpu:
                continue
            timed = record.time_fit_window_s + record.time_sample_s + record.time_classify_s
            self._stored_window[record.config_hash].append(timed)
            self._stored_train[record.config_hash].append(record.time_fit_window_s)
            if not record.per_window:
                self._stored_fit[record.config_hash].append(record.time_fit_shared_s)
        self._run_window: dict[str, list[float]] = defaultdict(list)
        self._run_untimed: list[float] = []
        self._run_fit: dict[str, list[float]] = defaultdict(list)
        self._run_train: dict[str, list[float]] = defaultdict(list)
        # Training an earlier, interrupted run saved (a fit of the last chunk of a time-boxed scan, a
        # task cut off): a rerun on the same kind of device reads it back instead of training again.
        self._gpu = gpu
        self._resume_dir = resume_dir
        self._saved_by_folder: dict[str, float] | None = None  # read when first needed

    def learn(self, task: WindowTask, record: Record, seconds: float) -> None:
        """Take the wall-clock ``seconds`` of a finished window task into account."""
        if not record.ok:
            return
        self._run_window[task.config_hash].append(seconds)
        self._run_train[task.config_hash].append(record.time_fit_window_s)
        timed = record.time_fit_window_s + record.time_sample_s + record.time_classify_s
        self._run_untimed.append(max(0.0, seconds - timed))
        if task.fit:
            self._run_fit[task.fit].append(record.time_fit_shared_s)

    def estimate(self, task: Task) -> Estimate:
        """The task's own cost (a fit: the fit alone), less the training an earlier attempt saved."""
        return self._fit(task) if isinstance(task, FitTask) else self._window(task)

    def _less_saved(self, task: Task, estimate: Estimate) -> Estimate:
        """``estimate`` less the training seconds the task's progress files hold (at most its training
        part), at least ``READ_BACK_SHARE`` of it (reading back, preparing and evaluating)."""
        folder = task_directory(self._resume_dir, task.key)
        if folder is None:
            return estimate
        if self._saved_by_folder is None:
            self._saved_by_folder = saved_training_seconds(self._resume_dir, self._gpu)
        training = estimate.seconds if estimate.training is None else estimate.training
        saved = min(self._saved_by_folder.get(folder.name, 0.0), training)
        if saved <= 0.0:
            return estimate
        seconds = max(estimate.seconds - saved, READ_BACK_SHARE * estimate.seconds)
        return Estimate(seconds, estimate.source, max(training - saved, 0.0), estimate.seconds - seconds)

    def to_start(self, task: Task, plan: Plan) -> Estimate:
        """What starting ``task`` commits to: a window task itself; a fit, the fit and its first
        window (a fit whose windows cannot follow is wasted)."""
        if isinstance(task, WindowTask):
            return self._window(task)
        users = plan.users_of(task)
        fit = self._fit(task)
        if not users:
            return fit
        first = self._window(users[0])
        sources = {fit.source, first.source}
        source = "guess" if "guess" in sources else "results" if "results" in sources else "run"
        return Estimate(fit.seconds + first.seconds, source)

    def _window(self, task: WindowTask) -> Estimate:
        return self._less_saved(task, self._window_whole(task))

    def _window_whole(self, task: WindowTask) -> Estimate:
        key = task.config_hash
        if self._run_window.get(key):
            return Estimate(statistics.median(self._run_window[key]), "run", statistics.median(self._run_train[key]))
        untimed = statistics.median(self._run_untimed) if self._run_untimed else UNTIMED_SECONDS * self.scale
        if self._stored_window.get(key):
            return Estimate(MARGIN * statistics.median(self._stored_window[key]) + untimed, "results",
                            MARGIN * statistics.median(self._stored_train[key]))
        sr_events = self._sr_data_events(task.window, task.n_sig)
        (_, train, rest), ratio = _reference_seconds(task.spec, sr_events, self.scale,
                                                     functools.partial(self._sideband_events, task.window))
        training = self.scale * train * ratio
        seconds = training + self.scale * rest * _classifier_ratio(self.config, task.spec)
        return Estimate(seconds + untimed, "guess", training)

    def _sr_data_events(self, window: Window, n_sig: int) -> int:
        """About how many data events a task's SR holds (R-ANODE's signal fits train on them)."""
        key = (window, n_sig)
        if key not in self._sr_counts:
            self._sr_counts[key] = round(self._dataset.expected_sr_data(window, n_sig))
        return self._sr_counts[key]

    def _sideband_events(self, window: Window, width: float | None) -> int:
        """The dataset's background events in the window's sidebands of ``width`` TeV (None: outside the
        SR), which a per-window training on the sidebands sees a fixed share of."""
        key = (window, width)
        if key not in self._sideband_counts:
            background = self._dataset.events.m[self._dataset.events.label == 0]
            self._sideband_counts[key] = int(window.in_sidebands(background, width).sum())
        return self._sideband_counts[key]

    def _fit(self, task: FitTask) -> Estimate:
        return self._less_saved(task, self._fit_whole(task))

    def _fit_whole(self, task: FitTask) -> Estimate:
        if self._run_fit.get(task.key):
            return Estimate(max(self._run_fit[task.key]), "run")
        stored = [s for h in self._fit_users.get(task.key, ()) for s in self._stored_fit.get(h, ())]
        if stored:
            return Estimate(MARGIN * statistics.median(stored), "results")
        (fit, _, _), ratio = _reference_seconds(task.spec)
        return Estimate(self.scale * fit * ratio, "guess")


def _reference_seconds(
    spec: MethodSpec, sr_events: int | None = None, scale: float = 1.0,
    sideband_events: Callable[[float | None], int] | None = None,
) -> tuple[tuple[float, float, float], float]:
    """The table's row for a spec and the factor on its training time: the row of the spec's profile,
    else of the nearest profile it ``extends`` that has one (else ``fast``'s), with the ratio of the
    profile's epochs to that one's (1 for its own row).

    A method with a signal fit (``SIGNAL_FIT_SHARE``) scales the rest of its training (the background)
    by the epochs and the number of background flows, and that share by the signal fit's optimiser
    steps (``_signal_fit_ratio``) on ``sr_events`` SR data events of a dataset ``scale`` times the
    reference size (None: an SR large enough for every ``min_steps`` to be met by the epochs alone).
    A per-window training on the sidebands of another ``sideband_width`` than the row's profile
    (cathode, anode, ranode, vcr; curtains4f4's transport, radot's pairing) scales with the events
    there: ``sideband_events(width)``, the dataset's events in the window's sidebands of that width
    (None: the ratio is not taken).
    The caller multiplies the row by ``scale``.
    """
    row_profile = next((p for p in (spec.preset.profile, *spec.preset.lineage) if (spec.name, p) in CPU_SECONDS),
                       "fast")
    row = CPU_SECONDS.get((spec.name, row_profile), UNKNOWN_SECONDS)
    row_spec = spec if row_profile == spec.preset.profile else MethodSpec.parse(spec.name, row_profile)
    epochs = 1.0 if row_spec is spec else _epoch_ratio(spec, row_profile)
    if sideband_events is not None and hasattr(settings := _settings(spec), "sideband_width"):
        width, row_width = settings.sideband_width, _profile_sideband_width(spec.name, row_profile)
        if width != row_width and sideband_events(row_width) > 0:
            epochs *= sideband_events(width) / sideband_events(row_width)
    shares = SIGNAL_FIT_SHARE.get(spec.name)
    if shares is None:
        return row, epochs
    share = shares.get(row_profile, shares["fast"])
    background = epochs * _background_flows(spec) / _background_flows(row_spec)
    return row, (1.0 - share) * background + share * _signal_fit_ratio(spec, row_spec, sr_events, scale)


def _settings(spec: MethodSpec) -> Any:
    """The spec's resolved settings (its profile's tables over the method's defaults)."""
    return make_model(spec, "cpu", 0, ClassifierConfig()).config


@functools.cache
def _profile_sideband_width(method: str, profile: str) -> float | None:
    """The ``sideband_width`` a method's profile sets (None: outside the SR, or no such profile); read
    once per pair."""
    try:
        return getattr(_settings(MethodSpec.parse(method, profile)), "sideband_width", None)
    except ConfigError:
        return None


def _background_flows(spec: MethodSpec) -> int:
    """Background flows a spec trains per window (R-ANODE's ``background_flows``; 1 for others)."""
    return int(getattr(_settings(spec), "background_flows", 1))


def _signal_fit_ratio(spec: MethodSpec, row_spec: MethodSpec, sr_events: int | None, scale: float) -> float:
    """The spec's signal-fit optimiser steps on ``sr_events`` SR data events over ``scale`` times the
    steps the table row's profile takes, without its ``min_steps``, on the reference SR
    (``REFERENCE_SR_EVENTS``, where the row was measured); steps are splits x planned epochs x steps
    per epoch of the resolved settings (a profile's table, else the settings' defaults). Per-step
    cost, not per-event, dominates for these small networks, so on a small SR, where ``min_steps``
    adds epochs, the ratio rises above the ratio of events. With ``sr_events`` None, the ratio of
    steps per SR event on a large SR."""
    if sr_events is None:
        return _signal_steps(spec, LARGE_SR_EVENTS) / _signal_steps(row_spec, LARGE_SR_EVENTS, nominal=True)
    reference = _signal_steps(row_spec, REFERENCE_SR_EVENTS, nominal=True)
    return _signal_steps(spec, sr_events) / (scale * reference) if reference and scale > 0 else 1.0


def _signal_steps(spec: MethodSpec, sr_events: int, nominal: bool = False) -> int:
    """Optimiser steps of a spec's signal fits on ``sr_events`` SR events (``nominal``: its epochs,
    whatever ``min_steps`` asks)."""
    settings = _settings(spec)
    train = settings.signal.train
    n_train, _ = split_sizes(sr_events, train)
    epochs = train.epochs if nominal else planned_epochs(n_train, train)
    return settings.signal_splits * epochs * steps_per_epoch(n_train, train)


def _epoch_ratio(spec: MethodSpec, row_profile: str) -> float:
    """Epochs of the spec's profile over those of the profile whose row it scales (1 without epochs)."""
    epochs = _epochs(spec.preset.params)
    row = _profile_epochs(spec.name, row_profile)
    return epochs / row if epochs is not None and row else 1.0


@functools.cache
def _profile_epochs(method: str, profile: str) -> float | None:
    """Epochs of a method's profile (None without a profile or epochs); read once per pair."""
    try:
        return _epochs(load_preset(method, profile).params)
    except ConfigError:
        return None


def _epochs(params: dict[str, Any]) -> float | None:
    value = params.get("train", {}).get("epochs") if isinstance(params.get("train"), dict) else None
    return float(value) if isinstance(value, int | float) else None


def _classifier_ratio(config: RunConfig, spec: MethodSpec) -> float:
    """Boosting iterations of the classifier used, over those of the default (fast) classifier."""
    used, fast = config.classifier_for(spec), ClassifierConfig()
    return (used.n_models * used.max_iter) / (fast.n_models * fast.max_iter)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|min|s|m|h|d)")


def parse_duration(text: str, option: str = "--max-time") -> float:
    """Seconds in ``text``: ``50m``, ``1h30m``, ``90s``, ``1.5h``, ``500ms``, a bare number of
    seconds, or a Slurm-style ``[[D-]HH:]MM:SS``. Raises ``ConfigError`` naming ``option``."""
    raw = text.strip().lower()
    seconds: float | None = None
    if re.fullmatch(r"\d+(\.\d*)?", raw):
        seconds = float(raw)
    elif re.fullmatch(r"(\d+-)?(\d+:){1,2}\d+", raw):
        days, _, clock = raw.rpartition("-")
        parts = [int(p) for p in clock.split(":")]
        seconds = sum(value * 60**power for power, value in enumerate(reversed(parts))) + 86400 * int(days or 0)
    elif raw and _PART.sub("", raw) == "":
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(raw))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{option} expects a positive duration like 50m, 1h30m, 90s or 01:30:00, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``95`` -> ``1m35s``; ``3725`` -> ``1h02m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
