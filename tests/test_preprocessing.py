import numpy as np
import pytest

from adbench.errors import DataError
from adbench.preprocessing import LogitScaler, MassQuantileTrend, MassTrend


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
