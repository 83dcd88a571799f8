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


def _test_set(rng: np.random.Generator, n_bkg: int = 40_000, n_sig: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a fixed classifier: background N(0, 1), signal N(2.5, 1)."""
    y = np.concatenate([np.ones(n_sig), np.zeros(n_bkg)])
    return y, np.concatenate([rng.normal(2.5, 1, n_sig), rng.normal(0, 1, n_bkg)])


def test_the_bootstrap_error_is_the_spread_over_independent_test_sets():
    """The Poisson bootstrap of one test set against the standard deviation of each metric over 300
    independent test sets of the same size (the classifier fixed). Limits: 20% for AUC and SIC at
    FPR 1e-3; 30% for max SIC, a maximum, which the bootstrap is known to underestimate a little."""
    from adbench.metrics import bootstrap_errors, sensitivity

    rng = np.random.default_rng(3)
    independent = [sensitivity(*_test_set(rng)) for _ in range(300)]
    errors = bootstrap_errors(*_test_set(rng), replicas=200, seed=0)
    for name, limit in (("auc", 0.2), ("sic_1e3", 0.2), ("max_sic", 0.3)):
        truth = np.std([values[name] for values in independent], ddof=1)
        ratio = errors[name] / truth
        print(f"{name}: bootstrap {errors[name]:.4g}, over test sets {truth:.4g}, ratio {ratio:.2f} "
              f"(limit {limit:.0%})")
        assert abs(ratio - 1) < limit


def test_the_bootstrap_gives_nan_where_too_few_replicas_define_a_metric():
    from adbench.metrics import MIN_BOOTSTRAP, bootstrap_errors

    y, s = _test_set(np.random.default_rng(4), n_bkg=2_000, n_sig=50)
    errors = bootstrap_errors(y, s, min_bkg=10**6, replicas=50)  # max SIC needs more background than there is
    assert np.isnan(errors["max_sic"]) and np.isfinite(errors["auc"])
    assert np.isnan(bootstrap_errors(y, s, replicas=MIN_BOOTSTRAP - 1)["auc"])
    assert np.isfinite(bootstrap_errors(y, s, replicas=MIN_BOOTSTRAP)["auc"])


def test_auc_with_ties_is_sklearns():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 5_000)
    s = np.round(rng.normal(y * 0.5, 1), 1)  # heavily tied scores
    assert np.isclose(roc_auc(y, s), roc_auc_score(y, s), rtol=0, atol=1e-12)
