"""Assemble the report document from records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adbench.report import figures
from adbench.report.document import Document
from adbench.report.tables import (
    amortisation,
    format_seconds,
    label_profiles,
    method_order,
    performance_rows,
    timing_rows,
)
from adbench.results import Record

HOW_TO_READ = (
    "How to read: every number is the median over seeds with the 16% and 84% quantiles in brackets. "
    "SIC = TPR / sqrt(FPR) on the labelled SR test set (held-out signal and background never used for "
    "training); max SIC is taken where at least `min_bkg` test background events pass (default 25, "
    "at most 20% relative uncertainty). AUC is signal versus background on the test set. Fidelity AUC "
    "is a classifier's AUC separating the template from true SR background (0.5: indistinguishable); "
    "template-data AUC separates the template from the SR data (it rises with the signal a good "
    "template does not contain). Template / SR is the number of template events per SR data event "
    "(the run's template size, `--template-size`, 4 by default). Published values are from the papers, made on the "
    "real LHCO data with their own classifiers; they are shown only for datasets of LHCO size (lhco, lhcolike, "
    "synthetic), where an N_sig means the same signal fraction: compare trends, not decimals."
)


def _choose_nsig(records: list[Record]) -> int:
    n_sigs = sorted({r.n_sig for r in records})
    return min(n_sigs, key=lambda n: (abs(n - 1000), -n))


def _time_text(row: dict[str, Any]) -> str:
    per_sr = format_seconds(row["per_sr_s"].median)
    if row["per_window"]:
        return f"{per_sr} per SR"
    shared = format_seconds(row["shared_fit_s"].median) if row["shared_fit_s"] else "-"
    reused = f" (shared with {', '.join(row['shared_fit_reused_from'])})" if row["shared_fit_reused_from"] else ""
    return f"{shared} (training once){reused} + {per_sr} per SR"


def build_report(records: list[Record], directory: Path | None = None) -> Document:
    records = label_profiles(records)
    ok = [r for r in records if r.status == "ok"]
    failed = [r for r in records if r.status != "ok"]
    datasets = sorted({r.dataset for r in records})
    doc = Document(f"adbench report: {', '.join(datasets)}")
    windows = sorted({r.window for r in records})
    n_sigs = sorted({r.n_sig for r in records})
    seeds = sorted({r.seed for r in records})
    devices = sorted({r.device for r in records})
    profiles = sorted({r.profile for r in records})
    doc.paragraph(
        f"{len(ok)} finished and {len(failed)} failed tasks: methods {', '.join(method_order(records))}; "
        f"signal regions {', '.join(windows)} TeV; N_sig {', '.join(map(str, n_sigs))}; seeds "
        f"{', '.join(map(str, seeds))}; profile {', '.join(profiles)}; hardware: {'; '.join(devices)}."
    )
    if devices and all(str(d).startswith("CPU") for d in devices):
        doc.paragraph(
            "Made on CPU only (no GPU was used): the timings are CPU timings, not comparable with the "
            "published GPU figures beside them; the profile decides how close the models are to the papers'."
        )
    doc.paragraph(HOW_TO_READ)

    doc.heading("Performance")
    header = ["dataset", "SR", "method", "N_sig (in SR)", "seeds", "max SIC", "published", "SIC @ FPR 1e-3",
              "published", "AUC", "fidelity AUC", "template-data AUC", "template / SR"]
    rows = []
    performance = performance_rows(records)
    small = [row["template_ratio"].n > 0 and row["template_ratio"].median < 1.0 for row in performance]
    def pub(row: dict[str, Any], key: str) -> str:
        return "-" if row[key] is None else f"{row[key]:.1f}"

    for row, template_small in zip(performance, small, strict=True):
        rows.append([
            row["dataset"], row["window"], row["method"], f"{row['n_sig']} ({row['n_sig_sr'].median:.0f})",
            f"{row['seeds']}" + (f" ({row['failed']} failed)" if row["failed"] else ""),
            row["max_sic"].text() + (" ‡" if template_small else ""), pub(row, "published_max_sic"),
            row["sic_1e3"].text() + ("" if row["sic_at_1e-3_reliable"] else " †"), pub(row, "published_sic_1e3"),
            row["auc"].text(3), row["fidelity_auc"].text(3), row["template_data_auc"].text(3),
            row["template_ratio"].text(1),
        ])
    doc.table(header, rows)
    if any(not row["sic_at_1e-3_reliable"] for row in performance):
        doc.paragraph(
            "† fewer than `min_bkg` (25) test background events pass at FPR 1e-3 (the test set is too "
            "small): this SIC rests on a handful of events and can exceed the max SIC, which is only "
            "taken where at least `min_bkg` events pass. Compare max SIC instead."
        )
    if any(small):
        doc.paragraph(
            "‡ the template has fewer events than the SR data (template / SR below 1): the classifier is "
            "then limited by the template's statistics and finds less signal than a larger template of the "
            "same quality would. The idealized template is the held-out true background, whose size the "
            "dataset fixes: where it is marked, idealized is no upper bound on the other methods."
        )

    doc.heading("Timing")
    doc.paragraph(
        "Wall-clock time in the seeds' form: training once (methods trained on all data, reused for every "
        "window) plus the time per signal region (per-window training + template sampling). The shared "
        "classifier's time is listed apart: it is the same for every method. Device work is synchronised "
        "before each clock reading."
    )
    t_rows = []
    for row in timing_rows(records):
        t_rows.append([
            row["method"], row["family"], _time_text(row), format_seconds(row["fit_window_s"].median),
            format_seconds(row["sample_s"].median), format_seconds(row["classify_s"].median),
            row["published"] or "-", "; ".join(row["devices"]),
        ])
    doc.table(["method", "generative model", "adbench (median)", "fit per SR", "template per SR",
               "classifier per SR", "published", "hardware"], t_rows)

    if ok:
        n_sig = _choose_nsig(ok)
        doc.heading("Figures")
        doc.figure("sic_curves", figures.sic_curves(ok, n_sig),
                   f"SIC curves at N_sig = {n_sig} (median over seeds, 16-84% band)")
        if len({r.n_sig for r in ok}) > 1:
            doc.figure("max_sic_vs_nsig", figures.max_sic_vs_nsig(ok), "Max SIC versus injected signal")
            doc.figure("sic_1e-3_vs_nsig", figures.max_sic_vs_nsig(ok, "sic_1e3"),
                       "SIC at FPR 1e-3 versus injected signal")
        doc.figure("timing", figures.timing_bars(ok), "Training once and time per SR (log scale)")
        if any(np.isfinite(r.fidelity_auc) for r in ok):
            doc.figure("fidelity", figures.fidelity(ok), "Template fidelity AUC per method (0.5 = perfect template)")
        doc.heading("Samples: data versus template in the SR")
        for method in method_order(ok):
            if any(r.method == method and r.histograms and r.n_sig == n_sig for r in ok):
                doc.figure(f"samples_{method}", figures.feature_histograms(ok, method, n_sig),
                           f"{method}: SR data, template and true background (normalised)")
        doc.heading("Amortisation: total time of a scan")
        scan_lengths = {m: len(p) - 1 for m, p in amortisation(ok).items()}
        if max(scan_lengths.values()) > 1:
            doc.figure("amortisation", figures.amortisation_plot(ok),
                       "Measured cumulative time (shared training + per-SR fit, template and classifier) over a scan")
        else:
            doc.paragraph("One signal region only: run with `--scan START,STOP,WIDTH` to measure how the cost "
                          "grows with the number of signal regions.")

    if failed:
        doc.heading("Failures")
        doc.table(["method", "SR", "N_sig", "seed", "reason"],
                  [[r.method, r.window, str(r.n_sig), str(r.seed), str(r.error)] for r in failed])

    doc.heading("Environment")
    versions = {}
    for r in records:
        versions.update(r.versions or {})
    doc.table(["what", "value"], [
        ["hardware", "; ".join(devices)],
        ["versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))],
        ["git revision", ", ".join(sorted({str(r.git_revision) for r in records}))],
        ["results", str(directory / "results.jsonl") if directory else "-"],
    ] + [["command", c] for c in sorted({r.command or "-" for r in records})])
    return doc
