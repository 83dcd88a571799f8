import numpy as np

from adbench.data.lhco import load_lhco_events
from adbench.data.synthetic import load_calibration, make_synthetic
from tests.conftest import LHCO_100K, data_seed, requires_lhco_100k


def test_seeded_and_sized():
    a, b = make_synthetic(20_000, 2_000, seed=5), make_synthetic(20_000, 2_000, seed=5)
    assert np.array_equal(a.x, b.x) and len(a) == 22_000 and a.n_signal == 2_000
    assert not np.array_equal(a.x, make_synthetic(20_000, 2_000, seed=6).x)
    assert np.isfinite(a.x).all() and (a.x[:, [0, 1]] >= 0).all()


def test_looks_like_lhco_where_it_matters():
    events = make_synthetic(200_000, 20_000, seed=data_seed(0))
    bkg, sig = events.background(), events.signal()
    # a falling spectrum above the trigger turn-on
    counts, _ = np.histogram(bkg.m, bins=[3.0, 3.5, 4.0, 4.5, 5.0])
    assert (np.diff(counts) < 0).all()
    # jet masses grow with mjj; delta_R strongly correlated with mjj
    low, high = bkg.in_range(2.6, 2.9), bkg.in_range(4.0, 5.0)
    assert np.median(high.x[:, 0]) > np.median(low.x[:, 0])
    assert np.corrcoef(bkg.m, bkg.x[:, 4])[0, 1] > 0.5
    # a localized signal: mjj near 3.5 TeV, jets near 0.1 and 0.5 TeV, low tau21
    assert 0.6 < np.mean((sig.m > 3.3) & (sig.m < 3.7)) < 0.9
    assert abs(np.median(sig.x[:, 0]) - 0.11) < 0.03
    assert abs(np.median(sig.x[:, 0] + sig.x[:, 1]) - 0.5) < 0.05
    assert np.median(sig.x[:, 3]) < np.median(bkg.x[:, 3]) - 0.15


@requires_lhco_100k
def test_calibration_matches_the_real_events():
    real = load_lhco_events(LHCO_100K).background()
    fake = load_calibration().sample_background(200_000, np.random.default_rng(0))
    assert np.allclose(np.quantile(fake.m, [0.1, 0.5, 0.9]), np.quantile(real.m, [0.1, 0.5, 0.9]), rtol=0.02)
    for i, name in enumerate(real.features):
        q_real, q_fake = np.quantile(real.x[:, i], [0.25, 0.5, 0.75]), np.quantile(fake.x[:, i], [0.25, 0.5, 0.75])
        assert np.allclose(q_fake, q_real, rtol=0.1, atol=0.01), name
        corr_real, corr_fake = np.corrcoef(real.m, real.x[:, i])[0, 1], np.corrcoef(fake.m, fake.x[:, i])[0, 1]
        assert abs(corr_real - corr_fake) < 0.05, name


def test_comparison_figure_and_stats_of_two_synthetic_samples():
    from adbench.data.synthetic_compare import comparison_figure, comparison_stats

    a, b = make_synthetic(60_000, 1_000, seed=data_seed(1)), make_synthetic(60_000, 1_000, seed=data_seed(2))
    stats = comparison_stats(a, b)
    assert set(stats) == set(a.features)
    for name, s in stats.items():
        assert s["max_median_shift"] < 0.3, name
        assert abs(s["corr_mjj_real"] - s["corr_mjj_synthetic"]) < 0.05, name
    fig = comparison_figure(a, b)
    assert len(fig.axes) == 3 * (len(a.features) + 1)


@requires_lhco_100k
def test_conditional_medians_follow_the_real_events(tmp_path):
    """The doc figure's numbers: per mjj bin, the synthetic median of every feature lies within a
    third of the real 16-84% half-width of the real median (the figure: docs/synthetic_vs_lhco.png)."""
    from adbench.data.synthetic_compare import comparison_figure, comparison_stats, synthetic_like

    real = load_lhco_events(LHCO_100K)
    fake = synthetic_like(real, seed=0)
    for name, s in comparison_stats(real, fake).items():
        assert s["max_median_shift"] < 0.35, (name, s)
        assert abs(s["signal_median_real"] - s["signal_median_synthetic"]) < 0.03, (name, s)
    comparison_figure(real, fake).savefig(tmp_path / "compare.png")
    assert (tmp_path / "compare.png").stat().st_size > 10_000
