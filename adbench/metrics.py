"""Sensitivity metrics as pure functions (no plotting, no I/O). ``sic_curve`` mirrors ``roc_curve``.

Every metric of a result record is one function of a ``Roc`` registered in ``SENSITIVITY_METRICS``:
the harness computes them all, and ``bootstrap_errors`` gives each its statistical error from the
finite test set by recomputing it on Poisson-reweighted copies of that set. Adding a metric is one
function here and one field of ``adbench.results.Record``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: FPR grid on which SIC curves are stored (log-spaced, 1e-6 .. 1).
CURVE_FPR = np.logspace(-6, 0, 121)
#: Bootstrap replicas of the test set for the statistical errors.
BOOTSTRAP_REPLICAS = 200
#: Fewest replicas (with the metric defined) whose spread is given as an error.
MIN_BOOTSTRAP = 10


@dataclass(frozen=True)
class Roc:
    """A (possibly weighted) ROC at every distinct score threshold, strict to loose.

    Attributes:
        fpr, tpr: (k,) rates, starting at (0, 0) and ending at (1, 1).
        passing_background: (k,) (weighted) number of background events passing each threshold.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    passing_background: np.ndarray

    @property
    def n_background(self) -> float:
        return float(self.passing_background[-1])


def _sorted(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels in descending score order and the last index of each distinct score."""
    order = np.argsort(-np.asarray(y_score, dtype=np.float64), kind="mergesort")
    score = np.asarray(y_score, dtype=np.float64)[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    return np.asarray(y_true)[order], order, last


def _roc(y_sorted: np.ndarray, last: np.ndarray, weight: np.ndarray | None = None) -> Roc:
    signal = (y_sorted == 1).astype(np.float64)
    if weight is not None:
        tps = np.cumsum(signal * weight)[last]
        fps = np.cumsum((1.0 - signal) * weight)[last]
    else:
        tps = np.cumsum(signal)[last]
        fps = (last + 1) - tps
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return Roc(fps / fps[-1], tps / tps[-1], fps)


def roc_of(y_true: np.ndarray, y_score: np.ndarray) -> Roc:
    """The ROC of scores ``y_score`` (n,) for labels ``y_true`` (n,), 1 signal and 0 background."""
    y_sorted, _, last = _sorted(y_true, y_score)
    return _roc(y_sorted, last)


def roc(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from strict to loose, starting at (0, 0)."""
    curve = roc_of(y_true, y_score)
    return curve.fpr, curve.tpr


def sic_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Significance improvement characteristic.

    Args:
        y_true: (n,) 1 for signal, 0 for background.
        y_score: (n,) higher = more signal-like.

    Returns:
        fpr, tpr, sic: (k,) arrays; ``sic = tpr / sqrt(fpr)`` (0 where fpr = 0).
    """
    fpr, tpr = roc(y_true, y_score)
    sic = np.divide(tpr, np.sqrt(fpr), out=np.zeros_like(tpr), where=fpr > 0)
    return fpr, tpr, sic


def max_sic_of(curve: Roc, min_bkg: int = 25) -> float:
    """Largest SIC over the working points where at least ``min_bkg`` test background events pass
    (default 25: at most 20% relative statistical uncertainty on the background efficiency)."""
    allowed = curve.passing_background >= min_bkg - 1e-9
    if not allowed.any():
        return float("nan")
    fpr, tpr = curve.fpr[allowed], curve.tpr[allowed]
    return float((tpr / np.sqrt(fpr)).max())


def sic_at_fpr_of(curve: Roc, target: float) -> float:
    """SIC at a fixed background efficiency. NaN when fewer than one test background event would pass."""
    if target * curve.n_background < 1:
        return float("nan")
    return float(np.interp(target, curve.fpr, curve.tpr) / np.sqrt(target))


def auc_of(curve: Roc) -> float:
    """Area under the ROC (ties count one half, as in ``sklearn.metrics.roc_auc_score``)."""
    return float(np.trapezoid(curve.tpr, curve.fpr))


#: The sensitivity metrics of a result record: field name -> function of (ROC, min_bkg).
SENSITIVITY_METRICS: dict[str, Callable[[Roc, int], float]] = {
    "max_sic": max_sic_of,
    "sic_1e3": lambda curve, min_bkg: sic_at_fpr_of(curve, 1e-3),
    "sic_1e4": lambda curve, min_bkg: sic_at_fpr_of(curve, 1e-4),
    "auc": lambda curve, min_bkg: auc_of(curve),
}


def sensitivity(y_true: np.ndarray, y_score: np.ndarray, min_bkg: int = 25) -> dict[str, float]:
    """Every metric of ``SENSITIVITY_METRICS`` for these test labels and scores."""
    curve = roc_of(y_true, y_score)
    return {name: metric(curve, min_bkg) for name, metric in SENSITIVITY_METRICS.items()}


def bootstrap_errors(
    y_true: np.ndarray, y_score: np.ndarray, min_bkg: int = 25, replicas: int = BOOTSTRAP_REPLICAS, seed: int = 0
) -> dict[str, float]:
    """Statistical error of every metric from the finite test set: the standard deviation over
    ``replicas`` Poisson-weighted copies of the set (the Poisson bootstrap; the classifier is fixed).
    Replicas in which a metric is undefined are left out of its spread (NaN if fewer than
    ``MIN_BOOTSTRAP`` remain)."""
    y_sorted, _, last = _sorted(y_true, y_score)
    rng = np.random.default_rng([seed, 17])
    values: dict[str, list[float]] = {name: [] for name in SENSITIVITY_METRICS}
    for _ in range(replicas):
        curve = _roc(y_sorted, last, rng.poisson(1.0, len(y_sorted)).astype(np.float64))
        for name, metric in SENSITIVITY_METRICS.items():
            values[name].append(metric(curve, min_bkg))
    out = {}
    for name, draws in values.items():
        finite = np.asarray([v for v in draws if np.isfinite(v)])
        out[name] = float(finite.std(ddof=1)) if len(finite) >= MIN_BOOTSTRAP else float("nan")
    return out


# -- the same metrics straight from labels and scores ------------------------------------------------


def max_sic(y_true: np.ndarray, y_score: np.ndarray, min_bkg: int = 25) -> float:
    """``max_sic_of`` the ROC of these labels and scores."""
    return max_sic_of(roc_of(y_true, y_score), min_bkg)


def sic_at_fpr(y_true: np.ndarray, y_score: np.ndarray, target: float = 1e-3) -> float:
    """``sic_at_fpr_of`` the ROC of these labels and scores."""
    return sic_at_fpr_of(roc_of(y_true, y_score), target)


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """``auc_of`` the ROC of these labels and scores."""
    return auc_of(roc_of(y_true, y_score))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float | np.ndarray) -> np.ndarray:
    """Signal efficiency at background efficiency ``target`` (linear interpolation of the ROC)."""
    return np.interp(target, fpr, tpr)


def downsampled_curve(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, list[float]]:
    """The ROC on the fixed ``CURVE_FPR`` grid, for storage: {"fpr": [...], "tpr": [...]}."""
    fpr, tpr = roc(y_true, y_score)
    return {"fpr": CURVE_FPR.tolist(), "tpr": np.round(tpr_at_fpr(fpr, tpr, CURVE_FPR), 6).tolist()}
