"""The signal fraction a method fits in the SR (R-ANODE's w) against the fraction injected: a method
that reports ``fitted_w`` (and a held-out estimate ``heldout_w`` with its error and its log-likelihood
ratio ``heldout_llr``) in its record's ``method_info`` gets a row per dataset, SR and N_sig."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adbench.report.stats import Estimate, format_percent
from adbench.results import Record

WITHIN_FACTOR = 2.0  # R-ANODE's goal (issue 17): w within a factor 2 of the injected fraction, per seed


@dataclass(frozen=True)
class SignalFractionRow:
    """One (dataset, window, method, N_sig) over its seeds; fractions of the SR data, per seed.

    Attributes:
        true: injected SR signal / SR data events.
        fitted: the fitted w (the mean of the kept checkpoints' w).
        heldout: the maximum-likelihood w on the held-out SR events, with ``heldout_error`` its Fisher errors.
        heldout_llr: log L(heldout w) - log L(w = 0) on those events (NaN for records without it).
        splits_used: the signal fits (R-ANODE's signal splits) that the estimates and the score rest on.
        splits_fitted: the signal fits made (1 for a method without splits).
    """

    dataset: str
    window: str
    method: str
    n_sig: int
    true: list[float]
    fitted: list[float]
    heldout: list[float]
    heldout_error: list[float]
    heldout_llr: list[float]
    splits_used: list[int]
    splits_fitted: list[int]

    def ratios(self, values: list[float]) -> list[float]:
        """value / true of each seed with signal and a finite value."""
        return [v / t for v, t in zip(values, self.true, strict=True) if t > 0 and math.isfinite(v)]

    def ratio(self, values: list[float]) -> float:
        """Median over seeds of value / true (NaN without signal)."""
        ratios = self.ratios(values)
        return float(np.median(ratios)) if ratios else math.nan

    def within(self, values: list[float], factor: float = WITHIN_FACTOR) -> tuple[int, int]:
        """(seeds whose value / true lies in [1 / factor, factor], seeds with a ratio)."""
        ratios = self.ratios(values)
        return sum(1 / factor <= r <= factor for r in ratios), len(ratios)

    def heldout_z(self) -> tuple[float, int]:
        """(median over seeds of sqrt(2 heldout_llr), seeds that report it): the held-out evidence for a
        signal in standard deviations, asymptotically (Chernoff) and were both densities fixed in
        advance (NaN when no seed reports it)."""
        values = [math.sqrt(2 * max(llr, 0.0)) for llr in self.heldout_llr if math.isfinite(llr)]
        return (float(np.median(values)) if values else math.nan), len(values)


def signal_fraction_rows(records: list[Record]) -> list[SignalFractionRow]:
    """Rows for the finished records whose method reports a fitted signal fraction, by dataset, SR, N_sig."""
    groups: dict[tuple[str, str, str, int], list[Record]] = {}
    for r in records:
        if r.ok and "fitted_w" in (r.method_info or {}) and r.n_sr_data > 0:
            groups.setdefault((r.dataset, r.window, r.method, r.n_sig), []).append(r)
    rows = []
    for (dataset, window, method, n_sig), rs in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1],
                                                                                          item[0][3], item[0][2])):
        rs = sorted(rs, key=lambda r: r.seed)
        info = [r.method_info for r in rs]
        rows.append(SignalFractionRow(
            dataset, window, method, n_sig, [r.n_sig_sr / r.n_sr_data for r in rs],
            [float(i["fitted_w"]) for i in info], [float(i.get("heldout_w", math.nan)) for i in info],
            [float(i.get("heldout_w_error", math.nan)) for i in info],
            [float(i.get("heldout_llr", math.nan)) for i in info],
            [len(i.get("chosen_splits", range(int(i.get("signal_splits", 1))))) for i in info],
            [int(i.get("signal_splits", 1)) for i in info],
        ))
    return rows


def signal_fraction_cells(row: SignalFractionRow) -> list[str]:
    """method, SR, N_sig, seeds, true w, fitted w, fitted / true, held-out w (typical error), held-out / true,
    held-out Z, signal splits; each ratio the median over seeds, followed by how many seeds lie within
    the factor ``WITHIN_FACTOR``."""
    def ratio_text(values: list[float]) -> str:
        median = row.ratio(values)
        if not math.isfinite(median):
            return "-"
        inside, seeds = row.within(values)
        return f"{median:.2f} ({inside} of {seeds} within {WITHIN_FACTOR:g} x)"

    heldout = Estimate.of(row.heldout, row.heldout_error)  # its stat: the median Fisher error
    heldout_text = Estimate.of(row.heldout).text(number=format_percent)
    if math.isfinite(heldout.stat):
        heldout_text += f" (± {format_percent(heldout.stat)})"
    return [row.method, row.window, str(row.n_sig), str(len(row.true)), format_percent(float(np.median(row.true))),
            Estimate.of(row.fitted).text(number=format_percent), ratio_text(row.fitted), heldout_text,
            ratio_text(row.heldout), _z_text(row), _splits_text(row)]


def _z_text(row: SignalFractionRow) -> str:
    """The held-out Z, with how many seeds it rests on when older records of the row lack it."""
    z, seeds = row.heldout_z()
    if not math.isfinite(z):
        return "-"
    return f"{z:.1f}" if seeds == len(row.true) else f"{z:.1f} ({seeds} of {len(row.true)} seeds)"


def _splits_text(row: SignalFractionRow) -> str:
    """The signal fits used of those made: "5" when every seed uses all of its five, "1-3 of 5" when a
    selection kept one to three of five (the range over seeds)."""
    def span(values: list[int]) -> str:
        return str(min(values)) if min(values) == max(values) else f"{min(values)}-{max(values)}"

    if row.splits_used == row.splits_fitted:
        return span(row.splits_fitted)
    return f"{span(row.splits_used)} of {span(row.splits_fitted)}"


SIGNAL_FRACTION_HEADER = ["method", "SR", "N_sig", "seeds", "true w", "fitted w", "fitted / true", "held-out w",
                          "held-out / true", "held-out Z", "signal splits"]
