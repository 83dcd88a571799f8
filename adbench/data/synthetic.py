"""The built-in synthetic dataset: LHCO-like dijets generated on the fly, seeded, in seconds.

Background: mjj follows a falling dijet spectrum with a trigger turn-on,
``p(m) ~ sigmoid((m - m0) / w) (1 - x)^p2 x^(p3 + p4 ln x)``, ``x = m / 13 TeV``. The five features,
each mapped to an unbounded variable ``z`` (log of the jet masses, logit of tau21, log of
delta_R - 1.5), are Gaussian given ``L = ln(m / 3.5 TeV)``: means quadratic in ``L``, log-widths
linear in ``L``, and a fixed correlation matrix. The signal is the same kind of model with its own
parameters and an mjj peak (two Gaussians) near 3.5 TeV.

All parameters are fitted to the first 100k real LHCO events by ``calibrate`` and shipped in
``synthetic_calibration.json`` (regenerate with ``adbench data calibrate-synthetic FILE``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from adbench.data.events import Events
from adbench.data.features import ALL_FEATURES

CALIBRATION_FILE = Path(__file__).with_name("synthetic_calibration.json")
M_PIVOT = 3.5  # TeV
TAU_MAX = 1.5
M_GRID = np.linspace(1.5, 9.0, 7501)


def to_latent(x: np.ndarray) -> np.ndarray:
    """(n, 5) features -> (n, 5) unbounded variables z."""
    z = np.empty_like(x, dtype=np.float64)
    z[:, 0] = np.log(np.clip(x[:, 0], 0, None) + 0.01)
    z[:, 1] = np.log(np.clip(x[:, 1], 0, None) + 0.01)
    for i in (2, 3):
        u = np.clip(x[:, i] / TAU_MAX, 0.003, 0.997)
        z[:, i] = np.log(u) - np.log1p(-u)
    z[:, 4] = np.log(np.clip(x[:, 4] - 1.5, 1e-3, None))
    return z


def from_latent(z: np.ndarray) -> np.ndarray:
    """Inverse of ``to_latent``: (n, 5) -> (n, 5) float32 features."""
    x = np.empty_like(z)
    x[:, 0] = np.clip(np.exp(z[:, 0]) - 0.01, 0, None)
    x[:, 1] = np.clip(np.exp(z[:, 1]) - 0.01, 0, None)
    for i in (2, 3):
        x[:, i] = TAU_MAX / (1.0 + np.exp(-z[:, i]))
    x[:, 4] = np.exp(z[:, 4]) + 1.5
    return x.astype(np.float32)


@dataclass
class FeatureModel:
    """Gaussian z | L: mean = c0 + c1 L + c2 L^2, log std = s0 + s1 L, correlation ``corr``."""

    mean: list[list[float]]  # (5, 3)
    log_std: list[list[float]]  # (5, 2)
    corr: list[list[float]]  # (5, 5)

    @classmethod
    def fit(cls, m: np.ndarray, x: np.ndarray, mean_degree: int = 2) -> FeatureModel:
        L = np.log(m / M_PIVOT)
        z = to_latent(x)
        design = np.stack([np.ones_like(L), L, L**2], axis=1)[:, : mean_degree + 1]
        coef, *_ = np.linalg.lstsq(design, z, rcond=None)  # (deg+1, 5)
        coef = np.vstack([coef, np.zeros((3 - len(coef), 5))])
        resid = z - np.stack([np.ones_like(L), L, L**2], axis=1) @ coef
        # log |r| has mean log(std) + E[log|N(0,1)|] = log(std) - 0.635
        s_coef, *_ = np.linalg.lstsq(design[:, :2], np.log(np.abs(resid) + 1e-12) + 0.635, rcond=None)
        std = np.exp(design[:, :2] @ s_coef)
        corr = np.corrcoef((resid / std).T)
        return cls(coef.T.tolist(), s_coef.T.tolist(), corr.tolist())

    def sample(self, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n,) masses -> (n, 5) features."""
        L = np.log(m / M_PIVOT)
        mean = np.stack([np.ones_like(L), L, L**2], axis=1) @ np.asarray(self.mean).T
        std = np.exp(np.stack([np.ones_like(L), L], axis=1) @ np.asarray(self.log_std).T)
        chol = np.linalg.cholesky(np.asarray(self.corr))
        eps = rng.standard_normal((len(m), 5)) @ chol.T
        return from_latent(mean + std * eps)


@dataclass
class SyntheticModel:
    """All generator parameters; ``fit`` calibrates them on real labelled events."""

    background_mjj: list[float]  # m0, w, p2, p3, p4
    background: FeatureModel
    signal_mjj: list[float]  # weight, mean1, std1, mean2, std2
    signal: FeatureModel
    source: str = ""

    @classmethod
    def fit(cls, events: Events, source: str = "") -> SyntheticModel:
        from sklearn.mixture import GaussianMixture

        events = events.with_features(ALL_FEATURES)
        bkg, sig = events.background(), events.signal()
        gm = GaussianMixture(2, random_state=0).fit(sig.m[:, None])
        order = np.argsort(gm.covariances_.ravel())
        w = gm.weights_[order]
        mu, sd = gm.means_.ravel()[order], np.sqrt(gm.covariances_.ravel()[order])
        signal_mjj = [float(w[0]), float(mu[0]), float(sd[0]), float(mu[1]), float(sd[1])]
        return cls(
            background_mjj=_fit_mjj_spectrum(bkg.m),
            background=FeatureModel.fit(bkg.m, bkg.x, mean_degree=2),
            signal_mjj=signal_mjj,
            signal=FeatureModel.fit(sig.m, sig.x, mean_degree=1),
            source=source,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SyntheticModel:
        raw = json.loads(text)
        return cls(
            background_mjj=raw["background_mjj"],
            background=FeatureModel(**raw["background"]),
            signal_mjj=raw["signal_mjj"],
            signal=FeatureModel(**raw["signal"]),
            source=raw.get("source", ""),
        )

    def sample_background(self, n: int, rng: np.random.Generator) -> Events:
        density = _mjj_density(M_GRID, *self.background_mjj)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
        m = np.interp(rng.random(n), cdf / cdf[-1], M_GRID)
        return Events(m, self.background.sample(m, rng), np.zeros(n, np.int8), ALL_FEATURES)

    def sample_signal(self, n: int, rng: np.random.Generator) -> Events:
        weight, mu1, sd1, mu2, sd2 = self.signal_mjj
        narrow = rng.random(n) < weight
        m = np.where(narrow, rng.normal(mu1, sd1, n), rng.normal(mu2, sd2, n))
        m = np.clip(m, M_GRID[0], M_GRID[-1])
        return Events(m, self.signal.sample(m, rng), np.ones(n, np.int8), ALL_FEATURES)


def _mjj_density(m: np.ndarray, m0: float, w: float, p2: float, p3: float, p4: float) -> np.ndarray:
    x = m / 13.0
    log_p = p2 * np.log1p(-x) + (p3 + p4 * np.log(x)) * np.log(x) - np.logaddexp(0.0, -(m - m0) / w)
    return np.exp(log_p - log_p.max())


def _fit_mjj_spectrum(m: np.ndarray) -> list[float]:
    """Unbinned maximum-likelihood fit of the turn-on x dijet-function shape."""
    from scipy.optimize import minimize

    m = m[(m > M_GRID[0]) & (m < M_GRID[-1])]
    step = M_GRID[1] - M_GRID[0]

    def nll(p: np.ndarray) -> float:
        m0, log_w, p2, p3, p4 = p
        x = m / 13.0
        grid_x = M_GRID / 13.0
        turn = lambda mm: -np.logaddexp(0.0, -(mm - m0) / np.exp(log_w))  # noqa: E731
        shape = lambda xx: p2 * np.log1p(-xx) + (p3 + p4 * np.log(xx)) * np.log(xx)  # noqa: E731
        log_grid = shape(grid_x) + turn(M_GRID)
        top = log_grid.max()
        log_norm = top + np.log(np.exp(log_grid - top).sum() * step)
        value = -(shape(x) + turn(m)).sum() + len(m) * log_norm
        return float(value) if np.isfinite(value) else 1e30

    start = np.array([2.4, np.log(0.1), 10.0, -4.0, 0.0])
    result = minimize(nll, start, method="Nelder-Mead", options={"maxiter": 8000, "xatol": 1e-6, "fatol": 1e-4})
    m0, log_w, p2, p3, p4 = result.x
    return [float(m0), float(np.exp(log_w)), float(p2), float(p3), float(p4)]


def load_calibration(path: Path = CALIBRATION_FILE) -> SyntheticModel:
    return SyntheticModel.from_json(path.read_text())


def make_synthetic(
    n_background: int = 1_000_000,
    n_signal: int = 100_000,
    seed: int = 0,
    model: SyntheticModel | None = None,
) -> Events:
    """Labelled synthetic events (background first, then the signal pool), all five features."""
    model = load_calibration() if model is None else model
    rng_b, rng_s = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    return Events.concatenate([model.sample_background(n_background, rng_b), model.sample_signal(n_signal, rng_s)])


def synthetic_dataset(
    n_background: int = 1_000_000,
    n_signal: int = 100_000,
    n_reference: int = 500_000,
    seed: int = 0,
    name: str = "synthetic",
) -> "Dataset":
    """The synthetic benchmark dataset: data background, a signal pool, and ``n_reference`` extra
    background events (full mass range) held out for the idealized template and the test set.

    ``seed`` fixes the generated events (the dataset); injection and splits have their own seed.
    """
    from adbench.data.dataset import Dataset

    model = load_calibration()
    events = make_synthetic(n_background, n_signal, seed, model)
    extra = model.sample_background(n_reference, np.random.default_rng([seed, 7]))
    return Dataset(name, events, extra_background=extra)
