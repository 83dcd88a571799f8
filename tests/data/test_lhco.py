import numpy as np
import pytest

from adbench.data.lhco import load_lhco_events
from adbench.errors import DataError
from tests.conftest import LHCO_100K, lhco_columns, requires_lhco_100k, write_lhco_file


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reads_the_official_layout(tmp_path, dtype):
    values = lhco_columns(500, np.random.default_rng(0))
    events = load_lhco_events(write_lhco_file(tmp_path / "f.h5", values, dtype=dtype))
    assert len(events) == 500 and events.n_features == 5
    assert events.n_signal == int(values[:, -1].sum())
    assert 2.3 < events.m.min() and events.m.max() < 6.5  # pT >= 1.2 TeV back-to-back: mjj >= 2.4 TeV


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_lhco_events(tmp_path / "nope.h5")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(DataError, match="corrupt.h5: cannot be read as HDF5"):
        load_lhco_events(path)


def test_wrong_columns(tmp_path):
    values = lhco_columns(50, np.random.default_rng(0))
    columns = ["a" + str(i) for i in range(15)]
    with pytest.raises(DataError, match="missing columns"):
        load_lhco_events(write_lhco_file(tmp_path / "f.h5", values, columns=columns))


def test_nan_rows_are_named(tmp_path):
    values = lhco_columns(50, np.random.default_rng(0))
    values[7, 3] = np.nan
    with pytest.raises(DataError, match=r"column 'mj1' has 1 NaN/inf values \(first at row 7\)"):
        load_lhco_events(write_lhco_file(tmp_path / "f.h5", values))


def test_file_without_labels_needs_a_default(tmp_path):
    from adbench.data.features import LHCO_COLUMNS

    values = lhco_columns(50, np.random.default_rng(0))[:, :14]
    path = write_lhco_file(tmp_path / "extra.h5", values, columns=list(LHCO_COLUMNS))
    with pytest.raises(DataError, match="no 'label' column"):
        load_lhco_events(path)
    assert load_lhco_events(path, default_label=0).n_signal == 0


@requires_lhco_100k
def test_real_first_100k_events():
    events = load_lhco_events(LHCO_100K)
    assert len(events) == 100_000 and events.n_signal == 9_059
    assert np.isfinite(events.x).all()  # the 12 events with tau1 = 0 included
    assert 1.5 < events.m.min() < 1.7 and 8.5 < events.m.max() < 8.7
    sr = events.in_range(3.3, 3.7)
    assert 10_000 < len(sr.background()) < 14_000
