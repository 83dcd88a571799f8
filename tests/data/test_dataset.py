import numpy as np
import pytest

from adbench.data.dataset import Dataset, HeldOutSample, HoldOut
from adbench.data.events import Events
from adbench.errors import ConfigError
from adbench.windows import Window

WINDOW = Window(3.3, 3.7)


def toy_events(n_bkg=2000, n_sig=200, first_id=0, low=2.5, high=4.5, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.uniform(low, high, n_bkg + n_sig)
    x = np.column_stack([first_id + np.arange(n_bkg + n_sig), rng.normal(size=n_bkg + n_sig)])  # column 0: id
    label = np.r_[np.zeros(n_bkg), np.ones(n_sig)]
    return Events(m, x, label, ("id", "f"))


RANDOM = HoldOut("random", 0.2)


def toy_dataset(held_out=(), holdout=RANDOM):
    return Dataset("toy", toy_events(), tuple(held_out), holdout)


def ids(events):
    return set(events.x[:, 0].astype(int).tolist())


def extra(n=400, low=3.3, high=3.7, coverage=None):
    events = toy_events(n, 0, first_id=10_000, low=low, high=high, seed=9)
    return HeldOutSample.of(events, "extra", coverage)


def everything(split, windows):
    parts = [ids(split.data), ids(split.signal_halves[0]), ids(split.signal_halves[1])]
    parts += [ids(half) for halves in split.background_halves.values() for half in halves]
    return parts


def test_split_is_deterministic_and_disjoint():
    ds = toy_dataset()
    a, b = ds.split(50, seed=3), ds.split(50, seed=3)
    assert np.array_equal(a.data.x, b.data.x) and np.array_equal(a.test_in(WINDOW).x, b.test_in(WINDOW).x)
    parts = everything(a, [WINDOW])
    assert sum(map(len, parts)) == len(set().union(*parts)) == 2200  # a partition of all events
    truth = a.truth_in(WINDOW)
    assert a.data.n_signal == 50 and truth.background.n_signal == 0
    assert abs(len(a.background_halves["main"][0]) - 0.1 * 2000) <= 1  # half of the 20% hold-out
    assert ids(ds.split(50, seed=4).data) != ids(a.data)


def test_injections_are_nested_in_n_sig():
    for holdout in (HoldOut("random", 0.2), HoldOut("sr", 2 / 3)):
        ds = toy_dataset(holdout=holdout)
        small, large = ds.split(20, 0), ds.split(80, 0)
        assert ids(small.data.signal()) <= ids(large.data.signal())
        assert ids(small.data.background()) == ids(large.data.background())


def test_sr_holdout_thins_only_the_signal_region_and_keeps_its_s_over_b():
    ds = toy_dataset(holdout=HoldOut("sr", 2 / 3))
    split = ds.split(200, 0, [WINDOW])
    full = ds.events
    outside = ~WINDOW.in_sr(full.background().m)
    assert ids(split.data.background().select(~WINDOW.in_sr(split.data.background().m))) == ids(
        full.background().select(outside))  # sidebands untouched
    sr_data = split.data.in_range(WINDOW.low, WINDOW.high)
    n_sr_bkg = int(WINDOW.in_sr(full.background().m).sum())
    assert abs(len(sr_data.background()) - n_sr_bkg / 3) <= 1
    # the idealized template (half the held-out SR background) is as large as the SR data's background
    assert abs(len(split.truth_in(WINDOW).background) - len(sr_data.background())) <= 2
    # the injected SR signal is thinned like the background (S/B kept); sideband signal is not
    n_sr_sig = int(WINDOW.in_sr(full.signal().m).sum())
    assert sr_data.n_signal < 0.5 * n_sr_sig
    assert split.data.select(~WINDOW.in_sr(split.data.m)).n_signal == int((~WINDOW.in_sr(full.signal().m)).sum())
    assert split.thinned == (3.3, 3.7, pytest.approx(1 / 3))
    weights = split.mass_weights(np.array([3.2, 3.5]))
    assert weights[0] == 1 and weights[1] == pytest.approx(3.0)


def test_an_extra_sample_serves_the_windows_it_covers_and_main_background_the_others():
    """LHCO's extra QCD covers only 3.3-3.7 TeV: a scan takes its test set and idealized template from
    it there, and from held-out main-file background elsewhere (not from 3.3-3.7 events, not none)."""
    ds = toy_dataset(held_out=[extra()], holdout=HoldOut("sr", 2 / 3))
    other = Window(3.7, 4.1)
    split = ds.split(10, 0, [WINDOW, other])
    assert split.sources == {WINDOW.name: 0, other.name: "main"}
    assert ids(split.test_in(WINDOW).background()) <= set(range(10_000, 10_400))
    assert ids(split.truth_in(WINDOW).background) <= set(range(10_000, 10_400))
    assert ids(split.test_in(other).background()).isdisjoint(range(10_000, 10_400))
    test_other = split.test_in(other).background()
    assert len(test_other) > 20 and (other.in_sr(test_other.m)).all()
    assert split.thinned[:2] == (3.7, 4.1)  # only the uncovered window's span is thinned
    # a run of the covered window alone holds nothing out of the main file
    alone = ds.split(10, 0, [WINDOW])
    assert "main" not in alone.background_halves and len(alone.data.background()) == 2000


def test_a_window_nothing_covers_is_refused_in_one_line():
    ds = toy_dataset(held_out=[extra()], holdout=HoldOut("none"))
    ds.check_covered(WINDOW)
    with pytest.raises(ConfigError, match=r"SR 3.7-4.1 TeV: no held-out background covers it .* 3.3-3.7 TeV"):
        ds.check_covered(Window(3.7, 4.1))
    with pytest.raises(ConfigError, match="no held-out background covers it"):
        ds.split(10, 0, [Window(3.5, 3.9)])


def test_coverage_is_recorded_from_the_card_or_the_masses():
    assert extra().coverage == pytest.approx((3.3, 3.7), abs=0.01)
    assert extra(coverage=[3.2, 3.8]).coverage == (3.2, 3.8)
    with pytest.raises(ConfigError, match="coverage"):
        extra(coverage=[3.8, 3.2])


def test_n_sig_larger_than_the_pool():
    with pytest.raises(ConfigError, match="larger than the signal pool"):
        toy_dataset().split(201, 0)


def test_bad_holdout_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown holdout"):
        HoldOut("half")
    with pytest.raises(ConfigError, match="fraction"):
        HoldOut("sr", 1.0)


@pytest.mark.parametrize("card", ["synthetic", "synthetic-small"])
def test_synthetic_idealized_template_outnumbers_the_sr_data(card):
    """The idealized template is the held-out true background: the synthetic cards hold out enough
    that it is larger than the SR data (a smaller one limits the classifier, and idealized would
    then be no upper bound on the generative methods)."""
    from adbench.data.cards import load_dataset

    split = load_dataset(card).split(1000, 0, [WINDOW])
    n_template = len(split.truth_in(WINDOW).background)
    n_sr = int(WINDOW.in_sr(split.data.m).sum())
    assert n_template >= 1.4 * n_sr, (n_template, n_sr)
