"""R-ANODE's signal-plus-fixed-background fit (adbench/models/signal_mixture.py): calibrated checks of
the fitted w and its Fisher error on toys whose densities are known exactly, the split ensembling and
the w warm-up."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("zuko")

from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.models.signal_mixture import (  # noqa: E402
    FixedDensityFit,
    SignalFlowConfig,
    build_signal_flow,
    fisher_error,
    fit_mixture,
    fixed_density_fit,
    likely_splits,
    signal_log_prob,
    state_w,
)
from adbench.models.training import TrainConfig, validation_split  # noqa: E402
from tests.conftest import data_seed  # noqa: E402

#: Limit on |w - w_true| in standard errors for the calibrated estimates below (false alarm 6e-5).
PULL_LIMIT = 4.0

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian(u: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """log N(u; mean, sigma^2 I) per row of u (n, k)."""
    return (-0.5 * (((u - mean) / sigma) ** 2).sum(-1)
            - u.shape[-1] * (math.log(sigma) + 0.5 * math.log(2 * math.pi)))


def pull(estimate: float, truth: float, error: float, what: str) -> float:
    value = (estimate - truth) / error
    print(f"{what}: w = {estimate:.4f} +- {error:.4f}, true {truth:.4f}: pull {value:+.2f} "
          f"(limit {PULL_LIMIT}, {PULL_LIMIT - abs(value):+.2f} to spare)")
    return value


def test_fisher_error_is_the_spread_of_the_maximum_likelihood_w():
    """With both densities exact, the maximum-likelihood w of many toy samples scatters around the true
    w by the Fisher error (checked within 4 standard errors of a standard deviation from 400 toys)."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(data_seed(11))
    w_true, n, toys = 0.2, 2000, 400
    estimates, errors = [], []
    for _ in range(toys):
        n_sig = rng.binomial(n, w_true)
        u = np.concatenate([rng.normal(0, 1, (n - n_sig, 1)), rng.normal(1.5, 0.5, (n_sig, 1))])
        log_s, log_b = gaussian(u, 1.5, 0.5), gaussian(u, 0, 1)

        def nll(w, log_s=log_s, log_b=log_b):
            return -np.logaddexp(np.log(w) + log_s, np.log1p(-w) + log_b).sum()

        w_hat = minimize_scalar(nll, bounds=(1e-6, 1 - 1e-6), method="bounded", options={"xatol": 1e-10}).x
        estimates.append(w_hat)
        errors.append(fisher_error(log_s, log_b, w_hat))
    spread, fisher = float(np.std(estimates, ddof=1)), float(np.mean(errors))
    ratio_error = 1 / math.sqrt(2 * (toys - 1))  # standard error of a sample standard deviation, relative
    sigmas = (spread / fisher - 1) / ratio_error
    print(f"spread of w-hat {spread:.5f}, Fisher error {fisher:.5f}: {sigmas:+.2f} sigma (limit {PULL_LIMIT})")
    assert abs(sigmas) < PULL_LIMIT
    assert abs(pull(float(np.mean(estimates)), w_true, spread / math.sqrt(toys), "mean of 400 toys")) < PULL_LIMIT


def _toy(seed: int, n: int = 10_000, w: float = 0.1) -> np.ndarray:
    """(n, 2) events: background N(0, I), a fraction w of signal N((2, 2), 0.4^2 I)."""
    rng = np.random.default_rng(seed)
    n_sig = rng.binomial(n, w)
    return np.concatenate([rng.normal(0, 1, (n - n_sig, 2)), rng.normal(2.0, 0.4, (n_sig, 2))]).astype(np.float32)


TOY_TRAIN = TrainConfig(epochs=10, batch_size=256, lr=3e-3, optimizer="adam", schedule="cosine",
                        final_lr_fraction=0.01, keep_best=3)
TOY_FLOW = SignalFlowConfig(kind="maf", transforms=2, hidden=16)


def heldout_w(u: np.ndarray, log_bkg: np.ndarray, seed: int, w_warmup_epochs: int = 0
              ) -> tuple[float, float, list[float]]:
    """Fit p_sig and w, then the maximum-likelihood w on the validation events with p_sig fixed:
    (w, its Fisher error, the trained w of the kept epochs)."""
    trained = fit_mixture(u, log_bkg, lambda: build_signal_flow(u.shape[1], TOY_FLOW), TOY_TRAIN,
                          w_init=0.01, w_step_scale=10.0, w_warmup_epochs=w_warmup_epochs, seed=seed)
    _, val = validation_split(len(u), TOY_TRAIN, seed)
    fit = fixed_density_fit(signal_log_prob(trained.module, trained.states, u[val]), log_bkg[val])
    return fit.w, fit.error, state_w(trained.states, 10.0)


def _binomial_within(hits: int, toys: int, p: float, what: str) -> bool:
    """Whether hits of toys lies within PULL_LIMIT binomial standard deviations of p (printed)."""
    sd = math.sqrt(p * (1 - p) / toys)
    deviation = (hits / toys - p) / sd
    print(f"{what}: {hits / toys:.3f} against {p:.3f} ({deviation:+.2f} sd, limit {PULL_LIMIT})")
    return abs(deviation) < PULL_LIMIT


def test_the_fixed_density_fit_is_calibrated_on_toys():
    """w, its error and the likelihood ratio under exact, fixed densities (N(0, 1) background, N(2, 0.4)
    signal, 2000 events a toy): without signal 2 llr follows (delta_0 + chi2_1) / 2 (half the toys at 0,
    5% above 2.71); with w = 0.05 the pulls have mean 0 and spread 1 and 2 llr is above the null's 99%."""
    rng = np.random.default_rng(data_seed(7))
    n = 2000

    def fit(w_true: float):
        n_sig = rng.binomial(n, w_true)
        u = np.concatenate([rng.normal(0, 1, (n - n_sig, 1)), rng.normal(2.0, 0.4, (n_sig, 1))])
        return fixed_density_fit(gaussian(u, 2.0, 0.4), gaussian(u, 0.0, 1.0))

    null = [2 * fit(0.0).llr for _ in range(1000)]
    assert min(null) >= 0
    assert _binomial_within(sum(q < 1e-6 for q in null), len(null), 0.5, "no signal: share of q0 = 0")
    assert _binomial_within(sum(q > 2.706 for q in null), len(null), 0.05, "no signal: share of q0 > 2.71")
    fits = [fit(0.05) for _ in range(1000)]
    pulls = np.array([(f.w - 0.05) / f.error for f in fits])
    assert abs(pull(float(pulls.mean()), 0.0, 1 / math.sqrt(len(pulls)), "w = 0.05: mean pull")) < PULL_LIMIT
    spread = float(pulls.std(ddof=1))
    assert abs(pull(spread, 1.0, 1 / math.sqrt(2 * (len(pulls) - 1)), "w = 0.05: pull spread")) < PULL_LIMIT
    assert min(2 * f.llr for f in fits) > np.quantile(null, 0.99)  # 100 signal events stand out in every toy
    spread_ratio = float(np.std([f.llr for f in fits], ddof=1) / np.mean([f.llr_error for f in fits]))
    assert abs(pull(spread_ratio, 1.0, 1 / math.sqrt(2 * (len(fits) - 1)), "w = 0.05: llr spread / llr_error")) \
        < PULL_LIMIT


def test_likely_splits_drop_the_fits_that_found_nothing():
    """Held-out likelihood ratios like those of R-ANODE's five splits on synthetic with the exact
    background (ranode-splits-exact-cpu.json, seed 0: three found the signal, two settled at w near 0;
    the errors are stand-ins, about sqrt(2 llr), which those rows predate): the two are dropped, the
    found ones kept though their ratios differ."""
    def fit(llr, error):
        return FixedDensityFit(w=0.005, error=0.001, llr=llr, llr_error=error)

    found, nothing = [fit(50.4, 9.5), fit(50.6, 9.8), fit(53.1, 10.1)], [fit(0.7, 1.3), fit(0.0, 0.0)]
    assert likely_splits([found[0], nothing[0], found[1], found[2], nothing[1]], 0.05) == [0, 2, 3]
    assert likely_splits([fit(1.2, 1.5), fit(0.0, 0.0), fit(0.4, 0.9)], 0.05) == [0, 1, 2]  # none found anything
    assert likely_splits([fit(40.0, 5.0), fit(20.0, 5.0)], 0.05) == [0]  # 2.8 combined errors, limit 1.96
    assert likely_splits([fit(40.0, 5.0), fit(20.0, 5.0)], 0.001) == [0, 1]  # limit 3.29
    assert likely_splits([fit(math.nan, 1.0), fit(5.0, 1.0), fit(4.0, math.nan)], 0.05) == [1]
    assert likely_splits([fit(7.0, 2.0)], 0.05) == [0]
    with pytest.raises(MethodFailure, match="finite held-out likelihood ratio"):
        likely_splits([fit(math.nan, 1.0), fit(math.inf, math.nan)], 0.05)


@pytest.mark.parametrize("splits", [5, 20])
def test_equally_good_splits_lose_one_in_the_level_of_runs(splits):
    """K splits of one quality (held-out ratios drawn N(30, 8^2), errors 8): the share of runs in which
    likely_splits drops any of them is its level, 5%, for 5 and for 20 splits (binomial limits)."""
    rng = np.random.default_rng(data_seed(3))
    runs = 2000
    dropped = sum(
        len(likely_splits([FixedDensityFit(0.005, 0.001, float(llr), 8.0) for llr in rng.normal(30, 8, splits)],
                          0.05)) < splits
        for _ in range(runs))
    assert _binomial_within(dropped, runs, 0.05, f"{splits} equal splits: runs that drop one")


@pytest.mark.parametrize("w_warmup_epochs", [0, 3])
def test_signal_fit_on_an_exact_background_recovers_w_within_its_error(w_warmup_epochs):
    """R-ANODE on a toy whose background density is known exactly: the signal flow and w are fitted on
    the training events, and w re-estimated on the validation events (which did not shape p_sig) lies
    within PULL_LIMIT Fisher errors of the injected fraction (pulls -0.8 to +1.8 for seeds 0-5), also
    when the first 3 of the 10 epochs hold w at its initial 0.01."""
    seed = data_seed(0)
    u = _toy(seed)
    w_hat, error, kept = heldout_w(u, gaussian(u, 0.0, 1.0), seed, w_warmup_epochs)
    print(f"trained w of the kept epochs: {np.round(kept, 4).tolist()}")
    assert abs(pull(w_hat, 0.1, error, f"exact background, {w_warmup_epochs} warm-up epochs")) < PULL_LIMIT


@pytest.fixture
def signal_trainings(monkeypatch) -> list[dict]:
    """Each training ``fit_mixture`` starts, as it starts and ends: whether w is learnt, the epochs, the
    module's starting state, the result and its seconds."""
    from adbench.models import signal_mixture

    calls = []
    real_train = signal_mixture.train_module

    def spy(build, *args, **kwargs):
        def recorded_build():
            module = build()
            calls.append({"learns_w": isinstance(module.theta, torch.nn.Parameter), "epochs": args[4].epochs,
                          "start": {k: v.detach().clone() for k, v in module.state_dict().items()}})
            return module

        trained = real_train(recorded_build, *args, **kwargs)
        calls[-1].update(trained=trained, seconds=trained.record.seconds)
        return trained

    monkeypatch.setattr(signal_mixture, "train_module", spy)
    return calls


def test_a_warm_up_holds_w_then_fits_it_from_the_warmed_up_signal_model(signal_trainings):
    """``w_warmup_epochs`` = 3 of 10: one training of 3 epochs with w a fixed buffer at w_init, then one
    of the other 7 that starts from the warm-up's best state (signal weights and w) and learns w; only
    the second's epochs are kept, and the record counts both trainings' seconds."""
    seed = data_seed(0)
    u = _toy(seed, n=4000)
    trained = fit_mixture(u, gaussian(u, 0.0, 1.0), lambda: build_signal_flow(2, TOY_FLOW), TOY_TRAIN,
                          w_init=0.01, w_step_scale=10.0, w_warmup_epochs=3, seed=seed)
    warm, rest = signal_trainings
    assert (warm["learns_w"], warm["epochs"], rest["learns_w"], rest["epochs"]) == (False, 3, True, 7)
    assert state_w(warm["trained"].states, 10.0) == pytest.approx([0.01])
    for key, value in warm["trained"].states[0].items():
        torch.testing.assert_close(rest["start"][key], value)
    assert trained is rest["trained"] and trained.record.epochs_run == 7
    assert max(trained.record.kept_epochs) <= 7
    assert trained.record.seconds == pytest.approx(rest["seconds"] + warm["seconds"])
    assert all(abs(w - 0.01) > 1e-4 for w in state_w(trained.states, 10.0))  # fitted after the warm-up
    with pytest.raises(ConfigError, match="w_warmup_epochs must be from 0 to .* got 10"):
        fit_mixture(u, gaussian(u, 0.0, 1.0), lambda: build_signal_flow(2, TOY_FLOW), TOY_TRAIN,
                    w_init=0.01, w_warmup_epochs=10, seed=seed)
    with pytest.raises(ConfigError, match="needs learn_w"):
        fit_mixture(u, gaussian(u, 0.0, 1.0), lambda: build_signal_flow(2, TOY_FLOW), TOY_TRAIN,
                    w_init=0.01, learn_w=False, w_warmup_epochs=3, seed=seed)


def test_min_steps_stretch_the_warm_up_and_the_rest_alike(signal_trainings):
    """Where ``min_steps`` raises 10 planned epochs to 20, a warm-up of 3 of them becomes 6 of 20."""
    from dataclasses import replace as replaced

    from adbench.models.training import planned_epochs

    u = _toy(data_seed(0), n=2000)
    n_train = len(validation_split(len(u), TOY_TRAIN, 0)[0])
    train = replaced(TOY_TRAIN, epochs=10, min_steps=20 * (n_train // TOY_TRAIN.batch_size))
    assert planned_epochs(n_train, train) == 20
    fit_mixture(u, gaussian(u, 0.0, 1.0), lambda: build_signal_flow(2, TOY_FLOW), train,
                w_init=0.01, w_warmup_epochs=3, seed=0)
    assert [training["epochs"] for training in signal_trainings] == [6, 14]


def test_a_mismodelled_background_pushes_w_out_of_its_error():
    """Negative control: the same fit with the background density shifted by 0.4 standard deviations
    attributes the mismodelling to the signal (pulls +9.6 to +14.2 for seeds 0-5)."""
    seed = data_seed(0)
    u = _toy(seed)
    w_hat, error, _ = heldout_w(u, gaussian(u, -0.4, 1.0), seed)
    assert pull(w_hat, 0.1, error, "background shifted by -0.4") > PULL_LIMIT
