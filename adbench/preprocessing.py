"""The fitted, invertible feature transforms of the generative models: ``LogitScaler`` (min/max ->
logit -> standardise, the papers' choice and the default), ``QuantileScaler`` (marginal quantiles
-> standard normal), and ``MassTrend`` (removes the mass dependence of chosen features' location and
scale before either; an adbench option)."""

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


class MassTrend:
    """Removes the smooth mass dependence of the location and scale of chosen features:
    ``x_j -> (x_j - mu_j(m)) / s_j(m)``, with ``mu_j`` a polynomial in m fitted to x_j by least squares
    and ``log s_j`` one fitted to the log squared residuals. The inverse uses each event's own mass and
    clips to the fitted range of each feature; masses are clamped to the fitted mass range (no
    extrapolation of the polynomials).

    delta_R follows mjj closely (its median rises with the mass; r = 0.7 on LHCO): a generative model
    of p(x | m) then has to carry that drift across the SR, and an interpolation between the sideband
    anchors has to reproduce it. With the trend removed the model only learns what is left. Not in the
    SIGMA paper: an adbench option, measured in tests/benchmarks/ablation_sigma.py.

    Args:
        columns: indices of the features to detrend.
        degree: degree of both polynomials (in the mass standardised over the fitted sample).
    """

    def __init__(self, columns: tuple[int, ...], degree: int = 2) -> None:
        if degree < 0:
            raise DataError(f"MassTrend: degree must be >= 0, got {degree}")
        self.columns = tuple(int(column) for column in columns)
        self.degree = int(degree)

    def _powers(self, m: np.ndarray) -> np.ndarray:
        """(n,) masses -> (n, degree + 1) powers of the standardised mass."""
        m = np.clip(np.asarray(m, dtype=np.float64), *self.m_range_)
        u = (m - self.m_center_) / self.m_scale_
        return np.vander(u, self.degree + 1)

    def fit(self, x: np.ndarray, m: np.ndarray) -> MassTrend:
        """x: (n, d) features, m: (n,) masses."""
        x = np.asarray(x, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        if x.ndim != 2 or len(m) != len(x):
            raise DataError(f"MassTrend needs x (n, d) and m (n,), got {x.shape} and {m.shape}")
        bad = [column for column in self.columns if not 0 <= column < x.shape[1]]
        if bad:
            raise DataError(f"MassTrend: columns {bad} do not exist in {x.shape[1]} features")
        if len(x) <= 2 * (self.degree + 1):
            raise DataError(f"MassTrend: {len(x)} events are too few for a degree-{self.degree} fit")
        if not (np.isfinite(x).all() and np.isfinite(m).all()):
            raise DataError("MassTrend: input has NaN or infinite values")
        self.m_center_ = float(m.mean())
        self.m_scale_ = float(m.std()) or 1.0
        self.m_range_ = (float(m.min()), float(m.max()))
        self.x_min_ = x[:, list(self.columns)].min(axis=0)
        self.x_max_ = x[:, list(self.columns)].max(axis=0)
        powers = self._powers(m)
        self.location_ = np.empty((len(self.columns), self.degree + 1))
        self.log_scale_ = np.empty((len(self.columns), self.degree + 1))
        for row, column in enumerate(self.columns):
            self.location_[row] = np.linalg.lstsq(powers, x[:, column], rcond=None)[0]
            residual = x[:, column] - powers @ self.location_[row]
            # Exact values would give log 0; a (nearly) constant feature keeps a scale near its own size.
            floor = 1e-6 * float(np.var(x[:, column])) + 1e-12 * (1.0 + float(np.mean(x[:, column] ** 2)))
            self.log_scale_[row] = 0.5 * np.linalg.lstsq(powers, np.log(residual ** 2 + floor), rcond=None)[0]
        return self

    def _trend(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) masses -> location and scale, each (n, len(columns))."""
        powers = self._powers(m)
        return powers @ self.location_.T, np.exp(powers @ self.log_scale_.T)

    def transform(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(n, d) features at masses (n,) -> (n, d) float64 with the chosen columns detrended."""
        out = np.array(x, dtype=np.float64)
        location, scale = self._trend(m)
        columns = list(self.columns)
        out[:, columns] = (out[:, columns] - location) / scale
        return out

    def inverse_transform(self, z: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(n, d) detrended values at masses (n,) -> (n, d) float32 features."""
        out = np.array(z, dtype=np.float64)
        location, scale = self._trend(m)
        columns = list(self.columns)
        out[:, columns] = np.clip(out[:, columns] * scale + location, self.x_min_, self.x_max_)
        return out.astype(np.float32)

    def state_dict(self) -> dict:
        return {"columns": list(self.columns), "degree": self.degree, "m_center_": self.m_center_,
                "m_scale_": self.m_scale_, "m_range_": list(self.m_range_), "x_min_": self.x_min_.tolist(),
                "x_max_": self.x_max_.tolist(), "location_": self.location_.tolist(),
                "log_scale_": self.log_scale_.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> MassTrend:
        trend = cls(tuple(state["columns"]), int(state["degree"]))
        trend.m_center_, trend.m_scale_ = float(state["m_center_"]), float(state["m_scale_"])
        trend.m_range_ = tuple(float(v) for v in state["m_range_"])
        trend.x_min_ = np.asarray(state["x_min_"], dtype=np.float64)
        trend.x_max_ = np.asarray(state["x_max_"], dtype=np.float64)
        trend.location_ = np.asarray(state["location_"], dtype=np.float64).reshape(len(trend.columns), -1)
        trend.log_scale_ = np.asarray(state["log_scale_"], dtype=np.float64).reshape(len(trend.columns), -1)
        return trend


#: Names of the feature transforms a model can use.
SCALERS = {"logit": LogitScaler, "quantile": QuantileScaler}


def scaler_from_state_dict(state: dict):
    """The scaler a ``state_dict`` describes (``LogitScaler`` for the ones without a kind)."""
    return SCALERS[state.get("kind", "logit")].from_state_dict(state)
