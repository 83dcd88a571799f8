"""Where a template is wrong: per feature, a two-sample chi-square of the template's histogram against
the true SR background's, from the histograms every record stores. The fidelity AUC says how wrong a
template is; this says in which feature."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
