"""Sensitivity figures, one signal region per panel: SIC and background rejection versus signal
efficiency, max SIC and SIC at FPR 1e-3 versus N_sig (with an S/B axis), template fidelity.

Every function takes finished records (of any datasets: it selects its own) and returns a
matplotlib Figure; nothing here trains or reads files.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adbench.report.stats import MIN_SEEDS_FOR_BAND, format_percent
from adbench.report.style import colors, corner_label, line_style, styled
from adbench.report.tables import PerformanceRow, method_order, performance_rows
from adbench.results import Record

LABEL = "adbench"


def _select(records: list[Record], dataset: str, window: str | None = None) -> list[Record]:
    return [r for r in records if r.ok and r.dataset == dataset and (window is None or r.window == window)]


def _kept_curves(rs: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(k,) FPR grid points where at least ``min_bkg`` test background events pass in every seed,
    and the (n_seeds, k) TPRs there."""
    fpr = np.asarray(rs[0].curve["fpr"])
    keep = fpr * min(r.n_test_background for r in rs) >= rs[0].min_bkg
    return fpr[keep], np.array([np.asarray(r.curve["tpr"])[keep] for r in rs])


def sic_and_rejection(records: list[Record], dataset: str, window: str):
    """For one SR: a column per N_sig; top row SIC = eps_S / sqrt(eps_B), bottom row background
    rejection 1 / eps_B (log), both versus signal efficiency eps_S. Median over seeds; a 16-84% band
    from three seeds on, each seed's curve drawn thin below that."""
    ok = [r for r in _select(records, dataset, window) if r.curve and r.n_sig > 0]
    n_sigs = sorted({r.n_sig for r in ok})
    by_nsig = {row.n_sig: row for row in performance_rows(ok)}  # the injection, hence S/B, is the methods' same
    methods = method_order(ok)
    palette = colors(methods)
    with styled() as plt:
        width = 4.4 * len(n_sigs) + 2.6
        fig, axes = plt.subplots(2, len(n_sigs), figsize=(width, 6.8), squeeze=False, sharex=True)
        for j, n_sig in enumerate(n_sigs):
            top, bottom = axes[0, j], axes[1, j]
            for method in methods:
                rs = [r for r in ok if r.method == method and r.n_sig == n_sig]
                if not rs:
                    continue
                fpr, tpr = _kept_curves(rs)
                if len(fpr) == 0:
                    continue
                style: dict[str, Any] = dict(color=palette[method], ls=line_style(method))
                x = np.median(tpr, axis=0)
                top.plot(x, np.median(tpr / np.sqrt(fpr), axis=0), label=method, **style)
                bottom.plot(x, 1 / fpr, label=method, **style)
                if len(rs) >= MIN_SEEDS_FOR_BAND:
                    sic = tpr / np.sqrt(fpr)
                    top.fill_between(x, np.quantile(sic, 0.16, axis=0), np.quantile(sic, 0.84, axis=0),
                                     color=palette[method], alpha=0.18, lw=0)
                    bottom.fill_betweenx(1 / fpr, np.quantile(tpr, 0.16, axis=0), np.quantile(tpr, 0.84, axis=0),
                                         color=palette[method], alpha=0.18, lw=0)
                elif len(rs) > 1:
                    for seed_tpr in tpr:
                        top.plot(seed_tpr, seed_tpr / np.sqrt(fpr), color=palette[method], lw=0.5, alpha=0.35)
                        bottom.plot(seed_tpr, 1 / fpr, color=palette[method], lw=0.5, alpha=0.35)
            eff = np.linspace(1e-3, 1, 200)
            top.axhline(1.0, color="grey", lw=0.8, ls=":")
            bottom.plot(eff, 1 / eff, color="grey", lw=0.8, ls=":", label="random")
            top.set(ylabel=r"SIC = $\varepsilon_S / \sqrt{\varepsilon_B}$", ylim=(0, None))
            bottom.set(yscale="log", xlabel=r"Signal efficiency $\varepsilon_S$",
                       ylabel=r"Background rejection $1/\varepsilon_B$", xlim=(0, 1))
            row = by_nsig.get(n_sig)
            sb = (f"S/B {format_percent(row.s_over_b)}, S/√B {row.s_over_sqrt_b:.1f}"
                  if row is not None and math.isfinite(row.s_over_b) else "")
            corner_label(top, f"$N_{{sig}}$ = {n_sig}", sb)
        legend: dict[str, Any] = {}
        for ax in axes[1]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        fig.legend(list(legend.values()), list(legend), loc="center right")
        fig.suptitle(f"{LABEL}: {dataset}, SR {window} TeV", fontsize=11, fontweight="bold")
        # fixed margins (a layout engine would cost a second drawing pass); the legend on the right
        fig.subplots_adjust(left=0.8 / width, right=1 - 2.1 / width, top=0.9, bottom=0.09, hspace=0.08, wspace=0.25)
    return fig


def metrics_vs_nsig(records: list[Record], dataset: str):
    """Max SIC (top) and SIC at FPR 1e-3 (bottom) versus injected N_sig, a column per SR, with the
    S/B in the SR on the top axis. Error bars: statistical and seed spread in quadrature. Open
    markers: fewer than ``min_bkg`` test background events pass at FPR 1e-3 (the tables' †)."""
    ok = _select(records, dataset)
    rows = performance_rows(ok)
    windows = sorted({(row.window_low, row.window) for row in rows})
    methods = method_order(ok)
    palette = colors(methods)
    with styled() as plt:
        fig, axes = plt.subplots(2, len(windows), figsize=(4.8 * len(windows) + 0.6, 8.6), squeeze=False)
        # fixed margins: a layout engine would cost a second drawing pass per output format
        fig.subplots_adjust(left=0.75 / fig.get_figwidth(), right=0.98, top=0.9, bottom=0.14, hspace=0.62,
                            wspace=0.28)
        for j, (_, window) in enumerate(windows):
            in_window = [row for row in rows if row.window == window]
            for i, (metric, ylabel) in enumerate((("max_sic", "Maximum SIC"),
                                                  ("sic_1e3", r"SIC at $\varepsilon_B = 10^{-3}$"))):
                ax = axes[i, j]
                for k, method in enumerate(methods):
                    mrows = sorted((row for row in in_window if row.method == method), key=lambda row: row.n_sig)
                    if not mrows:
                        continue
                    # a small horizontal offset per method keeps overlapping error bars apart
                    span = max(row.n_sig for row in in_window) or 1
                    x = np.array([row.n_sig for row in mrows]) + (k - len(methods) / 2) * 0.006 * span
                    y = np.array([row[metric].median for row in mrows])
                    err = np.array([row[metric].total for row in mrows])
                    color = palette[method]
                    # an unknown uncertainty (NaN) draws no bar, never a zero-length one
                    ax.errorbar(x, y, yerr=err, color=color, ls=line_style(method), marker="o",
                                ms=4, label=method)
                    if metric == "sic_1e3":
                        weak = np.array([not row.sic_1e3_reliable for row in mrows])
                        if weak.any():
                            ax.plot(x[weak], y[weak], ls="none", marker="o", ms=6, mfc="white", mec=color, zorder=5)
                ax.set(xlabel="Injected signal events $N_{sig}$", ylabel=ylabel, ylim=(0, None))
                _s_over_b_axis(ax, in_window)
                ax.set_title(f"{dataset}: SR {window} TeV", fontsize=10)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if any(not row.sic_1e3_reliable for row in rows):
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], ls="none", marker="o", mfc="white", mec="black"))
            labels.append(f"open marker: fewer than {min(r.min_bkg for r in rows)} test bkg events pass (†)")
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5))
    return fig


def _s_over_b_axis(ax: Any, rows: list[PerformanceRow]) -> None:
    """A top axis with the S/B in the SR (%) of the injected N_sig (their ratio, a median over rows)."""
    per_event = [row.s_over_b / row.n_sig for row in rows if row.n_sig > 0 and math.isfinite(row.s_over_b)]
    if not per_event:
        return
    k = 100 * float(np.median(per_event))
    top = ax.secondary_xaxis("top", functions=(lambda n: n * k, lambda p: p / k))
    top.set_xlabel("S/B in the SR [%]", fontsize=9)
    top.tick_params(labelsize=8)


def null_sigmas(rows: list[PerformanceRow]) -> dict[str, float]:
    """Per method, the standard deviation of its fidelity AUC's null (median over its rows): the AUC of
    two independent true-background samples of the template's distinct size and the test set's."""
    out: dict[str, list[float]] = {}
    for row in rows:
        if math.isfinite(row["fidelity_auc"].stat):
            out.setdefault(row.method, []).append(row["fidelity_auc"].stat)
    return {method: float(np.median(values)) for method, values in out.items()}


def fidelity(records: list[Record], dataset: str):
    """Template fidelity AUC (template versus true SR background; 0.5 = indistinguishable) per
    method and N_sig, a panel per SR; the grey bar behind each method is its calibrated null's +-2
    standard deviations."""
    ok = [r for r in _select(records, dataset) if math.isfinite(r.fidelity_auc)]
    rows = [row for row in performance_rows(ok) if row["fidelity_auc"].n]
    windows = sorted({(row.window_low, row.window) for row in rows})
    methods = method_order(ok)
    n_sigs = sorted({row.n_sig for row in rows})
    markers = "osD^v<>p"
    with styled() as plt:
        n_cols = min(3, len(windows))
        n_rows = -(-len(windows) // n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(max(5.0, 0.55 * len(methods) + 1.8) * n_cols + 1.6,
                                                          4.3 * n_rows), squeeze=False, layout="constrained")
        for ax in axes.flat[len(windows):]:
            ax.set_visible(False)
        for j, (_, window) in enumerate(windows):
            ax = axes.flat[j]
            in_window = [row for row in rows if row.window == window]
            # Each method's own null: a template of fewer distinct events (RAD-OT's reused pairs) has a wider one.
            band = null_sigmas(in_window)
            if band:
                x = [methods.index(m) for m in band]
                sigma = np.array(list(band.values()))
                ax.bar(x, 4 * sigma, bottom=0.5 - 2 * sigma, width=0.8, color="grey", alpha=0.2, lw=0,
                       label=r"null $\pm 2\sigma$")
            ax.axhline(0.5, color="grey", lw=0.8)
            for i, n_sig in enumerate(n_sigs):
                picked = [(methods.index(row.method), row) for row in in_window if row.n_sig == n_sig]
                if not picked:
                    continue
                offset = (i - (len(n_sigs) - 1) / 2) * 0.12
                x = np.array([p[0] for p in picked]) + offset
                y = [p[1]["fidelity_auc"].median for p in picked]
                err = [p[1]["fidelity_auc"].total for p in picked]
                ax.errorbar(x, y, yerr=err, ls="none", marker=markers[i % len(markers)], ms=5,
                            color=f"C{i}", label=f"$N_{{sig}}$ = {n_sig}")
            ax.set_xticks(np.arange(len(methods)), methods, rotation=25, ha="right")
            ax.tick_params(axis="x", which="minor", bottom=False, top=False)
            ax.set(ylabel="Fidelity AUC (template vs true bkg)" if j % n_cols == 0 else "",
                   xlim=(-0.6, len(methods) - 0.4))
            corner_label(ax, LABEL, f"{dataset}, SR {window} TeV")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper")
    return fig
