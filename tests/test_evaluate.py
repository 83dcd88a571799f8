import numpy as np
import pytest

from adbench.evaluate import ClassifierConfig, ClassifierEnsemble, two_sample_auc
from adbench.metrics import max_sic, sic_at_fpr
from tests.conftest import LHCO_SR, requires_lhco_sr


def test_ensemble_separates_shifted_samples_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, (3000, 3)), rng.normal(0, 1, (6000, 3))
    config = ClassifierConfig(n_models=2, max_iter=50)
    p1 = ClassifierEnsemble(config, seed=1).fit(a, b).predict(a[:10])
    p2 = ClassifierEnsemble(config, seed=1).fit(a, b).predict(a[:10])
    assert np.array_equal(p1, p2)
    assert two_sample_auc(a, b) > 0.6
    assert abs(two_sample_auc(rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))) - 0.5) < 0.04


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
