"""The conditional flow behind CATHODE/ANODE: densities, sampling, model selection, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("zuko")

from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.models import flows  # noqa: E402
from adbench.models.flows import ConditionalFlow, FlowConfig, scaler_log_jacobian  # noqa: E402
from adbench.models.training import TrainConfig  # noqa: E402
from adbench.preprocessing import LogitScaler  # noqa: E402
from tests.conftest import randomised  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian_1d(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x | m ~ N(m, 0.5) with m ~ U(1, 3): (n, 1) features and (n,) masses."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(1.0, 3.0, n)
    return (m + 0.5 * rng.standard_normal(n)).astype(np.float32)[:, None], m


def correlated_2d(n: int = 4_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two features that move with the mass and with each other: (n, 2), (n,)."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(2.0, 5.0, n)
    a = 0.3 * m + 0.2 * rng.standard_normal(n)
    b = np.exp(0.5 * a + 0.1 * rng.standard_normal(n))
    return np.column_stack([a, b]).astype(np.float32), m


TINY = dict(transforms=2, hidden=16)
TINY_TRAIN = dict(epochs=3, batch_size=128, lr=1e-2, keep_best=2)


@pytest.fixture(scope="module")
def gaussian_flow() -> ConditionalFlow:
    x, m = gaussian_1d()
    config, train = FlowConfig(transforms=3, hidden=32), TrainConfig(epochs=10, batch_size=512, lr=3e-3, keep_best=3)
    torch.set_num_threads(1)
    return ConditionalFlow(config, train, seed=0).fit(x, m)


@pytest.fixture(scope="module")
def flow_2d() -> ConditionalFlow:
    x, m = correlated_2d()
    return ConditionalFlow(FlowConfig(**TINY), TrainConfig(**TINY_TRAIN), seed=3).fit(x, m)


@pytest.mark.slow
@pytest.mark.parametrize("mass", [1.5, 2.5])
def test_fitted_gaussian_density_integrates_and_recovers_mean_and_width(gaussian_flow, mass):
    x, _ = gaussian_1d()
    grid = np.linspace(x.min(), x.max(), 4001)
    density = np.exp(gaussian_flow.log_prob(grid[:, None].astype(np.float32), np.full(len(grid), mass)))
    dx = grid[1] - grid[0]
    total = density.sum() * dx
    mean = (grid * density).sum() * dx / total
    width = np.sqrt(((grid - mean) ** 2 * density).sum() * dx / total)
    assert total == pytest.approx(1.0, abs=0.01)
    assert mean == pytest.approx(mass, abs=0.06)
    assert width == pytest.approx(0.5, rel=0.1)


@pytest.mark.slow
def test_gaussian_samples_follow_the_mass(gaussian_flow):
    masses = np.repeat([1.5, 2.5], 3000)
    sample = gaussian_flow.sample(masses)
    assert sample.shape == (6000, 1) and sample.dtype == np.float32
    for mass in (1.5, 2.5):
        part = sample[masses == mass, 0]
        assert part.mean() == pytest.approx(mass, abs=0.06)
        assert part.std() == pytest.approx(0.5, rel=0.1)


def test_sample_shape_finite_order_and_seed(flow_2d):
    masses = np.linspace(2.0, 5.0, 1001)
    sample = flow_2d.sample(masses)
    assert sample.shape == (1001, 2) and sample.dtype == np.float32
    assert np.isfinite(sample).all()
    # rows follow the given masses: the first feature rises with m (0.3 per TeV in the data)
    assert np.corrcoef(masses, sample[:, 0])[0, 1] > 0.5
    np.testing.assert_array_equal(sample, flow_2d.sample(masses))
    assert not np.array_equal(sample, flow_2d.sample(masses, seed=99))
    # inverse preprocessing keeps samples inside the training range
    x, _ = correlated_2d()
    assert (sample >= x.min(axis=0)).all() and (sample <= x.max(axis=0)).all()


def test_same_seed_same_fit():
    x, m = correlated_2d(1000)
    a = ConditionalFlow(FlowConfig(**TINY), TrainConfig(**TINY_TRAIN), seed=5).fit(x, m)
    b = ConditionalFlow(FlowConfig(**TINY), TrainConfig(**TINY_TRAIN), seed=5).fit(x, m)
    assert a.record_.val_losses == b.record_.val_losses
    np.testing.assert_array_equal(a.sample(m[:50]), b.sample(m[:50]))


def test_keeps_the_best_epochs_and_reports_them(flow_2d):
    record = flow_2d.record_
    assert flow_2d.n_kept == 2 == len(record.kept_epochs)
    ranked = sorted(range(record.epochs_run), key=lambda i: record.val_losses[i])[:2]
    assert record.kept_epochs == [i + 1 for i in ranked]
    assert record.kept_val_losses == [record.val_losses[i] for i in ranked]
    info = flow_2d.info()
    assert info["backend"] == "zuko" and info["epochs_run"] == 3
    assert info["kept_epochs"] == record.kept_epochs and info["kept_val_losses"] == record.kept_val_losses
    assert info["n_train"] + info["n_val"] == 4000 and info["n_val"] == 800


def test_kept_states_differ_and_are_all_used(flow_2d):
    a, b = flow_2d.states_
    assert any(not torch.equal(a[key], b[key]) for key in a)
    # the mixture density lies between the two epochs' own densities
    x, m = correlated_2d(200, seed=1)
    mixture = flow_2d.log_prob(x, m)
    single = []
    for state in flow_2d.states_:
        flow_2d.module_.load_state_dict(state)
        z = torch.as_tensor(flow_2d.scaler_.transform(x))
        c = torch.as_tensor(flow_2d._context(m))
        with torch.no_grad():
            single.append(flows.flow_log_prob(flow_2d.module_, "zuko", z, c).double().numpy())
    single = np.array(single) + scaler_log_jacobian(flow_2d.scaler_, x)
    assert (mixture >= single.min(axis=0) - 1e-6).all() and (mixture <= single.max(axis=0) + 1e-6).all()


def test_patience_stops_early():
    x, m = correlated_2d(1000)
    flow = ConditionalFlow(
        FlowConfig(**TINY), TrainConfig(epochs=40, batch_size=100, lr=3e-2, keep_best=1, patience=1), seed=0
    ).fit(x, m)
    assert flow.record_.stopped == "patience" and flow.record_.epochs_run < 40


def test_max_events_subsamples():
    x, m = correlated_2d(3000)
    flow = ConditionalFlow(FlowConfig(**TINY), TrainConfig(epochs=1, max_events=1000, keep_best=1)).fit(x, m)
    assert flow.record_.n_train + flow.record_.n_val == 1000


def test_save_load_round_trip(flow_2d, tmp_path):
    flow_2d.save(tmp_path / "flow")
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == ["flow.json", "states.pt"]
    assert_same_flow(ConditionalFlow.load(tmp_path / "flow"), flow_2d)


def assert_same_flow(loaded: ConditionalFlow, flow: ConditionalFlow) -> None:
    x, m = correlated_2d(300, seed=2)
    np.testing.assert_allclose(loaded.log_prob(x, m), flow.log_prob(x, m), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.sample(m), flow.sample(m))
    assert loaded.info() == flow.info() and loaded.config == flow.config


def test_spline_flow_save_load_round_trip(tmp_path):
    x, m = correlated_2d(1000)
    flow = ConditionalFlow(FlowConfig(kind="nsf", bins=4, **TINY), TrainConfig(epochs=1, keep_best=1), seed=0).fit(x, m)
    flow.save(tmp_path / "flow")
    assert_same_flow(ConditionalFlow.load(tmp_path / "flow"), flow)


def test_physical_density_adds_the_scaler_jacobian(flow_2d):
    x, m = correlated_2d(100, seed=4)
    difference = flow_2d.log_prob(x, m) - flow_2d.log_prob(x, m, physical=False)
    np.testing.assert_allclose(difference, scaler_log_jacobian(flow_2d.scaler_, x), atol=1e-9)


def test_scaler_jacobian_matches_finite_differences():
    x, _ = correlated_2d(500)
    scaler = LogitScaler().fit(x)
    point = np.array([[0.9, 1.6]], dtype=np.float64)
    eps = 1e-5
    numeric = sum(
        np.log(abs(scaler.transform(point + eps * np.eye(2)[j]).astype(np.float64)[0, j]
                   - scaler.transform(point - eps * np.eye(2)[j]).astype(np.float64)[0, j]) / (2 * eps))
        for j in range(2)
    )
    assert scaler_log_jacobian(scaler, point)[0] == pytest.approx(numeric, abs=0.02)


def test_shared_scaler_is_used():
    x, m = correlated_2d(1000)
    scaler = LogitScaler().fit(x * 1.5)
    flow = ConditionalFlow(FlowConfig(**TINY), TrainConfig(epochs=1, keep_best=1)).fit(x, m, scaler)
    assert flow.scaler_ is scaler


def test_divergence_before_any_finite_epoch_is_a_method_failure(monkeypatch):
    x, m = correlated_2d(1000)
    original = flows.flow_log_prob
    monkeypatch.setattr(flows, "flow_log_prob", lambda *args: original(*args) * float("nan"))
    with pytest.raises(MethodFailure, match="diverged at epoch 1"):
        ConditionalFlow(FlowConfig(**TINY), TrainConfig(epochs=2, keep_best=1), seed=0).fit(x, m)


def test_divergence_after_finite_epochs_keeps_them(monkeypatch):
    x, m = correlated_2d(1000)
    original, calls = flows.flow_log_prob, []

    def breaks_later(*args):
        calls.append(1)
        out = original(*args)
        return out * float("nan") if len(calls) > 12 else out

    monkeypatch.setattr(flows, "flow_log_prob", breaks_later)
    flow = ConditionalFlow(FlowConfig(**TINY), TrainConfig(epochs=5, batch_size=200, keep_best=3), seed=0).fit(x, m)
    assert flow.record_.stopped == "diverged" and flow.record_.epochs_run == 3
    assert sorted(flow.record_.kept_epochs) == [1, 2]


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="backend"):
        FlowConfig(backend="made-up")
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ConfigError, match="val_fraction"):
        TrainConfig(val_fraction=1.0)


def test_too_few_events_is_a_method_failure():
    x, m = correlated_2d(3)
    with pytest.raises(MethodFailure, match="only 3 events"):
        ConditionalFlow(FlowConfig(**TINY), TrainConfig(epochs=1)).fit(x, m)


def test_unusable_nflows_is_a_config_error_naming_the_error(monkeypatch):
    monkeypatch.setattr(flows, "_nflows_error", lambda: "ImportError: no module named nflows")
    with pytest.raises(ConfigError, match="nflows.*ImportError: no module named nflows"):
        flows.build_flow(2, FlowConfig(backend="nflows"))


def test_missing_nflows_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(flows, "_nflows_error", lambda: "ModuleNotFoundError: No module named 'nflows'")
    with pytest.raises(ConfigError, match="'nflows' is not installed: pip install nflows"):
        flows.build_flow(2, FlowConfig(backend="nflows"))


def test_another_missing_library_is_not_blamed_on_nflows(monkeypatch):
    monkeypatch.setattr(flows, "_nflows_error", lambda: "ModuleNotFoundError: No module named 'torch'")
    with pytest.raises(ConfigError, match="does not work with.*No module named 'torch'"):
        flows.check_backend("nflows")


def test_nflows_backend_matches_cathode_architecture():
    pytest.importorskip("nflows")
    from nflows.transforms import BatchNorm, MaskedAffineAutoregressiveTransform, ReversePermutation

    module = flows.build_flow(5, FlowConfig(backend="nflows"))
    layers = list(module._transform._transforms)
    assert [type(layer) for layer in layers[:3]] == [MaskedAffineAutoregressiveTransform, BatchNorm, ReversePermutation]
    assert len(layers) == 45
    made = layers[0].autoregressive_net
    assert made.initial_layer.out_features == 128 and len(made.blocks) == 1


@pytest.mark.slow
def test_nflows_backend_trains_samples_and_round_trips(tmp_path):
    pytest.importorskip("nflows")
    x, m = correlated_2d(2000)
    flow = ConditionalFlow(FlowConfig(backend="nflows", **TINY), TrainConfig(**TINY_TRAIN), seed=1).fit(x, m)
    assert flow.info()["backend"] == "nflows"
    assert np.isfinite(flow.record_.val_losses).all()
    sample = flow.sample(m[:500])
    assert sample.shape == (500, 2) and np.isfinite(sample).all()
    assert np.corrcoef(m[:500], sample[:, 0])[0, 1] > 0.3
    loaded = ConditionalFlow.load(flow.save(tmp_path / "nflows"))
    np.testing.assert_allclose(loaded.log_prob(x[:100], m[:100]), flow.log_prob(x[:100], m[:100]), atol=1e-6)


def test_spline_flow_is_a_normalised_density_that_follows_the_mass():
    """``kind = "nsf"``: zuko's rational-quadratic spline flow behind the same interface."""
    x, m = gaussian_1d(8000)
    flow = ConditionalFlow(FlowConfig(kind="nsf", bins=6, **TINY), TrainConfig(**TINY_TRAIN), seed=0).fit(x, m)
    assert flow.info()["kind"] == "nsf"
    grid = np.linspace(x.min(), x.max(), 4001).astype(np.float32)[:, None]
    density = np.exp(flow.log_prob(grid, np.full(len(grid), 2.0)))
    total = density.sum() * (grid[1, 0] - grid[0, 0])
    print(f"spline flow: integral {total:.4f} (limit 1 +- 0.02)")
    assert total == pytest.approx(1.0, abs=0.02)
    masses = np.repeat([1.5, 2.5], 2000)
    sample = flow.sample(masses)
    assert sample.shape == (4000, 1) and np.isfinite(sample).all()
    assert sample[masses == 2.5].mean() > sample[masses == 1.5].mean() + 0.5


@pytest.mark.parametrize("given, word", [
    (dict(kind="realnvp"), "kind"),
    (dict(kind="nsf", backend="nflows"), "zuko"),
    (dict(kind="nsf", bins=1), "bins"),
    (dict(kind="maf", bins=4), "bins"),
])
def test_flow_kind_is_checked(given, word):
    with pytest.raises(ConfigError, match=word):
        FlowConfig(**given)


def test_the_default_kind_leaves_stored_task_hashes_alone():
    from adbench.settings import hashed_settings

    assert "kind" not in hashed_settings(FlowConfig()) and "bins" not in hashed_settings(FlowConfig())
    assert hashed_settings(FlowConfig(kind="nsf"))["kind"] == "nsf"


def test_log_mass_context_is_the_standardised_log_mass_round_trips_and_is_checked(tmp_path):
    """``mass_context = "log-mass"``: the context is ln m standardised over the training events, the
    same in numpy and in torch (curtains4f4's transport maps window masses through it), and kept in
    the checkpoint; the default leaves task hashes alone."""
    from adbench.settings import hashed_settings

    x, m = correlated_2d(1000)
    flow = ConditionalFlow(FlowConfig(mass_context="log-mass", **TINY), TrainConfig(epochs=1, keep_best=1),
                           seed=0).fit(x, m)
    context = flow._context(m)[:, 0]
    np.testing.assert_allclose(context, (np.log(m) - np.log(m).mean()) / np.log(m).std(), rtol=0, atol=1e-5)
    assert abs(context.mean()) < 1e-4 and context.std() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(flow.context_of(torch.as_tensor(m)).numpy(), context, rtol=0, atol=1e-5)
    flow.save(tmp_path / "flow")
    loaded = ConditionalFlow.load(tmp_path / "flow")
    assert loaded.config.mass_context == "log-mass"
    assert_same_flow(loaded, flow)
    assert "mass_context" not in hashed_settings(FlowConfig())
    assert hashed_settings(FlowConfig(mass_context="log-mass"))["mass_context"] == "log-mass"
    with pytest.raises(ConfigError, match="mass_context 'ln'"):
        FlowConfig(mass_context="ln")
    with pytest.raises(MethodFailure, match="positive masses"):
        ConditionalFlow(FlowConfig(mass_context="log-mass", **TINY), TrainConfig(epochs=1)).fit(x, m - 3.0)


def test_a_wider_spline_bound_transforms_values_the_default_leaves_to_the_gaussian_tail():
    """``spline_bound``: zuko's splines are the identity outside [-bound, bound], so at the default 5 a
    scaled value of -7 gets the base Gaussian's density whatever the weights; with bound 10 the spline
    acts there. The default builds zuko's NSF itself and leaves task hashes alone."""
    from scipy.stats import norm

    from adbench.settings import hashed_settings

    c, z = torch.zeros(3, 1), torch.tensor([[-7.0], [-6.0], [0.5]])
    log_p = {}
    for bound in (5.0, 10.0):
        module = randomised(flows.build_flow(1, FlowConfig(kind="nsf", bins=4, spline_bound=bound, **TINY)))
        with torch.no_grad():
            log_p[bound] = flows.flow_log_prob(module, "zuko", z, c).numpy()
    np.testing.assert_allclose(log_p[5.0][:2], norm.logpdf([-7.0, -6.0]), rtol=0, atol=1e-5)
    assert np.abs(log_p[10.0][:2] - norm.logpdf([-7.0, -6.0])).min() > 1e-2
    assert type(flows.build_flow(1, FlowConfig(kind="nsf", **TINY))).__name__ == "NSF"
    assert "spline_bound" not in hashed_settings(FlowConfig(kind="nsf"))
    for given in (dict(kind="nsf", spline_bound=0.0), dict(kind="nsf", spline_bound=float("inf")),
                  dict(kind="nsf", spline_bound="wide"), dict(spline_bound=10.0)):
        with pytest.raises(ConfigError, match="spline_bound"):
            FlowConfig(**given)


def test_a_covering_spline_bound_is_set_from_the_fitted_scaler_and_kept_in_the_checkpoint(tmp_path):
    """``spline_bound = "cover"``: at fit the bound becomes the largest |value| the fitted scaler can
    give (rounded up to a tenth), so every event, even one far outside the training range (clipped by
    the scaler), lies inside the splines; the flow is built, saved and reloaded with that bound."""
    from adbench.settings import hashed_settings

    x, m = correlated_2d(1000)
    flow = ConditionalFlow(FlowConfig(kind="nsf", bins=4, spline_bound="cover", **TINY),
                           TrainConfig(epochs=1, keep_best=1), seed=0).fit(x, m)
    reach = np.abs(flow.scaler_.transform(np.vstack([x, 10.0 * x, -10.0 * x]))).max()
    low, high = flow.scaler_.scaled_range()
    print(f"bound {flow.spline_bound_}, largest scaled value {reach:.4f}, scaler range {low} .. {high}")
    assert reach == pytest.approx(max(np.abs(low).max(), np.abs(high).max()), abs=1e-4)
    assert reach <= flow.spline_bound_ <= reach + 0.1 + 1e-6
    assert flow.spline_bound_ > flows.DEFAULT_SPLINE_BOUND  # the skewed feature b reaches beyond 5
    bounds = {t.univariate.keywords["bound"] for t in flow.module_.transform.transforms}
    assert bounds == {flow.spline_bound_} and flow.info()["spline_bound"] == flow.spline_bound_
    flow.save(tmp_path / "flow")
    loaded = ConditionalFlow.load(tmp_path / "flow")
    assert loaded.spline_bound_ == flow.spline_bound_
    np.testing.assert_allclose(loaded.log_prob(x[:50], m[:50]), flow.log_prob(x[:50], m[:50]), rtol=0, atol=1e-5)
    meta_file = tmp_path / "flow" / "flow.json"
    meta = json.loads(meta_file.read_text())
    del meta["spline_bound"]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="no fitted bound"):
        ConditionalFlow.load(tmp_path / "flow")
    assert hashed_settings(FlowConfig(kind="nsf", spline_bound="cover"))["spline_bound"] == "cover"
    with pytest.raises(MethodFailure, match="ConditionalFlow.fit"):
        flows.build_flow(2, FlowConfig(kind="nsf", spline_bound="cover", **TINY))
    with pytest.raises(ConfigError, match="spline_bound"):
        FlowConfig(spline_bound="cover")
