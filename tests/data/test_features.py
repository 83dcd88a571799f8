import numpy as np

from adbench.data.features import ALL_FEATURES, LHCO_COLUMNS, derive_features


def one_event(**overrides):
    base = dict(pxj1=1500.0, pyj1=0.0, pzj1=0.0, mj1=500.0, tau1j1=0.5, tau2j1=0.25, tau3j1=0.1,
                pxj2=-1500.0, pyj2=0.0, pzj2=0.0, mj2=100.0, tau1j2=0.4, tau2j2=0.1, tau3j2=0.05)
    base.update(overrides)
    return {k: np.array([v]) for k, v in base.items()}


def test_back_to_back_jets():
    mjj, x = derive_features(one_event())
    e1, e2 = np.sqrt(1500**2 + 500**2), np.sqrt(1500**2 + 100**2)
    assert np.isclose(mjj[0], np.sqrt((e1 + e2) ** 2) / 1000)
    feats = dict(zip(ALL_FEATURES, x[0], strict=True))
    assert np.isclose(feats["mj1"], 0.1) and np.isclose(feats["delta_mj"], 0.4)  # ordered by mass
    assert np.isclose(feats["tau21_j1"], 0.1 / (0.4 + 1e-5))  # lighter jet is jet 2
    assert np.isclose(feats["tau21_j2"], 0.25 / (0.5 + 1e-5))
    assert np.isclose(feats["delta_R"], np.pi)


def test_delta_phi_wraps_around():
    # phi1 = +170 deg, phi2 = -170 deg: |d_phi| = 20 deg, not 340
    a, b = np.deg2rad(170), np.deg2rad(-170)
    event = one_event(pxj1=1500 * np.cos(a), pyj1=1500 * np.sin(a), pxj2=1500 * np.cos(b), pyj2=1500 * np.sin(b))
    _, x = derive_features(event)
    assert np.isclose(x[0, 4], np.deg2rad(20))


def test_tau1_zero_is_finite():
    _, x = derive_features(one_event(tau1j1=0.0, tau2j1=0.0))
    assert np.isfinite(x).all()


def test_columns_constant():
    assert len(LHCO_COLUMNS) == 14
