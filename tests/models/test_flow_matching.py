"""The flow-matching building blocks: network context split, interpolation, path, ODE solvers, checkpoints.

None of these train beyond a couple of tiny epochs."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.models.flow_matching.configs import NetworkConfig, SelectionConfig, SolverConfig  # noqa: E402
from adbench.models.flow_matching.likelihood import log_likelihood  # noqa: E402
from adbench.models.flow_matching.model import FlowMatcher  # noqa: E402
from adbench.models.flow_matching.network import (  # noqa: E402
    GatedBiasVelocityField,
    SigmaVelocityField,
    frequency_embedding,
    velocity_field,
)
from adbench.models.flow_matching.path import cfm_loss, cfm_training_loss, path_sample, training_times  # noqa: E402
from adbench.models.flow_matching.solver import integrate  # noqa: E402
from adbench.models.training import TrainConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) features whose mean moves with the mass m in 2-5 TeV."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(2.0, 5.0, n)
    x = rng.normal(size=(n, 3)) * 0.5 + np.column_stack([m, 2 * m, np.ones(n)])
    return x.astype(np.float32), m


@pytest.fixture(scope="module")
def fitted() -> FlowMatcher:
    x, m = toy_data()
    config = NetworkConfig(width=32, blocks=2, dropout=0.1)
    train = TrainConfig(epochs=3, batch_size=256, keep_best=2)
    return FlowMatcher(config, train, "cpu", seed=3, selection=SelectionConfig(metric="loss")).fit(x, m)


ARCHITECTURES = ["sigma", "gated-bias"]


def random_net(seed: int = 0, **changes) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = velocity_field(4, NetworkConfig(width=16, blocks=3, **changes))
    # Non-trivial batch-norm statistics so that eval mode is not the identity.
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(64, 4) * 2, torch.rand(64), torch.rand(64) * 2 - 1)
    return net.eval()


def test_frequency_embedding():
    ks = torch.tensor([math.pi, 2 * math.pi])
    e = frequency_embedding(torch.tensor([0.0, 0.25]), ks)
    assert e.shape == (2, 4)
    expected = torch.tensor([[0.0, 0.0, 1.0, 1.0], [math.sin(math.pi / 4), 1.0, math.cos(math.pi / 4), 0.0]])
    assert torch.allclose(e, expected, atol=1e-6)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_context_split_reproduces_forward(architecture):
    net = random_net(architecture=architecture)
    x, t, m = torch.randn(10, 4), torch.rand(10), torch.rand(10) * 2 - 1
    gammas = net.context(m, t)
    assert len(gammas) == 4 and all(g.shape == (10, 16) for g in gammas)
    assert torch.allclose(net.velocity(x, gammas), net(x, t, m))
    # A scalar time is broadcast to every event.
    assert torch.allclose(net(x, torch.tensor(0.3), m), net(x, torch.full((10,), 0.3), m), atol=1e-6)
    # mixing at the ends is the anchor itself
    other = net.context(m.flip(0), t)
    with torch.no_grad():
        assert torch.allclose(net.mixed_velocity(x, gammas, other, torch.ones(10, 1)), net(x, t, m), atol=1e-6)
        assert torch.allclose(net.mixed_velocity(x, gammas, other, torch.zeros(10, 1)), net(x, t, m.flip(0)), atol=1e-6)


def test_published_network_layout():
    """The SIGMA network as published: ReLU after a first layer on [x, c]; blocks gated by
    sigmoid(relu(W_b c)) whose last layer starts near zero; batch norm eps 1e-3; a plain linear head.
    Its parameter count is that of nflows' ResidualNet with context (first layer on d + |c| inputs)."""
    config = NetworkConfig(width=32, blocks=2, dropout=0.2, mass_frequencies=9, time_frequencies=3)
    net = SigmaVelocityField(5, config)
    n_context = 2 * (9 + 3)
    first_layer = (5 + n_context) * 32 + 32
    per_block = 2 * (32 * 32 + 32) + 2 * 2 * 32 + (n_context * 32 + 32)  # two linears, two BNs, context layer
    assert sum(p.numel() for p in net.parameters()) == first_layer + 2 * per_block + 32 * 5 + 5
    block = net.blocks[0]
    assert block.norm1.eps == 1e-3 and block.linear2.weight.abs().max() <= 1e-3
    assert isinstance(velocity_field(5, NetworkConfig(architecture="gated-bias")), GatedBiasVelocityField)
    # a fresh network is nearly the first layer followed by the head (every block starts as the identity)
    net.eval()
    x, t, m = torch.randn(50, 5), torch.rand(50), torch.rand(50) * 2 - 1
    with torch.no_grad():
        h = torch.relu(net.input(x) + net.context(m, t)[0])
        assert torch.allclose(net(x, t, m), net.head(h), atol=0.05)


def test_published_context_interpolation_mixes_activated_features():
    """SIGMA's context mode mixes relu(first layer) of the two anchors, not the pre-activations."""
    net = random_net(architecture="sigma")
    x, t = torch.randn(8, 4), torch.rand(8)
    first, second = net.context(torch.full((8,), -0.5), t), net.context(torch.full((8,), 0.5), t)
    xi = torch.full((8, 1), 0.3)
    with torch.no_grad():
        projected = net.input(x)
        h = 0.3 * torch.relu(projected + first[0]) + 0.7 * torch.relu(projected + second[0])
        gates = [0.3 * a + 0.7 * b for a, b in zip(first[1:], second[1:], strict=True)]
        assert torch.allclose(net.mixed_velocity(x, first, second, xi), net._blocks(h, gates), atol=1e-6)
        before = torch.relu(projected + 0.3 * first[0] + 0.7 * second[0])
        assert not torch.allclose(net._blocks(before, gates), net._blocks(h, gates), atol=1e-4)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_log_likelihood_of_a_known_flow(method):
    """v = a x carries N(0, I) at t = 0 to N(0, e^{2a} I) at t = 1: the ODE log-density is exact."""
    a, x = 0.4, torch.randn(500, 3, dtype=torch.float64)
    solver = SolverConfig(method=method, steps=8, atol=1e-8, rtol=1e-8)
    got = log_likelihood(lambda t, y: a * y, x, solver)
    exact = -0.5 * x.pow(2).sum(1) * math.exp(-2 * a) - 1.5 * math.log(2 * math.pi) - 3 * a
    assert torch.allclose(got, exact, atol=1e-5)


def test_checkpoints_selected_by_validation_nll():
    x, m = toy_data(1500)
    selection = SelectionConfig(metric="nll", events=300, solver=SolverConfig(method="rk4", steps=4))
    model = FlowMatcher(NetworkConfig(width=16, blocks=1), TrainConfig(epochs=3, batch_size=256, keep_best=2),
                        seed=2, selection=selection).fit(x, m)
    record = model.record_
    assert model.summary()["selection"] == "nll" and all(np.isfinite(record.val_losses))
    # an NLL per event of 3 standardised features: about 3 x 1.42 for a unit Gaussian, lower if learned
    assert 0.0 < record.best_val_loss < 6.0
    loss_model = FlowMatcher(NetworkConfig(width=16, blocks=1), TrainConfig(epochs=3, batch_size=256, keep_best=2),
                             seed=2, selection=SelectionConfig(metric="loss")).fit(x, m)
    assert loss_model.record_.train_losses == record.train_losses  # same training, another ranking
    assert loss_model.record_.val_losses != record.val_losses
    with pytest.raises(ConfigError, match="selection metric"):
        SelectionConfig(metric="aic")


def test_path_endpoints_and_target():
    x0, x1 = torch.randn(6, 2), torch.randn(6, 2)
    sigma = 1e-3
    xt0, target = path_sample(x0, x1, torch.zeros(6), sigma)
    xt1, _ = path_sample(x0, x1, torch.ones(6), sigma)
    assert torch.allclose(xt0, x0)
    assert torch.allclose(xt1, x1 + sigma * x0)
    # The target is the time derivative of x_t.
    t = torch.full((6,), 0.4)
    h = 1e-3
    derivative = (path_sample(x0, x1, t + h, sigma)[0] - path_sample(x0, x1, t - h, sigma)[0]) / (2 * h)
    assert torch.allclose(target, derivative, atol=1e-3)


def test_loss_is_zero_for_the_exact_velocity():
    x0, x1 = torch.randn(8, 2), torch.randn(8, 2)
    exact = lambda xt, t, m: x1 - (1 - 1e-3) * x0  # noqa: E731 - the conditional target itself
    assert cfm_loss(exact, x1, torch.zeros(8), x0, torch.rand(8), 1e-3).item() == pytest.approx(0.0, abs=1e-12)
    wrong = lambda xt, t, m: torch.zeros_like(xt)  # noqa: E731
    assert cfm_loss(wrong, x1, torch.zeros(8), x0, torch.rand(8), 1e-3).item() > 0.1


@pytest.mark.parametrize("location", [0.0, 1.0])
def test_logit_normal_training_times_follow_their_law(location):
    """sigmoid(location + N(0, 1)) times: a Kolmogorov-Smirnov test against the exact law (p-value
    printed; the draws are seeded, so the verdict is the same on every machine)."""
    from scipy import stats

    torch.manual_seed(11)
    t = training_times(20_000, "logit-normal", location, "cpu").double().numpy()
    assert ((t > 0) & (t < 1)).all()
    logit = np.log(t) - np.log1p(-t)
    p = stats.kstest(logit, stats.norm(loc=location).cdf).pvalue
    print(f"logit-normal times, location {location}: KS p-value {p:.3f} (limit 0.001)")
    assert p > 1e-3
    torch.manual_seed(11)
    uniform = torch.rand(5, generator=torch.Generator().manual_seed(11))
    assert torch.equal(training_times(5, "uniform", location, "cpu"), uniform)


@pytest.mark.parametrize("sampling", ["uniform", "logit-normal"])
def test_a_training_batch_draws_its_noise_before_its_times(sampling):
    """The order of the draws fixes every stored result: the training loss takes the noise first and the
    times second from the global generator. A network that records its inputs sees exactly the path of
    those two draws made in that order on the same machine (so the verdict does not depend on the CPU)."""
    seen = {}

    def recording_net(xt, t, m):
        seen["xt"], seen["t"] = xt, t
        return torch.zeros_like(xt)

    x1, m = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)), torch.rand(64)
    torch.manual_seed(5)
    loss = cfm_training_loss(recording_net, x1, m, 1e-3, sampling, 0.5)
    torch.manual_seed(5)
    x0 = torch.randn_like(x1)
    t = training_times(len(x1), sampling, 0.5, "cpu")
    xt, target = path_sample(x0, x1, t, 1e-3)
    assert torch.equal(seen["t"], t) and torch.equal(seen["xt"], xt)
    assert torch.equal(loss, target.pow(2).mean())
    torch.manual_seed(5)
    t_first = training_times(len(x1), sampling, 0.5, "cpu")
    assert not torch.equal(seen["t"], t_first)  # the other order would be seen


def test_time_sampling_is_a_hashed_setting_only_away_from_its_default():
    """Stored results keep their task hash: the uniform default is left out of it."""
    from adbench.settings import hashed_settings

    assert "time_sampling" not in hashed_settings(NetworkConfig())
    assert hashed_settings(NetworkConfig(time_sampling="logit-normal"))["time_sampling"] == "logit-normal"
    with pytest.raises(ConfigError, match="time_sampling"):
        NetworkConfig(time_sampling="beta")
    with pytest.raises(ConfigError, match="needs time_sampling"):
        NetworkConfig(time_location=1.0)


@pytest.mark.parametrize("method", ["dopri5", "rk4", "midpoint"])
def test_solver_integrates_a_known_field(method):
    # dx/dt = a x + b t has the solution x(1) = e^a x0 + b (e^a - 1 - a) / a^2.
    a, b = -0.7, 2.0
    x0 = torch.randn(50, 3, dtype=torch.float64)
    solver = SolverConfig(method=method, atol=1e-8, rtol=1e-8, steps=50)
    result = integrate(lambda t, x: a * x + b * t, x0, solver)
    exact = math.exp(a) * x0 + b * (math.exp(a) - 1 - a) / a**2
    assert torch.allclose(result.x, exact, atol={"dopri5": 1e-6, "rk4": 1e-6, "midpoint": 5e-4}[method])
    if method == "dopri5":
        assert 6 < result.nfe < 2000
    else:
        assert result.nfe == solver.steps * {"rk4": 4, "midpoint": 2}[method]


def test_dopri5_falls_back_to_zuko_without_torchdiffeq(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)  # makes "import torchdiffeq" fail
    x0 = torch.randn(20, 2, dtype=torch.float64)
    with torch.inference_mode():
        result = integrate(lambda t, x: -x, x0, SolverConfig(method="dopri5", atol=1e-8, rtol=1e-8))
    assert result.backend == "zuko" and result.nfe > 6
    assert torch.allclose(result.x, x0 * math.exp(-1), atol=1e-6)
    with pytest.raises(ConfigError, match="torchdiffeq"):
        integrate(lambda t, x: -x, x0, SolverConfig(method="rk4"))


def test_euler_is_first_order():
    x0 = torch.ones(1, 1, dtype=torch.float64)
    coarse = integrate(lambda t, x: x, x0, SolverConfig(method="euler", steps=10)).x.item()
    fine = integrate(lambda t, x: x, x0, SolverConfig(method="euler", steps=100)).x.item()
    assert coarse == pytest.approx(1.1**10)
    assert abs(fine - math.e) < abs(coarse - math.e) / 5


def test_unknown_solver_and_bad_config():
    with pytest.raises(ConfigError):
        SolverConfig(method="heun3")
    with pytest.raises(ConfigError):
        TrainConfig(schedule="warmup-forever")
    with pytest.raises(ConfigError):
        NetworkConfig(width=0)


def test_linear_interpolation_matches_anchors(fitted):
    n = 7
    m1, m2 = 3.0, 4.0
    x, t = torch.randn(n, 3), torch.tensor(0.37)
    scaled = torch.from_numpy(fitted.scale_mass(np.array([m1, m2])))
    net = fitted.network_
    v1 = net(x, t, scaled[0].expand(n))
    v2 = net(x, t, scaled[1].expand(n))
    masses = torch.zeros(n)  # ignored by the interpolating modes
    at_m1 = fitted.velocity(masses, "linear", (m1, m2), torch.ones(n))(t, x)
    middle = fitted.velocity(masses, "linear", (m1, m2), torch.full((n,), 0.5))(t, x)
    with torch.no_grad():
        assert torch.allclose(at_m1, v1, atol=1e-5)
        assert torch.allclose(middle, 0.5 * (v1 + v2), atol=1e-5)


def test_context_interpolation_matches_anchor(fitted):
    n = 7
    m1, m2 = 3.0, 4.0
    x, t = torch.randn(n, 3), torch.tensor(0.81)
    scaled = torch.from_numpy(fitted.scale_mass(np.array([m1, m2])))
    net = fitted.network_
    masses = torch.zeros(n)
    with torch.no_grad():
        at_m1 = fitted.velocity(masses, "context", (m1, m2), torch.ones(n))(t, x)
        at_m2 = fitted.velocity(masses, "context", (m1, m2), torch.zeros(n))(t, x)
        assert torch.allclose(at_m1, net(x, t, scaled[0].expand(n)), atol=1e-5)
        assert torch.allclose(at_m2, net(x, t, scaled[1].expand(n)), atol=1e-5)
        # In between it mixes features, not velocities: generally not the mean of the velocities.
        mixed = fitted.velocity(masses, "context", (m1, m2), torch.full((n,), 0.5))(t, x)
        linear = fitted.velocity(masses, "linear", (m1, m2), torch.full((n,), 0.5))(t, x)
        assert not torch.allclose(mixed, linear, atol=1e-4)


def test_fit_records_and_selects(fitted):
    record = fitted.record_
    assert record.epochs_run == 3
    assert len(fitted.states_) == 2
    assert record.best_val_loss == min(record.val_losses)
    assert record.kept_val_losses == sorted(record.kept_val_losses)
    assert record.n_train + record.n_val == 3000
    assert fitted.mass_range_[0] >= 2.0 and fitted.mass_range_[1] <= 5.0
    assert not fitted.network_.training


def test_fit_is_deterministic():
    x, m = toy_data(1500)
    config, train = NetworkConfig(width=16, blocks=1), TrainConfig(epochs=2, batch_size=256, keep_best=1)
    a = FlowMatcher(config, train, seed=5).fit(x, m)
    b = FlowMatcher(config, train, seed=5).fit(x, m)
    c = FlowMatcher(config, train, seed=6).fit(x, m)
    assert a.record_.val_losses == b.record_.val_losses
    assert a.record_.val_losses != c.record_.val_losses
    for key, value in a.states_[0].items():
        assert torch.equal(value, b.states_[0][key])


def test_sample_shape_determinism_and_facts(fitted):
    masses = np.linspace(3.0, 4.0, 40)
    solver = SolverConfig(method="rk4", steps=8)
    drawn = fitted.sample(masses, solver, seed=1)
    first, facts = drawn.x, drawn.facts()
    again, other = fitted.sample(masses, solver, seed=1).x, fitted.sample(masses, solver, seed=2).x
    assert first.shape == (40, 3) and first.dtype == np.float32
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert facts["ode_solver"] == "rk4" and facts["nfe_mean"] == 32 and facts["ode_solves"] == 2
    assert facts["checkpoints_used"] == 2
    # The template stays inside the training range of the features (LogitScaler's inverse).
    lo, hi = fitted.scaler_.min_, fitted.scaler_.min_ + fitted.scaler_.span_
    assert (first >= lo - 1e-4).all() and (first <= hi + 1e-4).all()


def test_sampling_in_chunks_equals_one_solve_with_a_fixed_step_solver(fitted):
    masses = np.linspace(3.0, 4.0, 30)
    whole = fitted.sample(masses, SolverConfig(method="rk4", steps=5), seed=4)
    chunked = fitted.sample(masses, SolverConfig(method="rk4", steps=5, batch=4), seed=4)
    assert np.allclose(whole.x, chunked.x, atol=1e-5)
    assert chunked.facts()["ode_solves"] == 8


def test_checkpoint_round_trip(fitted, tmp_path):
    directory = fitted.save(tmp_path / "cfm")
    assert {p.name for p in directory.iterdir()} == {"cfm.json", "states.pt"}
    loaded = FlowMatcher.load(directory)
    masses = np.linspace(3.2, 3.8, 25)
    solver = SolverConfig(method="midpoint", steps=6)
    assert np.array_equal(fitted.sample(masses, solver, seed=0).x, loaded.sample(masses, solver, seed=0).x)
    assert loaded.record_.val_losses == fitted.record_.val_losses
    assert loaded.network == fitted.network and loaded.train == fitted.train
    # Plain tensors only: loadable with the safe loader.
    states = torch.load(directory / "states.pt", weights_only=True)
    assert len(states) == len(fitted.states_)


def test_too_few_events_is_a_method_failure():
    x, m = toy_data(20)
    with pytest.raises(MethodFailure):
        FlowMatcher(NetworkConfig(width=8, blocks=1), TrainConfig(epochs=1, batch_size=4096)).fit(x[:5], m[:5])


def test_mass_trend_option_detrends_before_the_scaler_and_survives_save(tmp_path):
    x, m = toy_data(1500)
    config, train = NetworkConfig(width=16, blocks=1), TrainConfig(epochs=2, batch_size=256, keep_best=1)
    model = FlowMatcher(config, train, seed=5, mass_trend=(0, 1)).fit(x, m)
    # Columns 0 and 1 follow m in toy_data; detrended, the scaler sees no mass drift in them.
    z = model.trend_.transform(x, m)
    assert all(abs(np.corrcoef(m, z[:, column])[0, 1]) < 0.05 for column in (0, 1))
    masses = np.linspace(3.0, 4.0, 2000)
    drawn = model.sample(masses, SolverConfig(method="rk4", steps=4), seed=0).x
    # The trend is put back with each event's own mass: column 0 = m + noise(0.5) comes back with a
    # slope of 1 in m (standard error about 0.04 for 2000 events).
    slope = np.polyfit(masses, drawn[:, 0], 1)[0]
    print(f"slope {slope:.3f} (1 +- 0.25)")
    assert abs(slope - 1) < 0.25
    loaded = FlowMatcher.load(model.save(tmp_path / "cfm"))
    assert loaded.mass_trend == (0, 1)
    assert np.array_equal(loaded.sample(masses, SolverConfig(method="rk4", steps=4), seed=0).x, drawn)
    assert model.summary()["mass_trend_columns"] == [0, 1]
    # A checkpoint written before the option existed loads as a model without a trend.
    plain = FlowMatcher(config, train, seed=5).fit(x, m).save(tmp_path / "plain")
    meta = json.loads((plain / "cfm.json").read_text())
    meta.pop("mass_trend")
    (plain / "cfm.json").write_text(json.dumps(meta))
    assert FlowMatcher.load(plain).trend_ is None


def test_dijet_edge_trend_survives_save(tmp_path):
    x, m = toy_data(1500)
    x[:, 2] = np.pi + 0.2 * np.abs(x[:, 2])  # a positive, delta_R-like column
    config, train = NetworkConfig(width=16, blocks=1), TrainConfig(epochs=2, batch_size=256, keep_best=1)
    model = FlowMatcher(config, train, seed=5, mass_trend=(2,), trend_kind="dijet-edge").fit(x, m)
    model.trend_.pt_min = 1.1  # not the default, so that a load which forgot it would differ
    masses = np.linspace(3.0, 4.0, 200)
    solver = SolverConfig(method="rk4", steps=4)
    drawn = model.sample(masses, solver, seed=0).x
    loaded = FlowMatcher.load(model.save(tmp_path / "cfm"))
    assert loaded.trend_kind == "dijet-edge" and loaded.trend_.pt_min == 1.1
    assert np.array_equal(loaded.sample(masses, solver, seed=0).x, drawn)
    assert model.summary()["mass_trend_kind"] == "dijet-edge"
