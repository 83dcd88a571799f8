"""The signal fraction a method fits in the SR (R-ANODE's w) against the fraction injected: a method
that reports ``fitted_w`` (and a held-out estimate ``heldout_w`` with its error) in its record's
``method_info`` gets a row per dataset, SR and N_sig."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adbench.report.stats import MIN_SEEDS_FOR_BAND, format_percent
from adbench.results import Record


@dataclass(frozen=True)
class SignalFractionRow:
    """One (dataset, window, method, N_sig) over its seeds; fractions of the SR data, per seed.

    Attributes:
        true: injected SR signal / SR data events.
        fitted: the fitted w (the mean of the kept checkpoints' w).
        heldout: the maximum-likelihood w on the held-out SR events, with ``heldout_error`` its Fisher errors.
    """

    dataset: str
    window: str
    method: str
    n_sig: int
    true: list[float]
    fitted: list[float]
    heldout: list[float]
    heldout_error: list[float]

    def ratio(self, values: list[float]) -> float:
        """Median over seeds of value / true (NaN without signal)."""
        ratios = [v / t for v, t in zip(values, self.true, strict=True) if t > 0 and math.isfinite(v)]
        return float(np.median(ratios)) if ratios else math.nan


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
        ))
    return rows


def spread_text(values: list[float]) -> str:
    """Median [16%, 84%] from MIN_SEEDS_FOR_BAND seeds on, else the seeds' values in braces."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    if len(finite) == 1:
        return format_percent(finite[0])
    if len(finite) < MIN_SEEDS_FOR_BAND:
        return "{" + ", ".join(format_percent(v) for v in finite) + "}"
    low, mid, high = np.quantile(finite, [0.16, 0.5, 0.84])
    return f"{format_percent(mid)} [{format_percent(low)}, {format_percent(high)}]"


def signal_fraction_cells(row: SignalFractionRow) -> list[str]:
    """method, SR, N_sig, seeds, true w, fitted w, fitted / true, held-out w (typical error), held-out / true."""
    def ratio_text(value: float) -> str:
        return f"{value:.2f}" if math.isfinite(value) else "-"

    errors = [e for e in row.heldout_error if math.isfinite(e)]
    heldout = spread_text(row.heldout) + (f" (± {format_percent(float(np.median(errors)))})" if errors else "")
    return [row.method, row.window, str(row.n_sig), str(len(row.true)), format_percent(float(np.median(row.true))),
            spread_text(row.fitted), ratio_text(row.ratio(row.fitted)), heldout, ratio_text(row.ratio(row.heldout))]


SIGNAL_FRACTION_HEADER = ["method", "SR", "N_sig", "seeds", "true w", "fitted w", "fitted / true", "held-out w",
                          "held-out / true"]
