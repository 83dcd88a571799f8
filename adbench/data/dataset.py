"""A dataset ready for benchmarking, and its deterministic split for one (N_sig, seed).

Every window needs true background that no method trains on: half of it is the idealized template,
half the labelled test set. It comes from an extra background sample that covers the window (LHCO's
extra QCD covers 3.3-3.7 TeV; the synthetic generator's covers everything), or else from the main
sample, held out as the dataset's ``HoldOut`` says:

- ``sr`` (default for fixed-size files): a fraction (2/3) of the background inside the span of those
  windows, together with the same fraction of the injected signal there; the sidebands are untouched.
  The SR data keep 1/3 of the SR events at the S/B that N_sig gives the full file, and the idealized
  template (half of the held-out 2/3) is as large as the SR data. Inside the thinned span p(x | m) is
  unchanged; only the mass spectrum steps down, which ``Split.mass_weights`` undoes for mass fits.
- ``random``: a fraction of all background, any mass.
- ``none``: only extra samples; a window none of them covers is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, DataError
from adbench.windows import Window

HOLDOUT_KINDS = ("sr", "random", "none")
MAIN = "main"


@dataclass(frozen=True)
class Truth:
    """Truth-level samples that only the reference methods (``needs_truth = True``) receive.

    Both are disjoint from the observed data and from the labelled test set.

    Attributes:
        background: held-out true background (the "extra QCD" of LHCO), any mass range.
        signal: held-out signal events, any mass range.
    """

    background: Events
    signal: Events


@dataclass(frozen=True)
class HeldOutSample:
    """True background never mixed into the data, and the mjj range (TeV) it covers."""

    events: Events
    coverage: tuple[float, float]
    source: str = ""

    def covers(self, window: Window) -> bool:
        return self.coverage[0] <= window.low + 1e-9 and window.high <= self.coverage[1] + 1e-9

    @classmethod
    def of(cls, events: Events, source: str = "", coverage: Sequence[float] | None = None) -> HeldOutSample:
        """A sample whose coverage is given, or else the range of its masses rounded outward to 10 GeV
        (a sample cut to 3.3-3.7 TeV has masses just inside those edges)."""
        if coverage is None:
            if not len(events):
                raise ConfigError(f"held-out sample {source!r} is empty")
            coverage = (np.floor(events.m.min() * 100) / 100, np.ceil(events.m.max() * 100) / 100)
        low, high = (float(v) for v in coverage)
        if not high > low:
            raise ConfigError(f"held-out sample {source!r}: coverage must be LOW < HIGH in TeV, got {coverage}")
        return cls(events.background(), (low, high), source)


@dataclass(frozen=True)
class HoldOut:
    """How main-sample background is held out for the windows no extra sample covers."""

    kind: str = "sr"
    fraction: float = 2.0 / 3.0

    def __post_init__(self) -> None:
        if self.kind not in HOLDOUT_KINDS:
            raise ConfigError(f"unknown holdout {self.kind!r}; choose one of {', '.join(HOLDOUT_KINDS)}")
        if self.kind != "none" and not 0.0 < self.fraction < 1.0:
            raise ConfigError(f"holdout fraction must be in (0, 1), got {self.fraction}")


@dataclass(frozen=True)
class Split:
    """What one (N_sig, seed) task sees.

    Attributes:
        data: observed data over the full mass range: the background that was not held out plus the
            injected signal (minus the thinned part). Methods train on this.
        n_sig: injected signal events before any thinning.
        background_halves: per source (``"main"`` or an extra sample's index) the held-out background
            split in halves: (truth for the reference methods, test set).
        signal_halves: the signal that is not in the data, in halves (truth, test).
        sources: per window name, the source of its truth and test background.
        thinned: (low, high, kept fraction) of the ``sr`` hold-out, or None.
    """

    data: Events
    n_sig: int
    seed: int
    background_halves: dict[Any, tuple[Events, Events]]
    signal_halves: tuple[Events, Events]
    sources: dict[str, Any]
    thinned: tuple[float, float, float] | None = None

    def _source(self, window: Window) -> tuple[Events, Events]:
        if window.name not in self.sources:
            raise ConfigError(f"{window} was not part of this split's windows ({', '.join(self.sources)})")
        return self.background_halves[self.sources[window.name]]

    def truth_in(self, window: Window) -> Truth:
        """Held-out true background and signal inside the window, for the reference methods."""
        return Truth(
            self._source(window)[0].in_range(window.low, window.high),
            self.signal_halves[0].in_range(window.low, window.high),
        )

    def test_in(self, window: Window) -> Events:
        """The labelled test set inside the window: held-out background and signal no method saw."""
        return Events.concatenate([
            self._source(window)[1].in_range(window.low, window.high),
            self.signal_halves[1].in_range(window.low, window.high),
        ])

    def mass_weights(self, m: np.ndarray) -> np.ndarray:
        """(n,) weights that undo the ``sr`` thinning in a mass spectrum (1 outside the thinned span)."""
        weights = np.ones(len(m))
        if self.thinned is not None:
            low, high, kept = self.thinned
            weights[(np.asarray(m) >= low) & (np.asarray(m) < high)] = 1.0 / kept
        return weights


@dataclass(frozen=True)
class Dataset:
    """Background events, a signal pool, extra held-out background and the hold-out rule.

    Attributes:
        name: the dataset's card name.
        events: (n,) events with truth labels: background (0) and the signal pool (1).
        held_out: extra background samples never mixed into the data, with their mass coverage.
        holdout: how main-sample background is held out for windows no extra sample covers.
        default_window: the SR used when the user names none.
        version: the version of the code that generated the events ("" for events read from a
            file); part of every task's config hash, so results of an older generator are not reused.
        source_digest: for events read from files, the first 16 hex digits of each file's sha256,
            joined by ``+`` ("" for generated events): a run refuses to mix results of a replaced file
            with the old ones.
    """

    name: str
    events: Events
    held_out: tuple[HeldOutSample, ...] = ()
    holdout: HoldOut = field(default_factory=HoldOut)
    default_window: Window = Window()
    version: str = ""
    source_digest: str = ""

    @property
    def features(self) -> tuple[str, ...]:
        return self.events.features

    @property
    def n_signal_pool(self) -> int:
        return self.events.n_signal

    def sizes(self) -> dict[str, Any]:
        """Event counts that identify this dataset's content (part of every task's config hash)."""
        return {"events": len(self.events), "signal": self.events.n_signal,
                "held_out": [[len(s.events), *s.coverage] for s in self.held_out]}

    def with_features(self, names: tuple[str, ...]) -> Dataset:
        held = tuple(HeldOutSample(s.events.with_features(names), s.coverage, s.source) for s in self.held_out)
        return Dataset(self.name, self.events.with_features(names), held, self.holdout, self.default_window,
                       self.version, self.source_digest)

    def covering(self, window: Window) -> int | None:
        """The index of the first extra sample that covers the window, or None."""
        return next((i for i, sample in enumerate(self.held_out) if sample.covers(window)), None)

    def check_covered(self, window: Window) -> None:
        """Refuse, in one line, a window for which no held-out background can exist."""
        if self.covering(window) is None and self.holdout.kind == "none":
            covered = ", ".join(f"{s.coverage[0]:g}-{s.coverage[1]:g} TeV" for s in self.held_out) or "nothing"
            raise ConfigError(
                f"{window}: no held-out background covers it in dataset {self.name!r} (its extra samples cover "
                f"{covered}, and it holds out no main-sample background: holdout = 'none')"
            )

    def thinned_span(self, windows: Sequence[Window]) -> tuple[float, float] | None:
        """The mass span the ``sr`` hold-out thins for these windows (None when nothing is thinned)."""
        uncovered = [w for w in windows if self.covering(w) is None]
        if not uncovered or self.holdout.kind != "sr":
            return None
        return min(w.low for w in uncovered), max(w.high for w in uncovered)

    def expected_sr_data(self, window: Window, n_sig: int) -> float:
        """The mean number of data events ``split(n_sig, seed, [window])`` leaves in the window's SR:
        the SR background less the hold-out's share where no extra sample covers the window (the
        ``sr`` hold-out also thins the injected signal), plus the injected signal's expected SR part."""
        in_sr = window.in_sr(self.events.m)
        is_signal = self.events.label == 1
        background = float((in_sr & ~is_signal).sum())
        signal_share = float(in_sr[is_signal].mean()) if is_signal.any() else 0.0
        kept_background = kept_signal = 1.0
        if self.covering(window) is None and self.holdout.kind in ("random", "sr"):
            kept_background = 1.0 - self.holdout.fraction
            kept_signal = kept_background if self.holdout.kind == "sr" else 1.0
        return background * kept_background + n_sig * signal_share * kept_signal

    def split(self, n_sig: int, seed: int, windows: Sequence[Window] | None = None) -> Split:
        """Deterministic injection of ``n_sig`` signal events and hold-out of true background.

        The signal pool is permuted by the seed and its first ``n_sig`` events are injected, so
        injections at different ``n_sig`` with the same seed are nested (thinning included). Held-out
        background (each source apart) and the signal that is not in the data are each halved: one
        half for the reference methods, one for the test set.

        Args:
            windows: the signal regions that will be evaluated (default: ``default_window``); the
                hold-out of main-sample background depends on which of them extra samples cover.
        """
        windows = list(windows or [self.default_window])
        if n_sig < 0:
            raise ConfigError(f"N_sig must be >= 0, got {n_sig}")
        signal = self.events.signal()
        if n_sig > len(signal):
            raise ConfigError(
                f"N_sig = {n_sig} is larger than the signal pool of dataset {self.name!r} ({len(signal)} events)"
            )
        for window in windows:
            self.check_covered(window)
        rng_signal, rng_background, rng_halves, rng_thin = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        signal = signal.shuffled(rng_signal)
        keep_draw = rng_thin.random(len(signal))  # per pool event, so thinning is nested in n_sig too
        injected_mask = np.arange(len(signal)) < n_sig
        background = self.events.background()
        main_held, thinned = None, None
        uncovered = [w for w in windows if self.covering(w) is None]
        if uncovered and self.holdout.kind == "random":
            background, main_held = background.split(1.0 - self.holdout.fraction, rng_background)
        elif uncovered:
            low, high = self.thinned_span(windows)
            kept = 1.0 - self.holdout.fraction
            inside = (background.m >= low) & (background.m < high)
            keep_inside, main_held = background.select(inside).split(kept, rng_background)
            background = Events.concatenate([background.select(~inside), keep_inside])
            in_span = (signal.m >= low) & (signal.m < high)
            injected_mask &= ~in_span | (keep_draw < kept)
            thinned = (low, high, kept)
        halves: dict[Any, tuple[Events, Events]] = {}
        if main_held is not None:
            halves[MAIN] = main_held.split(0.5, rng_halves)
        for i, sample in enumerate(self.held_out):
            halves[i] = sample.events.split(0.5, rng_halves)
        held_signal = signal.select(~injected_mask)
        data = Events.concatenate([background, signal.select(injected_mask)])
        if len(data) == 0:
            raise DataError(f"dataset {self.name!r}: no data events left after the hold-out")
        sources = {}
        for window in windows:
            index = self.covering(window)
            sources[window.name] = MAIN if index is None else index
        return Split(data, n_sig, seed, halves, held_signal.split(0.5, rng_halves), sources, thinned)
