"""A dataset ready for benchmarking, and its deterministic split for one (N_sig, seed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, DataError
from adbench.methods.base import Truth
from adbench.windows import Window


@dataclass(frozen=True)
class Split:
    """What one (N_sig, seed) task sees.

    Attributes:
        data: observed data over the full mass range: the non-held-out background plus ``n_sig``
            injected signal events. Methods train on this.
        truth: held-out background and signal for the reference methods only.
        test: labelled held-out background and signal, never used for training by anything.
    """

    data: Events
    truth: Truth
    test: Events
    n_sig: int
    seed: int

    def truth_in(self, window: Window) -> Truth:
        return Truth(
            self.truth.background.in_range(window.low, window.high),
            self.truth.signal.in_range(window.low, window.high),
        )


@dataclass(frozen=True)
class Dataset:
    """Background events, a signal pool, and optionally extra held-out background.

    Attributes:
        name: the dataset's card name.
        events: (n,) events with truth labels: background (0) and the signal pool (1).
        extra_background: background never mixed into the data (LHCO's extra QCD), or ``None``.
        reference_fraction: fraction of ``events``' background held out as truth/test background
            (on top of ``extra_background``).
        default_window: the SR used when the user names none.
    """

    name: str
    events: Events
    extra_background: Events | None = None
    reference_fraction: float = 0.0
    default_window: Window = Window()

    def __post_init__(self) -> None:
        if not 0.0 <= self.reference_fraction < 1.0:
            raise ConfigError(f"reference_fraction must be in [0, 1), got {self.reference_fraction}")
        if self.extra_background is None and self.reference_fraction == 0.0:
            raise ConfigError(
                f"dataset {self.name!r} has no held-out background: give an extra background "
                "sample or a reference_fraction > 0"
            )

    @property
    def features(self) -> tuple[str, ...]:
        return self.events.features

    @property
    def n_signal_pool(self) -> int:
        return self.events.n_signal

    def with_features(self, names: tuple[str, ...]) -> Dataset:
        extra = None if self.extra_background is None else self.extra_background.with_features(names)
        return Dataset(
            self.name, self.events.with_features(names), extra, self.reference_fraction, self.default_window
        )

    def split(self, n_sig: int, seed: int) -> Split:
        """Deterministic injection of ``n_sig`` signal events and hold-out of reference background.

        The signal pool is permuted by the seed and its first ``n_sig`` events are injected, so
        injections at different ``n_sig`` with the same seed are nested. Held-out background
        (``reference_fraction`` of the main sample plus the extra sample) and the signal that was not
        injected are each halved: one half for the reference methods, one for the test set.
        """
        if n_sig < 0:
            raise ConfigError(f"N_sig must be >= 0, got {n_sig}")
        signal = self.events.signal()
        if n_sig > len(signal):
            raise ConfigError(
                f"N_sig = {n_sig} is larger than the signal pool of dataset {self.name!r} "
                f"({len(signal)} events)"
            )
        rng_signal, rng_background, rng_halves = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
        )
        signal = signal.shuffled(rng_signal)
        injected, held_signal = signal.select(slice(0, n_sig)), signal.select(slice(n_sig, None))

        background = self.events.background()
        kept, held_background = background.split(1.0 - self.reference_fraction, rng_background)
        if self.extra_background is not None:
            held_background = Events.concatenate([held_background, self.extra_background])

        truth_bkg, test_bkg = held_background.split(0.5, rng_halves)
        truth_sig, test_sig = held_signal.split(0.5, rng_halves)
        data = Events.concatenate([kept, injected])
        if len(data) == 0:
            raise DataError(f"dataset {self.name!r}: no data events left after the hold-out")
        return Split(
            data=data,
            truth=Truth(truth_bkg, truth_sig),
            test=Events.concatenate([test_bkg, test_sig]),
            n_sig=n_sig,
            seed=seed,
        )
