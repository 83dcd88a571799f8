"""Derived dijet features from the LHCO jet columns (px, py, pz, m, tau_N of two jets, in GeV)."""

from __future__ import annotations

import numpy as np

#: Columns of the official LHCO features file, in order.
LHCO_COLUMNS: tuple[str, ...] = (
    "pxj1", "pyj1", "pzj1", "mj1", "tau1j1", "tau2j1", "tau3j1",
    "pxj2", "pyj2", "pzj2", "mj2", "tau1j2", "tau2j2", "tau3j2",
)  # fmt: skip

#: All derived features, in TeV where they are masses.
ALL_FEATURES: tuple[str, ...] = ("mj1", "delta_mj", "tau21_j1", "tau21_j2", "delta_R")

#: Named feature sets: CATHODE's four and SIGMA's five (with delta_R, strongly correlated with mjj).
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "cathode": ("mj1", "delta_mj", "tau21_j1", "tau21_j2"),
    "sigma": ("mj1", "delta_mj", "tau21_j1", "tau21_j2", "delta_R"),
}

TAU_EPSILON = 1e-5  # as in the LHCO community code: tau21 = tau2 / (tau1 + eps), finite at tau1 = 0


def derive_features(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Dijet mass and the derived features from the raw jet columns.

    Args:
        columns: the arrays of ``LHCO_COLUMNS`` by name, each (n,), GeV.

    Returns:
        mjj: (n,) dijet invariant mass in TeV.
        x: (n, 5) float64 with the columns of ``ALL_FEATURES``: the lighter jet mass, the mass
            difference heavier - lighter (TeV), tau21 of the lighter and of the heavier jet, and the
            angular distance delta_R between the two jets.
    """
    c = {name: np.asarray(columns[name], dtype=np.float64) for name in LHCO_COLUMNS}
    jets = []
    for j in ("j1", "j2"):
        px, py, pz, mass = c[f"px{j}"], c[f"py{j}"], c[f"pz{j}"], c[f"m{j}"]
        energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
        pt = np.hypot(px, py)
        eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
        phi = np.arctan2(py, px)
        tau21 = c[f"tau2{j}"] / (c[f"tau1{j}"] + TAU_EPSILON)
        jets.append((px, py, pz, energy, mass, eta, phi, tau21))
    (px1, py1, pz1, e1, m1, eta1, phi1, t1), (px2, py2, pz2, e2, m2, eta2, phi2, t2) = jets

    mjj2 = (e1 + e2) ** 2 - (px1 + px2) ** 2 - (py1 + py2) ** 2 - (pz1 + pz2) ** 2
    mjj = np.sqrt(np.clip(mjj2, 0.0, None)) / 1000.0

    first_lighter = m1 <= m2
    m_light = np.where(first_lighter, m1, m2) / 1000.0
    m_heavy = np.where(first_lighter, m2, m1) / 1000.0
    tau21_light = np.where(first_lighter, t1, t2)
    tau21_heavy = np.where(first_lighter, t2, t1)
    d_phi = np.angle(np.exp(1j * (phi1 - phi2)))  # wrapped to (-pi, pi]
    delta_r = np.hypot(eta1 - eta2, d_phi)

    x = np.stack([m_light, m_heavy - m_light, tau21_light, tau21_heavy, delta_r], axis=1)
    return mjj, x
