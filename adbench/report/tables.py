"""Aggregation of stored records into the report's tables (pure functions, no plotting)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from adbench.report.published import PUBLISHED_PERFORMANCE, PUBLISHED_TIMING
from adbench.results import Record

#: Datasets with about as many background events as LHCO (1M): only there does an N_sig mean the
#: same signal-to-background ratio as in the papers, so only their rows show published values.
LHCO_SCALE_DATASETS = ("lhco", "lhcolike", "synthetic")
METRICS = ("max_sic", "sic_1e3", "auc", "fidelity_auc", "template_data_auc")


@dataclass(frozen=True)
class Band:
    """Median and 16/84% quantiles over seeds; ``n`` values (NaNs dropped)."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Band:
        v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
        if len(v) == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(float(np.median(v)), float(np.quantile(v, 0.16)), float(np.quantile(v, 0.84)), len(v))

    def text(self, digits: int = 2) -> str:
        if self.n == 0:
            return "-"
        if self.n == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def group(records: list[Record], keys: tuple[str, ...]) -> dict[tuple, list[Record]]:
    out: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        out[tuple(getattr(record, k) for k in keys)].append(record)
    return dict(out)


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


def base_method(label: str) -> str:
    """The registered name of a method label (``cathode:paper`` -> ``cathode``)."""
    return label.partition(":")[0]


def method_order(records: list[Record]) -> list[str]:
    """Methods in the order they first appear."""
    seen: dict[str, None] = {}
    for record in records:
        seen.setdefault(record.method, None)
    return list(seen)


def template_ratio(record: dict[str, Any]) -> float | None:
    """Template events per SR data event, or None for a method without a template."""
    n_template, n_sr = record.n_template or 0, record.n_sr_data or 0
    return n_template / n_sr if n_template > 0 and n_sr > 0 else None


def performance_rows(records: list[Record]) -> list[Record]:
    """One row per (dataset, window, method, n_sig) with metric bands over seeds and published values."""
    ok = [r for r in records if r.status == "ok"]
    failed = group([r for r in records if r.status != "ok"], ("dataset", "window", "method", "n_sig"))
    rows = []
    order = {m: i for i, m in enumerate(method_order(records))}
    for (dataset, window, method, n_sig), rs in sorted(
        group(ok, ("dataset", "window", "method", "n_sig")).items(),
        key=lambda item: (item[0][0], item[0][1], item[0][3], order[item[0][2]]),
    ):
        row: dict[str, Any] = {"dataset": dataset, "window": window, "method": method, "n_sig": n_sig,
                               "seeds": len(rs), "failed": len(failed.get((dataset, window, method, n_sig), []))}
        for metric in METRICS:
            row[metric] = Band.of([r.metric(metric) for r in rs])
        row["n_sig_sr"] = Band.of([r.n_sig_sr for r in rs])
        # At FPR 1e-3 only n_test_background / 1000 background events pass: below min_bkg the
        # SIC there rests on a handful of events (and can exceed the max SIC, which requires min_bkg).
        n_bkg = min(r.n_test_background for r in rs)
        row["sic_at_1e-3_reliable"] = n_bkg * 1e-3 >= min(r.min_bkg for r in rs)
        row["template_ratio"] = Band.of([template_ratio(r) for r in rs])
        for metric in ("max_sic", "sic_1e3"):
            comparable = dataset in LHCO_SCALE_DATASETS
            published = PUBLISHED_PERFORMANCE.get((base_method(method), metric, n_sig)) if comparable else None
            row[f"published_{metric}"] = published[0] if published else None
        rows.append(row)
    return rows


def timing_rows(records: list[Record]) -> list[Record]:
    """One row per method: training once (shared fit) and the time per SR, medians over tasks."""
    ok = [r for r in records if r.status == "ok"]
    rows = []
    for method in method_order(ok):
        rs = [r for r in ok if r.method == method]
        per_window = bool(rs[0].per_window)
        own_shared = [r.time_fit_shared_s for r in rs if not per_window and not r.shared_fit_from]
        reused_from = sorted({r.shared_fit_from for r in rs if r.shared_fit_from})
        published = PUBLISHED_TIMING.get(base_method(method))
        rows.append({
            "method": method,
            "family": rs[0].family or (published[0] if published else ""),
            "per_window": per_window,
            "shared_fit_s": None if per_window else Band.of(own_shared or [r.time_fit_shared_s for r in rs]),
            "shared_fit_reused_from": reused_from,
            "per_sr_s": Band.of([r.time_fit_window_s + r.time_sample_s for r in rs]),
            "fit_window_s": Band.of([r.time_fit_window_s for r in rs]),
            "sample_s": Band.of([r.time_sample_s for r in rs]),
            "classify_s": Band.of([r.time_classify_s for r in rs]),
            "published": published[1] if published else None,
            "devices": sorted({r.device for r in rs}),
            "tasks": len(rs),
        })
    return rows


def amortisation(records: list[Record]) -> dict[str, list[tuple[int, float]]]:
    """Measured total time of a scan versus the number of SRs, per method.

    For each method, the (n_sig, seed) with the most windows is taken; its cumulative time after k
    windows (in mass order) is the shared fit (once) plus the first k windows' fit + sample +
    classify times. Returns method -> [(k, seconds), ...] starting at k = 0.
    """
    ok = [r for r in records if r.status == "ok"]
    out = {}
    for method in method_order(ok):
        runs = group([r for r in ok if r.method == method], ("dataset", "n_sig", "seed"))
        best = max(runs.values(), key=len)
        best = sorted(best, key=lambda r: r.window_low)
        total = best[0].time_fit_shared_s
        points = [(0, total)]
        for k, r in enumerate(best, 1):
            total += r.time_fit_window_s + r.time_sample_s + r.time_classify_s
            points.append((k, total))
        out[method] = points
    return out


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
