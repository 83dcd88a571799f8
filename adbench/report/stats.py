"""Uncertainties of a reported number: the spread over seeds and the statistical error of the test set.

A metric of one (dataset, SR, method, N_sig) is measured once per seed. Two things make it uncertain:

- the **seed spread**: a new seed draws a new signal injection, new splits and a new training; it is
  described by the 16% and 84% quantiles of the seeds' values, but only with at least
  ``MIN_SEEDS_FOR_BAND`` seeds (with one or two values such quantiles are not a band), and by the
  seeds' sample standard deviation from two seeds on;
- the **statistical error** of one value from the finite test set (``Record.stat_errors``: a
  bootstrap of the test set; for fidelity and template-data AUCs the calibrated null's standard
  deviation). Schema-1 records carry none.

The *total* uncertainty of one run's value adds the two in quadrature. It is conservative where the
test set changes with the seed (its fluctuation is then in both terms). The median over n seeds is
known better than one run: its error is ``MEDIAN_EFFICIENCY * total / sqrt(n)`` (the large-n error of
the median of normal values; with the seeds' sample standard deviation it is about 4% below the
exact error for three to five seeds, tests/report/test_report_tables.py). One seed has no such error: how much
another training would move it is unknown. The statistical part shrinks less than 1 / sqrt(n) where
the seeds' test sets come from one held-out pool; methods compared in one run share those test sets,
so their difference is affected less than either median.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

#: Fewest seeds whose 16% and 84% quantiles are reported as a band.
MIN_SEEDS_FOR_BAND = 3
#: The median's standard error over the mean's for normal values, sqrt(pi / 2).
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)


def _finite(values: Iterable[float | None]) -> tuple[float, ...]:
    return tuple(float(v) for v in values if v is not None and math.isfinite(v))


@dataclass(frozen=True)
class Estimate:
    """One metric over seeds.

    Attributes:
        values: the finite per-seed values (seed order).
        stat: statistical error of one seed's value: the median of the per-seed test-set errors
            (NaN when none was stored).
    """

    values: tuple[float, ...]
    stat: float = math.nan

    @classmethod
    def of(cls, values: Iterable[float | None], stat_errors: Iterable[float | None] = ()) -> Estimate:
        """From per-seed values and their statistical errors (NaN / None entries dropped)."""
        errors = _finite(stat_errors)
        return cls(_finite(values), float(np.median(errors)) if errors else math.nan)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return float(np.median(self.values)) if self.values else math.nan

    @property
    def has_band(self) -> bool:
        """Whether the seeds are enough for a 16-84% band."""
        return self.n >= MIN_SEEDS_FOR_BAND

    @property
    def low(self) -> float:
        """16% quantile over seeds (NaN below ``MIN_SEEDS_FOR_BAND`` seeds)."""
        return float(np.quantile(self.values, 0.16)) if self.has_band else math.nan

    @property
    def high(self) -> float:
        """84% quantile over seeds (NaN below ``MIN_SEEDS_FOR_BAND`` seeds)."""
        return float(np.quantile(self.values, 0.84)) if self.has_band else math.nan

    @property
    def seed_std(self) -> float:
        """Sample standard deviation over seeds (NaN with fewer than two)."""
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else math.nan

    @property
    def total(self) -> float:
        """Uncertainty of one run's value: statistical and seed spread in quadrature, whichever exist."""
        parts = [x for x in (self.stat, self.seed_std) if math.isfinite(x)]
        return math.sqrt(sum(x * x for x in parts)) if parts else math.nan

    @property
    def median_error(self) -> float:
        """Uncertainty of the median over the seeds: ``MEDIAN_EFFICIENCY * total / sqrt(n)`` from
        three seeds on, ``total / sqrt(2)`` for two (their median is their mean); NaN for one seed,
        whose spread over trainings is unknown, and when no uncertainty is known."""
        if self.n < 2:
            return math.nan
        return (MEDIAN_EFFICIENCY if self.n >= 3 else 1.0) * self.total / math.sqrt(self.n)

    def text(self, digits: int = 2, number: Callable[[float], str] | None = None) -> str:
        """``median ±stat [16%, 84%]`` (three or more seeds), ``median ±stat {a, b}`` (two seeds: both
        values, no band), ``value ±stat`` (one seed); the ``±stat`` part only where it was stored.
        ``number`` formats each number (default: ``digits`` decimals)."""
        if self.n == 0:
            return "-"
        number = number or (lambda v: f"{v:.{digits}f}")
        out = number(self.median)
        if math.isfinite(self.stat):
            out += f" ±{number(self.stat)}"
        if self.has_band:
            out += f" [{number(self.low)}, {number(self.high)}]"
        elif self.n == 2:
            out += " {" + ", ".join(number(v) for v in self.values) + "}"
        return out

    def short(self, digits: int = 2) -> str:
        """``median ± total`` (or the median alone when no uncertainty is known)."""
        if self.n == 0:
            return "-"
        if math.isfinite(self.total):
            return f"{self.median:.{digits}f} ± {self.total:.{digits}f}"
        return f"{self.median:.{digits}f}"


def format_percent(fraction: float) -> str:
    """A ratio as a percentage with two significant digits (``0.00634`` -> ``0.63%``)."""
    if not math.isfinite(fraction):
        return "-"
    if fraction == 0:
        return "0"
    percent = 100 * fraction
    digits = max(0, 1 - int(math.floor(math.log10(abs(percent)))))
    return f"{percent:.{digits}f}%"


def format_seconds(seconds: float | None) -> str:
    """A duration in ms, s, min or h."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
