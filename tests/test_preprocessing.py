import json

import numpy as np
import pytest

from adbench.errors import DataError
from adbench.mass_trends import DijetEdgeTrend, DijetStretchTrend, MassQuantileTrend, MassTrend
from adbench.preprocessing import LogitScaler


def test_round_trip_and_standardisation():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.exponential(0.1, 5000), rng.uniform(0, 1.2, 5000), rng.normal(3.2, 0.2, 5000)])
    scaler = LogitScaler().fit(x)
    z = scaler.transform(x)
    assert np.allclose(z.mean(axis=0), 0, atol=1e-3) and np.allclose(z.std(axis=0), 1, atol=1e-3)
    assert np.allclose(scaler.inverse_transform(z), x, rtol=1e-4, atol=1e-5)


def test_out_of_range_is_clipped_and_inverse_stays_in_range():
    x = np.random.default_rng(1).uniform(0, 1, (1000, 2))
    scaler = LogitScaler().fit(x)
    assert np.isfinite(scaler.transform(np.array([[-5.0, 7.0]]))).all()
    back = scaler.inverse_transform(np.array([[40.0, -40.0]]))
    assert (back >= x.min(axis=0) - 1e-6).all() and (back <= x.max(axis=0) + 1e-6).all()


def test_state_dict_round_trip():
    x = np.random.default_rng(2).normal(size=(100, 3))
    scaler = LogitScaler().fit(x)
    clone = LogitScaler.from_state_dict(scaler.state_dict())
    assert np.array_equal(clone.transform(x), scaler.transform(x))


def test_rejects_nan():
    with pytest.raises(DataError):
        LogitScaler().fit(np.array([[1.0], [np.nan]]))


def trending_sample(n: int = 20000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) features: column 0 mass-independent, column 1 with a location and a scale that follow m."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(2.8, 4.2, n)
    x = np.column_stack([rng.normal(size=n), 1.0 + 0.8 * m + (0.1 + 0.05 * (m - 2.8)) * rng.standard_t(8, n)])
    return x, m


def test_mass_trend_removes_location_and_scale_drift_and_inverts():
    x, m = trending_sample()
    trend = MassTrend((1,)).fit(x, m)
    z = trend.transform(x, m)
    assert np.array_equal(z[:, 0], x[:, 0])  # columns not chosen are untouched
    assert abs(np.corrcoef(m, x[:, 1])[0, 1]) > 0.9
    low, high = m < 3.1, m > 3.9
    # The slices' medians and spreads agree after the transform (each within 5 standard errors).
    for part in (low, high):
        assert abs(np.median(z[part, 1])) < 5 * 1.25 / np.sqrt(part.sum())
    # The raw 16-84% spreads of the two slices differ by a factor 1.5; after the transform by < 10%.
    spread = [np.subtract(*np.quantile(z[part, 1], [0.84, 0.16])) for part in (low, high)]
    assert abs(spread[0] / spread[1] - 1) < 0.1
    assert np.allclose(trend.inverse_transform(z, m), x, atol=1e-5)


def test_mass_trend_state_round_trip_and_bad_input():
    x, m = trending_sample(500)
    trend = MassTrend((1,), degree=1).fit(x, m)
    clone = MassTrend.from_state_dict(trend.state_dict())
    assert np.array_equal(clone.transform(x, m), trend.transform(x, m))
    with pytest.raises(DataError, match="columns"):
        MassTrend((2,)).fit(x, m)
    with pytest.raises(DataError, match="NaN"):
        MassTrend((1,)).fit(np.where(np.arange(500)[:, None] == 3, np.nan, x), m)


def test_mass_trend_inverse_stays_in_range_and_a_constant_column_stays_tame():
    x, m = trending_sample(2000)
    x = np.column_stack([x, np.full(len(x), 2.5)])
    trend = MassTrend((1, 2)).fit(x, m)
    z = trend.transform(x, m)
    assert np.abs(z[:, 2]).max() < 1e-3  # not rounding noise blown up by a vanishing scale
    back = trend.inverse_transform(np.full((3, 3), 50.0), np.array([1.0, 3.5, 9.0]))  # masses off range too
    assert (back[:, 1] <= x[:, 1].max() + 1e-6).all() and np.isfinite(back).all()
    assert np.allclose(back[:, 2], 2.5)


def test_mass_quantile_trend_gives_a_standard_normal_at_every_mass_and_inverts():
    rng = np.random.default_rng(4)
    m = rng.uniform(2.8, 4.2, 40000)
    # A spike whose weight falls with m plus a tail whose width grows with it: not location-scale.
    spike = rng.uniform(size=len(m)) < 0.6 - 0.3 * (m - 2.8)
    x = np.where(spike, 3.14 + 0.01 * rng.normal(size=len(m)), 3.14 + (m - 2.0) * rng.exponential(0.2, len(m)))
    x = np.column_stack([rng.normal(size=len(m)), x])
    trend = MassQuantileTrend((1,)).fit(x, m)
    z = trend.transform(x, m)
    assert np.array_equal(z[:, 0], x[:, 0])
    for part in (m < 3.0, m > 4.0):
        q16, q50, q84 = np.quantile(z[part, 1], [0.16, 0.5, 0.84])
        # Standard errors of these quantiles are about 0.03 for ~5700 events; limits at 4 of them.
        print(f"16/50/84%: {q16:.3f} {q50:.3f} {q84:.3f} (standard normal -0.994 0 0.994, limit 0.12)")
        assert abs(q16 + 0.994) < 0.12 and abs(q50) < 0.12 and abs(q84 - 0.994) < 0.12
    back = trend.inverse_transform(z, m)
    assert np.mean(np.abs(back[:, 1] - x[:, 1]) < 1e-3) > 0.999
    clone = MassTrend.from_state_dict(trend.state_dict())
    assert isinstance(clone, MassQuantileTrend) and np.array_equal(clone.transform(x, m), z)
    coarse = MassQuantileTrend((1,), bins=8).fit(x, m)
    assert MassTrend.from_state_dict(coarse.state_dict()).bins == 8


def test_states_saved_before_the_kinds_moved_still_load():
    x, m = trending_sample(2000)
    # A location-scale state of the first version had no "kind"; a quantile state stored its "bins".
    plain = MassTrend((1,), degree=1).fit(x, m)
    old_state = {key: value for key, value in plain.state_dict().items() if key != "kind"}
    assert np.array_equal(MassTrend.from_state_dict(old_state).transform(x, m), plain.transform(x, m))
    quantile = MassQuantileTrend((1,), bins=8).fit(x, m)
    state = json.loads(json.dumps(quantile.state_dict()))
    assert state["bins"] == 8 and MassTrend.from_state_dict(state).bins == 8


@pytest.mark.parametrize("kind", [MassTrend, MassQuantileTrend])
def test_anchored_inverse_interpolates_between_the_anchors_only(kind):
    x, m = trending_sample(20000)
    trend = kind((1,)).fit(x, m)
    z = trend.transform(x, m)[:5]
    at = {anchor: trend.inverse_transform(z, np.full(5, anchor))[:, 1] for anchor in (3.2, 3.8)}
    w = np.array([1.0, 0.0, 0.5, 0.25, 0.75])
    # The masses asked for play no part: only the anchors and the weights.
    mixed = trend.inverse_transform(z, np.full(5, 9.9), anchors=(3.2, 3.8), weights=w)[:, 1]
    assert np.allclose(mixed, w * at[3.2] + (1 - w) * at[3.8], atol=1e-5)
    with pytest.raises(DataError, match="weights"):
        trend.inverse_transform(z, np.full(5, 3.5), anchors=(3.2, 3.8))


def massless_dijets(n: int, pt_min: float, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(n,) mjj [TeV] and (n,) delta_R of two massless jets, both above ``pt_min``, nearly back to back."""
    rng = np.random.default_rng(seed)
    pt = pt_min + rng.exponential(0.3, (2, n))
    eta = rng.uniform(-2.5, 2.5, (2, n))
    dphi = np.pi - np.abs(rng.normal(0.0, 0.3, n))
    # Massless: E = pT cosh(eta), pz = pT sinh(eta); the jets' phis differ by dphi.
    energy = (pt * np.cosh(eta)).sum(axis=0)
    pz = (pt * np.sinh(eta)).sum(axis=0)
    px, py = pt[0] + pt[1] * np.cos(dphi), pt[1] * np.sin(dphi)
    mjj = np.sqrt(energy ** 2 - pz ** 2 - px ** 2 - py ** 2)
    return mjj, np.hypot(eta[0] - eta[1], dphi)


def test_dijet_edge_is_the_kinematic_bound_of_delta_R():
    pt_min = 1.2
    edge = DijetEdgeTrend((0,), pt_min=pt_min)
    mjj, delta_r = massless_dijets(200_000, pt_min)
    above = mjj > 2 * pt_min
    # No event with both jets above pt_min passes the edge; the ones near it sit on it.
    ratio = delta_r[above] / edge.edge(mjj[above])
    assert ratio.max() <= 1 + 1e-9 and ratio.max() > 0.99
    # Both jets exactly at the threshold and back to back: delta_R is the edge itself.
    deta = np.linspace(0.0, 2.0, 9)
    mjj_at = 2 * pt_min * np.cosh(deta / 2)
    assert np.allclose(edge.edge(mjj_at), np.hypot(np.pi, deta), atol=1e-6)
    # Smooth through m = 2 pt_min, where arccosh^2 is continued by -arccos^2 (slopes agree on both sides).
    m = 2 * pt_min + np.array([-2e-4, -1e-4, 0.0, 1e-4, 2e-4])
    slopes = np.diff(edge.edge(m)) / 1e-4
    assert np.allclose(slopes, slopes[0], rtol=1e-3) and np.isfinite(slopes).all()


def test_dijet_edge_trend_inverts_at_the_events_masses_ignoring_anchors():
    rng = np.random.default_rng(6)
    m = rng.uniform(2.8, 4.2, 3000)
    x = np.column_stack([rng.normal(size=3000), np.pi + 0.3 * rng.normal(size=3000)])
    trend = DijetEdgeTrend((1,), pt_min=1.1).fit(x, m)
    z = trend.transform(x, m)
    assert np.array_equal(z[:, 0], x[:, 0]) and np.allclose(z[:, 1], x[:, 1] / trend.edge(m))
    assert np.allclose(trend.inverse_transform(z, m), x, atol=1e-5)
    # Nothing was fitted, so SIGMA's anchors are not needed: the events' own masses are used.
    anchored = trend.inverse_transform(z, m, anchors=(3.0, 4.0), weights=np.full(len(m), 0.5))
    assert np.array_equal(anchored, trend.inverse_transform(z, m))
    clone = MassTrend.from_state_dict(trend.state_dict())
    assert isinstance(clone, DijetEdgeTrend) and clone.pt_min == 1.1
    assert np.array_equal(clone.transform(x, m), z)
    with pytest.raises(DataError, match="pt_min"):
        DijetEdgeTrend((1,), pt_min=0.0)
    with pytest.raises(DataError, match="masses must be finite and > 0"):
        trend.transform(x[:2], np.array([3.5, -1.0]))


def test_dijet_stretch_keeps_pi_and_moves_the_edge_to_the_reference():
    rng = np.random.default_rng(8)
    m = rng.uniform(2.6, 4.4, 4000)
    x = np.column_stack([rng.normal(size=4000), np.pi + 0.4 * rng.normal(size=4000)])
    trend = DijetStretchTrend((1,), smoothing=0.03).fit(x, m)
    assert trend.reference_mass_ == pytest.approx(np.median(m))
    z = trend.transform(x, m)
    below = x[:, 1] <= np.pi
    # Below pi nothing moves; the other column never does.
    assert np.array_equal(z[below, 1], x[below, 1]) and np.array_equal(z[:, 0], x[:, 0])
    # The edge at every mass lands near the reference edge (exactly up to the smoothing's offset).
    masses = np.array([2.8, 3.3, 3.7, 4.2])
    edges = trend.edge(masses)
    moved = trend.transform(np.column_stack([np.zeros(4), edges]), masses)[:, 1]
    reference = trend.edge(np.array([trend.reference_mass_]))[0]
    assert np.abs(moved - reference).max() < 0.1 < np.ptp(edges)
    # Increasing in delta_R at each mass (including below 2 pT_min, where the stretch is capped),
    # with a slope of 1 at pi (no kink at the back-to-back peak), and inverted exactly.
    grid = np.linspace(2.0, 5.0, 3001)
    for mass in (2.0, 2.6, 3.5, 4.4):
        values = trend.transform(np.column_stack([np.zeros_like(grid), grid]), np.full_like(grid, mass))[:, 1]
        assert (np.diff(values) > 0).all()
        near_pi = np.pi + np.array([0.0, 1e-5])
        step = trend.transform(np.column_stack([np.zeros(2), near_pi]), np.full(2, mass))[:, 1]
        assert np.diff(step)[0] / 1e-5 == pytest.approx(1.0, abs=0.01)
        assert trend.stretch(np.array([mass]))[0, 0] <= trend.max_stretch
    assert np.allclose(trend.inverse_transform(z, m), x, atol=1e-5)
    custom = DijetStretchTrend((1,), pt_min=1.1, smoothing=0.05, max_stretch=3.0).fit(x, m)
    clone = MassTrend.from_state_dict(json.loads(json.dumps(custom.state_dict())))
    assert isinstance(clone, DijetStretchTrend)
    assert (clone.pt_min, clone.smoothing, clone.max_stretch, clone.reference_mass_) == \
        (1.1, 0.05, 3.0, custom.reference_mass_)
    assert np.array_equal(clone.transform(x, m), custom.transform(x, m))
    assert not np.allclose(custom.transform(x, m), z)
    for bad in ({"smoothing": 0.0}, {"max_stretch": 1.0}):
        with pytest.raises(DataError, match=next(iter(bad))):
            DijetStretchTrend((1,), **bad)
    with pytest.raises(DataError, match="below 2 pT_min"):
        DijetStretchTrend((1,)).fit(x, np.full(4000, 2.0))
