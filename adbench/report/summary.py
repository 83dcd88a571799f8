"""The report's first table: who wins. Per dataset, methods as rows, (SR, N_sig) as columns, max SIC
with its uncertainty and as a fraction of idealized, the best method of each column in bold, and the
time of a K-window scan beside it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from adbench.report.stats import format_percent, format_seconds
from adbench.report.tables import (
    PerformanceRow,
    TimingRow,
    is_reference,
    method_order,
    performance_rows,
    same_settings,
    timing_rows,
)
from adbench.results import Record

#: Signal regions of the scan whose time the summary shows (a bump hunt slides 10-20 windows).
SCAN_WINDOWS = 10
METRIC = "max_sic"


@dataclass
class Leader:
    """The best method under test of one column.

    Attributes:
        close: the methods whose median is not resolved from the best's (``resolved``).
        unknown: the methods that cannot be compared: one side's median has no known error.
        compared: how many other methods were compared with the best.
    """

    column: str
    best: str
    value: str
    close: list[str]
    unknown: list[str] = field(default_factory=list)
    compared: int = 0

    def text(self) -> str:
        """The column's bullet: the best, then who is not resolved from it, or that it is clear."""
        out = f"{self.column}: **{self.best}** {self.value}"
        if self.close:
            out += f"; not resolved from it (medians within 1σ of their difference): {', '.join(self.close)}"
        if self.unknown:
            out += f"; no uncertainty to compare with (one seed or no stored errors): {', '.join(self.unknown)}"
        if self.compared and not self.close and not self.unknown:
            out += "; ahead of the others by more than 1σ of the difference of medians"
        elif not self.compared:
            out += "; the only method under test here"
        return out


@dataclass
class Summary:
    """The table of one dataset: ``header`` and ``body`` (Markdown cells, the best in **bold**),
    ``columns`` the (window, N_sig) of each value column, ``leaders`` each column's best method."""

    header: list[str]
    body: list[list[str]]
    columns: list[tuple[str, int]]
    leaders: list[Leader]
    paired: list[list[str]] = field(default_factory=list)


def _column(row: PerformanceRow) -> tuple[float, str, int]:
    return (row.window_low, row.window, row.n_sig)


def column_title(row: PerformanceRow) -> str:
    """``SR 3.30-3.70 · N_sig 1000 (S/B 0.63%)``."""
    sb = f" (S/B {format_percent(row.s_over_b)})" if math.isfinite(row.s_over_b) and row.n_sig else ""
    return f"SR {row.window} · N_sig {row.n_sig}{sb}"


def summary_table(records: list[Record], dataset: str) -> Summary:
    """The summary of one dataset (columns with injected signal only)."""
    rows = [row for row in performance_rows(records) if row.dataset == dataset and row.n_sig > 0]
    columns = sorted({_column(row) for row in rows})
    by_key = {(row.method, _column(row)): row for row in rows}
    methods = method_order([r for r in records if r.dataset == dataset and r.ok])
    timing = {row.method: row for row in timing_rows(records) if row.dataset == dataset}
    titles = {col: column_title(next(row for row in rows if _column(row) == col)) for col in columns}
    header = ["method", *titles.values(), f"time of a {SCAN_WINDOWS}-SR scan"]

    bold: dict[tuple[str, tuple], bool] = {}
    leaders = []
    for col in columns:
        candidates = [(m, by_key[(m, col)]) for m in methods
                      if (m, col) in by_key and not is_reference(m) and by_key[(m, col)][METRIC].n]
        if not candidates:
            continue
        best, best_row = max(candidates, key=lambda item: item[1][METRIC].median)
        bold[(best, col)] = True
        others = [(m, resolved(best_row, row)) for m, row in candidates if m != best]
        leaders.append(Leader(titles[col], best, best_row[METRIC].short(),
                              close=[m for m, verdict in others if verdict is False],
                              unknown=[m for m, verdict in others if verdict is None], compared=len(others)))

    body = []
    for method in methods:
        cells = [method]
        for col in columns:
            row = by_key.get((method, col))
            cells.append(_cell(row, by_key.get(("idealized", col)), bold.get((method, col), False)))
        cells.append(scan_time(timing.get(method)))
        body.append(cells)
    fractions = paired_fractions(records, dataset)
    paired = [[method, *(_paired_cell(fractions.get((method, col), [])) for col in columns)]
              for method in methods if not is_reference(method) and any((method, col) in fractions for col in columns)]
    return Summary(header, body, [(window, n_sig) for _, window, n_sig in columns], leaders, paired)


def paired_fractions(records: list[Record], dataset: str) -> dict[tuple[str, tuple], list[float]]:
    """Per (method, column): each seed's max SIC divided by idealized's at the same seed, window and
    N_sig (the same SR data and test set, so a seed whose signal is easy to find counts for both).
    Seeds where either value is undefined, idealized's is not positive, or the two ran with another
    dataset version, classifier or template size (``same_settings``) are left out."""
    ok = [r for r in records if r.ok and r.dataset == dataset and r.n_sig > 0]
    idealized = {(r.window, r.n_sig, r.seed): r for r in ok if r.method == "idealized"}
    out: dict[tuple[str, tuple], list[float]] = {}
    for r in sorted(ok, key=lambda r: r.seed):
        ideal = idealized.get((r.window, r.n_sig, r.seed))
        if r.method == "idealized" or ideal is None or not same_settings(r, ideal):
            continue
        reference, value = ideal.metric(METRIC), r.metric(METRIC)
        if not (math.isfinite(value) and math.isfinite(reference) and reference > 0):
            continue
        out.setdefault((r.method, (r.window_low, r.window, r.n_sig)), []).append(value / reference)
    return out


def _paired_cell(fractions: list[float]) -> str:
    """``80% (51%-110%, 5 seeds)``: the median, then the lowest and highest seed."""
    if not fractions:
        return "-"
    if len(fractions) == 1:
        return f"{fractions[0]:.0%} (1 seed)"
    return f"{np.median(fractions):.0%} ({min(fractions):.0%}-{max(fractions):.0%}, {len(fractions)} seeds)"


def resolved(best: PerformanceRow, other: PerformanceRow) -> bool | None:
    """Whether ``best``'s median max SIC lies above ``other``'s by more than the error of the
    difference (the medians' errors in quadrature, as if independent: conservative, since the
    methods share the data and test sets); None when either median has no known error."""
    a, b = best[METRIC].median_error, other[METRIC].median_error
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    return best[METRIC].median - other[METRIC].median > math.hypot(a, b)


def _cell(row: PerformanceRow | None, idealized: PerformanceRow | None, bold: bool) -> str:
    if row is None or not row[METRIC].n:
        return "-"
    text = row[METRIC].short()
    if bold:
        text = f"**{text}**"
    if row.small_template:
        text += " ‡"
    if idealized is not None and idealized is not row and idealized[METRIC].n and idealized[METRIC].median > 0:
        text += f" ({row[METRIC].median / idealized[METRIC].median:.0%})"
    return text


def scan_time(row: TimingRow | None, n_windows: int = SCAN_WINDOWS) -> str:
    """``total (once + K x per SR)`` from the measured medians."""
    if row is None or not math.isfinite(row.per_sr_s):
        return "-"
    total = format_seconds(row.scan_seconds(n_windows))
    if row.per_window:
        return f"{total} ({n_windows} × {format_seconds(row.per_sr_s)})"
    return f"{total} ({format_seconds(row.shared_fit_s)} + {n_windows} × {format_seconds(row.per_sr_s)})"
