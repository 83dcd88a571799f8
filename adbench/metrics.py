"""Sensitivity metrics as pure functions (no plotting, no I/O). ``sic_curve`` mirrors ``roc_curve``."""

from __future__ import annotations

import numpy as np

#: FPR grid on which SIC curves are stored (log-spaced, 1e-6 .. 1).
CURVE_FPR = np.logspace(-6, 0, 121)


def roc(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from strict to loose, starting at (0, 0)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y_true), np.asarray(y_score), drop_intermediate=False)
    return fpr, tpr


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


def max_sic(y_true: np.ndarray, y_score: np.ndarray, min_bkg: int = 25) -> float:
    """Largest SIC over the working points where at least ``min_bkg`` test background events pass
    (default 25: at most 20% relative statistical uncertainty on the background efficiency)."""
    y_true = np.asarray(y_true)
    n_bkg = int((y_true == 0).sum())
    fpr, _, sic = sic_curve(y_true, y_score)
    allowed = fpr * n_bkg >= min_bkg - 1e-9
    return float(sic[allowed].max()) if allowed.any() else float("nan")


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float | np.ndarray) -> np.ndarray:
    """Signal efficiency at background efficiency ``target`` (linear interpolation of the ROC)."""
    return np.interp(target, fpr, tpr)


def sic_at_fpr(y_true: np.ndarray, y_score: np.ndarray, target: float = 1e-3) -> float:
    """SIC at a fixed background efficiency. NaN when fewer than one test background event would pass."""
    n_bkg = int((np.asarray(y_true) == 0).sum())
    if target * n_bkg < 1:
        return float("nan")
    fpr, tpr = roc(y_true, y_score)
    return float(tpr_at_fpr(fpr, tpr, target) / np.sqrt(target))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, y_score))


def downsampled_curve(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, list[float]]:
    """The ROC on the fixed ``CURVE_FPR`` grid, for storage: {"fpr": [...], "tpr": [...]}."""
    fpr, tpr = roc(y_true, y_score)
    return {"fpr": CURVE_FPR.tolist(), "tpr": np.round(tpr_at_fpr(fpr, tpr, CURVE_FPR), 6).tolist()}
