"""Timing figures of one dataset: the cost of each method on a linear axis (the shared training drawn
once), and the total cost of a scan versus its number of signal regions, extrapolated from the
measured costs with the crossover marked."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adbench.report.stats import format_seconds
from adbench.report.style import colors, corner_label, line_style, styled
from adbench.report.tables import TimingRow, crossover, is_reference, measured_scan, timing_rows
from adbench.results import Record

#: The amortisation figure extrapolates to at least this many signal regions.
PLOTTED_WINDOWS = 20
#: A measured scan is drawn beside the extrapolation from this many windows on (one training and a
#: window or two show nothing the medians do not).
MIN_MEASURED_WINDOWS = 3


def time_unit(seconds: float) -> tuple[float, str]:
    """(divisor, name) of a readable unit for durations up to ``seconds``."""
    if seconds >= 3 * 3600:
        return 3600.0, "h"
    if seconds >= 300:
        return 60.0, "min"
    return 1.0, "s"


def training_groups(rows: list[TimingRow]) -> list[tuple[list[str], float]]:
    """The single trainings of methods trained once: (the methods sharing it, its seconds)."""
    seen: dict[tuple[str, ...], float] = {}
    for row in rows:
        if not row.per_window:
            seen.setdefault(tuple(row.shared_with or [row.method]), row.shared_fit_s)
    return [(list(methods), seconds) for methods, seconds in seen.items()]


def timing_bars(records: list[Record], dataset: str):
    """Horizontal bars on a linear axis: one bar per single training (shared by the methods that use
    it), then per method the work of one SR (fit, template). Medians over tasks."""
    rows = [row for row in timing_rows(records) if row.dataset == dataset]
    trainings = training_groups(rows)
    labels, fits, samples, once = [], [], [], []
    for methods, seconds in trainings:
        labels.append(f"training once ({', '.join(methods)})")
        fits.append(0.0), samples.append(0.0), once.append(seconds)
    for row in rows:
        labels.append(f"{row.method}: per SR")
        fits.append(row.fit_window_s), samples.append(row.sample_s), once.append(0.0)
    largest = max([*once, *(f + s for f, s in zip(fits, samples, strict=True))], default=1.0)
    scale, unit = time_unit(largest)
    y = np.arange(len(labels))
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(9.0, 0.42 * len(labels) + 1.6))
        ax.barh(y, np.array(once) / scale, color="#832db6", label="training once (all data)")
        ax.barh(y, np.array(fits) / scale, color="#3f90da", label="fit per SR")
        ax.barh(y, np.array(samples) / scale, left=np.array(fits) / scale, color="#ffa90e",
                label="template per SR")
        for yi, total in zip(y, np.array(once) + np.array(fits) + np.array(samples), strict=True):
            ax.text(total / scale + largest / scale * 0.01, yi, format_seconds(total), va="center", fontsize=8)
        ax.set_yticks(y, labels)
        ax.tick_params(axis="y", which="minor", left=False, right=False)
        ax.set(xlabel=f"Wall-clock time [{unit}] (median over tasks)", xlim=(0, largest / scale * 1.15))
        ax.invert_yaxis()
        ax.legend(loc="lower right")
        corner_label(ax, "adbench", f"{dataset}; {'; '.join(sorted({d for r in rows for d in r.devices}))}")
        fig.tight_layout()
    return fig


def amortisation_plot(records: list[Record], dataset: str, n_windows: int | None = None):
    """Total time of a scan versus its number of signal regions K: training once + K x per SR
    (fit + template; the shared classifier left out: it costs every method the same), extrapolated
    from the measured medians to ``n_windows`` (at least ``PLOTTED_WINDOWS``); measured cumulative
    times as markers; where a method trained once becomes cheaper than one retrained per SR, the
    crossover is marked."""
    rows = [row for row in timing_rows(records) if row.dataset == dataset and not is_reference(row.method)]
    measured = {m: pts for (d, m), pts in measured_scan(records).items() if d == dataset}
    k_max = max(n_windows or PLOTTED_WINDOWS, max((len(p) - 1 for p in measured.values()), default=0))
    k = np.arange(0, k_max + 1)
    largest = max((row.scan_seconds(k_max) for row in rows), default=1.0)
    scale, unit = time_unit(largest)
    palette = colors([row.method for row in rows])
    with styled() as plt:
        from matplotlib.ticker import MaxNLocator

        fig, ax = plt.subplots(figsize=(11.0, 5.0), layout="constrained")
        for row in rows:
            cost = np.array([row.scan_seconds(int(n)) for n in k])
            ax.plot(k, cost / scale, color=palette[row.method], ls=line_style(row.method),
                    label=f"{row.method} ({'once + ' if not row.per_window else ''}{format_seconds(row.per_sr_s)}/SR)")
            points = measured.get(row.method, [])
            if len(points) > MIN_MEASURED_WINDOWS:
                ks, ts = zip(*points, strict=True)
                ax.plot(ks, np.array(ts) / scale, ls="none", marker="o", ms=4, color=palette[row.method],
                        label=f"{row.method}: one measured scan")
        _mark_crossovers(ax, rows, scale, k_max)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", which="minor", bottom=False, top=False)
        ax.set(xlabel="Number of signal regions K", ylabel=f"Total time [{unit}]", xlim=(0, k_max), ylim=(0, None))
        fig.legend(loc="outside right upper", fontsize=8)
        corner_label(ax, "adbench", dataset)
    return fig


def crossovers(rows: list[TimingRow]) -> list[tuple[str, str, float]]:
    """(method trained once, method retrained per SR, K) for every pair whose lines cross at K > 0;
    only the cheapest-per-SR method of each single training."""
    once = {}
    for row in rows:
        if not row.per_window and not is_reference(row.method):
            key = tuple(row.shared_with or [row.method])
            if key not in once or row.per_sr_s < once[key].per_sr_s:
                once[key] = row
    out = []
    for a in once.values():
        for b in rows:
            if b.per_window and not is_reference(b.method):
                k = crossover(a, b)
                if k is not None:
                    out.append((a.method, b.method, k))
    return out


def _mark_crossovers(ax: Any, rows: list[TimingRow], scale: float, k_max: int) -> None:
    """A cross where the lines meet, named in the legend."""
    by_name = {row.method: row for row in rows}
    for once, per_window, k in crossovers(rows):
        if not 0 < k <= k_max:
            continue
        t = by_name[once].scan_seconds(0) + k * by_name[once].per_sr_s
        ax.plot([k], [t / scale], ls="none", marker="x", ms=7, mew=1.8, color="black", zorder=6,
                label=f"{once} cheaper than {per_window} from K = {math.floor(k) + 1}")
