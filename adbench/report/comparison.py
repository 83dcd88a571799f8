"""Published numbers beside adbench's, like for like only: the same kind of data (``COMPARABLE_DATASETS``),
the same N_sig, the same classifier family and number of features, the published method itself (not
an adbench variant); timings only when adbench ran on a GPU, as the papers did."""

from __future__ import annotations

from dataclasses import dataclass

from adbench.report.published import COMPARABLE_DATASETS, PUBLISHED_PERFORMANCE, PUBLISHED_TIMING, published_value
from adbench.report.stats import format_percent, format_seconds
from adbench.report.tables import base_method, performance_rows, timing_rows
from adbench.results import Record

METRIC_NAMES = {"max_sic": "max SIC", "sic_1e3": "SIC @ FPR 1e-3"}
PERFORMANCE_HEADER = ["dataset", "method", "metric", "N_sig", "adbench", "adbench S/B", "published", "paper S/B",
                      "classifier (adbench / paper)", "features", "data", "source"]
TIMING_HEADER = ["dataset", "method", "adbench", "adbench hardware", "published", "paper hardware", "source"]


@dataclass
class Comparison:
    """The comparison tables and what was left out, and why (one text per reason)."""

    performance: list[list[str]]
    timing: list[list[str]]
    left_out: list[str]


def compare(records: list[Record]) -> Comparison:
    performance, left_out = [], set()
    rows = performance_rows(records)
    datasets = sorted({r.dataset for r in records})
    for dataset in datasets:
        if dataset not in COMPARABLE_DATASETS:
            left_out.add(f"`{dataset}` is not the LHCO R&D data the published numbers were measured on")
    for row in rows:
        if row.dataset not in COMPARABLE_DATASETS:
            continue
        for metric, name in METRIC_NAMES.items():
            published = published_value(base_method(row.method), metric, row.n_sig)
            if published is None:
                continue
            adbench_classifier = "BDT" if row.classifier.startswith("BDT") else row.classifier
            if adbench_classifier != published.classifier or len(row.features) != published.n_features:
                left_out.add(
                    f"{row.method} {name} at N_sig {row.n_sig}: the paper used an {published.classifier} on "
                    f"{published.n_features} features, this run a {adbench_classifier} on {len(row.features)}"
                )
                continue
            value = row[metric].short()
            if metric == "sic_1e3" and not row.sic_1e3_reliable:
                value += " †"
            if row.small_template:
                value += " ‡"
            performance.append([
                row.dataset, row.method, name, str(row.n_sig), value, format_percent(row.s_over_b),
                f"{published.value:.1f}" + (" (approx.)" if published.approximate else ""),
                f"≈{format_percent(published.s_over_b)}", f"{adbench_classifier} / {published.classifier}",
                str(published.n_features), COMPARABLE_DATASETS[row.dataset] + f" (SR {row.window})", published.source,
            ])
    timing = []
    for row in timing_rows(records):
        published = PUBLISHED_TIMING.get(base_method(row.method))
        if published is None or row.dataset not in COMPARABLE_DATASETS:
            continue
        if not row.on_gpu:
            left_out.add("timings measured on a CPU: the published times were measured on GPUs")
            continue
        ours = (f"{format_seconds(row.per_sr_s)} per SR" if row.per_window else
                f"{format_seconds(row.shared_fit_s)} (training) + {format_seconds(row.per_sr_s)} per SR")
        timing.append([row.dataset, row.method, ours, "; ".join(row.devices), published.text, published.hardware,
                       published.source])
    return Comparison(performance, timing, sorted(left_out))


def sources() -> list[str]:
    """Every source a published value comes from."""
    return sorted({p.source for p in PUBLISHED_PERFORMANCE} | {t.source for t in PUBLISHED_TIMING.values()})
