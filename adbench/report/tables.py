"""Aggregation of stored records into the report's rows (pure functions, no plotting, no text).

Every row is one (dataset, signal region, method, N_sig) over seeds, or one (dataset, method) for
timings: nothing is ever pooled over datasets or over signal regions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from adbench.report.stats import Estimate
from adbench.results import Record

#: Metrics of a performance row (fields of ``Record`` with an entry in ``Record.stat_errors``).
METRICS = ("max_sic", "sic_1e3", "sic_1e4", "auc", "fidelity_auc", "template_data_auc")
#: The references: true background as the template, and truth-labelled training.
REFERENCE_METHODS = ("idealized", "supervised")


def group(records: list[Record], keys: tuple[str, ...]) -> dict[tuple, list[Record]]:
    """Records by the values of ``keys`` (insertion order)."""
    out: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        out[tuple(getattr(record, k) for k in keys)].append(record)
    return dict(out)


def infer_variants(records: list[Record]) -> list[Record]:
    """Schema-1 records predate variant names: give each the variant its (method, profile) has in the
    method's preset today, marked ``variant_inferred`` in ``method_info`` (later records name theirs)."""
    from adbench.errors import ConfigError
    from adbench.methods.presets import load_preset

    cache: dict[tuple[str, str], str] = {}
    out = []
    for record in records:
        if record.schema >= 2 or record.variant:
            out.append(record)
            continue
        key = (record.method, record.profile)
        if key not in cache:
            try:
                cache[key] = load_preset(*key).variant
            except ConfigError:
                cache[key] = ""
        variant = cache[key]
        out.append(replace(record, variant=variant, method_info={**record.method_info, "variant_inferred": True})
                   if variant else record)
    return out


def label_profiles(records: list[Record]) -> list[Record]:
    """Copies of the records in which a profile that changes the method itself is named by its variant
    (``radot-projection``) and a method run under several profiles is named ``method:profile``, so
    that every variant and profile gets its own rows and curves."""
    named = [replace(r, method=r.variant) if r.variant else r for r in records]
    profiles: dict[str, set] = defaultdict(set)
    for record in named:
        profiles[record.method].add(record.profile)
    return [
        replace(r, method=f"{r.method}:{r.profile}") if len(profiles[r.method]) > 1 else r
        for r in named
    ]


def registered_names(raw: list[Record], labelled: list[Record]) -> dict[str, str]:
    """Each method label of ``labelled`` (``label_profiles(raw)``) to its registered method name
    (``sigma-context+near`` -> ``sigma-context``)."""
    return {label.method: record.method for record, label in zip(raw, labelled, strict=True)}


def one_configuration(records: list[Record]) -> tuple[list[Record], dict[str, int]]:
    """Per (dataset, window, method label, N_sig), only the records of its newest configuration.

    A directory rerun under another configuration of the same method and profile (another template
    size, classifier or thinning, a new dataset version) holds records of both, one per seed each;
    pooling them would count seeds twice and mix settings. The newest configuration is the one with
    the latest finished record (by its timestamp, ties to the later one in the list); only where
    no record finished, the one with the latest failure.

    Returns:
        the records kept (input order) and, per method label, how many were set aside.
    """
    keys = ("dataset", "window", "method", "n_sig")
    newest: dict[tuple, tuple[tuple[bool, float, int], str]] = {}
    for index, record in enumerate(records):
        point = tuple(getattr(record, k) for k in keys)
        when = (record.ok, _seconds(record.timestamp), index)
        if point not in newest or when > newest[point][0]:
            newest[point] = (when, record.config_hash)
    kept, aside = [], defaultdict(int)
    for record in records:
        if record.config_hash == newest[tuple(getattr(record, k) for k in keys)][1]:
            kept.append(record)
        else:
            aside[record.method] += 1
    return kept, dict(aside)


def same_settings(a: Record, b: Record) -> bool:
    """Whether two records of one dataset, window, N_sig and seed may be compared value for value:
    the same dataset version, downstream classifier and requested template size."""
    return (a.dataset_version == b.dataset_version and a.classifier == b.classifier
            and (a.template_size == b.template_size
                 or (math.isnan(a.template_size) and math.isnan(b.template_size))))


def _seconds(timestamp: str) -> float:
    """A record's timestamp (``%Y-%m-%dT%H:%M:%S%z``, local time with its offset) as seconds since the
    epoch; -inf when absent or unreadable."""
    try:
        return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return -math.inf


def base_method(label: str) -> str:
    """The registered name of a method label (``cathode:paper`` -> ``cathode``)."""
    return label.partition(":")[0]


def is_reference(label: str) -> bool:
    """Whether a method label is one of the references (idealized, supervised)."""
    return base_method(label) in REFERENCE_METHODS


def method_order(records: list[Record]) -> list[str]:
    """Methods in the order they first appear, the references last."""
    seen: dict[str, None] = {}
    for record in records:
        seen.setdefault(record.method, None)
    return sorted(seen, key=lambda m: (is_reference(m), list(seen).index(m)))


def facets(records: list[Record]) -> list[tuple[str, str]]:
    """The (dataset, window) pairs of the records, sorted by dataset and window position."""
    low = {r.window: r.window_low for r in records}
    return sorted({(r.dataset, r.window) for r in records}, key=lambda k: (k[0], low[k[1]], k[1]))


def _median(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


@dataclass
class PerformanceRow:
    """One (dataset, window, method, N_sig) over seeds.

    Attributes:
        estimates: metric name -> Estimate over the seeds (value and statistical error).
        n_sig_sr, n_background_sr, s_over_b, s_over_sqrt_b: the SR data's injected signal and
            background (medians over seeds).
        sic_1e3_reliable: at least ``min_bkg`` test background events pass at FPR 1e-3.
        min_test_background: the fewest test background events of any seed.
        template_ratio: template events per SR data event (NaN without a template).
        distinct_ratio: distinct source events behind the template per SR data event (NaN when not
            recorded, i.e. schema 1).
        has_stat_errors: every seed stored the bootstrap's statistical errors.
    """

    dataset: str
    window: str
    window_low: float
    method: str
    n_sig: int
    seeds: int
    failed: int
    estimates: dict[str, Estimate]
    n_sig_sr: float
    n_background_sr: float
    s_over_b: float
    s_over_sqrt_b: float
    sic_1e3_reliable: bool
    min_test_background: int
    min_bkg: int
    template_ratio: float
    distinct_ratio: float
    has_stat_errors: bool
    devices: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    classifier: str = ""

    @property
    def small_template(self) -> bool:
        """Fewer template events than SR data events (False without a template)."""
        return self.template_ratio < 1.0

    def __getitem__(self, metric: str) -> Estimate:
        return self.estimates[metric]


def performance_rows(records: list[Record]) -> list[PerformanceRow]:
    """One row per (dataset, window, method, N_sig) with estimates over seeds, sorted by dataset,
    window, N_sig and method order (references last)."""
    ok = [r for r in records if r.ok]
    failed = group([r for r in records if not r.ok], ("dataset", "window", "method", "n_sig"))
    order = {m: i for i, m in enumerate(method_order(records))}
    rows = []
    for (dataset, window, method, n_sig), rs in group(ok, ("dataset", "window", "method", "n_sig")).items():
        estimates = {
            metric: Estimate.of([r.metric(metric) for r in rs], [r.stat_errors.get(metric) for r in rs])
            for metric in METRICS
        }
        min_bkg = min(r.min_bkg for r in rs)
        n_test_bkg = min(r.n_test_background for r in rs)
        ratios = [r.n_template / r.n_sr_data for r in rs if r.n_template > 0 and r.n_sr_data > 0]
        distinct = [r.n_template_sources / r.n_sr_data for r in rs if r.n_template_sources > 0 and r.n_sr_data > 0]
        rows.append(PerformanceRow(
            dataset=dataset, window=window, window_low=rs[0].window_low, method=method, n_sig=n_sig,
            seeds=len(rs), failed=len(failed.get((dataset, window, method, n_sig), [])), estimates=estimates,
            n_sig_sr=_median([r.n_sig_sr for r in rs]), n_background_sr=_median([r.n_background_sr for r in rs]),
            s_over_b=_median([r.s_over_b for r in rs]), s_over_sqrt_b=_median([r.s_over_sqrt_b for r in rs]),
            # At FPR 1e-3 only n_test_background / 1000 background events pass: below min_bkg the SIC
            # there rests on a handful of events (and can exceed the max SIC, which requires min_bkg).
            sic_1e3_reliable=n_test_bkg * 1e-3 >= min_bkg, min_test_background=n_test_bkg, min_bkg=min_bkg,
            template_ratio=_median(ratios), distinct_ratio=_median(distinct),
            has_stat_errors=all(has_bootstrap_errors(r) for r in rs), devices=sorted({r.device for r in rs}),
            features=list(rs[0].features), classifier=classifier_text(rs[0]),
        ))
    rows.sort(key=lambda row: (row.dataset, row.window_low, row.window, row.n_sig, order[row.method]))
    return rows


def has_bootstrap_errors(record: Record) -> bool:
    """Whether the record stores the test-set bootstrap's errors of its sensitivity (a template's
    fidelity AUCs carry their null's error without it)."""
    return "max_sic" in record.stat_errors


def classifier_text(record: Record) -> str:
    """The downstream classifier of a record in words (``BDT: 5 x HistGradientBoosting``); a method
    that scores events itself (ANODE) is named so."""
    n_models = (record.classifier or {}).get("n_models")
    if record.n_template == 0 and not is_reference(record.method):
        return "own score"
    return f"BDT: {n_models} x HistGradientBoosting" if n_models else "BDT (HistGradientBoosting)"


@dataclass
class TimingRow:
    """One (dataset, method): medians over its tasks, in seconds.

    Attributes:
        shared_fit_s: the training on all data, once (NaN for a method trained per window).
        shared_with: the methods that use the same single training (SIGMA's variants and v_data), this
            one included; empty for a per-window method.
        per_sr_s: per-window fit + template sampling.
    """

    dataset: str
    method: str
    family: str
    per_window: bool
    shared_fit_s: float
    shared_with: list[str]
    per_sr_s: float
    fit_window_s: float
    sample_s: float
    classify_s: float
    devices: list[str]
    tasks: int
    windows: int

    @property
    def on_gpu(self) -> bool:
        return bool(self.devices) and not any(d.startswith("CPU") for d in self.devices)

    def scan_seconds(self, n_windows: int) -> float:
        """Training once plus ``n_windows`` times the per-SR work (the shared classifier left out)."""
        once = 0.0 if self.per_window or not math.isfinite(self.shared_fit_s) else self.shared_fit_s
        return once + n_windows * self.per_sr_s


def timing_rows(records: list[Record]) -> list[TimingRow]:
    """One row per (dataset, method) of the finished records, datasets sorted, methods in order."""
    ok = [r for r in records if r.ok]
    rows = []
    for dataset in sorted({r.dataset for r in ok}):
        in_dataset = [r for r in ok if r.dataset == dataset]
        sources = _shared_sources(in_dataset)
        for method in method_order(in_dataset):
            rs = [r for r in in_dataset if r.method == method]
            per_window = bool(rs[0].per_window)
            source = sources.get(method, method)
            rows.append(TimingRow(
                dataset=dataset, method=method, family=rs[0].family, per_window=per_window,
                # time_fit_shared_s of a method that reused a training is that training's time
                shared_fit_s=math.nan if per_window else _median([r.time_fit_shared_s for r in rs]),
                shared_with=[] if per_window else sorted(m for m, s in sources.items() if s == source),
                per_sr_s=_median([r.time_fit_window_s + r.time_sample_s for r in rs]),
                fit_window_s=_median([r.time_fit_window_s for r in rs]),
                sample_s=_median([r.time_sample_s for r in rs]),
                classify_s=_median([r.time_classify_s for r in rs]),
                devices=sorted({r.device for r in rs}), tasks=len(rs), windows=len({r.window for r in rs}),
            ))
    return rows


def _shared_sources(records: list[Record]) -> dict[str, str]:
    """Method trained once -> the method whose training it used (itself when it trained)."""
    out: dict[str, str] = {}
    for record in records:
        if not record.per_window:
            source = record.shared_fit_from or record.method
            if out.get(record.method, source) != source:
                source = record.method  # reused in some tasks, trained in others: its own training
            out[record.method] = source
    return out


def measured_scan(records: list[Record]) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """Measured total time of the longest scan per (dataset, method): the training once, then after
    k windows (in mass order) the first k windows' fit + template times. The (N_sig, seed) with the
    most windows is taken. Returns (dataset, method) -> [(k, seconds), ...] from k = 0."""
    ok = [r for r in records if r.ok]
    out = {}
    for (dataset, method), rs in group(ok, ("dataset", "method")).items():
        runs = group(rs, ("n_sig", "seed"))
        best = sorted(max(runs.values(), key=len), key=lambda r: r.window_low)
        total = 0.0 if best[0].per_window else best[0].time_fit_shared_s
        points = [(0, total)]
        for k, r in enumerate(best, 1):
            total += r.time_fit_window_s + r.time_sample_s
            points.append((k, total))
        out[(dataset, method)] = points
    return out


def crossover(once: TimingRow, per_window: TimingRow) -> float | None:
    """Number of windows above which the method trained ``once`` costs less than the ``per_window``
    one in total (None when it never does, or always does)."""
    extra_once = once.scan_seconds(0) - per_window.scan_seconds(0)
    saved_per_sr = per_window.per_sr_s - once.per_sr_s
    if not (saved_per_sr > 0 and extra_once > 0):
        return None
    return extra_once / saved_per_sr
