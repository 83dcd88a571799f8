import numpy as np

from adbench.metrics import CURVE_FPR, downsampled_curve, max_sic, roc_auc, sic_at_fpr, sic_curve


def test_sic_curve_by_hand():
    y = np.array([1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.8, 0.3, 0.2, 0.1])
    fpr, tpr, sic = sic_curve(y, s)
    # at the threshold 0.8: tpr 1/2, fpr 1/4 -> sic 1; at 0.4: tpr 1, fpr 1/4 -> sic 2
    assert np.isclose(sic.max(), 2.0)
    assert sic[fpr == 0].tolist() == [0.0] * int((fpr == 0).sum())


def test_max_sic_respects_the_background_statistics_cut():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.ones(1000), np.zeros(100_000)])
    s = np.concatenate([rng.normal(3, 1, 1000), rng.normal(0, 1, 100_000)])
    fpr, tpr, sic = sic_curve(y, s)
    strict = max_sic(y, s, min_bkg=25)
    assert strict <= sic.max()
    assert np.isclose(strict, sic[fpr * 100_000 >= 25].max())
    assert max_sic(y, s, min_bkg=1000) <= strict


def test_perfect_and_random_classifiers():
    rng = np.random.default_rng(1)
    y = np.concatenate([np.ones(500), np.zeros(50_000)])
    perfect = np.concatenate([np.ones(500), np.zeros(50_000)]) + rng.random(50_500) * 0.1
    assert roc_auc(y, perfect) == 1.0
    assert np.isclose(sic_at_fpr(y, perfect, 1e-3), 1 / np.sqrt(1e-3))
    random = rng.random(50_500)
    assert abs(roc_auc(y, random) - 0.5) < 0.05


def test_sic_at_fpr_needs_enough_background():
    y = np.array([1, 0, 0])
    assert np.isnan(sic_at_fpr(y, np.array([0.9, 0.1, 0.2]), 1e-3))


def test_downsampled_curve_on_grid():
    y = np.array([1, 0, 1, 0])
    curve = downsampled_curve(y, np.array([0.9, 0.1, 0.8, 0.2]))
    assert curve["fpr"] == CURVE_FPR.tolist() and len(curve["tpr"]) == len(CURVE_FPR)
