"""The event container shared by every stage of adbench."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adbench.errors import DataError

MIN_POINT_MASS_EVENTS = 10  # fewer repeats are ties of finite precision, whatever the sample size


@dataclass(frozen=True)
class Events:
    """A set of dijet events.

    Attributes:
        m: (n,) resonant feature, the dijet mass mjj in TeV (float64).
        x: (n, d) features, float32, columns named by ``features``.
        label: (n,) int8 truth, 1 signal and 0 background. Used for evaluation and the
            reference methods only; a background-template method must never read it.
        features: the d column names of ``x``.
    """

    m: np.ndarray
    x: np.ndarray
    label: np.ndarray
    features: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "m", np.asarray(self.m, dtype=np.float64))
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.float32))
        object.__setattr__(self, "label", np.asarray(self.label, dtype=np.int8))
        object.__setattr__(self, "features", tuple(self.features))
        n = len(self.m)
        if self.m.ndim != 1 or self.x.ndim != 2 or self.label.ndim != 1:
            raise DataError(
                f"Events needs m (n,), x (n, d) and label (n,); got shapes {self.m.shape}, "
                f"{self.x.shape}, {self.label.shape}"
            )
        if len(self.x) != n or len(self.label) != n:
            raise DataError(
                f"Events arrays disagree in length: m {n}, x {len(self.x)}, label {len(self.label)}"
            )
        if self.features and len(self.features) != self.x.shape[1]:
            raise DataError(
                f"Events has {self.x.shape[1]} feature columns but {len(self.features)} names"
            )

    def __len__(self) -> int:
        return len(self.m)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    @property
    def n_signal(self) -> int:
        return int(self.label.sum())

    def select(self, index: np.ndarray) -> Events:
        """Events at a boolean mask or an integer index array."""
        return Events(self.m[index], self.x[index], self.label[index], self.features)

    def in_range(self, low: float, high: float) -> Events:
        """Events with ``low <= m < high``."""
        return self.select((self.m >= low) & (self.m < high))

    def signal(self) -> Events:
        return self.select(self.label == 1)

    def background(self) -> Events:
        return self.select(self.label == 0)

    def shuffled(self, rng: np.random.Generator) -> Events:
        return self.select(rng.permutation(len(self)))

    def split(self, fraction: float, rng: np.random.Generator) -> tuple[Events, Events]:
        """Random split into (first, second) with ``fraction`` of the events in the first."""
        order = rng.permutation(len(self))
        n_first = int(round(fraction * len(self)))
        return self.select(np.sort(order[:n_first])), self.select(np.sort(order[n_first:]))

    def with_features(self, names: Sequence[str]) -> Events:
        """The same events restricted to (and ordered as) the named feature columns."""
        missing = [name for name in names if name not in self.features]
        if missing:
            raise DataError(f"features {missing} not available; have {list(self.features)}")
        columns = [self.features.index(name) for name in names]
        return Events(self.m, self.x[:, columns], self.label, tuple(names))

    def point_masses(self, limit: float = 1e-3) -> list[tuple[str, float, float]]:
        """(feature, value, fraction) of every value that more than ``limit`` of the events (and at
        least ``MIN_POINT_MASS_EVENTS``) share exactly. Jet observables are continuous (real LHCO: no
        value in more than 2e-4 of events), so such a value is a default, a clip or a cut."""
        found = []
        for name, column in zip(self.features, self.x.T, strict=True):
            values, counts = np.unique(column, return_counts=True)
            top = int(counts.argmax()) if len(counts) else 0
            if len(counts) and counts[top] > max(limit * len(self), MIN_POINT_MASS_EVENTS - 1):
                found.append((name, float(values[top]), float(counts[top] / len(self))))
        return found

    @staticmethod
    def concatenate(parts: Sequence[Events]) -> Events:
        parts = [part for part in parts if part is not None]
        if not parts:
            raise DataError("nothing to concatenate")
        features = parts[0].features
        for part in parts[1:]:
            if part.features != features:
                raise DataError(f"feature sets differ: {features} vs {part.features}")
        return Events(
            np.concatenate([p.m for p in parts]),
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.label for p in parts]),
            features,
        )

    def __repr__(self) -> str:
        return (
            f"Events(n={len(self)}, signal={self.n_signal}, features={list(self.features)}, "
            f"m=[{self.m.min() if len(self) else float('nan'):.3g}, "
            f"{self.m.max() if len(self) else float('nan'):.3g}] TeV)"
        )
