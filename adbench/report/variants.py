"""Each variant against its published method, seed by seed.

A variant (``sigma-context+near``, ``cathode+stretch``) runs on the same SR data, test set and, for
the flow-matching family, the same shared fit as its method, so the sharper question is not whether
the two medians differ by more than their errors (the summary's test, which treats them as
independent) but at how many seeds the variant is higher. Per (window, N_sig): the seeds at which its
max SIC is higher and lower, the exact two-sided sign test on them, and the ratio of the two values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adbench.results import Record

METRIC = "max_sic"


@dataclass(frozen=True)
class VariantComparison:
    """One variant against its method at one (window, N_sig).

    Attributes:
        ratios: per seed with both values (seed order), the variant's max SIC over the method's.
        higher, lower: seeds at which the variant's max SIC is above / below the method's (ties, e.g.
            both at 1.0 where neither finds anything, count in neither).
    """

    variant: str
    method: str
    ratios: tuple[float, ...]
    higher: int
    lower: int

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
        """``higher at 5, lower at 0 of 5 seeds (p 0.06); ratio 1.33 (1.04-2.07)``."""
        seeds = len(self.ratios)
        text = f"higher at {self.higher}, lower at {self.lower} of {seeds} seed{'' if seeds == 1 else 's'}"
        text += f" (p {self.sign_test_p:.2g})"
        ratio = f"{np.median(self.ratios):.2f}"
        if seeds > 1:
            ratio += f" ({min(self.ratios):.2f}-{max(self.ratios):.2f})"
        return f"{text}; ratio {ratio}"


def variant_pairs(records: list[Record], registered: dict[str, str]) -> dict[str, str]:
    """Variant label -> the label of its published method, for the variants whose method ran under
    exactly one label without a variant (under several profiles the pairing would be a guess).

    ``registered`` maps each label to its registered method name (``sigma-context+near`` ->
    ``sigma-context``)."""
    plain: dict[str, set[str]] = {}
    for r in records:
        if not r.variant:
            plain.setdefault(registered.get(r.method, r.method), set()).add(r.method)
    pairs = {}
    for r in records:
        if r.variant:
            candidates = plain.get(registered.get(r.method, r.method), set())
            if len(candidates) == 1:
                pairs[r.method] = next(iter(candidates))
    return pairs


def compare_variants(records: list[Record], registered: dict[str, str],
                     dataset: str) -> dict[str, dict[tuple, VariantComparison]]:
    """Per variant label, per column ``(window_low, window, n_sig)`` with injected signal: its
    comparison with its method over the seeds where both have a finite max SIC and the method's is
    positive."""
    ok = [r for r in records if r.ok and r.dataset == dataset and r.n_sig > 0]
    pairs = variant_pairs(ok, registered)
    values = {(r.method, r.window, r.n_sig, r.seed): r.metric(METRIC) for r in ok}
    per_column: dict[tuple[str, tuple], list[float]] = {}
    for r in sorted(ok, key=lambda r: r.seed):
        if r.method not in pairs:
            continue
        mine, theirs = values[(r.method, r.window, r.n_sig, r.seed)], values.get((pairs[r.method], r.window,
                                                                                  r.n_sig, r.seed), math.nan)
        if math.isfinite(mine) and math.isfinite(theirs) and theirs > 0:
            per_column.setdefault((r.method, (r.window_low, r.window, r.n_sig)), []).append(mine / theirs)
    out: dict[str, dict[tuple, VariantComparison]] = {}
    for (variant, column), ratios in per_column.items():
        out.setdefault(variant, {})[column] = VariantComparison(
            variant, pairs[variant], tuple(ratios), sum(x > 1 for x in ratios), sum(x < 1 for x in ratios))
    return out
