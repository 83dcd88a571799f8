import numpy as np
import pytest

from adbench.evaluate import ClassifierConfig, ClassifierEnsemble, auc_null, empirical_auc_null, two_sample_auc
from adbench.metrics import max_sic, sic_at_fpr
from tests.conftest import LHCO_SR, requires_lhco_sr


def test_ensemble_separates_shifted_samples_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, (3000, 3)), rng.normal(0, 1, (6000, 3))
    config = ClassifierConfig(n_models=2, max_iter=50)
    p1 = ClassifierEnsemble(config, seed=1).fit(a, b).predict(a[:10])
    p2 = ClassifierEnsemble(config, seed=1).fit(a, b).predict(a[:10])
    assert np.array_equal(p1, p2)
    assert auc_null(len(a), len(b)).sigmas(two_sample_auc(a, b)) > 10
    null = auc_null(4000, 4000)
    assert abs(null.sigmas(two_sample_auc(rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))))) < 4


def test_the_analytic_null_bounds_the_measured_one():
    """The Mann-Whitney null (exact moments for a classifier scored on held-out halves) against 30
    draws of the real thing: same mean, and a spread at least as large (ties only shrink it)."""
    pool = np.random.default_rng(1).normal(size=(12_000, 4)).astype(np.float32)
    measured, exact = empirical_auc_null(pool, 3000, 1000, repeats=30, seed=2), auc_null(3000, 1000)
    print(measured, exact)
    assert (measured.n_a, measured.n_b) == (exact.n_a, exact.n_b) == (1500, 500)
    # the mean of 30 draws lies within 4 standard errors of 1/2
    assert abs(measured.mean - 0.5) < 4 * exact.std / np.sqrt(30)
    # a sample standard deviation of 30 draws exceeds the true one by 50% with probability about 1e-4
    assert measured.std < 1.5 * exact.std
    assert exact.limit(3) == pytest.approx(0.5 + 3 * exact.std)
    assert "sigma to spare" in exact.describe(0.51, 3)


@requires_lhco_sr
@pytest.mark.slow
def test_reproduces_the_reference_sic_on_real_lhco_sr_arrays():
    """REFERENCE.md: a plain 10-member HGB ensemble on the 4 CATHODE features gives max SIC 10.2 for
    data versus background and 13.7 supervised (at least 25 test background events passing)."""
    load = lambda name: np.load(LHCO_SR / f"innerdata_{name}.npy")  # noqa: E731
    train, val, test, extrasig = load("train"), load("val"), load("test"), load("extrasig_train")
    background = val[val[:, -1] == 0][:, 1:5]
    plain = ClassifierConfig(n_models=10, max_iter=100, validation_fraction=0.1)
    y = test[:, -1]
    data_vs_bkg = ClassifierEnsemble(plain, 0).fit(train[:, 1:5], background).predict(test[:, 1:5])
    supervised = ClassifierEnsemble(plain, 0).fit(extrasig[:, 1:5], background).predict(test[:, 1:5])
    assert max_sic(y, data_vs_bkg, min_bkg=25) == pytest.approx(10.2, abs=1.5)
    assert max_sic(y, supervised, min_bkg=25) == pytest.approx(13.7, abs=1.5)
    assert sic_at_fpr(y, supervised, 1e-3) == pytest.approx(12.7, abs=1.5)
