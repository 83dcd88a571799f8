"""How closely the synthetic generator follows real LHCO events: a figure and its numbers.

The figure has three rows: the background's mjj spectrum and each feature's marginal; each feature's
16%, 50% and 84% quantiles versus mjj (the mass dependence the methods must interpolate); the signal
marginals. ``sideband_slice_auc`` measures how different the background is on the two sides of the
default SR (3.1-3.3 against 3.7-3.9 TeV): a template method moving events across the SR has to bridge
exactly that, so the synthetic value should match the real one at equal sample size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adbench.data.events import Events

#: mjj bins (TeV) for the conditional medians; the LHCO trigger turns on near 2.6 TeV.
MJJ_BINS = np.linspace(2.6, 6.0, 18)


def synthetic_like(real: Events, seed: int = 0, scale: float = 1.0, model: Any = None) -> Events:
    """Synthetic events of the calibrated generator (or ``model``) with ``scale`` times as many
    background and signal events as ``real``, restricted to the features of ``real``."""
    from adbench.data.synthetic import make_synthetic

    n_signal = real.n_signal
    events = make_synthetic(int(scale * (len(real) - n_signal)), int(scale * n_signal), seed, model)
    return events.with_features(real.features) if real.features else events


def sideband_slice_auc(
    events: Events, low: tuple[float, float] = (3.1, 3.3), high: tuple[float, float] = (3.7, 3.9),
    seeds: tuple[int, ...] = (0, 1, 2),
) -> float:
    """Mean two-sample AUC (``two_sample_auc`` over ``seeds``) between the background events of two mjj
    slices: how much p(x | m) changes across the SR. It grows with the sample size (the classifier
    learns more), so compare samples of equal size."""
    from adbench.evaluate import two_sample_auc

    background = events.background()
    a, b = background.in_range(*low).x, background.in_range(*high).x
    return float(np.mean([two_sample_auc(a, b, seed=seed) for seed in seeds]))


def conditional_quantiles(events: Events, bins: np.ndarray = MJJ_BINS, min_count: int = 200) -> np.ndarray:
    """(n_bins - 1, d, 3) 16%, 50% and 84% quantiles of each feature in bins of mjj (NaN where a
    bin has fewer than ``min_count`` events: there a median is noise, not shape)."""
    out = np.full((len(bins) - 1, events.n_features, 3), np.nan)
    index = np.digitize(events.m, bins) - 1
    for b in range(len(bins) - 1):
        x = events.x[index == b]
        if len(x) >= min_count:
            out[b] = np.quantile(x, [0.16, 0.5, 0.84], axis=0).T
    return out


def comparison_stats(real: Events, synthetic: Events) -> dict[str, Any]:
    """Per-feature numbers comparing the two samples' backgrounds (and signals where both have one).

    Returns a dict with, per feature name: the background median of each sample, the Pearson
    correlation with mjj of each sample, and the largest difference of the conditional medians in
    units of the real 16-84% half-width (``max_median_shift``); and under ``"sideband_slice_auc"`` the
    slice AUC of each sample (compare it between samples of equal size).
    """
    rb, sb = real.background(), synthetic.background()
    qr, qs = conditional_quantiles(rb), conditional_quantiles(sb)
    stats: dict[str, Any] = {
        "sideband_slice_auc": {"real": sideband_slice_auc(real), "synthetic": sideband_slice_auc(synthetic)}
    }
    for j, name in enumerate(real.features):
        width = 0.5 * (qr[:, j, 2] - qr[:, j, 0])
        shift = np.abs(qr[:, j, 1] - qs[:, j, 1]) / np.where(width > 0, width, np.nan)
        stats[name] = {
            "median_real": float(np.median(rb.x[:, j])),
            "median_synthetic": float(np.median(sb.x[:, j])),
            "corr_mjj_real": float(np.corrcoef(rb.m, rb.x[:, j])[0, 1]),
            "corr_mjj_synthetic": float(np.corrcoef(sb.m, sb.x[:, j])[0, 1]),
            "max_median_shift": float(np.nanmax(shift)),
        }
        if real.n_signal and synthetic.n_signal:
            stats[name]["signal_median_real"] = float(np.median(real.signal().x[:, j]))
            stats[name]["signal_median_synthetic"] = float(np.median(synthetic.signal().x[:, j]))
    return stats


def comparison_figure(real: Events, synthetic: Events | None = None, seed: int = 0):
    """Synthetic versus real: background marginals, 16/50/84% quantiles versus mjj, signal marginals,
    and the slice AUC of both at the real sample's size.

    Args:
        real: labelled real events (e.g. ``load_lhco_events`` of the lhco-100k file).
        synthetic: events to compare; by default ten times as many fresh synthetic events as ``real``
            has (smooth curves; the slice AUC is measured on a same-size sample).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    synthetic = synthetic_like(real, seed, scale=10.0) if synthetic is None else synthetic
    matched = synthetic.select(np.random.default_rng(seed).permutation(len(synthetic))[: len(real)])
    slice_real, slice_synthetic = sideband_slice_auc(real), sideband_slice_auc(matched)
    names = list(real.features)
    d = len(names)
    fig, axes = plt.subplots(3, d + 1, figsize=(3.0 * (d + 1), 8.6))
    rb, sb = real.background(), synthetic.background()
    style = {"real": dict(color="black", label="LHCO"), "synthetic": dict(color="tab:orange", label="synthetic")}

    def hist(ax, a: np.ndarray, b: np.ndarray, xlabel: str, log: bool = False) -> None:
        lo, hi = np.quantile(np.concatenate([a, b]), [0.001, 0.999])
        bins = np.linspace(lo, hi, 50)
        for values, key in ((a, "real"), (b, "synthetic")):
            ax.hist(values, bins=bins, density=True, histtype="step", lw=1.3, **style[key])
        ax.set(xlabel=xlabel, yscale="log" if log else "linear")

    hist(axes[0, 0], rb.m, sb.m, "mjj [TeV] (background)", log=True)
    axes[0, 0].legend(fontsize=8)
    for j, name in enumerate(names):
        hist(axes[0, j + 1], rb.x[:, j], sb.x[:, j], f"{name} (background)")

    centres = 0.5 * (MJJ_BINS[1:] + MJJ_BINS[:-1])
    qr, qs = conditional_quantiles(rb), conditional_quantiles(sb)
    axes[1, 0].axis("off")
    axes[1, 0].text(
        0.0, 0.5,
        "background: 16%, 50% and\n84% quantiles versus mjj\n(r = Pearson correlation\nwith mjj)\n\n"
        f"slice AUC, 3.1-3.3 vs\n3.7-3.9 TeV, {len(real):,} events:\nLHCO {slice_real:.3f}\n"
        f"synthetic {slice_synthetic:.3f}",
        fontsize=9, va="center",
    )
    for j, name in enumerate(names):
        ax = axes[1, j + 1]
        for q, events, key in ((qr, rb, "real"), (qs, sb, "synthetic")):
            r = np.corrcoef(events.m, events.x[:, j])[0, 1]
            color = style[key]["color"]
            ax.plot(centres, q[:, j, 1], color=color, label=f"{style[key]['label']} r={r:.2f}")
            for k in (0, 2):
                ax.plot(centres, q[:, j, k], color=color, ls="--", lw=0.9)
        ax.set(xlabel="mjj [TeV]", ylabel=name)
        ax.legend(fontsize=7)

    if real.n_signal and synthetic.n_signal:
        rs, ss = real.signal(), synthetic.signal()
        hist(axes[2, 0], rs.m, ss.m, "mjj [TeV] (signal)")
        for j, name in enumerate(names):
            hist(axes[2, j + 1], rs.x[:, j], ss.x[:, j], f"{name} (signal)")
    else:
        for ax in axes[2]:
            ax.axis("off")
    fig.suptitle(f"synthetic generator versus real LHCO events ({len(real):,} real, {len(synthetic):,} synthetic)")
    fig.tight_layout()
    return fig
