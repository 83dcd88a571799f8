"""Report figures from stored records: each function returns a matplotlib Figure (no training)."""

from __future__ import annotations

import numpy as np

from adbench.report.tables import Band, amortisation, group, method_order, timing_rows
from adbench.results import Record


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ok(records: list[Record]) -> list[Record]:
    return [r for r in records if r.status == "ok"]


def sic_curves(records: list[Record], n_sig: int, window: str | None = None):
    """SIC versus signal efficiency per method at one N_sig: median over seeds (band 16-84%).

    Working points with fewer than ``min_bkg`` expected test background events are cut.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ok = [r for r in _ok(records) if r.n_sig == n_sig and (window is None or r.window == window)]
    for method in method_order(ok):
        rs = [r for r in ok if r.method == method]
        fpr = np.asarray(rs[0].curve["fpr"])
        tpr = np.array([r.curve["tpr"] for r in rs])
        n_bkg = min(r.n_test_background for r in rs)
        keep = fpr * n_bkg >= rs[0].min_bkg
        sic = tpr[:, keep] / np.sqrt(fpr[keep])
        x = np.median(tpr[:, keep], axis=0)
        line = ax.plot(x, np.median(sic, axis=0), label=method)[0]
        if len(rs) > 1:
            ax.fill_between(x, np.quantile(sic, 0.16, axis=0), np.quantile(sic, 0.84, axis=0),
                            color=line.get_color(), alpha=0.2)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="signal efficiency (TPR)", ylabel="SIC = TPR / sqrt(FPR)",
           title=f"SIC curves, N_sig = {n_sig}" + (f", SR {window}" if window else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def max_sic_vs_nsig(records: list[Record], metric: str = "max_sic"):
    """A metric (max SIC by default) versus injected N_sig per method, median and 16-84% band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ok = _ok(records)
    for method in method_order(ok):
        by_n = group([r for r in ok if r.method == method], ("n_sig",))
        ns = sorted(k[0] for k in by_n)
        bands = [Band.of([r.metric(metric) for r in by_n[(n,)]]) for n in ns]
        med = np.array([b.median for b in bands])
        line = ax.plot(ns, med, marker="o", label=method)[0]
        ax.fill_between(ns, [b.low for b in bands], [b.high for b in bands], color=line.get_color(), alpha=0.2)
    ax.set(xlabel="injected signal events N_sig", ylabel=metric.replace("_", " "), title=f"{metric} versus N_sig")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def timing_bars(records: list[Record]):
    """Training once and time per SR per method, log scale."""
    plt = _pyplot()
    rows = timing_rows(records)
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(rows) + 1.6))
    y = np.arange(len(rows))
    shared = [row["shared_fit_s"].median if row["shared_fit_s"] else np.nan for row in rows]
    per_sr = [row["per_sr_s"].median for row in rows]
    ax.barh(y - 0.2, shared, height=0.4, label="training once")
    ax.barh(y + 0.2, per_sr, height=0.4, label="per SR (fit + template)")
    ax.set_yticks(y, [row["method"] for row in rows])
    ax.set_xscale("log")
    ax.set(xlabel="seconds (median)", title="Wall-clock time")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fidelity(records: list[Record]):
    """Template fidelity AUC (template versus true SR background; 0.5 = perfect) per method and N_sig."""
    plt = _pyplot()
    ok = [r for r in _ok(records) if np.isfinite(r.fidelity_auc)]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    methods = method_order(ok)
    n_sigs = sorted({r.n_sig for r in ok})
    width = 0.8 / max(len(n_sigs), 1)
    for j, n_sig in enumerate(n_sigs):
        bands = [Band.of([r.fidelity_auc for r in ok if r.method == m and r.n_sig == n_sig]) for m in methods]
        x = np.arange(len(methods)) + (j - (len(n_sigs) - 1) / 2) * width
        med = np.array([b.median for b in bands])
        err = np.array([[b.median - b.low for b in bands], [b.high - b.median for b in bands]])
        ax.bar(x, med - 0.5, width, bottom=0.5, yerr=err, label=f"N_sig = {n_sig}", capsize=2)
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(methods)), methods, rotation=20)
    ax.set(ylabel="fidelity AUC", title="Template versus true SR background (0.5 = indistinguishable)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def feature_histograms(records: list[Record], method: str, n_sig: int):
    """Data versus template (and true background) in the SR for every feature, for one method:
    the first seed's stored histograms."""
    plt = _pyplot()
    rs = [r for r in _ok(records) if r.method == method and r.n_sig == n_sig and r.histograms]
    record = sorted(rs, key=lambda r: (r.seed, r.window_low))[0]
    hists = record.histograms
    fig, axes = plt.subplots(1, len(hists), figsize=(3.0 * len(hists), 2.8))
    for ax, (name, h) in zip(np.atleast_1d(axes), hists.items(), strict=True):
        edges = np.asarray(h["edges"])
        for key, style in (("data", dict(color="black", lw=1.4)), ("template", dict(color="C1", lw=1.4)),
                           ("background", dict(color="C0", lw=1.0, ls="--"))):
            counts = np.asarray(h[key], dtype=float)
            density = counts / max(counts.sum(), 1) / np.diff(edges)
            ax.stairs(density, edges, label={"background": "true bkg"}.get(key, key), **style)
        ax.set(xlabel=name, yticks=[])
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(f"{method}: SR {record.window}, N_sig = {n_sig}, seed {record.seed}", fontsize=9)
    fig.tight_layout()
    return fig


def amortisation_plot(records: list[Record]):
    """Measured total time of a scan versus the number of SRs (see ``tables.amortisation``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, points in amortisation(records).items():
        k, t = zip(*points, strict=True)
        ax.plot(k, t, marker="o", label=method)
    ax.set_yscale("log")
    ax.set(xlabel="number of signal regions", ylabel="total seconds (measured)",
           title="Scan cost: one training versus retraining per SR")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
