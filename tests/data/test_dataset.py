import numpy as np
import pytest

from adbench.data.dataset import Dataset
from adbench.data.events import Events
from adbench.errors import ConfigError


def toy_dataset(n_bkg=2000, n_sig=200, extra=None, fraction=0.2):
    rng = np.random.default_rng(0)
    m = rng.uniform(2.5, 4.5, n_bkg + n_sig)
    x = np.column_stack([np.arange(n_bkg + n_sig), rng.normal(size=n_bkg + n_sig)])  # column 0: event id
    label = np.r_[np.zeros(n_bkg), np.ones(n_sig)]
    return Dataset("toy", Events(m, x, label, ("id", "f")), extra, fraction)


def ids(events):
    return set(events.x[:, 0].astype(int).tolist())


def test_split_is_deterministic_and_disjoint():
    ds = toy_dataset()
    a, b = ds.split(50, seed=3), ds.split(50, seed=3)
    assert np.array_equal(a.data.x, b.data.x) and np.array_equal(a.test.x, b.test.x)
    parts = [ids(a.data), ids(a.test), ids(a.truth.background), ids(a.truth.signal)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == 2200  # a partition of all events
    assert a.data.n_signal == 50 and a.truth.background.n_signal == 0 and a.truth.signal.n_signal == len(a.truth.signal)
    assert abs(len(a.truth.background) - 0.1 * 2000) <= 1  # half of the 20% hold-out
    assert ids(ds.split(50, seed=4).data) != ids(a.data)


def test_injections_are_nested_in_n_sig():
    ds = toy_dataset()
    small, large = ds.split(20, 0), ds.split(80, 0)
    assert ids(small.data.signal()) <= ids(large.data.signal())
    assert ids(small.data.background()) == ids(large.data.background())


def test_extra_background_goes_to_truth_and_test():
    extra = Events(np.full(100, 3.5), np.column_stack([np.arange(10_000, 10_100), np.zeros(100)]), np.zeros(100), ("id", "f"))
    ds = toy_dataset(extra=extra, fraction=0.0)
    split = ds.split(10, 0)
    assert len(split.data.background()) == 2000
    assert ids(extra) <= ids(split.truth.background) | ids(split.test)


def test_n_sig_larger_than_the_pool():
    with pytest.raises(ConfigError, match="larger than the signal pool"):
        toy_dataset().split(201, 0)


def test_needs_held_out_background():
    with pytest.raises(ConfigError, match="no held-out background"):
        toy_dataset(fraction=0.0)


@pytest.mark.parametrize("card", ["synthetic", "synthetic-small"])
def test_synthetic_idealized_template_outnumbers_the_sr_data(card):
    """The idealized template is the held-out true background: the synthetic cards hold out enough
    that it is larger than the SR data (a smaller one limits the classifier, and idealized would
    then be no upper bound on the generative methods, which oversample 3-4x)."""
    from adbench.data.cards import load_dataset
    from adbench.windows import Window

    window = Window(3.3, 3.7)
    split = load_dataset(card).split(1000, 0)
    n_template = len(split.truth_in(window).background)
    n_sr = int(window.in_sr(split.data.m).sum())
    assert n_template >= 1.4 * n_sr, (n_template, n_sr)
