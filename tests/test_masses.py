import numpy as np

from adbench.masses import dijet_density, fit_dijet_function, sample_masses
from adbench.windows import Window


def falling_spectrum(n, rng):
    grid = np.linspace(2.5, 5.0, 5001)
    density = dijet_density(grid, 1.0, 10.0, -5.0, 0.0)
    cdf = np.cumsum(density)
    return np.interp(rng.random(n), cdf / cdf[-1], grid)


def test_samplers_stay_in_the_window():
    rng = np.random.default_rng(0)
    m = falling_spectrum(50_000, rng)
    w = Window()
    for kind in ("histogram", "kde", "dijet"):
        out = sample_masses(kind, m, w, 5000, rng)
        assert out.masses.shape == (5000,) and w.in_sr(out.masses).all(), kind


def test_samplers_follow_the_falling_spectrum():
    rng = np.random.default_rng(1)
    m = falling_spectrum(200_000, rng)
    w = Window()
    truth = m[w.in_sr(m)]
    for kind in ("histogram", "kde", "dijet"):
        out = sample_masses(kind, m, w, 50_000, rng)
        assert abs(np.mean(out.masses) - truth.mean()) < 0.01, kind
        assert abs(np.mean(out.masses < 3.5) - np.mean(truth < 3.5)) < 0.02, kind


def test_dijet_fit_recovers_the_shape():
    rng = np.random.default_rng(2)
    m = falling_spectrum(300_000, rng)
    params = fit_dijet_function(m, Window(), 0.2)
    grid = np.linspace(3.3, 3.7, 5)
    ratio = dijet_density(grid, *params) / dijet_density(grid, 1.0, 10.0, -5.0, 0.0)
    assert np.allclose(ratio / ratio.mean(), 1.0, atol=0.03)


def test_dijet_fit_falls_back_when_sidebands_are_empty():
    rng = np.random.default_rng(3)
    m = rng.uniform(3.3, 3.7, 1000)  # nothing in the sidebands
    out = sample_masses("dijet", m, Window(), 100, rng)
    assert out.note.startswith("histogram (dijet fit failed")
