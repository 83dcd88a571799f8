"""Data versus template in one signal region: per feature, log-y histograms of the SR data, the
template and the true background, the signal overlaid, and a ratio panel template / true background."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adbench.report.stats import format_percent
from adbench.report.style import feature_label, styled
from adbench.results import Record


def signal_window(records: list[Record], dataset: str) -> str | None:
    """The window of ``dataset`` holding the most injected signal (the SR with the signal)."""
    ok = [r for r in records if r.ok and r.dataset == dataset and r.n_sig > 0]
    if not ok:
        return None
    by_window: dict[str, list[int]] = {}
    for r in ok:
        by_window.setdefault(r.window, []).append(r.n_sig_sr / max(r.n_sig, 1))
    return max(sorted(by_window), key=lambda w: float(np.median(by_window[w])))


def sample_record(records: list[Record], dataset: str, window: str, method: str, n_sig: int) -> Record | None:
    """The first seed's record with stored histograms for these coordinates."""
    rs = [r for r in records if r.ok and r.histograms and (r.dataset, r.window, r.method, r.n_sig)
          == (dataset, window, method, n_sig)]
    return min(rs, key=lambda r: r.seed) if rs else None


#: Bins merged into one for the data's excess over the true background (it is noisy bin by bin).
EXCESS_MERGE = 4


def _draw_signal(ax: Any, h: dict[str, Any], record: Record, edges: np.ndarray) -> None:
    """The injected signal in the SR: the stored signal histogram (scaled to the SR's signal count) when
    the record has one, else the SR data's excess over the true background (scaled to the SR's
    background count) in merged bins, with the data's Poisson errors."""
    if record.n_sig_sr <= 0:
        return
    if "signal" in h:
        counts = np.asarray(h["signal"], dtype=float)
        ax.stairs(counts * record.n_sig_sr / max(counts.sum(), 1), edges, color="#bd1f01", lw=1.4, ls="--",
                  label="signal")
        return
    data = np.asarray(h["data"], dtype=float)
    bkg = np.asarray(h["background"], dtype=float)
    scale = record.n_background_sr / max(bkg.sum(), 1)
    k = EXCESS_MERGE
    n = len(data) // k * k
    merged_edges = edges[:n + 1:k]
    data_k, bkg_k = data[:n].reshape(-1, k).sum(axis=1), bkg[:n].reshape(-1, k).sum(axis=1)
    merged = (data_k - scale * bkg_k) / k  # per original bin, comparable with the other curves
    error = np.sqrt(data_k + scale**2 * bkg_k) / k  # the data's and the scaled background's Poisson errors
    centres = 0.5 * (merged_edges[1:] + merged_edges[:-1])
    shown = merged > 0
    ax.errorbar(centres[shown], merged[shown], yerr=error[shown], xerr=np.diff(merged_edges)[shown] / 2, ls="none",
                color="#bd1f01", lw=1.0, label="data - true bkg (signal)")


def feature_histograms(record: Record):
    """One column per feature: SR data (points), template and true background scaled to the SR
    background count, the signal, and below them template / true background with its statistical
    band. ``record`` must carry ``histograms``."""
    hists = record.histograms or {}
    n_bkg = max(record.n_background_sr, 1)
    with styled(font_size=12) as plt:
        fig, axes = plt.subplots(2, len(hists), figsize=(3.3 * len(hists), 4.6), squeeze=False, sharex="col",
                                 gridspec_kw={"height_ratios": [3, 1]})
        # fixed margins: a layout engine would cost a second drawing pass per output format
        fig.subplots_adjust(left=0.06, right=0.99, top=0.89, bottom=0.15, hspace=0.06, wspace=0.24)
        for j, (name, h) in enumerate(hists.items()):
            top, ratio = axes[0, j], axes[1, j]
            edges = np.asarray(h["edges"], dtype=float)
            centres = 0.5 * (edges[1:] + edges[:-1])
            data = np.asarray(h["data"], dtype=float)
            template = np.asarray(h["template"], dtype=float)
            bkg = np.asarray(h["background"], dtype=float)
            t_scale, b_scale = n_bkg / max(template.sum(), 1), n_bkg / max(bkg.sum(), 1)
            top.stairs(bkg * b_scale, edges, color="#3f90da", lw=1.2, fill=True, alpha=0.3, label="true background")
            top.stairs(template * t_scale, edges, color="#e76300", lw=1.6, label="template")
            top.errorbar(centres, data, yerr=np.sqrt(data), ls="none", marker="o", ms=2.5, color="black",
                         label="SR data")
            _draw_signal(top, h, record, edges)
            positive = data[data > 0]
            top.set(yscale="log", ylim=(max(0.5, 0.5 * positive.min()) if len(positive) else 0.5, None))
            if j == 0:
                top.set_ylabel("Events / bin")
            ok = (template > 0) & (bkg > 0)
            r, err = np.full(len(template), np.nan), np.full(len(template), np.nan)
            r[ok] = (template[ok] * t_scale) / (bkg[ok] * b_scale)
            err[ok] = r[ok] * np.sqrt(1 / template[ok] + 1 / bkg[ok])  # two Poisson counts, in quadrature
            ratio.stairs(r, edges, color="#e76300", lw=1.4)
            ratio.fill_between(edges, _steps(r - err), _steps(r + err), step="post", color="#e76300", alpha=0.25, lw=0)
            ratio.axhline(1.0, color="grey", lw=0.8)
            ratio.set(ylim=(0.5, 1.5), xlabel=feature_label(name))
            if j == 0:
                ratio.set_ylabel("template /\ntrue bkg")
        axes[0, 0].legend(loc="upper right", fontsize=8)
        title = (f"{record.method}: SR {record.window} TeV, $N_{{sig}}$ = {record.n_sig} ({record.n_sig_sr} in the SR, "
                 f"S/B {format_percent(record.s_over_b)}), seed {record.seed}")
        fig.suptitle(f"{title}  [{record.dataset}]", fontsize=13)
    return fig


def _steps(values: np.ndarray) -> np.ndarray:
    """(k,) per-bin values -> (k + 1,) for ``fill_between(edges, ..., step='post')``."""
    return np.append(values, values[-1] if len(values) else math.nan)
