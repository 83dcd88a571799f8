"""Each variant against its published method, seed by seed.

A variant (``sigma-context+near``, ``cathode+stretch``) runs on the same SR data and test set as its
method (``+near``, which changes only the sampling, even on the same fitted model), so the sharper
question is not whether the two medians differ by more than their errors (the summary's test, which
treats them as independent) but at how many seeds the variant is higher. A variant's records are paired with the
published method's at the nearest profile its own profile extends (``cpu-near`` with ``cpu``), at the
same dataset, window, N_sig and seed, and only where both ran with the same dataset version,
classifier and template size. Per (window, N_sig): the seeds at which the variant's max SIC is higher
and lower, the exact two-sided sign test on them, and the ratio of the two values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from adbench.report.tables import method_order, same_settings
from adbench.results import Record

METRIC = "max_sic"


@dataclass(frozen=True)
class VariantComparison:
    """One variant against its method at one (window, N_sig).

    Attributes:
        variant: the variant's label in the report (``sigma-context+near``).
        method: the label of the published method it is paired with (``sigma-context``).
        seeds: seeds with a finite max SIC for both.
        higher, lower: of those, the seeds at which the variant's max SIC is above / below the
            method's (ties, e.g. both at 1.0 where neither finds anything, count in neither).
        ratios: the variant's max SIC over the method's, at the seeds where the method's is positive.
    """

    variant: str
    method: str
    seeds: int
    higher: int
    lower: int
    ratios: tuple[float, ...]

    @property
    def sign_test_p(self) -> float:
        """Two-sided exact sign test: the chance of a split at least this uneven between higher and
        lower if neither were better (1.0 with no untied seed)."""
        n = self.higher + self.lower
        if n == 0:
            return 1.0
        extreme = max(self.higher, self.lower)
        tail = sum(math.comb(n, k) for k in range(extreme, n + 1)) / 2 ** n
        return min(1.0, 2 * tail)

    def cell(self) -> str:
        """``higher at 5, lower at 0 of 5 seeds (p 0.062); ratio 1.33 (1.04-2.07)``."""
        text = f"higher at {self.higher}, lower at {self.lower} of {self.seeds} seed{'' if self.seeds == 1 else 's'}"
        text += f" (p {self.sign_test_p:.2g})"
        if self.ratios:
            text += f"; ratio {np.median(self.ratios):.2f}"
            if len(self.ratios) > 1:
                text += f" ({min(self.ratios):.2f}-{max(self.ratios):.2f})"
        return text


@cache
def _extended_profiles(method: str, profile: str) -> tuple[str, ...]:
    """The profiles ``profile`` of ``method`` extends, nearest first (() where the preset is gone)."""
    from adbench.errors import ConfigError
    from adbench.methods.presets import load_preset

    try:
        return load_preset(method, profile).lineage
    except ConfigError:
        return ()


def compare_variants(records: list[Record], registered: dict[str, str],
                     dataset: str) -> dict[str, dict[tuple, VariantComparison]]:
    """Per variant label (in the report's method order), per column ``(window_low, window, n_sig)``
    with injected signal: its comparison with its published method.

    ``records`` are labelled (``label_profiles``); ``registered`` maps each label to its registered
    method name (``sigma-context+near`` -> ``sigma-context``)."""
    ok = [r for r in records if r.ok and r.dataset == dataset and r.n_sig > 0]
    plain = {(registered.get(r.method, r.method), r.profile, r.window, r.n_sig, r.seed): r
             for r in ok if not r.variant}
    pairs: dict[tuple[str, str, tuple], list[tuple[float, float]]] = {}
    for r in sorted(ok, key=lambda r: r.seed):
        if not r.variant:
            continue
        name = registered.get(r.method, r.method)
        base = next((plain[key] for profile in _extended_profiles(name, r.profile)
                     if (key := (name, profile, r.window, r.n_sig, r.seed)) in plain), None)
        if base is None or not same_settings(r, base):
            continue
        mine, theirs = r.metric(METRIC), base.metric(METRIC)
        if math.isfinite(mine) and math.isfinite(theirs):
            pairs.setdefault((r.method, base.method, (r.window_low, r.window, r.n_sig)), []).append((mine, theirs))
    out: dict[str, dict[tuple, VariantComparison]] = {}
    order = {label: i for i, label in enumerate(method_order(records))}
    for (variant, method, column), values in sorted(pairs.items(), key=lambda item: order[item[0][0]]):
        out.setdefault(variant, {})[column] = VariantComparison(
            variant, method, len(values), sum(a > b for a, b in values), sum(a < b for a, b in values),
            tuple(a / b for a, b in values if b > 0))
    return out
