"""The shared downstream classifier (SR data versus template), template fidelity and its null."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from adbench.errors import ConfigError

if TYPE_CHECKING:
    from adbench.data.events import Events

HISTOGRAM_BINS = 40


@dataclass(frozen=True)
class ClassifierConfig:
    """An ensemble of class-balanced scikit-learn HistGradientBoostingClassifiers, averaged.

    The ``paper`` profile is SIGMA's: 50 models, max_iter 1000, early stopping on a validation
    fraction of 0.5.
    """

    n_models: int = 5
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    validation_fraction: float = 0.5
    early_stopping: bool = True

    @classmethod
    def profile(cls, name: str) -> ClassifierConfig:
        """The classifier of a method profile: the published ensemble for ``paper`` and its variants
        (``paper-gpu``, ``paper-nflows``...), the small default for every other (``fast``, ``cpu``)."""
        if name == "paper" or name.startswith("paper-"):
            return cls(n_models=50, max_iter=1000)
        return cls()


class ClassifierEnsemble:
    """Averaged HistGradientBoosting ensemble; each member has its own seed (its own validation
    split). Classes are balanced with sample weights, so a template of any size can be used."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig(), seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    def fit(self, x_pos: np.ndarray, x_neg: np.ndarray, groups_neg: np.ndarray | None = None) -> ClassifierEnsemble:
        """x_pos: (n1, d) label-1 events (SR data); x_neg: (n0, d) label-0 events (template).

        Members differ by their seed, hence by the random validation subset used for early stopping
        (the trees grown until the stop are kept, as in the published protocol).

        Args:
            groups_neg: (n0,) ids of the label-0 events' sources. Events of one source (RAD-OT's
                reused sideband pairs) go to the same side of every validation split, so that early
                stopping never validates on copies of training events. None: every event its own.
        """
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = np.concatenate([x_pos, x_neg]).astype(np.float32)
        y = np.concatenate([np.ones(len(x_pos)), np.zeros(len(x_neg))])
        weight = np.where(y == 1, len(y) / (2 * len(x_pos)), len(y) / (2 * len(x_neg)))
        groups = np.arange(len(x_neg)) if groups_neg is None else np.asarray(groups_neg)
        if len(groups) != len(x_neg):
            raise ConfigError(f"groups_neg has {len(groups)} entries for {len(x_neg)} events")
        c = self.config
        self.models_ = []
        for k in range(c.n_models):
            model = HistGradientBoostingClassifier(
                max_iter=c.max_iter,
                learning_rate=c.learning_rate,
                max_leaf_nodes=c.max_leaf_nodes,
                early_stopping=c.early_stopping,
                validation_fraction=None,
                random_state=self.seed * 1000 + k,
            )
            if not c.early_stopping:
                self.models_.append(model.fit(x, y, sample_weight=weight))
                continue
            val = self._validation_rows(len(x_pos), groups, np.random.default_rng([self.seed, k]))
            self.models_.append(model.fit(
                x[~val], y[~val], sample_weight=weight[~val], X_val=x[val], y_val=y[val], sample_weight_val=weight[val]
            ))
        return self

    def _validation_rows(self, n_pos: int, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n_pos + n_neg,) bool: the events of one member's early-stopping validation split."""
        fraction = self.config.validation_fraction
        val_pos = rng.random(n_pos) < fraction
        sources, inverse = np.unique(groups, return_inverse=True)
        val_neg = (rng.random(len(sources)) < fraction)[inverse]
        return np.concatenate([val_pos, val_neg])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n,) mean predicted probability of label 1 (of the class-balanced problem)."""
        x = np.asarray(x, dtype=np.float32)
        return np.mean([model.predict_proba(x)[:, 1] for model in self.models_], axis=0)


def _held_out_sizes(n_a: int, n_b: int, max_events: int) -> tuple[int, int]:
    """The numbers of events of each sample that ``two_sample_auc`` evaluates on (its second halves)."""
    n_a, n_b = min(n_a, max_events), min(n_b, max_events)
    return n_a - n_a // 2, n_b - n_b // 2


def two_sample_auc(a: np.ndarray, b: np.ndarray, seed: int = 0, max_events: int = 200_000) -> float:
    """How well a HistGradientBoosting classifier separates two samples: ROC AUC on held-out halves.

    0.5 means indistinguishable. Used for template fidelity (template versus true SR background).
    ``auc_null`` gives its distribution when both samples come from one distribution.

    Args:
        a: (n_a, d), b: (n_b, d).
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))[:max_events]]
    b = b[rng.permutation(len(b))[:max_events]]
    half_a, half_b = len(a) // 2, len(b) // 2
    if min(half_a, half_b) < 10:
        return float("nan")
    config = ClassifierConfig(n_models=1, max_iter=200, early_stopping=True, validation_fraction=0.2)
    ensemble = ClassifierEnsemble(config, seed).fit(a[:half_a], b[:half_b])
    x_test = np.concatenate([a[half_a:], b[half_b:]])
    y_test = np.concatenate([np.ones(len(a) - half_a), np.zeros(len(b) - half_b)])
    weight = np.where(y_test == 1, 1.0 / (len(a) - half_a), 1.0 / (len(b) - half_b))
    return float(roc_auc_score(y_test, ensemble.predict(x_test), sample_weight=weight))


@dataclass(frozen=True)
class AucNull:
    """The distribution of ``two_sample_auc`` for two samples of one distribution (a perfect template).

    Attributes:
        mean, std: of the AUC under that hypothesis.
        n_a, n_b: held-out events of each sample the AUC is computed on.
        source: ``mann-whitney`` (exact moments) or ``empirical (K draws)``.
    """

    mean: float
    std: float
    n_a: int
    n_b: int
    source: str = "mann-whitney"

    def limit(self, n_sigma: float) -> float:
        """The AUC ``n_sigma`` null standard deviations above the null mean."""
        return self.mean + n_sigma * self.std

    def sigmas(self, auc: float) -> float:
        """How many null standard deviations ``auc`` lies above the null mean."""
        return (auc - self.mean) / self.std

    def describe(self, auc: float, n_sigma: float) -> str:
        """One line: the AUC, the null, the limit and the distance to it (for test output and logs)."""
        return (
            f"AUC {auc:.4f} = null {self.mean:.4f} + {self.sigmas(auc):.1f} sigma (sigma {self.std:.4f}, "
            f"{self.source}, {self.n_a} vs {self.n_b} held-out events); limit {n_sigma:g} sigma = "
            f"{self.limit(n_sigma):.4f}, {n_sigma - self.sigmas(auc):+.1f} sigma to spare"
        )


def auc_null(n_a: int, n_b: int, max_events: int = 200_000) -> AucNull:
    """The null of ``two_sample_auc`` for samples of sizes ``n_a`` and ``n_b``, from its held-out halves.

    The classifier is trained on the first halves only, so on the second halves its AUC is a
    Mann-Whitney statistic of a fixed score: under the null (both samples from one distribution) its
    mean is 1/2 and its variance (n1 + n2 + 1) / (12 n1 n2), whatever the classifier learned and on
    any CPU (ties only make the variance smaller, so the limit is conservative).
    """
    n1, n2 = _held_out_sizes(n_a, n_b, max_events)
    if min(n1, n2) < 1:
        raise ConfigError(f"no held-out events to compute an AUC null for sizes {n_a} and {n_b}")
    return AucNull(0.5, float(np.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))), n1, n2)


def empirical_auc_null(
    pool: np.ndarray, n_a: int, n_b: int, repeats: int = 30, seed: int = 0, max_events: int = 200_000
) -> AucNull:
    """The null measured: ``two_sample_auc`` between disjoint random subsets of sizes ``n_a`` and
    ``n_b`` of one pool (true background, or a template and its reference pooled: a permutation test).

    Args:
        pool: (n, d) with n >= n_a + n_b.
    """
    if len(pool) < n_a + n_b:
        raise ConfigError(f"the pool has {len(pool)} events, fewer than {n_a} + {n_b}")
    rng = np.random.default_rng(seed)
    values = []
    for k in range(repeats):
        order = rng.permutation(len(pool))
        a, b = pool[order[:n_a]], pool[order[n_a:n_a + n_b]]
        values.append(two_sample_auc(a, b, seed=seed + k, max_events=max_events))
    n1, n2 = _held_out_sizes(n_a, n_b, max_events)
    return AucNull(float(np.mean(values)), float(np.std(values, ddof=1)), n1, n2, f"empirical ({repeats} draws)")


def feature_histograms(
    sr_data: Events, template: np.ndarray, background: np.ndarray, signal: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """Per-feature histograms (counts) of SR data, template, true SR background and (when given) the
    test set's SR signal on common bins, stored with the record so reports can draw data-versus-template
    plots without re-running."""
    out = {}
    for i, name in enumerate(sr_data.features):
        low, high = np.quantile(sr_data.x[:, i], [0.001, 0.999])
        if not high > low:
            high = low + 1.0
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        out[name] = {
            "edges": np.round(edges, 6).tolist(),
            "data": np.histogram(sr_data.x[:, i], edges)[0].tolist(),
            "template": np.histogram(template[:, i], edges)[0].tolist(),
            "background": np.histogram(background[:, i], edges)[0].tolist(),
        }
        if signal is not None:
            out[name]["signal"] = np.histogram(signal[:, i], edges)[0].tolist()
    return out
