"""RAD-OT: interpolation, OT pairing, balanced batches, the method contract and template quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ot")

from adbench.data.events import Events  # noqa: E402
from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.masses import sample_masses  # noqa: E402
from adbench.methods.presets import load_preset  # noqa: E402
from adbench.methods.radot import RadOT, balanced_draw, emd_permutation, interpolate  # noqa: E402
from adbench.methods.registry import get_method_class  # noqa: E402
from adbench.windows import Window  # noqa: E402
from tests.conftest import assert_distinguishable, assert_faithful, data_seed  # noqa: E402

WINDOW = Window(3.3, 3.7)
MIXING = np.array(
    [[1.0, 0.5, 0.0, 0.0], [0.3, 1.0, 0.2, 0.0], [0.0, 0.4, 1.0, 0.5], [0.2, 0.0, 0.0, 1.0]]
)
SLOPES = np.array([2.0, 0.8, -0.5, -1.5])  # feature change per TeV


def linear_events(n: int, seed: int) -> Events:
    """A falling mjj spectrum on 2.9-4.1 TeV; features = linear function of mjj + correlated noise
    with an mjj-independent covariance, so the exact SR background is known."""
    rng = np.random.default_rng(seed)
    m = 2.9 + rng.exponential(0.6, size=3 * n)
    m = m[m < 4.1][:n]
    x = 1.0 + np.outer(m - 3.5, SLOPES) + rng.standard_normal((len(m), 4)) @ MIXING.T
    return Events(m, x, np.zeros(len(m), np.int8), ("f0", "f1", "f2", "f3"))


def mirrored_sidebands(n: int, shift: np.ndarray, seed: int) -> tuple[Events, np.ndarray]:
    """n events in SB1 and the same features + ``shift`` (shuffled) in SB2, nothing in the SR."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(shift))).astype(np.float32)
    order = rng.permutation(n)
    m = np.concatenate([rng.uniform(3.1, 3.3, n), rng.uniform(3.7, 3.9, n)])
    features = np.concatenate([x, x[order] + shift.astype(np.float32)])
    names = tuple(f"f{i}" for i in range(len(shift)))
    return Events(m, features, np.zeros(2 * n, np.int8), names), x


@pytest.fixture(scope="module")
def small() -> Events:
    return linear_events(8000, seed=data_seed(0))


@pytest.fixture(scope="module")
def fitted(small: Events) -> RadOT:
    return RadOT(settings={"batch_size": 500}, seed=3).fit(small, WINDOW)


# ---------------------------------------------------------------- interpolation
def test_interpolation_exact_at_the_anchors() -> None:
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=(200, 5)).astype(np.float32)
    x2 = rng.normal(size=(200, 5)).astype(np.float32)
    m1, m2 = rng.uniform(3.1, 3.3, 200), rng.uniform(3.7, 3.9, 200)
    np.testing.assert_array_equal(interpolate(x1, m1, x2, m2, m1), x1)
    np.testing.assert_array_equal(interpolate(x1, m1, x2, m2, m2), x2)
    mid = interpolate(x1, m1, x2, m2, 0.5 * (m1 + m2))
    np.testing.assert_allclose(mid, 0.5 * (x1 + x2), rtol=1e-6, atol=1e-6)
    quarter = interpolate(x1, m1, x2, m2, m1 + 0.25 * (m2 - m1))
    np.testing.assert_allclose(quarter, x1 + 0.25 * (x2 - x1), rtol=1e-5, atol=1e-6)


def test_fitted_pairs_reproduce_their_sideband_events_at_their_masses(fitted: RadOT, small: Events) -> None:
    """Each stored pair holds a real SB1 and a real SB2 event, and its line passes through both."""
    lower = small.select(WINDOW.lower_sideband(small.m, 0.2))
    upper = small.select(WINDOW.upper_sideband(small.m, 0.2))
    by_mass_lower = dict(zip(lower.m.tolist(), map(tuple, lower.x), strict=True))
    by_mass_upper = dict(zip(upper.m.tolist(), map(tuple, upper.x), strict=True))
    for m1, x1, m2, x2 in zip(fitted.m_lower_, fitted.x_lower_, fitted.m_upper_, fitted.x_upper_, strict=True):
        assert by_mass_lower[m1] == tuple(x1) and by_mass_upper[m2] == tuple(x2)
    at_m1 = interpolate(fitted.x_lower_, fitted.m_lower_, fitted.x_upper_, fitted.m_upper_, fitted.m_lower_)
    at_m2 = interpolate(fitted.x_lower_, fitted.m_lower_, fitted.x_upper_, fitted.m_upper_, fitted.m_upper_)
    np.testing.assert_array_equal(at_m1, fitted.x_lower_)
    np.testing.assert_array_equal(at_m2, fitted.x_upper_)


def test_sample_interpolates_each_pair_at_its_target_mass(fitted: RadOT) -> None:
    """sample() returns, for every mass, a point of some pair's line at that mass, and uses the pairs
    equally often (here exactly twice each)."""
    n_pairs = len(fitted.m_lower_)
    masses = np.full(2 * n_pairs, WINDOW.low)
    template = fitted.sample(masses, WINDOW)
    candidates = interpolate(
        fitted.x_lower_, fitted.m_lower_, fitted.x_upper_, fitted.m_upper_, np.full(n_pairs, WINDOW.low)
    )
    lookup = {row.tobytes(): i for i, row in enumerate(candidates)}
    used = np.array([lookup[row.tobytes()] for row in template])
    assert np.bincount(used, minlength=n_pairs).tolist() == [2] * n_pairs


# ---------------------------------------------------------------- OT pairing
def test_emd_pairs_a_set_with_its_shifted_copy() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(400, 3))
    shift = np.array([0.7, -1.2, 0.3])
    order = rng.permutation(400)
    perm, converged = emd_permutation(z, z[order] + shift, max_iter=10**7)
    assert converged
    np.testing.assert_array_equal(order[perm], np.arange(400))


@pytest.mark.parametrize("quantile_output", ["normal", "uniform"])
def test_model_recovers_the_shift_between_mirrored_sidebands(quantile_output: str) -> None:
    """SB2 = SB1 shifted: with one batch, every pair is (event, its shifted copy), even through the
    (per-feature monotone) quantile transform of the cost."""
    shift = np.array([0.5, -0.8, 1.5])
    events, _ = mirrored_sidebands(600, shift, seed=4)
    model = RadOT(settings={"batch_size": 600, "quantile_output": quantile_output}).fit(events, WINDOW)
    assert model.info()["n_batches"] == 1
    np.testing.assert_allclose(model.x_upper_ - model.x_lower_, np.tile(shift, (600, 1)), atol=1e-5)


@pytest.mark.parametrize("batch_order", ["random", "projection"])
def test_batch_order_with_several_batches(batch_order: str) -> None:
    """One feature, SB2 = SB1 shifted, 4 batches: rank blocks along the principal axis hold each
    event and its shifted copy together (exact recovery); random batches mostly do not."""
    events, _ = mirrored_sidebands(600, np.array([0.7]), seed=6)
    model = RadOT(settings={"batch_size": 150, "batch_order": batch_order}).fit(events, WINDOW)
    assert model.info()["n_batches"] == 4
    exact = np.abs(model.x_upper_ - model.x_lower_ - 0.7)[:, 0] < 1e-5
    if batch_order == "projection":
        assert exact.all()
    else:
        assert exact.mean() < 0.5


def test_sinkhorn_argmax_recovers_the_shift_on_cpu() -> None:
    pytest.importorskip("torch")
    shift = np.array([0.5, -0.8, 1.5])
    events, _ = mirrored_sidebands(300, shift, seed=5)
    model = RadOT(settings=dict(
        solver="sinkhorn", batch_size=300, sinkhorn_reg=0.01, sinkhorn_max_iter=300, sinkhorn_pairs="argmax"
    )).fit(events, WINDOW)
    exact = np.all(np.abs(model.x_upper_ - model.x_lower_ - shift) < 1e-5, axis=1)
    assert exact.mean() > 0.9
    info = model.info()
    assert info["solver"] == "sinkhorn" and info["sinkhorn_iterations"] > 0


def test_sinkhorn_sampled_pairs_are_valid_and_seeded(small: Events) -> None:
    pytest.importorskip("torch")
    settings = dict(solver="sinkhorn", batch_size=2000, sinkhorn_reg=0.05, sinkhorn_max_iter=100)
    a = RadOT(settings=settings, seed=7).fit(small, WINDOW)
    b = RadOT(settings=settings, seed=7).fit(small, WINDOW)
    np.testing.assert_array_equal(a.x_upper_, b.x_upper_)
    assert np.all((a.m_upper_ >= WINDOW.high) & (a.m_upper_ < WINDOW.high + 0.2))
    template = a.sample(np.full(500, 3.5), WINDOW)
    assert template.shape == (500, 4) and np.isfinite(template).all()


# ---------------------------------------------------------------- balanced batches
@pytest.mark.parametrize("n_source, n_draw", [(10, 10), (10, 4), (7, 23), (3, 300)])
def test_balanced_draw_uses_each_index_floor_or_ceil_times(n_source: int, n_draw: int) -> None:
    index = balanced_draw(n_source, n_draw, np.random.default_rng(0))
    counts = np.bincount(index, minlength=n_source)
    assert len(index) == n_draw
    assert counts.min() >= n_draw // n_source and counts.max() <= -(-n_draw // n_source)


@pytest.mark.parametrize("balance", ["upsample", "subsample"])
def test_balance_sets_the_number_of_pairs(small: Events, balance: str) -> None:
    n_low = int(WINDOW.lower_sideband(small.m, 0.2).sum())
    n_high = int(WINDOW.upper_sideband(small.m, 0.2).sum())
    assert n_low > n_high  # falling spectrum
    model = RadOT(settings={"batch_size": 700, "balance": balance}).fit(small, WINDOW)
    info = model.info()
    n_pairs = max(n_low, n_high) if balance == "upsample" else min(n_low, n_high)
    assert info["n_pairs"] == n_pairs and info["n_batches"] == -(-n_pairs // 700)
    uses_high = np.unique(model.m_upper_, return_counts=True)[1]
    assert uses_high.max() - uses_high.min() <= 1  # the smaller side is repeated evenly
    if balance == "upsample":
        assert len(np.unique(model.m_lower_)) == n_low  # every SB1 event paired exactly once


# ---------------------------------------------------------------- contract
def test_registered_with_presets() -> None:
    assert get_method_class("radot") is RadOT
    assert RadOT.per_window and RadOT.family == "optimal transport" and RadOT.produces == "template"
    for profile in ("fast", "paper"):
        preset = load_preset("radot", profile)
        assert preset.template.mass_sampler == "dijet"
        assert preset.template.sampler_options["sideband_width"] == 0.2
        assert preset.variant == {"fast": "radot-projection", "paper": ""}[profile]
        RadOT(device="cpu", seed=0, settings=preset.params).check_ready()


def test_contract(small: Events, fitted: RadOT) -> None:
    model = RadOT(settings={"batch_size": 500}, seed=3)
    assert model.fit(small, WINDOW) is model
    masses = np.random.default_rng(0).uniform(WINDOW.low, WINDOW.high, 3000)
    template = model.sample(masses, WINDOW)
    assert template.shape == (3000, 4) and template.dtype == np.float32 and np.isfinite(template).all()
    np.testing.assert_array_equal(template, fitted.sample(masses, WINDOW))  # same seed, same numbers
    other = RadOT(settings={"batch_size": 500}, seed=4).fit(small, WINDOW).sample(masses, WINDOW)
    assert not np.array_equal(template, other)
    info = json.loads(json.dumps(model.info()))
    assert info["solver"] == "emd" and info["batch_size"] == 500 and info["uses_per_pair"] > 0
    sources = model.template_sources()
    assert sources.shape == (3000,) and len(np.unique(sources)) == len(model.m_lower_)  # every pair used


def test_failures(small: Events) -> None:
    with pytest.raises(MethodFailure, match="per signal region"):
        RadOT().fit(small, None)
    with pytest.raises(MethodFailure, match="sideband"):
        RadOT().fit(small.in_range(2.9, 3.7), WINDOW)  # no upper sideband
    with pytest.raises(ConfigError, match="batch_order"):
        RadOT(settings={"batch_order": "sorted"}).fit(small, WINDOW)
    with pytest.raises(ConfigError, match="solver"):
        RadOT(settings={"solver": "hungarian"}).fit(small, WINDOW)
    with pytest.raises(MethodFailure, match="before fit"):
        RadOT().sample(np.full(3, 3.5), WINDOW)


# ---------------------------------------------------------------- template quality
#: Fidelity limit in null standard deviations, as in ``tests/methods/test_sigma.py``. For generator seeds
#: 0-2 the templates sit 5.4-6.2 (linear features) and 4.8-5.9 sigma (synthetic) above the null; random
#: pairs sit at 27-30 sigma and the lower sideband at 20-41 sigma.
FIDELITY_SIGMAS = 12.0


@pytest.mark.slow
def test_template_fidelity_linear_features() -> None:
    """N_sig = 0, features linear in mjj: the template passes for fresh SR background, while pairing
    without OT (the variance shrinks) or skipping the interpolation does not."""
    data, truth = linear_events(60_000, seed=data_seed(10)), linear_events(60_000, seed=data_seed(11))
    true_sr = truth.in_range(WINDOW.low, WINDOW.high).x
    n_template = 4 * int(WINDOW.in_sr(data.m).sum())
    masses = sample_masses("dijet", data.m, WINDOW, n_template, np.random.default_rng(1), sideband_width=0.2)
    assert masses.note.startswith("dijet fit")
    model = RadOT(settings={"batch_size": 1000}, seed=0).fit(data, WINDOW)
    template = model.sample(masses.masses, WINDOW)
    assert_faithful(template, true_sr, FIDELITY_SIGMAS, "radot template, linear features")

    random_pairs = interpolate(model.x_lower_, model.m_lower_, np.random.default_rng(2).permutation(model.x_upper_),
                               model.m_upper_, np.full(len(model.m_lower_), 3.5))
    assert_distinguishable(random_pairs, truth.in_range(3.45, 3.55).x, FIDELITY_SIGMAS, "pairs without OT")
    assert_distinguishable(data.in_range(3.1, 3.3).x, true_sr, FIDELITY_SIGMAS, "lower sideband")


@pytest.mark.slow
def test_template_fidelity_synthetic_dataset() -> None:
    from adbench.data.synthetic import synthetic_dataset

    split = synthetic_dataset(n_background=200_000, n_signal=1000, n_reference=100_000, seed=data_seed(0)).split(0, 0)
    true_sr = split.test_in(WINDOW).background().x
    n_template = 4 * int(WINDOW.in_sr(split.data.m).sum())
    masses = sample_masses("dijet", split.data.m, WINDOW, n_template, np.random.default_rng(1), sideband_width=0.2)
    template = RadOT(settings={"batch_size": 1000}, seed=0).fit(split.data, WINDOW).sample(masses.masses, WINDOW)
    assert_faithful(template, true_sr, FIDELITY_SIGMAS, "radot template, synthetic")
