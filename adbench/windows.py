"""Signal-region / sideband windows in the dijet mass, and sliding-window scans."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from adbench.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """A signal region ``[low, high)`` in mjj (TeV) and its sideband anchors.

    Attributes:
        low, high: the signal-region edges.
        anchor_offset: distance of the interpolation anchors from the SR edges, as a fraction of
            the SR width. The default 0.25 gives SIGMA's anchors m1 = 3.2, m2 = 3.8 TeV for the
            SR 3.3-3.7 TeV.
    """

    low: float = 3.3
    high: float = 3.7
    anchor_offset: float = 0.25

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.high <= self.low:
            raise ConfigError(f"signal region must have low < high, got {self.low}-{self.high} TeV")
        if self.low <= 0:
            raise ConfigError(f"signal region must lie at positive mjj, got low = {self.low} TeV")
        check_anchor_offset(self.anchor_offset)

    @property
    def name(self) -> str:
        """Stable text key, e.g. ``"3.30-3.70"``."""
        return f"{self.low:.2f}-{self.high:.2f}"

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def center(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def anchors(self) -> tuple[float, float]:
        """The sideband anchor masses (m1 below, m2 above the SR) used for interpolation."""
        offset = self.anchor_offset * self.width
        return self.low - offset, self.high + offset

    def interpolation_weight(self, m: np.ndarray) -> np.ndarray:
        """SIGMA's weight xi = (m - m2) / (m1 - m2): 1 at the lower anchor, 0 at the upper."""
        m1, m2 = self.anchors
        return (np.asarray(m) - m2) / (m1 - m2)

    def in_sr(self, m: np.ndarray) -> np.ndarray:
        """(n,) bool: inside the signal region."""
        m = np.asarray(m)
        return (m >= self.low) & (m < self.high)

    def in_sidebands(self, m: np.ndarray, width: float | None = None) -> np.ndarray:
        """(n,) bool: in the sidebands.

        Args:
            width: sideband width on each side in TeV; ``None`` takes everything outside the SR
                (CATHODE's convention).
        """
        m = np.asarray(m)
        outside = ~self.in_sr(m)
        if width is None:
            return outside
        return outside & (m >= self.low - width) & (m < self.high + width)

    def lower_sideband(self, m: np.ndarray, width: float) -> np.ndarray:
        m = np.asarray(m)
        return (m >= self.low - width) & (m < self.low)

    def upper_sideband(self, m: np.ndarray, width: float) -> np.ndarray:
        m = np.asarray(m)
        return (m >= self.high) & (m < self.high + width)

    def __str__(self) -> str:
        return f"SR {self.low:g}-{self.high:g} TeV"


def check_sideband_width(width: float | None, name: str = "sideband_width", allow_none: bool = True) -> None:
    """Refuse a sideband width that is not a positive finite number of TeV (a bool, a string or 0
    would select nothing, or everything, silently); ``None`` (everything outside the SR) where
    ``allow_none``."""
    if width is None and allow_none:
        return
    if (width is None or isinstance(width, bool) or not isinstance(width, numbers.Real)
            or not (np.isfinite(width) and width > 0)):
        unset = " (or unset: everything outside the SR)" if allow_none else ""
        raise ConfigError(f"{name} must be a positive width in TeV{unset}, got {width!r}")


def check_anchor_offset(offset: float) -> None:
    """Refuse an anchor offset (a fraction of the SR width) that is not a finite number >= 0: a
    negative one would put SIGMA's anchors inside the SR, where the model saw the signal."""
    if isinstance(offset, bool) or not isinstance(offset, numbers.Real) or not (np.isfinite(offset) and offset >= 0):
        raise ConfigError(f"anchor_offset must be a number >= 0 (anchors outside the SR), got {offset!r}")


def scan_windows(start: float, stop: float, width: float, step: float | None = None) -> list[Window]:
    """Sliding signal regions of ``width`` from ``start`` to at most ``stop`` TeV.

    ``step`` defaults to the width (adjacent, non-overlapping windows).
    """
    step = width if step is None else step
    if width <= 0 or step <= 0:
        raise ConfigError(f"scan width and step must be positive, got width={width}, step={step}")
    if stop - start < width - 1e-9:
        raise ConfigError(f"scan range {start}-{stop} TeV is narrower than one window ({width} TeV)")
    n = int(np.floor((stop - start - width) / step + 1e-9)) + 1
    return [Window(round(start + i * step, 6), round(start + i * step + width, 6)) for i in range(n)]
