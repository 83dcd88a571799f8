import numpy as np
import pytest

from adbench.errors import DataError
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
