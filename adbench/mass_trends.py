"""Mass-dependent, invertible transforms of chosen features, applied before the feature transform of
``adbench.preprocessing``: ``MassTrend`` (a polynomial drift of location and scale), ``MassQuantileTrend``
(conditional quantiles to a standard normal), ``DijetEdgeTrend`` (delta_R over its kinematic edge
at the dijet mass) and ``DijetStretchTrend`` (delta_R's part above pi stretched to a fixed edge). Not
in the papers: adbench options, measured in tests/benchmarks/ablation_sigma.py,
tests/benchmarks/dijet_edge.py and reports/ (see reports/README)."""

from __future__ import annotations

import numpy as np

from adbench.errors import DataError


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
        degree: degree of the polynomials (in the mass standardised over the fitted sample).
    """

    kind = "location-scale"
    #: The only feature names this kind may transform (empty: any).
    APPLIES_TO: tuple[str, ...] = ()
    #: Scalar settings beyond ``columns`` and ``degree``, saved by ``state_dict``.
    _options: tuple[str, ...] = ()

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

    def _prepare(self, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Checks the input and records the mass standardisation and the features' ranges."""
        x = np.asarray(x, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        name = type(self).__name__
        if x.ndim != 2 or len(m) != len(x):
            raise DataError(f"{name} needs x (n, d) and m (n,), got {x.shape} and {m.shape}")
        bad = [column for column in self.columns if not 0 <= column < x.shape[1]]
        if bad:
            raise DataError(f"{name}: columns {bad} do not exist in {x.shape[1]} features")
        if len(x) <= 2 * (self.degree + 1):
            raise DataError(f"{name}: {len(x)} events are too few for a degree-{self.degree} fit")
        if not (np.isfinite(x).all() and np.isfinite(m).all()):
            raise DataError(f"{name}: input has NaN or infinite values")
        self.m_center_ = float(m.mean())
        self.m_scale_ = float(m.std()) or 1.0
        self.m_range_ = (float(m.min()), float(m.max()))
        self.x_min_ = x[:, list(self.columns)].min(axis=0)
        self.x_max_ = x[:, list(self.columns)].max(axis=0)
        return x, m

    def fit(self, x: np.ndarray, m: np.ndarray) -> MassTrend:
        """x: (n, d) features, m: (n,) masses."""
        x, m = self._prepare(x, m)
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

    def _detrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(n, len(columns)) features -> detrended values."""
        powers = self._powers(m)
        return (values - powers @ self.location_.T) / np.exp(powers @ self.log_scale_.T)

    def _retrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Inverse of ``_detrend``."""
        powers = self._powers(m)
        return values * np.exp(powers @ self.log_scale_.T) + powers @ self.location_.T

    def transform(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(n, d) features at masses (n,) -> (n, d) float64 with the chosen columns detrended."""
        out = np.array(x, dtype=np.float64)
        columns = list(self.columns)
        out[:, columns] = self._detrend(out[:, columns], np.asarray(m, dtype=np.float64))
        return out

    def inverse_transform(
        self, z: np.ndarray, m: np.ndarray, anchors: tuple[float, float] | None = None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """(n, d) detrended values at masses (n,) -> (n, d) float32 features.

        With ``anchors`` (m1, m2) and ``weights`` xi: (n,), the trend is not read at the masses but
        interpolated between the anchors, ``xi T(z | m1) + (1 - xi) T(z | m2)``, as SIGMA interpolates
        its velocity: a template for the SR then uses nothing the trend learnt inside it. For the
        conditional quantiles this averages quantiles, which smears a structure that stays in place
        while its weight changes (delta_R's spike at pi): on synthetic at LHCO size, SR 3.3-3.7, exact
        standard-normal draws mapped back this way give delta_R a chi2/ndf of 14 against the SR
        background (1.1 read at the SR masses). Averaging the anchors' CDFs instead was tried and is
        far worse (197): delta_R's bulk moves by about its width between the anchors, and a mixture
        of the two is not the distribution in between.
        """
        out = np.array(z, dtype=np.float64)
        columns = list(self.columns)
        values = out[:, columns]
        if anchors is None:
            restored = self._retrend(values, np.asarray(m, dtype=np.float64))
        else:
            if weights is None:
                raise DataError("MassTrend.inverse_transform: anchors need their interpolation weights")
            w = np.asarray(weights, dtype=np.float64)[:, None]
            at = [self._retrend(values, np.full(len(values), float(anchor))) for anchor in anchors]
            restored = w * at[0] + (1.0 - w) * at[1]
        out[:, columns] = np.clip(restored, self.x_min_, self.x_max_)
        return out.astype(np.float32)

    #: Fitted array attributes beyond the shared ones, saved by ``state_dict``.
    _arrays = ("location_", "log_scale_")

    def state_dict(self) -> dict:
        state = {"kind": self.kind, "columns": list(self.columns), "degree": self.degree,
                 "m_center_": self.m_center_, "m_scale_": self.m_scale_, "m_range_": list(self.m_range_)}
        state.update({key: getattr(self, key).tolist() for key in ("x_min_", "x_max_", *self._arrays)})
        state.update({key: getattr(self, key) for key in self._options})
        return state

    @staticmethod
    def from_state_dict(state: dict) -> MassTrend:
        """The trend of any kind a ``state_dict`` describes."""
        cls = MASS_TRENDS[state.get("kind", MassTrend.kind)]
        trend = cls(tuple(state["columns"]), int(state["degree"]))
        trend.m_center_, trend.m_scale_ = float(state["m_center_"]), float(state["m_scale_"])
        trend.m_range_ = tuple(float(v) for v in state["m_range_"])
        for key in ("x_min_", "x_max_", *cls._arrays):
            setattr(trend, key, np.asarray(state[key], dtype=np.float64))
        for key in cls._options:
            if key in state:
                setattr(trend, key, type(getattr(trend, key))(state[key]))
        return trend


class MassQuantileTrend(MassTrend):
    """Maps each chosen feature through its conditional quantiles given the mass to a standard
    normal: ``x_j -> Phi^-1(F_j(x_j | m))``, the mass-dependent version of ``QuantileScaler``. Where
    ``MassTrend`` removes a drift of location and scale, this removes every change of the marginal's
    shape too (delta_R: a spike at pi whose weight, and a tail whose width, change with the mass).

    ``F_j(. | m)``: the empirical quantiles at ``LEVELS`` in equal-count mass bins, linear in m between
    the bins' median masses (constant beyond the outer ones) and linear between levels. A polynomial
    in m per level was tried first: over a data set's whole mass range (1.5-8.6 TeV on LHCO) a quartic
    leaves the 16% quantile of the output drifting by 0.2 across 3-4 TeV. The tables in the SR's bins
    hold the SR's signal: SIGMA's templates therefore interpolate the tables between the anchors
    (``inverse_transform`` with ``anchors``), v_data's read them at the SR masses (it learns the
    signal anyway), v_CR's are fitted on the sidebands.

    Args:
        columns: indices of the features to transform.
        degree: unused (the interface of ``MassTrend``).
        bins: equal-count mass bins.
    """

    kind = "quantile"
    #: The probability levels: both ends (the bins' extremes), and dense in the tails.
    LEVELS = np.concatenate([[0.0], 0.5 * (1 + np.tanh(np.linspace(-4.0, 4.0, 119))), [1.0]])
    _arrays = ("centers_", "quantiles_")
    _options = ("bins",)
    #: Events transformed at once (the per-event quantile table is (chunk, levels)).
    CHUNK = 100_000

    def __init__(self, columns: tuple[int, ...], degree: int = 2, bins: int = 32) -> None:
        super().__init__(columns, degree)
        self.bins = int(bins)

    def fit(self, x: np.ndarray, m: np.ndarray) -> MassQuantileTrend:
        """x: (n, d) features, m: (n,) masses."""
        x, m = self._prepare(x, m)
        if len(x) < 20 * self.bins:
            raise DataError(f"MassQuantileTrend: {len(x)} events are too few for {self.bins} mass bins")
        groups = np.array_split(np.argsort(m, kind="stable"), self.bins)
        self.centers_ = np.array([np.median(m[group]) for group in groups])
        # quantiles_: (columns, bins, levels).
        self.quantiles_ = np.stack([
            np.stack([np.quantile(x[group, column], self.LEVELS) for group in groups]) for column in self.columns
        ])
        return self

    def _table(self, m: np.ndarray, row: int) -> np.ndarray:
        """(n,) masses -> (n, levels) non-decreasing quantiles of column ``row`` at those masses."""
        centers = self.centers_
        upper = np.clip(np.searchsorted(centers, m), 1, len(centers) - 1)
        gap = centers[upper] - centers[upper - 1]
        weight = np.clip((m - centers[upper - 1]) / np.where(gap > 0, gap, 1.0), 0.0, 1.0)[:, None]
        tables = self.quantiles_[row]
        return (1.0 - weight) * tables[upper - 1] + weight * tables[upper]

    def _each_column(self, values: np.ndarray, m: np.ndarray, convert) -> np.ndarray:
        """``convert(table, v)`` per column and chunk of events: table (chunk, levels) the column's
        quantiles at the events' masses, v (chunk,) its values; returns (n, columns)."""
        out = np.empty_like(values)
        for start in range(0, len(values), self.CHUNK):
            part = slice(start, start + self.CHUNK)
            for row in range(len(self.columns)):
                out[part, row] = convert(self._table(m[part], row), values[part, row])
        return out

    @staticmethod
    def _bracket(table: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The table's entries at ``upper - 1`` and ``upper`` of each row."""
        return (np.take_along_axis(table, (upper - 1)[:, None], 1)[:, 0],
                np.take_along_axis(table, upper[:, None], 1)[:, 0])

    def _detrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        from scipy.special import ndtri

        levels = self.LEVELS

        def to_normal(table: np.ndarray, v: np.ndarray) -> np.ndarray:
            upper = np.clip((table < v[:, None]).sum(axis=1), 1, len(levels) - 1)
            low, high = self._bracket(table, upper)
            share = np.clip((v - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0)
            p = levels[upper - 1] + share * (levels[upper] - levels[upper - 1])
            return ndtri(np.clip(p, 1e-7, 1 - 1e-7))

        return self._each_column(values, m, to_normal)

    def _retrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        from scipy.special import ndtr

        levels = self.LEVELS

        def from_normal(table: np.ndarray, z: np.ndarray) -> np.ndarray:
            p = ndtr(z)
            upper = np.clip(np.searchsorted(levels, p, side="right"), 1, len(levels) - 1)
            share = np.clip((p - levels[upper - 1]) / (levels[upper] - levels[upper - 1]), 0.0, 1.0)
            low, high = self._bracket(table, upper)
            return low + share * (high - low)

        return self._each_column(values, m, from_normal)


class DijetEdgeTrend(MassTrend):
    """delta_R divided by its kinematic edge at the event's dijet mass, ``R_max(m)``: a transform with
    nothing fitted, known at every mass, so a template read at SR masses uses nothing from the SR.

    Two jets with transverse momenta pT1, pT2 >= pT_min (massless, or massive with pseudorapidities)
    have ``mjj^2 >= 2 pT1 pT2 (cosh delta_eta - cos delta_phi)``; at a given mjj, delta_R is then largest
    for both jets at pT_min and back to back in phi, which gives
    ``R_max(m)^2 = pi^2 + (2 arccosh(m / (2 pT_min)))^2``. The LHCO trigger asks only one jet to pass
    pT_min, so R_max bounds most events, not all: from 2.7 to 4.1 TeV 2.2-3.6% of the background lies
    above it (lhco-100k, lhcolike, synthetic). QCD's t-channel piles events against it, and it moves with
    the mass: by 0.16 across 3.3-3.7 TeV, where templates interpolated across the SR put the pile-up too
    low (reports/README, "largest shortfall"). From 2.9 to 4.1 TeV the background's 90% and 99%
    quantiles of delta_R move by 0.37-0.41; divided by R_max, by at most 0.006 and 0.010 (real LHCO
    0.003 and 0.005; ``tests/benchmarks/dijet_edge.py``, reports/dijet-edge-cpu.json). The price is in
    the bulk below pi, set by radiation (delta_phi < pi), not by the edge: its 10% quantile moves by 0.07
    divided (0.08-0.09 raw), more in delta_R's units once multiplied back; the model learns that part.

    Below 2 pT_min there is no edge: the squared arccosh is continued analytically (as ``-arccos^2``),
    so R_max stays smooth in m and falls below pi (2.58 at 1.5 TeV). That adds a mass trend raw delta_R
    lacks there (the divided 90% quantile falls from 1.12-1.13 at 1.5-1.8 TeV to 0.99-1.00 at
    2.4-2.7 TeV); holding R_max at pi below 2 pT_min would avoid it at the cost of a kink in m. About 5%
    of LHCO's events lie below 2.4 TeV, all far from the SRs of 3.3-3.7 TeV, so the smooth form was kept.

    Args:
        columns: indices of the features to transform (delta_R only: ``APPLIES_TO``).
        degree: unused (the interface of ``MassTrend``).
        pt_min: the trigger's jet pT threshold in TeV.
    """

    kind = "dijet-edge"
    APPLIES_TO = ("delta_R",)
    _arrays = ()
    _options = ("pt_min",)
    #: The LHC Olympics R&D trigger: one anti-kT R = 1 jet with pT > 1.2 TeV (lhcolike's too).
    LHCO_TRIGGER_PT = 1.2

    def __init__(self, columns: tuple[int, ...], degree: int = 0, pt_min: float = LHCO_TRIGGER_PT) -> None:
        super().__init__(columns, 0)
        if not pt_min > 0:
            raise DataError(f"DijetEdgeTrend: pt_min must be > 0 TeV, got {pt_min}")
        self.pt_min = float(pt_min)

    def edge(self, m: np.ndarray) -> np.ndarray:
        """(n,) dijet masses in TeV -> (n,) R_max(m), the kinematic edge of delta_R."""
        u = np.asarray(m, dtype=np.float64) / (2.0 * self.pt_min)
        if not (np.isfinite(u).all() and (u > 0).all()):
            raise DataError("DijetEdgeTrend: dijet masses must be finite and > 0")
        above = np.arccosh(np.maximum(u, 1.0)) ** 2
        below = -np.arccos(np.clip(u, -1.0, 1.0)) ** 2
        # (pi/2)^2 * 4 = pi^2 at m -> 0: R_max would vanish; a floor keeps the division finite.
        return np.sqrt(np.maximum(np.pi ** 2 + 4.0 * np.where(u >= 1.0, above, below), 1e-6))

    def fit(self, x: np.ndarray, m: np.ndarray) -> DijetEdgeTrend:
        """x: (n, d) features, m: (n,) masses; records only the features' ranges (nothing is fitted)."""
        self._prepare(x, m)
        self.edge(m)
        return self

    def _detrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(n, len(columns)) values at masses (n,) -> (n, len(columns)) divided by R_max."""
        return values / self.edge(m)[:, None]

    def _retrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Inverse of ``_detrend``."""
        return values * self.edge(m)[:, None]

    def inverse_transform(
        self, z: np.ndarray, m: np.ndarray, anchors: tuple[float, float] | None = None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """(n, d) transformed values at masses (n,) -> (n, d) float32 features, always at the events'
        own masses: the edge is known, not learnt, so SIGMA's anchors and weights are not needed."""
        return super().inverse_transform(z, m)


class DijetStretchTrend(DijetEdgeTrend):
    """delta_R's part above pi stretched so that its kinematic edge ``R_max(m)`` sits at the reference
    edge ``R_max(m_ref)`` at every mass, the part below pi untouched: the back-to-back peak at pi stays
    where it is (``DijetEdgeTrend`` moves it with the mass), the edge stops moving.

    With ``y = delta_R - pi`` and ``s(m) = (R_max(m_ref) - pi) / (R_max(m) - pi)`` the transform is
    ``y -> y + (s - 1) y^2 / (y + smoothing)`` for y > 0: its slope runs smoothly from 1 at pi (no kink
    at the peak, where a piecewise-linear stretch would put a mass-dependent step into the density) to
    s far above it, and it is increasing for every s > 0, with a closed-form inverse (a quadratic).
    From 2.9 to 4.1 TeV the piecewise-linear stretch moves the background's 90-99% quantiles by
    0.03-0.05 against 0.37-0.41 raw (``tests/benchmarks/dijet_edge.py``, reports/dijet-edge-cpu.json).
    Near and below ``2 pT_min`` the edge closes in on pi (below it there is none): the gap
    ``R_max(m) - pi`` is floored at ``(R_max(m_ref) - pi) / max_stretch``, so s never exceeds
    ``max_stretch`` (reached at about 2.55 TeV for a 3.05 TeV reference, with a kink in m there; about
    7% of LHCO's events lie below, far from the SRs). With s != 1 the density's slope change at pi is
    not removed but spread over about ``smoothing`` above it.

    Args:
        columns: indices of the features to transform (delta_R only: ``APPLIES_TO``).
        degree: unused (the interface of ``MassTrend``).
        pt_min: the trigger's jet pT threshold in TeV.
        smoothing: the width above pi (in delta_R) over which the slope turns from 1 to s.
        max_stretch: the largest s, reached where the gap to pi falls to 1 / max_stretch of the
            reference's (about 2.55 TeV for a 3.05 TeV reference) and below.
    The reference mass ``m_ref`` is the median mass of the fitted sample (it sets the scale of the
    transformed values above pi, and a little of their shape within ``smoothing`` of pi).
    """

    kind = "dijet-stretch"
    _options = ("pt_min", "smoothing", "max_stretch", "reference_mass_")

    def __init__(self, columns: tuple[int, ...], degree: int = 0, pt_min: float = DijetEdgeTrend.LHCO_TRIGGER_PT,
                 smoothing: float = 0.03, max_stretch: float = 4.0) -> None:
        super().__init__(columns, degree, pt_min)
        if not smoothing > 0:
            raise DataError(f"DijetStretchTrend: smoothing must be > 0, got {smoothing}")
        if not max_stretch > 1:
            raise DataError(f"DijetStretchTrend: max_stretch must be > 1, got {max_stretch}")
        self.smoothing = float(smoothing)
        self.max_stretch = float(max_stretch)
        self.reference_mass_ = 0.0

    def fit(self, x: np.ndarray, m: np.ndarray) -> DijetStretchTrend:
        """x: (n, d) features, m: (n,) masses; records the features' ranges and the reference mass."""
        super().fit(x, m)
        self.reference_mass_ = float(np.median(np.asarray(m, dtype=np.float64)))
        if not float(self.edge(np.array([self.reference_mass_]))[0]) > np.pi:
            raise DataError(f"DijetStretchTrend: the fitted sample's median mass {self.reference_mass_:.3g} TeV "
                            f"lies below 2 pT_min = {2 * self.pt_min:.3g} TeV, where delta_R has no edge above pi")
        return self

    def stretch(self, m: np.ndarray) -> np.ndarray:
        """(n,) dijet masses in TeV -> (n, 1) s(m), the slope far above pi."""
        gap_ref = float(self.edge(np.array([self.reference_mass_]))[0]) - np.pi
        gap = np.maximum(self.edge(m) - np.pi, gap_ref / self.max_stretch)
        return (gap_ref / gap)[:, None]

    def _detrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        """(n, len(columns)) values at masses (n,) -> (n, len(columns)) stretched above pi."""
        y = np.maximum(values - np.pi, 0.0)
        return values + (self.stretch(m) - 1.0) * y ** 2 / (y + self.smoothing)

    def _retrend(self, values: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Inverse of ``_detrend``: s y^2 + (smoothing - v) y - v smoothing = 0 for v = value - pi > 0."""
        s, delta = self.stretch(m), self.smoothing
        v = np.maximum(values - np.pi, 0.0)
        y = ((v - delta) + np.sqrt((delta - v) ** 2 + 4.0 * s * v * delta)) / (2.0 * s)
        return np.where(values > np.pi, np.pi + y, values)


#: The kinds of mass trend, by name.
MASS_TRENDS = {kind.kind: kind for kind in (MassTrend, MassQuantileTrend, DijetEdgeTrend, DijetStretchTrend)}
