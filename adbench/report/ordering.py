"""The SIGMA paper's ordering of the flow-matching family, seed by seed.

The paper (arXiv:2410.20537) finds v_data < sigma-linear < sigma-context <= v_CR in max SIC. The
methods of the family that ran at one profile share the SR data and test set at each seed, and v_data,
sigma-linear and sigma-context even one fitted model, so the summary's comparison of medians (which
treats the runs as independent) is not the sharpest test of that order. Here each method is paired,
seed by seed, with its neighbour below it in the paper's order among those that ran (sigma-context
with v_data where sigma-linear did not run): at how many seeds the one the paper puts higher is higher,
the sign test, the ratio. Only the published methods (no variants), at the same profile, dataset
version, classifier and template size.
"""

from __future__ import annotations

import math

from adbench.report.tables import same_settings
from adbench.report.variants import METRIC, VariantComparison
from adbench.results import Record

#: The flow-matching family from lowest to highest max SIC, as the paper finds it.
PAPER_ORDER = ("vdata", "sigma-linear", "sigma-context", "vcr")


def compare_ordering(records: list[Record], registered: dict[str, str],
                     dataset: str) -> dict[tuple[str, str], dict[tuple, VariantComparison]]:
    """Per pair (higher label, lower label) in the paper's order, per column ``(window_low, window,
    n_sig)`` with injected signal: the higher method against the lower one. A comparison's ``variant``
    is the method the paper puts higher, its ``method`` the one below.

    ``records`` are labelled (``label_profiles``); ``registered`` maps each label to its registered
    method name (``sigma-context:cpu`` -> ``sigma-context``)."""
    ok = [r for r in records if r.ok and r.dataset == dataset and r.n_sig > 0 and not r.variant
          and registered.get(r.method, r.method) in PAPER_ORDER]
    by_key = {(registered.get(r.method, r.method), r.profile, r.window, r.n_sig, r.seed): r for r in ok}
    labels = {(registered.get(r.method, r.method), r.profile): r.method for r in ok}
    out: dict[tuple[str, str], dict[tuple, VariantComparison]] = {}
    for profile in sorted({r.profile for r in ok}):
        present = [name for name in PAPER_ORDER if (name, profile) in labels]
        for lower, higher in zip(present, present[1:], strict=False):
            pairs: dict[tuple, list[tuple[float, float]]] = {}
            for r in sorted(ok, key=lambda r: r.seed):
                if (registered.get(r.method, r.method), r.profile) != (higher, profile):
                    continue
                below = by_key.get((lower, profile, r.window, r.n_sig, r.seed))
                if below is None or not same_settings(r, below):
                    continue
                mine, theirs = r.metric(METRIC), below.metric(METRIC)
                if math.isfinite(mine) and math.isfinite(theirs):
                    pairs.setdefault((r.window_low, r.window, r.n_sig), []).append((mine, theirs))
            up, down = labels[(higher, profile)], labels[(lower, profile)]
            for column, values in sorted(pairs.items()):
                out.setdefault((up, down), {})[column] = VariantComparison(
                    up, down, len(values), sum(a > b for a, b in values), sum(a < b for a, b in values),
                    tuple(a / b for a, b in values if b > 0))
    return out
