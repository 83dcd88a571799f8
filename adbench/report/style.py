"""The figures' look: an mplhep-like style written by hand (ticks inside on all four sides, minor
ticks, no frame around legends, a colour-blind-safe cycle), one colour per method in every figure,
dashed lines for the references, and axis labels in words with units."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adbench.report.tables import is_reference

#: The ten-colour sequence of M. Petroff (arXiv:2107.02270), as used by mplhep.
PALETTE = ("#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6", "#a96b59", "#e76300", "#b9ac70",
           "#717581", "#92dadd")
REFERENCE_COLORS = {"idealized": "#000000", "supervised": "#5a5a5a"}

RC: dict[str, Any] = {
    "font.size": 11,
    "axes.labelsize": 11,
    "axes.titlesize": 11,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.minor.visible": True,
    "ytick.minor.visible": True,
    "xtick.major.size": 6,
    "ytick.major.size": 6,
    "xtick.minor.size": 3,
    "ytick.minor.size": 3,
    "axes.linewidth": 1.0,
    "lines.linewidth": 1.6,
    "errorbar.capsize": 2,
    "pdf.fonttype": 42,
}

#: Feature name -> axis label with its unit.
FEATURE_LABELS = {
    "mj1": r"Lighter jet mass $m_{J1}$ [TeV]",
    "delta_mj": r"Jet mass difference $\Delta m_J$ [TeV]",
    "tau21_j1": r"Lighter jet $\tau_{21}$",
    "tau21_j2": r"Heavier jet $\tau_{21}$",
    "delta_R": r"Jet separation $\Delta R_{JJ}$",
    "mjj": r"Dijet mass $m_{JJ}$ [TeV]",
}


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported here: the CLI must start without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def styled(font_size: float | None = None) -> Iterator[Any]:
    """pyplot inside the report's style (``font_size``: larger text for wide figures shown scaled down)."""
    plt = pyplot()
    rc = dict(RC)
    if font_size:
        rc.update({"font.size": font_size, "axes.labelsize": font_size, "xtick.labelsize": font_size - 1,
                   "ytick.labelsize": font_size - 1, "legend.fontsize": font_size - 2})
    with plt.rc_context(rc):
        yield plt


def colors(methods: list[str]) -> dict[str, str]:
    """One colour per method label, the references black and grey."""
    out, k = {}, 0
    for method in methods:
        reference = REFERENCE_COLORS.get(method.partition(":")[0])
        if reference:
            out[method] = reference
        else:
            out[method] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def line_style(method: str) -> str:
    """Dashed for the references, solid for the methods under test."""
    return "--" if is_reference(method) else "-"


def feature_label(name: str) -> str:
    return FEATURE_LABELS.get(name, name)


def corner_label(ax: Any, left: str, right: str = "") -> None:
    """mplhep's habit: a bold name at the top left above the axes, the data set at the top right."""
    ax.text(0.0, 1.01, left, transform=ax.transAxes, ha="left", va="bottom", fontsize=10, fontweight="bold")
    if right:
        ax.text(1.0, 1.01, right, transform=ax.transAxes, ha="right", va="bottom", fontsize=9)
