import numpy as np
import pytest

from adbench.data.events import Events
from adbench.errors import DataError


def make(n=10, d=3):
    rng = np.random.default_rng(0)
    return Events(np.linspace(3.0, 4.0, n), rng.normal(size=(n, d)), np.arange(n) % 2, [f"f{i}" for i in range(d)])


def test_dtypes_and_selection():
    events = make()
    assert events.x.dtype == np.float32 and events.label.dtype == np.int8 and events.m.dtype == np.float64
    assert len(events.in_range(3.3, 3.7)) == int(((events.m >= 3.3) & (events.m < 3.7)).sum())
    assert events.signal().label.all() and not events.background().label.any()
    assert events.with_features(["f2", "f0"]).x[:, 0].tolist() == events.x[:, 2].tolist()


def test_split_is_a_partition():
    events = make(101)
    a, b = events.split(0.3, np.random.default_rng(1))
    assert len(a) == 30 and len(b) == 71
    assert sorted(np.concatenate([a.m, b.m]).tolist()) == sorted(events.m.tolist())


@pytest.mark.parametrize("bad", [
    dict(m=np.zeros(3), x=np.zeros((4, 2)), label=np.zeros(3)),
    dict(m=np.zeros(3), x=np.zeros(3), label=np.zeros(3)),
    dict(m=np.zeros(3), x=np.zeros((3, 2)), label=np.zeros(3), features=("a",)),
])
def test_inconsistent_arrays_are_rejected(bad):
    with pytest.raises(DataError):
        Events(**bad)


def test_concatenate_checks_features():
    a = make()
    with pytest.raises(DataError, match="feature sets differ"):
        Events.concatenate([a, a.with_features(["f0", "f1"])])
    assert len(Events.concatenate([a, a])) == 20


def test_point_masses_are_shared_values_not_ties_of_a_small_sample():
    rng = np.random.default_rng(0)
    small = Events(rng.uniform(3, 4, 800), rng.random((800, 2)), np.zeros(800), ("a", "b"))
    assert small.point_masses() == []
    x = rng.random((50_000, 2))
    x[:100, 1] = 0.25
    (found,) = Events(rng.uniform(3, 4, 50_000), x, np.zeros(50_000), ("a", "b")).point_masses()
    assert found == ("b", 0.25, 0.002)
