"""The fitted, invertible feature transforms of the generative models: ``LogitScaler`` (min/max ->
logit -> standardise, the papers' choice and the default) and ``QuantileScaler`` (marginal quantiles
-> standard normal). The mass-dependent transforms applied before them are in
``adbench.mass_trends``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adbench.errors import DataError


@dataclass
class LogitScaler:
    """Maps features to an unbounded, standardised space and back.

    ``transform``: scale each feature into (margin, 1 - margin) using the fitted min/max, take the
    logit, then standardise with the fitted mean and std. Values outside the fitted range are clipped
    to it first, so the logit stays finite. ``inverse_transform`` undoes the three steps and always
    returns values inside the fitted range.

    Args:
        margin: fraction of the unit interval kept free at both ends.
    """

    margin: float = 1e-3

    def fit(self, x: np.ndarray) -> LogitScaler:
        """x: (n, d)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise DataError(f"LogitScaler needs at least 2 events of shape (n, d), got {x.shape}")
        if not np.isfinite(x).all():
            raise DataError("LogitScaler: input has NaN or infinite values")
        self.min_ = x.min(axis=0)
        span = x.max(axis=0) - self.min_
        self.span_ = np.where(span > 0, span, 1.0)
        z = self._logit(x)
        self.mean_ = z.mean(axis=0)
        std = z.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        return self

    def _logit(self, x: np.ndarray) -> np.ndarray:
        u = np.clip((x - self.min_) / self.span_, 0.0, 1.0)
        u = self.margin + (1.0 - 2.0 * self.margin) * u
        return np.log(u) - np.log1p(-u)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, d) float32 in the standardised logit space."""
        z = self._logit(np.asarray(x, dtype=np.float64))
        return ((z - self.mean_) / self.std_).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """(n, d) standardised logit values -> (n, d) float32 features."""
        z = np.asarray(z, dtype=np.float64) * self.std_ + self.mean_
        u = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        u = (u - self.margin) / (1.0 - 2.0 * self.margin)
        return (np.clip(u, 0.0, 1.0) * self.span_ + self.min_).astype(np.float32)

    def scaled_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(d,), (d,): the lowest and highest value ``transform`` can give each feature (inputs are
        clipped to the fitted range, so the fitted minimum and maximum land exactly there)."""
        edge = np.log(self.margin) - np.log1p(-self.margin)  # logit(margin) = -logit(1 - margin)
        return (edge - self.mean_) / self.std_, (-edge - self.mean_) / self.std_

    def state_dict(self) -> dict[str, list[float] | float]:
        return {
            "kind": "logit",
            "margin": self.margin,
            "min_": self.min_.tolist(),
            "span_": self.span_.tolist(),
            "mean_": self.mean_.tolist(),
            "std_": self.std_.tolist(),
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> LogitScaler:
        scaler = cls(margin=float(state["margin"]))
        for key in ("min_", "span_", "mean_", "std_"):
            setattr(scaler, key, np.asarray(state[key], dtype=np.float64))
        return scaler


class QuantileScaler:
    """Maps every feature through its fitted marginal quantiles to a standard normal and back
    (scikit-learn's ``QuantileTransformer``): sharp peaks and edges of a marginal (delta_R's spike at
    pi, the bounds of tau21) are spread out, which a generative model learns far more easily than the
    same peak squeezed by a logit. Values outside the fitted range are clipped to it.

    Args:
        n_quantiles: quantiles per feature (the inverse interpolates linearly between them).
    """

    def __init__(self, n_quantiles: int = 2000) -> None:
        self.n_quantiles = n_quantiles

    def fit(self, x: np.ndarray) -> QuantileScaler:
        """x: (n, d)."""
        from sklearn.preprocessing import QuantileTransformer

        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise DataError(f"QuantileScaler needs at least 2 events of shape (n, d), got {x.shape}")
        if not np.isfinite(x).all():
            raise DataError("QuantileScaler: input has NaN or infinite values")
        self.transformer_ = QuantileTransformer(
            n_quantiles=min(self.n_quantiles, len(x)), output_distribution="normal", subsample=len(x),
            random_state=0,
        ).fit(x)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, d) float32, each feature standard normal over the fitted sample."""
        return self.transformer_.transform(np.asarray(x, dtype=np.float64)).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, d) float32 features inside the fitted range."""
        return self.transformer_.inverse_transform(np.asarray(z, dtype=np.float64)).astype(np.float32)

    def state_dict(self) -> dict:
        return {"kind": "quantile", "n_quantiles": self.n_quantiles,
                "quantiles": self.transformer_.quantiles_.tolist(),
                "references": self.transformer_.references_.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> QuantileScaler:
        from sklearn.preprocessing import QuantileTransformer

        scaler = cls(int(state["n_quantiles"]))
        quantiles = np.asarray(state["quantiles"], dtype=np.float64)
        transformer = QuantileTransformer(n_quantiles=len(quantiles), output_distribution="normal")
        transformer.quantiles_ = quantiles
        transformer.references_ = np.asarray(state["references"], dtype=np.float64)
        transformer.n_quantiles_ = len(quantiles)
        transformer.n_features_in_ = quantiles.shape[1]
        transformer.subsample = None
        scaler.transformer_ = transformer
        return scaler


#: Names of the feature transforms a model can use.
SCALERS = {"logit": LogitScaler, "quantile": QuantileScaler}


def scaler_from_state_dict(state: dict):
    """The scaler a ``state_dict`` describes (``LogitScaler`` for the ones without a kind)."""
    return SCALERS[state.get("kind", "logit")].from_state_dict(state)
