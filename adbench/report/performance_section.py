"""The report's per-SR performance tables: one row per method and N_sig with the sensitivities, the
template's fidelity and size, the injected S/B, and the footnotes that mark unreliable cells."""

from __future__ import annotations

import math
from collections.abc import Sequence

from adbench.report.document import Document
from adbench.report.stats import format_percent
from adbench.report.tables import PerformanceRow, facets, performance_rows
from adbench.results import Record


def performance_section(doc: Document, records: list[Record], ok: list[Record]) -> None:
    """"Performance per signal region": a table per dataset and SR of ``ok``'s facets, rows from
    ``records`` (failed seeds counted), then the footnotes its cells use."""
    rows = performance_rows(records)
    doc.heading("Performance per signal region")
    for dataset, window in facets(ok):
        facet = [row for row in rows if (row.dataset, row.window) == (dataset, window)]
        doc.heading(f"{dataset}: SR {window} TeV", level=3)
        doc.table(PERFORMANCE_COLUMNS, [_performance_cells(row) for row in facet])
    _footnotes(doc, rows)


PERFORMANCE_COLUMNS = ["method", "N_sig", "S in SR", "S/B", "S/√B", "seeds", "max SIC", "SIC @ FPR 1e-3", "AUC",
                       "fidelity AUC", "template-data AUC", "template / SR"]


def _performance_cells(row: PerformanceRow) -> list[str]:
    small = row.small_template
    ratio = "-" if not math.isfinite(row.template_ratio) else f"{row.template_ratio:.1f}"
    if math.isfinite(row.distinct_ratio) and row.distinct_ratio < 0.99 * row.template_ratio:
        ratio += f" ({row.distinct_ratio:.1f})"
    return [
        row.method, str(row.n_sig), f"{row.n_sig_sr:.0f}", format_percent(row.s_over_b),
        f"{row.s_over_sqrt_b:.2f}" if math.isfinite(row.s_over_sqrt_b) else "-",
        _seeds_cell(row),
        row["max_sic"].text() + (" ‡" if small else ""),
        row["sic_1e3"].text() + ("" if row.sic_1e3_reliable else " †"),
        row["auc"].text(3), row["fidelity_auc"].text(3), row["template_data_auc"].text(3),
        ratio + (" ‡" if small else ""),
    ]


def _seeds_cell(row: PerformanceRow) -> str:
    """``5``, ``5 (1 failed)``, ``5 (max SIC defined in 4)`` or both in one bracket."""
    notes = ([f"{row.failed} failed"] if row.failed else []) + (
        [f"max SIC defined in {row['max_sic'].n}"] if row["max_sic"].n < row.seeds else [])
    return f"{row.seeds}" + (f" ({'; '.join(notes)})" if notes else "")


def _footnotes(doc: Document, rows: list[PerformanceRow]) -> None:
    if any(not row.sic_1e3_reliable for row in rows):
        doc.paragraph(
            f"† fewer than `min_bkg` ({min_bkg_text(rows)}) test background events pass at FPR 1e-3 (the test set "
            "is too small): "
            "this SIC rests on a handful of events and can exceed the max SIC, which is only taken where at "
            "least `min_bkg` events pass. Compare max SIC instead."
        )
    if any(row.small_template for row in rows):
        doc.paragraph(
            "‡ the template has fewer events than the SR data (template / SR below 1): the classifier is then "
            "limited by the template's statistics and finds less signal than a larger template of the same "
            "quality would. Where idealized is marked, its held-out background is small and it is no upper bound."
        )


def min_bkg_text(items: Sequence[PerformanceRow | Record]) -> str:
    """The ``min_bkg`` of rows or records (``25``, or ``10-25`` where runs differ)."""
    values = sorted({item.min_bkg for item in items})
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"
