"""The shared downstream classifier (SR data versus template) and template fidelity."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from adbench.errors import ConfigError


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
        """``fast``, or ``paper`` for the published ensemble. Method-specific extra profiles
        (``paper-gpu``, ...) pick the classifier of their base name: ``paper-*`` -> ``paper``."""
        if name == "paper" or name.startswith("paper-"):
            return cls(n_models=50, max_iter=1000)
        if name == "fast" or name.startswith("fast-"):
            return cls()
        raise ConfigError(f"unknown classifier profile {name!r}; choose fast or paper (or fast-*/paper-*)")


class ClassifierEnsemble:
    """Averaged HistGradientBoosting ensemble; each member has its own seed (its own validation
    split). Classes are balanced with sample weights, so a template of any size can be used."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig(), seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    def fit(self, x_pos: np.ndarray, x_neg: np.ndarray) -> ClassifierEnsemble:
        """x_pos: (n1, d) label-1 events (SR data); x_neg: (n0, d) label-0 events (template).

        Members differ by their seed, hence by the random validation subset used for early stopping
        (scikit-learn keeps the trees grown until the stop, as in the published protocol).
        """
        from sklearn.ensemble import HistGradientBoostingClassifier

        x = np.concatenate([x_pos, x_neg]).astype(np.float32)
        y = np.concatenate([np.ones(len(x_pos)), np.zeros(len(x_neg))])
        weight = np.where(y == 1, len(y) / (2 * len(x_pos)), len(y) / (2 * len(x_neg)))
        c = self.config
        self.models_ = []
        for k in range(c.n_models):
            model = HistGradientBoostingClassifier(
                max_iter=c.max_iter,
                learning_rate=c.learning_rate,
                max_leaf_nodes=c.max_leaf_nodes,
                early_stopping=c.early_stopping,
                validation_fraction=c.validation_fraction if c.early_stopping else None,
                random_state=self.seed * 1000 + k,
            )
            self.models_.append(model.fit(x, y, sample_weight=weight))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n,) mean predicted probability of label 1 (of the class-balanced problem)."""
        x = np.asarray(x, dtype=np.float32)
        return np.mean([model.predict_proba(x)[:, 1] for model in self.models_], axis=0)


def two_sample_auc(a: np.ndarray, b: np.ndarray, seed: int = 0, max_events: int = 200_000) -> float:
    """How well a HistGradientBoosting classifier separates two samples: ROC AUC on held-out halves.

    0.5 means indistinguishable. Used for template fidelity (template versus true SR background).

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


def with_classifier(config: ClassifierConfig, **changes: object) -> ClassifierConfig:
    return replace(config, **changes)
