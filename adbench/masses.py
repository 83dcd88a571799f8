"""Samplers of signal-region masses for a template.

Each method's preset names one: ``histogram`` (SIGMA: a histogram of the SR data masses), ``kde``
(CATHODE: a Gaussian kernel density estimate of the SR data masses) or ``dijet`` (RAD-OT: the dijet
function ``p1 (1 - x)^p2 x^(p3 + p4 ln x)``, ``x = m / sqrt(s)``, fitted to the sidebands).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from adbench.errors import MethodFailure
from adbench.windows import Window

log = logging.getLogger(__name__)
SQRT_S_TEV = 13.0


@dataclass
class MassSample:
    """(n,) masses in TeV plus a note on how they were made (recorded with the result)."""

    masses: np.ndarray
    note: str


def sample_masses(
    kind: str,
    data_masses: np.ndarray,
    window: Window,
    n: int,
    rng: np.random.Generator,
    mass_weights: np.ndarray | None = None,
    **options: float,
) -> MassSample:
    """Draw ``n`` masses inside ``window``.

    Args:
        kind: ``histogram``, ``kde`` or ``dijet``.
        data_masses: (N,) masses of the observed data, any range; the samplers use the part they need.
        mass_weights: (N,) weights of the data masses in a fit across the spectrum (``Split.mass_weights``:
            they undo a hold-out that thinned part of it); None: all 1.
    """
    sr_masses = data_masses[window.in_sr(data_masses)]
    if len(sr_masses) < 2:
        raise MethodFailure(f"{window}: only {len(sr_masses)} data events, cannot model the SR masses")
    if kind == "histogram":
        return MassSample(histogram_masses(sr_masses, window, n, rng, int(options.get("bins", 50))), "histogram")
    if kind == "kde":
        return MassSample(kde_masses(sr_masses, window, n, rng), "kde")
    if kind == "dijet":
        width = float(options.get("sideband_width", 0.2))
        try:
            params = fit_dijet_function(data_masses, window, width, mass_weights)
        except MethodFailure as error:
            log.warning("%s; falling back to a histogram of the SR data masses", error)
            return MassSample(
                histogram_masses(sr_masses, window, n, rng), f"histogram (dijet fit failed: {error})"
            )
        shape = ", ".join(f"p{i} = {p:.3g}" for i, p in enumerate(params[1:], start=2))
        return MassSample(dijet_masses(params, window, n, rng), f"dijet fit ({shape})")
    raise MethodFailure(f"unknown mass sampler {kind!r}")


def histogram_masses(
    sr_masses: np.ndarray, window: Window, n: int, rng: np.random.Generator, bins: int = 50
) -> np.ndarray:
    """Draw from a histogram of ``sr_masses``: a bin by its count, then uniformly inside it."""
    counts, edges = np.histogram(sr_masses, bins=bins, range=(window.low, window.high))
    chosen = rng.choice(len(counts), size=n, p=counts / counts.sum())
    return edges[chosen] + rng.random(n) * np.diff(edges)[chosen]


def kde_masses(sr_masses: np.ndarray, window: Window, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw from a Gaussian KDE of ``sr_masses`` (Scott's bandwidth), redrawing values outside the SR."""
    from scipy.stats import gaussian_kde

    kde = gaussian_kde(sr_masses)
    out = np.empty(0)
    while len(out) < n:
        draw = kde.resample(2 * (n - len(out)) + 16, seed=rng)[0]
        out = np.concatenate([out, draw[window.in_sr(draw)]])
    return out[:n]


def dijet_density(m: np.ndarray, p1: float, p2: float, p3: float, p4: float) -> np.ndarray:
    """The dijet function ``p1 (1 - x)^p2 x^(p3 + p4 ln x)`` at ``x = m / 13 TeV``."""
    x = np.asarray(m) / SQRT_S_TEV
    return p1 * (1.0 - x) ** p2 * x ** (p3 + p4 * np.log(x))


def fit_dijet_function(
    data_masses: np.ndarray, window: Window, sideband_width: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Fit the dijet function to the binned sideband masses (SR excluded), each mass counted with its
    weight (default 1). Returns (p1, p2, p3, p4)."""
    low, high = window.low - sideband_width, window.high + sideband_width
    in_sb = window.in_sidebands(data_masses, sideband_width)
    n_sb = int(in_sb.sum())
    if n_sb < 50:
        raise MethodFailure(f"dijet fit: only {n_sb} sideband events in {low:g}-{high:g} TeV")
    edges = np.linspace(low, high, 41)
    raw, _ = np.histogram(data_masses[in_sb], bins=edges)
    scale = np.ones(len(raw))
    if weights is not None:
        weighted, _ = np.histogram(data_masses[in_sb], bins=edges, weights=np.asarray(weights)[in_sb])
        scale = np.divide(weighted, raw, out=np.ones(len(raw)), where=raw > 0)
    counts = raw * scale
    centers = 0.5 * (edges[1:] + edges[:-1])
    keep = ~window.in_sr(centers) & (raw > 0)
    if keep.sum() < 6:
        raise MethodFailure("dijet fit: fewer than 6 filled sideband bins")

    # Over a sub-TeV range the four parameters are nearly degenerate (only the shape is
    # constrained). The fit uses the log density at the window centre as its normalisation and a
    # weak Gaussian prior on the shape parameters (around typical LHC dijet values, widths far
    # larger than the data's constraints): the data fix the shape, the prior only picks a finite,
    # readable point along the degenerate directions.
    ln_x0 = np.log(window.center / SQRT_S_TEV)
    ln_1mx0 = np.log1p(-window.center / SQRT_S_TEV)

    def log_model(m: np.ndarray, log_c: float, p2: float, p3: float, p4: float) -> np.ndarray:
        x = m / SQRT_S_TEV
        shape = p2 * np.log1p(-x) + (p3 + p4 * np.log(x)) * np.log(x)
        return log_c + shape - (p2 * ln_1mx0 + (p3 + p4 * ln_x0) * ln_x0)

    from scipy.optimize import least_squares

    y = np.log(counts[keep])
    sigma = 1.0 / np.sqrt(raw[keep])  # the statistics are those of the events, not of their weights
    prior_mean, prior_width = np.array([10.0, -5.0, 0.0]), np.array([20.0, 20.0, 5.0])

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.concatenate([(log_model(centers[keep], *p) - y) / sigma, (p[1:] - prior_mean) / prior_width])

    start = np.array([float(np.interp(window.center, centers[keep], y)), *prior_mean])
    fit = least_squares(residuals, start, max_nfev=20000)
    if not fit.success:
        raise MethodFailure(f"dijet fit did not converge ({fit.message})")
    popt = fit.x
    grid = np.linspace(window.low, window.high, 201)
    density = np.exp(log_model(grid, *popt))
    if not np.isfinite(popt).all() or not np.isfinite(density).all() or (density <= 0).any():
        raise MethodFailure(f"dijet fit gave an unusable shape (parameters {popt.tolist()})")
    log_c, p2, p3, p4 = popt
    log_p1 = log_c - (p2 * ln_1mx0 + (p3 + p4 * ln_x0) * ln_x0)
    return np.array([np.exp(log_p1), p2, p3, p4])


def dijet_masses(params: np.ndarray, window: Window, n: int, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF sampling of the fitted dijet function inside the SR."""
    grid = np.linspace(window.low, window.high, 2001)
    density = dijet_density(grid, *params)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return np.interp(rng.random(n), cdf / cdf[-1], grid)
