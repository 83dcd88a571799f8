"""Where a template is wrong: per feature, a two-sample chi-square of the template's histogram against
the true SR background's, from the histograms every record stores. The fidelity AUC says how wrong a
template is; this says in which feature."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from adbench.results import Record


def two_sample_chi2(a: Sequence[float], b: Sequence[float]) -> tuple[float, int]:
    """The chi-square of two unweighted histograms (counts, same bins) of one distribution, up to
    their totals, over the bins where either has events; returns (chi2, ndf = bins - 1). For two
    samples of one distribution chi2 / ndf is about 1 +- sqrt(2 / ndf)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    used = (a + b) > 0
    n_a, n_b = a.sum(), b.sum()
    if used.sum() < 2 or n_a <= 0 or n_b <= 0:
        return math.nan, 0
    a, b = a[used], b[used]
    chi2 = float(np.sum((n_b * a - n_a * b) ** 2 / (a + b)) / (n_a * n_b))
    return chi2, int(used.sum()) - 1


def feature_chi2_per_ndf(histograms: dict | None) -> dict[str, float]:
    """feature -> chi2 / ndf of the template against the true SR background, from a record's stored
    ``histograms`` (NaN where there is no template histogram)."""
    out = {}
    for feature, h in (histograms or {}).items():
        chi2, ndf = two_sample_chi2(h.get("template", []), h.get("background", []))
        out[feature] = chi2 / ndf if ndf else math.nan
    return out


FidelityRow = tuple[str, list[float], int]


def feature_fidelity_rows(records: list[Record], methods: Sequence[str]) -> tuple[list[str], list[FidelityRow]]:
    """(features, rows): per method with template histograms among ``records`` (one dataset, window and
    N_sig), the median chi2 / ndf per feature over its seeds and the number of seeds."""
    per_method = {method: [feature_chi2_per_ndf(r.histograms) for r in records
                           if r.method == method and r.ok and r.histograms] for method in methods}
    per_method = {m: [v for v in vs if any(math.isfinite(x) for x in v.values())] for m, vs in per_method.items()}
    features = list(dict.fromkeys(f for vs in per_method.values() for v in vs for f in v))
    rows = []
    for method, values in per_method.items():
        if not values:
            continue
        medians = []
        for feature in features:
            finite = [v[feature] for v in values if math.isfinite(v.get(feature, math.nan))]
            medians.append(float(np.median(finite)) if finite else math.nan)
        rows.append((method, medians, len(values)))
    return features, rows


@dataclass(frozen=True)
class Shortfall:
    """Where a template has fewer events than the true background: the contiguous feature range
    [low, high] whose summed share deficit is largest. Shares are of the events inside the stored
    histogram's range (the 0.1-99.9% quantiles of the SR data). ``deficit``: background share minus
    template share there; ``relative``: that over the background's share (1 - template / background
    there); ``pull``: the deficit over its statistical error (two independent samples; the largest of
    many contiguous ranges, so a faithful template reads a few units, not 0 +- 1); ``signal``: the
    signal's share in the range over the background's (NaN without a signal histogram). ``seeds`` /
    ``of``: for a median over seeds, how many seeds found essentially this range, out of how many."""

    feature: str
    low: float
    high: float
    deficit: float
    relative: float
    pull: float
    signal: float
    seeds: int = 1
    of: int = 1


def largest_shortfall(feature: str, histogram: dict, template_events: float | None = None) -> Shortfall | None:
    """The ``Shortfall`` of one stored feature histogram (``edges``, ``template``, ``background`` and
    optionally ``signal`` counts). ``template_events``: the template's independent events where it
    reuses source events (its error is then that of the smaller sample). None without a template or
    where the template nowhere falls short."""
    template = np.asarray(histogram.get("template", []), dtype=np.float64)
    background = np.asarray(histogram.get("background", []), dtype=np.float64)
    edges = np.asarray(histogram.get("edges", []), dtype=np.float64)
    n_t, n_b = template.sum(), background.sum()
    if n_t <= 0 or n_b <= 0 or len(edges) != len(template) + 1 or len(background) != len(template):
        return None
    deficit = background / n_b - template / n_t
    best, start, best_run, running = 0.0, 0, (0, 0), 0.0
    for i, value in enumerate(deficit):  # the largest sum over contiguous bins (Kadane)
        if running <= 0.0:
            running, start = value, i
        else:
            running += value
        if running > best:
            best, best_run = running, (start, i + 1)
    if best <= 0.0:
        return None
    first, last = best_run
    share = float(background[first:last].sum() / n_b)
    independent = min(n_t, template_events) if template_events else n_t
    error = math.sqrt(share * (1.0 - share) * (1.0 / independent + 1.0 / n_b)) if share < 1.0 else math.inf
    signal = np.asarray(histogram.get("signal", []), dtype=np.float64)
    signal_ratio = (float(signal[first:last].sum() / signal.sum() / share)
                    if len(signal) == len(template) and signal.sum() > 0 else math.nan)
    return Shortfall(feature, float(edges[first]), float(edges[last]), best, best / share, best / error, signal_ratio)


def median_shortfall(records: list[Record]) -> Shortfall | None:
    """Over the seeds' records of one template method: the feature whose largest shortfall is largest
    in the median over seeds, and the shortfall of the seed with the median deficit there (one seed's
    range and numbers, never a mixture of seeds'), with the number of seeds whose range is essentially
    the same (intersection at least half the union)."""
    per_feature: dict[str, list[Shortfall]] = {}
    for record in records:
        reused = record.n_template_sources if 0 < record.n_template_sources < record.n_template else None
        for feature, histogram in (record.histograms or {}).items():
            found = largest_shortfall(feature, histogram, reused)
            if found is not None:
                per_feature.setdefault(feature, []).append(found)
    if not per_feature:
        return None
    feature = max(per_feature, key=lambda f: float(np.median([s.deficit for s in per_feature[f]])))
    found = sorted(per_feature[feature], key=lambda s: s.deficit)
    middle = found[(len(found) - 1) // 2]
    return replace(middle, seeds=sum(_same_range(s, middle) for s in found), of=len(records))


def _same_range(a: Shortfall, b: Shortfall) -> bool:
    """Whether two ranges are essentially one: their intersection is at least half their union."""
    inside = min(a.high, b.high) - max(a.low, b.low)
    return inside > 0 and inside >= 0.5 * (max(a.high, b.high) - min(a.low, b.low))


def format_shortfall(shortfall: Shortfall | None) -> str:
    """``delta_R 3.46 to 3.67: 3.3% (14% of bkg there, pull 14), signal ×0.38; 5/5 seeds`` or ``-``."""
    if shortfall is None:
        return "-"
    signal = f", signal ×{shortfall.signal:.2f}" if math.isfinite(shortfall.signal) else ""
    seeds = f"; {shortfall.seeds}/{shortfall.of} seeds" if shortfall.of > 1 else ""
    return (f"{shortfall.feature} {shortfall.low:.3g} to {shortfall.high:.3g}: {100 * shortfall.deficit:.1f}% "
            f"({100 * shortfall.relative:.0f}% of bkg there, pull {shortfall.pull:.0f}){signal}{seeds}")
