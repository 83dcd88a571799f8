"""CATHODE (template from a sideband flow) and ANODE (density-ratio score) through the method contract."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("zuko")

from adbench.data.events import Events  # noqa: E402
from adbench.data.features import FEATURE_SETS  # noqa: E402
from adbench.data.synthetic import synthetic_dataset  # noqa: E402
from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.masses import sample_masses  # noqa: E402
from adbench.methods.cathode import Anode, Cathode, matched_epochs  # noqa: E402
from adbench.methods.presets import load_preset  # noqa: E402
from adbench.methods.registry import get_method_class  # noqa: E402
from adbench.metrics import roc_auc  # noqa: E402
from adbench.settings import hashed_settings  # noqa: E402
from adbench.windows import Window  # noqa: E402
from tests.conftest import assert_distinguishable, assert_faithful, data_seed  # noqa: E402

TINY = {"flow": {"transforms": 2, "hidden": 16}, "train": {"epochs": 2, "batch_size": 256, "lr": 3e-3, "keep_best": 2}}
WINDOW = Window(3.3, 3.7)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_split():
    return synthetic_dataset(20_000, 2_000, 5_000, seed=data_seed(1)).split(300, seed=0)


def test_registered_with_the_right_contract():
    assert get_method_class("cathode") is Cathode and get_method_class("anode") is Anode
    assert Cathode.produces == "template" and Anode.produces == "score"
    assert Cathode.per_window and Anode.per_window
    assert not Cathode.needs_truth and not Anode.needs_truth


@pytest.mark.parametrize("name", ["cathode", "anode"])
@pytest.mark.parametrize("profile", ["fast", "cpu", "paper", "paper-gpu"])
def test_presets_build_the_method(name, profile):
    preset = load_preset(name, profile)
    config = get_method_class(name)(device="cpu", seed=0, settings=preset.params).config
    assert config.train.epochs == preset.params["train"]["epochs"]
    assert config.flow.transforms == preset.params["flow"]["transforms"]
    if name == "cathode":
        assert preset.template.mass_sampler == "kde"
    if profile == "paper-gpu":
        assert config.train.batch_size >= 1024
    if profile == "cpu":  # R-ANODE's spline background, named as not the published flow
        assert config.flow.kind == "nsf" and preset.variant == f"{name}+nsf"
        ranode = get_method_class("ranode")(settings=load_preset("ranode", "cpu").params).config
        assert (config.flow, config.train) == (ranode.flow, ranode.train)


def test_the_cpu_spline_range_covers_the_scaled_signal_region():
    """The ``cpu`` family's spline flow transforms [-bound, bound] of the scaled features and is the
    identity outside, where an event gets the base Gaussian's density and CATHODE's template has no
    events (reports/README, "The spline flow's range"). Every SR event of ``synthetic-small``, data
    and test set, must lie inside it, with the scaler fitted on all the data (ANODE, R-ANODE) or on
    the sidebands (CATHODE); zuko's default 5 does not cover them."""
    from adbench.data.cards import load_dataset
    from adbench.models.flows import DEFAULT_SPLINE_BOUND, FlowConfig
    from adbench.preprocessing import LogitScaler

    bound = FlowConfig(**load_preset("cathode", "cpu").params["flow"]).spline_bound
    window = Window()
    split = load_dataset("synthetic-small").split(1000, 0, [window])
    data = split.data
    sr_events = np.vstack([data.x[window.in_sr(data.m)], split.test_in(window).x])
    for fitted_on, events in (("all data", data.x), ("sidebands", data.x[~window.in_sr(data.m)])):
        reach = float(np.abs(LogitScaler().fit(events).transform(sr_events)).max())
        print(f"scaler on {fitted_on}: SR events reach |z| = {reach:.2f}, bound {bound}, margin {bound - reach:.2f}")
        assert DEFAULT_SPLINE_BOUND < reach < bound


def test_paper_presets_are_the_published_setup():
    config = Cathode(settings=load_preset("cathode", "paper").params).config
    assert (config.flow.transforms, config.flow.hidden) == (15, 128)
    train = config.train
    assert (train.epochs, train.batch_size, train.lr, train.optimizer) == (100, 256, 1e-4, "adam")
    assert train.keep_best == 10 and train.max_events is None
    # the defaults of the settings dataclass are the published setup too
    assert Cathode().config == config


def test_init_only_stores():
    model = Cathode(seed=3, settings={"train": {"epochs": 7}, "flow": {"backend": "not-checked-until-used"}})
    assert model.seed == 3 and model.settings["train"]["epochs"] == 7 and not hasattr(model, "flow_")
    assert model.info() == {}


def test_cathode_trains_on_sidebands_and_samples_the_template(small_split):
    data = small_split.data
    model = Cathode(seed=0, settings=TINY)
    assert model.fit(data, WINDOW) is model
    n_sb = int(WINDOW.in_sidebands(data.m).sum())
    info = model.info()
    assert info["sideband_events"] == n_sb and info["n_train"] + info["n_val"] == n_sb
    assert info["epochs_run"] == 2 and len(info["kept_epochs"]) == 2 and info["backend"] == "zuko"
    masses = np.random.default_rng(0).uniform(3.3, 3.7, 777)
    template = model.sample(masses, WINDOW)
    assert template.shape == (777, data.n_features) and template.dtype == np.float32
    assert np.isfinite(template).all()
    again = Cathode(seed=0, settings=TINY).fit(data, WINDOW).sample(masses, WINDOW)
    np.testing.assert_array_equal(template, again)


def test_cathode_mass_trend_is_fitted_on_the_sidebands(small_split):
    data = small_split.data
    settings = {**TINY, "mass_trend": ["delta_R"], "mass_trend_kind": "quantile"}
    model = Cathode(seed=0, settings=settings).fit(data, WINDOW)
    assert model.info()["mass_trend_kind"] == "quantile"
    sidebands = data.select(WINDOW.in_sidebands(data.m))
    low, high = model.trend_.m_range_
    assert (low, high) == (float(sidebands.m.min()), float(sidebands.m.max()))
    template = model.sample(np.linspace(3.31, 3.69, 200), WINDOW)
    assert template.shape == (200, data.n_features) and np.isfinite(template).all()
    with pytest.raises(ConfigError, match=r"cathode: mass_trend names \['dR'\]"):
        Cathode(settings={**TINY, "mass_trend": ["dR"]}).fit(data, WINDOW)
    for kind in ("dijet-edge", "dijet-stretch"):
        edge = Cathode(seed=0, settings={**TINY, "mass_trend": ["delta_R"], "mass_trend_kind": kind})
        edge.fit(data, WINDOW)
        edged = edge.sample(np.linspace(3.31, 3.69, 200), WINDOW)
        assert edged.shape == (200, data.n_features) and np.isfinite(edged).all()
        assert edge.info()["mass_trend_kind"] == kind


def test_cathode_never_reads_labels(small_split):
    data = small_split.data
    relabelled = Events(data.m, data.x, np.zeros(len(data), np.int8), data.features)
    masses = np.linspace(3.31, 3.69, 100)
    a = Cathode(seed=0, settings=TINY).fit(data, WINDOW).sample(masses, WINDOW)
    b = Cathode(seed=0, settings=TINY).fit(relabelled, WINDOW).sample(masses, WINDOW)
    np.testing.assert_array_equal(a, b)


def test_needs_a_window_and_sidebands(small_split):
    with pytest.raises(MethodFailure, match="per window"):
        Cathode(settings=TINY).fit(small_split.data, None)
    only_sr = small_split.data.in_range(3.3, 3.7)
    with pytest.raises(MethodFailure, match="sideband events"):
        Cathode(settings=TINY).fit(only_sr, WINDOW)


@pytest.mark.parametrize("name", ["cathode", "anode", "ranode"])
def test_sideband_width_narrows_the_background_flows_events_and_bad_widths_are_refused(small_split, name):
    """``sideband_width`` trains the background flow (and the mass trend) on the events within that many
    TeV of the SR only; unset, on everything outside it."""
    data = small_split.data
    settings = {**TINY, "mass_trend": ["delta_R"], "mass_trend_kind": "quantile", "sideband_width": 0.4}
    if name == "ranode":
        settings["signal"] = {"train": {"epochs": 1, "batch_size": 256}}
    model = get_method_class(name)(seed=0, settings=settings).fit(data, WINDOW)
    near = data.select(WINDOW.in_sidebands(data.m, 0.4))
    assert 0 < len(near) < int(WINDOW.in_sidebands(data.m).sum())
    assert model.info()["sideband_events"] == len(near)
    assert model.trend_.m_range_ == (float(near.m.min()), float(near.m.max()))
    assert 2.9 <= near.m.min() and near.m.max() < 4.1
    assert "sideband_width" not in hashed_settings(get_method_class(name)(settings=TINY).config)  # stored hashes
    assert hashed_settings(model.config)["sideband_width"] == 0.4
    assert get_method_class(name).Settings(sideband_width=np.float32(0.4)).sideband_width == np.float32(0.4)
    for bad in (0, -0.2, True, "0.4", float("inf")):
        with pytest.raises(ConfigError, match="sideband_width must be a positive width in TeV"):
            get_method_class(name).Settings(sideband_width=bad)
    thin = data.select((data.m > 3.2) & (data.m < 3.8))
    with pytest.raises(MethodFailure, match=r"sideband events within 0.001 TeV of the SR"):
        get_method_class(name)(settings={**TINY, "sideband_width": 0.001}).fit(thin, WINDOW)


def test_anode_scores_test_events(small_split):
    model = Anode(seed=0, settings=TINY).fit(small_split.data, WINDOW)
    test = small_split.test_in(WINDOW)
    score = model.score(test, WINDOW)
    assert score.shape == (len(test),) and np.isfinite(score).all()
    info = model.info()
    assert info["sr_events"] == int(WINDOW.in_sr(small_split.data.m).sum())
    assert info["data_flow"]["n_train"] + info["data_flow"]["n_val"] == info["sr_events"]
    assert info["background_flow"]["n_train"] + info["background_flow"]["n_val"] == info["sideband_events"]
    # both flows share one scaler, so the ratio needs no Jacobian
    assert model.data_flow_.scaler_ is model.background_flow_.scaler_
    # the data flow gets (at least) the background flow's optimiser steps, not its epochs
    batch = TINY["train"]["batch_size"]
    data, background = info["data_flow"], info["background_flow"]
    assert data["epochs_run"] > background["epochs_run"] == TINY["train"]["epochs"]
    steps = data["epochs_run"] * (data["n_train"] // batch)
    assert background["epochs_run"] * (background["n_train"] // batch) <= steps
    assert steps < background["epochs_run"] * (background["n_train"] // batch) + 2 * (data["n_train"] // batch)


def test_matched_epochs_and_the_equal_epochs_option(small_split):
    from adbench.models.training import TrainConfig

    train = TrainConfig(epochs=10, batch_size=100, val_fraction=0.2, keep_best=1)
    assert matched_epochs(train, 10_000, 10_000) == 10 and matched_epochs(train, 20_000, 1_000) == 200
    assert matched_epochs(train, 1_000, 20_000) == 10  # never fewer epochs than the background flow
    assert matched_epochs(TrainConfig(epochs=10, batch_size=100, max_events=5_000, keep_best=1), 20_000, 1_000) == 50
    equal = Anode(seed=0, settings={**TINY, "data_flow_steps": "epochs"}).fit(small_split.data, WINDOW)
    assert equal.info()["data_flow"]["epochs_run"] == TINY["train"]["epochs"]
    with pytest.raises(ConfigError, match="data_flow_steps"):
        Anode(settings={**TINY, "data_flow_steps": "steps"}).check_ready()


def test_anode_non_finite_densities_are_a_method_failure(small_split, monkeypatch):
    model = Anode(seed=0, settings=TINY).fit(small_split.data, WINDOW)
    test = small_split.test_in(WINDOW)

    def broken(x, m, physical=True):
        out = np.zeros(len(x))
        out[:3] = -np.inf
        return out

    monkeypatch.setattr(model.data_flow_, "log_prob", broken)
    with pytest.raises(MethodFailure, match="3 of .* NaN/inf .*3 non-finite data densities"):
        model.score(test, WINDOW)


def test_anode_mass_trend_transforms_the_features_of_both_flows(small_split):
    data, test = small_split.data, small_split.test_in(WINDOW)
    settings = {**TINY, "mass_trend": ["delta_R"], "mass_trend_kind": "dijet-stretch"}
    model = Anode(seed=0, settings=settings).fit(data, WINDOW)
    sidebands = data.select(~WINDOW.in_sr(data.m))
    assert model.trend_.reference_mass_ == pytest.approx(np.median(sidebands.m))
    info = model.info()
    assert info["mass_trend_kind"] == "dijet-stretch"
    assert info["mass_trend_columns"] == [data.features.index("delta_R")]
    # the shared scaler is fitted on the stretched features, which differ from the raw ones
    stretched = model.trend_.transform(data.x, data.m)
    assert not np.allclose(stretched, data.x)
    scaler = model.data_flow_.scaler_
    assert scaler is model.background_flow_.scaler_
    np.testing.assert_allclose(scaler.transform(stretched), type(scaler)().fit(stretched).transform(stretched))
    # the score is the flows' log-ratio at the stretched features (the trend's Jacobian cancels)
    x = model.trend_.transform(test.x, test.m)
    expected = (model.data_flow_.log_prob(x, test.m, physical=False)
                - model.background_flow_.log_prob(x, test.m, physical=False))
    np.testing.assert_allclose(model.score(test, WINDOW), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match=r"anode: mass_trend names \['dR'\]"):
        Anode(settings={**TINY, "mass_trend": ["dR"]}).fit(data, WINDOW)
    with pytest.raises(ConfigError, match="delta_R only"):
        Anode(settings={**TINY, "mass_trend": ["tau21_j1"], "mass_trend_kind": "dijet-stretch"}).check_ready()


def test_anode_needs_sr_data(small_split):
    data = small_split.data
    no_sr = data.select(~WINDOW.in_sr(data.m))
    with pytest.raises(MethodFailure, match="SR data events"):
        Anode(settings=TINY).fit(no_sr, WINDOW)


# The fast profile's flow with fewer epochs, so that a test stays near 20 s on one core.
QUALITY = {
    "flow": {"transforms": 6, "hidden": 64},
    "train": {"optimizer": "adam", "epochs": 10, "batch_size": 512, "lr": 1e-3, "schedule": "cosine",
              "final_lr_fraction": 0.01, "keep_best": 5},
}


#: Fidelity limit in null standard deviations, as in ``tests/methods/test_sigma.py``. This template sits
#: 3.6-6.9 sigma above the null for generator seeds 0-2. On CATHODE's four features the background
#: changes slowly with mjj: the events of 2.5-2.7 TeV, taken as an SR template, sit at 18-20 sigma
#: (2.7-2.9 TeV only 10-11 sigma since the synthetic background drifts continuously with ln mjj).
FIDELITY_SIGMAS = 12.0


@pytest.mark.slow
def test_template_matches_the_true_background_without_signal():
    """Regression: at N_sig = 0 the template is hard to tell from true SR background (CATHODE's four
    features; with delta_R, which moves steeply with mjj, this small, short training is worse)."""
    dataset = synthetic_dataset(120_000, 1_000, 200_000, seed=data_seed(2))
    split = dataset.with_features(FEATURE_SETS["cathode"]).split(0, seed=0)
    model = Cathode(seed=0, settings=QUALITY).fit(split.data, WINDOW)
    sr = split.data.in_range(WINDOW.low, WINDOW.high)
    masses = sample_masses("kde", split.data.m, WINDOW, 4 * len(sr), np.random.default_rng(0)).masses
    template = model.sample(masses, WINDOW)
    background = split.test_in(WINDOW).background().x
    assert_faithful(template, background, FIDELITY_SIGMAS, "cathode template (N_sig 0)")
    assert_distinguishable(split.data.in_range(2.5, 2.7).x, background, FIDELITY_SIGMAS, "events of 2.5-2.7 TeV")


@pytest.mark.slow
def test_anode_finds_a_large_signal():
    split = synthetic_dataset(60_000, 6_000, 30_000, seed=data_seed(3)).split(3_000, seed=0)
    model = Anode(seed=0, settings=QUALITY).fit(split.data, WINDOW)
    test = split.test_in(WINDOW)
    assert roc_auc(test.label, model.score(test, WINDOW)) > 0.7


def test_the_harness_runs_both_methods(tmp_path):
    """A template method and a score method through the benchmark loop, recorded as finished."""
    from adbench.evaluate import ClassifierConfig
    from adbench.harness import MethodSpec, RunConfig, run_benchmark
    from adbench.methods.presets import Preset, TemplateSpec
    from adbench.results import ResultStore

    dataset = synthetic_dataset(20_000, 2_000, 20_000, seed=data_seed(1))
    specs = [
        MethodSpec("cathode", Preset("cathode", "fast", dict(TINY), TemplateSpec("kde"))),
        MethodSpec("anode", Preset("anode", "fast", dict(TINY), TemplateSpec())),
    ]
    config = RunConfig(
        methods=specs, windows=[WINDOW], n_sigs=[500], seeds=[0], output=tmp_path / "run",
        classifier=ClassifierConfig(n_models=1, max_iter=20), template_size=2.0,
    )
    summary = run_benchmark(dataset, config)
    assert (summary.finished, summary.failed) == (2, 0)
    records = {r.method: r for r in ResultStore(tmp_path / "run").load()}
    assert records["cathode"].n_template == 2 * records["cathode"].n_sr_data
    assert records["anode"].n_template == 0 and np.isfinite(records["anode"].max_sic)
    assert records["anode"].method_info["data_flow"]["backend"] == "zuko"
