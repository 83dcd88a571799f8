"""R-ANODE: the mass coordinate and the method through its contract (its signal-plus-fixed-background
fit on toys with exact densities: tests/models/test_signal_mixture.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.special import logsumexp

torch = pytest.importorskip("torch")
pytest.importorskip("zuko")

from adbench.data.events import Events  # noqa: E402
from adbench.data.synthetic import synthetic_dataset  # noqa: E402
from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.methods.presets import load_preset  # noqa: E402
from adbench.methods.ranode import MassCoordinate, Ranode, background_mass_log_density  # noqa: E402
from adbench.methods.registry import canonical_name, get_method_class  # noqa: E402
from adbench.models.signal_mixture import (  # noqa: E402
    sample_signal,
    signal_log_prob,
)
from adbench.models.training import validation_split  # noqa: E402
from adbench.preprocessing import LogitScaler  # noqa: E402
from adbench.settings import hashed_settings  # noqa: E402
from adbench.windows import Window  # noqa: E402
from tests.conftest import data_seed  # noqa: E402

TINY = {
    "flow": {"transforms": 2, "hidden": 16},
    "train": {"epochs": 2, "batch_size": 256, "lr": 3e-3, "keep_best": 2},
    "signal": {"flow": {"kind": "maf", "transforms": 1, "hidden": 8},
               "train": {"epochs": 2, "batch_size": 256, "lr": 3e-3, "keep_best": 2}},
    "w_step_scale": 10.0, "mass_samples": 2000, "mass_bins": 20,
}
WINDOW = Window(3.3, 3.7)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- coordinates -----------------------------------------------------------------------------------

def test_mass_coordinate_round_trip_and_jacobian():
    m = np.random.default_rng(0).uniform(3.3, 3.7, 1000)
    coordinate = MassCoordinate(3.3, 0.4).fit(m)
    t = coordinate.transform(m)
    assert abs(t.mean()) < 1e-9 and abs(t.std() - 1) < 1e-9
    np.testing.assert_allclose(coordinate.inverse(t), m, rtol=0, atol=1e-9)
    inner, h = m[(m > 3.31) & (m < 3.69)], 1e-7  # central differences, away from the steep edges
    numeric = (coordinate.transform(inner + h) - coordinate.transform(inner - h)) / (2 * h)
    np.testing.assert_allclose(coordinate.log_jacobian(inner), np.log(numeric), rtol=0, atol=1e-6)


def test_background_mass_density_is_normalised_on_the_sr():
    data = synthetic_dataset(60_000, 1_000, 1_000, seed=data_seed(3)).events
    log_density, params = background_mass_log_density(data.m, WINDOW, 0.2)
    grid = np.linspace(WINDOW.low, WINDOW.high, 4001)
    assert abs(np.trapezoid(np.exp(log_density(grid)), grid) - 1) < 1e-6
    assert len(params) == 4


# --- the method --------------------------------------------------------------------------------------

def test_registered_with_presets():
    assert get_method_class("ranode") is Ranode and canonical_name("r-anode") == "ranode"
    assert Ranode.produces == "score" and Ranode.per_window and not Ranode.needs_truth
    for profile in ("fast", "paper", "paper-gpu"):
        config = Ranode(settings=load_preset("ranode", profile).params).config
        assert 0 < config.w_init < 1 and config.learn_w
    paper = Ranode(settings=load_preset("ranode", "paper").params).config
    cathode = get_method_class("cathode")(settings=load_preset("cathode", "paper").params).config
    assert (paper.flow, paper.train) == (cathode.flow, cathode.train)  # the family's background flow
    signal = paper.signal
    assert (signal.flow.kind, signal.flow.transforms, signal.flow.hidden, signal.flow.bins) == ("nsf", 2, 32, 8)
    assert (signal.train.optimizer, signal.train.lr, signal.train.batch_size, signal.train.epochs) == (
        "adamw", 3e-4, 256, 300)
    assert signal.train.keep_best == 10 and signal.train.weight_decay == 0.01 and paper.w_step_scale == 1.0
    assert paper.signal_splits == 20  # the authors' retrainings on 20 train/validation splits
    gpu = Ranode(settings=load_preset("ranode", "paper-gpu").params).config
    assert gpu.signal_splits == 20 and gpu.train.batch_size > paper.train.batch_size
    assert Ranode().config == replace(paper, signal_splits=1)  # else the defaults are the paper profile
    fast, cpu = (Ranode(settings=load_preset("ranode", name).params).config for name in ("fast", "cpu"))
    assert (cpu.flow.kind, cpu.flow.transforms, cpu.flow.hidden) == ("nsf", fast.flow.transforms, fast.flow.hidden)
    assert cpu.train.epochs == 4 * fast.train.epochs and cpu.signal == fast.signal
    assert (fast.signal_splits, cpu.signal_splits) == (1, 5)
    # a minimum of optimiser steps for the signal flow on small SRs; the published training has none
    assert fast.signal.train.min_steps == 1000 and paper.signal.train.min_steps is None
    assert "signal_splits" not in hashed_settings(Ranode().config)  # stored fast results keep their hash
    assert hashed_settings(cpu)["signal_splits"] == 5
    assert load_preset("ranode", "cpu").variant == "ranode+nsf"  # not the authors' background: named


def test_a_spline_background_flow_fits_and_scores(small_split):
    settings = {**TINY, "flow": {**TINY["flow"], "kind": "nsf", "bins": 4}}
    method = Ranode(seed=0, settings=settings).fit(small_split.data, WINDOW)
    assert method.info()["background_flow"]["kind"] == "nsf"
    score = method.score(small_split.test_in(WINDOW), WINDOW)
    assert np.isfinite(score).all()


def test_a_mass_trend_transforms_the_features_of_both_densities(small_split):
    data = small_split.data
    settings = {**TINY, "mass_trend": ["delta_R"], "mass_trend_kind": "dijet-stretch"}
    method = Ranode(seed=0, settings=settings).fit(data, WINDOW)
    info = method.info()
    assert info["mass_trend_kind"] == "dijet-stretch" and info["mass_trend_columns"] == [data.features.index("delta_R")]
    sidebands = data.select(~WINDOW.in_sr(data.m))
    assert method.trend_.reference_mass_ == pytest.approx(np.median(sidebands.m))
    # The scaler, the background flow and the signal flow see the stretched delta_R, not the raw one:
    # the score is their log-ratio at the transformed features (the trend's Jacobian cancels in it).
    column = data.features.index("delta_R")
    stretched_data = method.trend_.transform(data.x, data.m)
    expected, raw = LogitScaler().fit(stretched_data), LogitScaler().fit(data.x)
    for key in ("min_", "span_", "mean_", "std_"):
        np.testing.assert_allclose(getattr(method.scaler_, key), getattr(expected, key), rtol=1e-12)
    assert raw.span_[column] != pytest.approx(method.scaler_.span_[column])
    sr = data.select(WINDOW.in_sr(data.m))
    _, log_bkg_sr = method._coordinates(sr)
    stretched_sr = method.trend_.transform(sr.x, sr.m)
    np.testing.assert_allclose(log_bkg_sr, method.background_flow_.log_prob(stretched_sr, sr.m, physical=False)
                               + method.log_mass_bkg_(sr.m) - method.coordinate_.log_jacobian(sr.m), rtol=1e-10)
    test = small_split.test_in(WINDOW)
    stretched = method.trend_.transform(test.x, test.m)
    assert not np.allclose(stretched, test.x)
    log_bkg = method.background_flow_.log_prob(stretched, test.m, physical=False)
    u = np.column_stack([method.coordinate_.transform(test.m), method.scaler_.transform(stretched)])
    bins = np.clip(np.searchsorted(method.mass_edges_, test.m, side="right") - 1, 0, len(method.log_mass_sig_) - 1)
    log_sig = method._signal_log_prob(u) + method.coordinate_.log_jacobian(test.m) - method.log_mass_sig_[bins]
    np.testing.assert_allclose(method.score(test, WINDOW), log_sig - log_bkg, rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match=r"ranode: mass_trend names \['dR'\]"):
        Ranode(settings={**TINY, "mass_trend": ["dR"]}).fit(data, WINDOW)


@pytest.mark.parametrize(("settings", "key"), [
    ({"w_init": 0.0}, "w_init"),
    ({"w_init": 1.5}, "w_init"),
    ({"w_step_scale": 0}, "w_step_scale"),
    ({"mass_sideband_width": float("inf")}, "mass_sideband_width must be a positive width in TeV, got inf"),
    ({"mass_sideband_width": None}, "mass_sideband_width must be a positive width in TeV, got None"),
    ({"sideband_width": 0.0}, r"sideband_width must be a positive width in TeV \(or unset"),
    ({"signal": {"flow": {"kind": "glow"}}}, "signal flow kind"),
    ({"mass_samples": 10}, "mass_samples"),
    ({"signal_splits": 0}, "signal_splits"),
    ({"signal_splits": 2.0}, "signal_splits"),
    ({"background_flows": 0}, "background_flows"),
    ({"background_flows": 1.5}, "background_flows"),
    ({"background_flows": True}, "background_flows"),
    ({"signal_split_selection": "best"}, "signal_split_selection"),
    ({"signal_split_selection": "likelihood"}, "needs signal_splits >= 2"),
    ({"w_warmup_epochs": 300}, "w_warmup_epochs"),
    ({"w_warmup_epochs": -1}, "w_warmup_epochs"),
    ({"w_warmup_epochs": True}, "w_warmup_epochs"),
    ({"w_warmup_epochs": 5, "learn_w": False}, "needs learn_w"),
    ({"mass_trend_kind": "dijet-stretch", "mass_trend": ["tau21_j1"]}, "delta_R only"),
])
def test_bad_settings_are_one_line_config_errors(settings, key):
    with pytest.raises(ConfigError, match=key) as error:
        Ranode(settings=settings).check_ready()
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def small_split():
    return synthetic_dataset(20_000, 2_000, 5_000, seed=data_seed(1)).split(500, seed=0)


@pytest.fixture(scope="module")
def fitted(small_split):
    torch.set_num_threads(1)
    return Ranode(seed=0, settings=TINY).fit(small_split.data, WINDOW)


def test_fit_reports_w_and_scores_test_events(small_split, fitted):
    data = small_split.data
    info = fitted.info()
    assert fitted.trend_ is None and "mass_trend_kind" not in info
    assert info["sr_events"] == int(WINDOW.in_sr(data.m).sum())
    assert info["sideband_events"] == int((~WINDOW.in_sr(data.m)).sum())
    assert 0 < info["fitted_w"] < 1 and len(info["fitted_w_kept"]) == 2
    assert 0 < info["heldout_w"] < 1 and info["heldout_w_error"] > 0
    # the held-out log-likelihood ratio is that of the mixture at the held-out w against w = 0
    sr = data.select(WINDOW.in_sr(data.m))
    u, log_bkg = fitted._coordinates(sr)
    _, val = validation_split(len(u), fitted.config.signal.train, fitted._split_seed(0))
    log_sig = signal_log_prob(fitted.splits_[0].module, fitted.splits_[0].states, u[val])
    w = info["heldout_w"]
    llr = np.logaddexp(np.log(w) + log_sig, np.log1p(-w) + log_bkg[val]).sum() - log_bkg[val].sum()
    assert info["heldout_llr"] == pytest.approx(max(llr, 0.0), abs=1e-6) and info["heldout_llr"] >= 0
    signal = info["signal_flow"]
    assert signal["n_train"] + signal["n_val"] == info["sr_events"]
    # p_sig(m) is a normalised density over the SR
    assert abs(np.sum(np.exp(fitted.log_mass_sig_) * np.diff(fitted.mass_edges_)) - 1) < 1e-9
    test = small_split.test_in(WINDOW)
    score = fitted.score(test, WINDOW)
    assert score.shape == (len(test),) and np.isfinite(score).all()


def test_the_w_warm_up_reaches_every_signal_fit(small_split, fitted):
    """``w_warmup_epochs`` = 1 of 3 signal epochs: each split trains 2 epochs with w learnt after its
    warm-up, the record says so, and the default leaves no trace in the record."""
    signal = {**TINY["signal"], "train": {**TINY["signal"]["train"], "epochs": 3}}
    warmed = Ranode(seed=0, settings={**TINY, "signal": signal, "w_warmup_epochs": 1, "signal_splits": 2})
    info = warmed.fit(small_split.data, WINDOW).info()
    assert info["w_warmup_epochs"] == 1 and "w_warmup_epochs" not in fitted.info()
    assert [t.record.epochs_run for t in warmed.splits_] == [2, 2]
    assert np.isfinite(warmed.score(small_split.test_in(WINDOW), WINDOW)).all()


def test_signal_splits_are_ensembled_and_split_0_is_the_single_fit(small_split, fitted):
    ensemble = Ranode(seed=0, settings={**TINY, "signal_splits": 3}).fit(small_split.data, WINDOW)
    info, single = ensemble.info(), fitted.info()
    assert info["signal_splits"] == 3 and len(info["fitted_w_kept"]) == 3 * 2
    assert info["fitted_w_splits"][0] == round(single["fitted_w"], 6)
    assert info["heldout_w_splits"][0][0] == round(single["heldout_w"], 6)
    assert len(set(info["fitted_w_splits"])) == 3  # different splits and initialisations
    assert info["fitted_w"] == pytest.approx(np.mean(info["fitted_w_splits"]), abs=1e-6)
    for state, single_state in zip(ensemble.splits_[0].states, fitted.splits_[0].states, strict=True):
        assert all(torch.equal(state[key], single_state[key]) for key in single_state)
    assert ensemble.splits_[0].record.val_losses == fitted.splits_[0].record.val_losses
    assert "fitted_w_splits" not in single and single["signal_splits"] == 1
    assert abs(np.sum(np.exp(ensemble.log_mass_sig_) * np.diff(ensemble.mass_edges_)) - 1) < 1e-9
    assert info["heldout_w"] == pytest.approx(np.mean([w for w, _ in info["heldout_w_splits"]]), abs=1e-6)
    assert info["heldout_llr_splits"][0] == round(single["heldout_llr"], 3)
    assert info["heldout_llr"] == pytest.approx(np.mean(info["heldout_llr_splits"]), abs=1e-3)
    test = small_split.test_in(WINDOW)
    u = np.column_stack([ensemble.coordinate_.transform(test.m), ensemble.scaler_.transform(test.x)])
    per_split = [signal_log_prob(t.module, t.states, u) for t in ensemble.splits_]
    np.testing.assert_allclose(ensemble._signal_log_prob(u), logsumexp(per_split, axis=0) - np.log(3), rtol=1e-10)
    assert np.isfinite(ensemble.score(test, WINDOW)).all()


def test_background_flows_are_ensembled_and_the_first_is_the_single_flow(small_split, fitted):
    """background_flows = 2: two flows from different seeds on the same sidebands and scaler, p_bkg
    their mean density in the SR fit and in the score; the first is the flow of the single fit. At its
    default the setting stays out of the task hash."""
    from adbench.methods.ranode import BackgroundEnsemble

    ensemble = Ranode(seed=0, settings={**TINY, "background_flows": 2}).fit(small_split.data, WINDOW)
    flows = ensemble.background_flow_
    assert isinstance(flows, BackgroundEnsemble) and len(flows.flows) == 2
    assert all(flow.scaler_ is ensemble.scaler_ for flow in flows.flows)
    single = fitted.background_flow_
    for state, single_state in zip(flows.flows[0].states_, single.states_, strict=True):
        assert all(torch.equal(state[key], single_state[key]) for key in single_state)
    test = small_split.test_in(WINDOW)
    members = [flow.log_prob(test.x, test.m, physical=False) for flow in flows.flows]
    assert not np.allclose(members[0], members[1])  # another seed, another flow
    np.testing.assert_allclose(flows.log_prob(test.x, test.m, physical=False),
                               logsumexp(members, axis=0) - np.log(2), rtol=1e-12)
    sr = small_split.data.select(WINDOW.in_sr(small_split.data.m))
    _, log_bkg = ensemble._coordinates(sr)
    np.testing.assert_allclose(log_bkg, flows.log_prob(sr.x, sr.m, physical=False) + ensemble.log_mass_bkg_(sr.m)
                               - ensemble.coordinate_.log_jacobian(sr.m), rtol=1e-10)
    info = ensemble.info()["background_flow"]
    assert info["ensemble"] == 2 and len(info["best_val_loss_members"]) == 2
    assert "ensemble" not in fitted.info()["background_flow"]
    assert np.isfinite(ensemble.score(test, WINDOW)).all()
    assert "background_flows" not in hashed_settings(fitted.config)
    assert hashed_settings(ensemble.config)["background_flows"] == 2


def test_likelihood_selection_ensembles_only_the_chosen_splits(small_split, monkeypatch):
    """signal_split_selection = "likelihood": p_sig, its mass histogram and every w come from the splits
    likely_splits chooses (made to choose 0 and 2 of 3 here, so the check does not rest on which split a
    toy training drops on this CPU), the record keeps every split's numbers and the all-split w beside
    them; with "all" every split is chosen, and at that default the setting stays out of the task hash."""
    import adbench.models.signal_mixture as signal_mixture

    settings = {**TINY, "signal_splits": 3}
    everything = Ranode(seed=0, settings=settings).fit(small_split.data, WINDOW)
    assert everything.chosen_splits_ == [0, 1, 2]
    assert "signal_split_selection" not in hashed_settings(everything.config)
    asked = []

    def choose_0_and_2(fits, level):
        asked.append((len(fits), level))
        return [0, 2]

    monkeypatch.setattr(signal_mixture, "likely_splits", choose_0_and_2)
    method = Ranode(seed=0, settings={**settings, "signal_split_selection": "likelihood"}).fit(small_split.data, WINDOW)
    assert asked == [(3, 0.05)] and hashed_settings(method.config)["signal_split_selection"] == "likelihood"
    info, every = method.info(), everything.info()
    assert method.chosen_splits_ == info["chosen_splits"] == [0, 2]
    for key in ("fitted_w_splits", "heldout_w_splits", "heldout_llr_splits"):
        assert info[key] == every[key]  # the same three trainings
    assert method.kept_w_ == everything.split_kept_w_[0] + everything.split_kept_w_[2]
    assert info["fitted_w"] == pytest.approx(np.mean([every["fitted_w_splits"][k] for k in (0, 2)]), abs=1e-6)
    assert info["heldout_w"] == pytest.approx(np.mean([every["heldout_w_splits"][k][0] for k in (0, 2)]), abs=1e-6)
    assert info["heldout_llr"] == pytest.approx(np.mean([every["heldout_llr_splits"][k] for k in (0, 2)]), abs=1e-3)
    assert (info["fitted_w_all_splits"], info["heldout_w_all_splits"]) == (every["fitted_w"], every["heldout_w"])
    test = small_split.test_in(WINDOW)
    u = np.column_stack([method.coordinate_.transform(test.m), method.scaler_.transform(test.x)])
    per_split = [signal_log_prob(method.splits_[k].module, method.splits_[k].states, u) for k in (0, 2)]
    np.testing.assert_allclose(method._signal_log_prob(u), logsumexp(per_split, axis=0) - np.log(2), rtol=1e-10)
    draws = np.concatenate([  # the mass histogram from the chosen splits' draws (split k's seed: seed + k)
        sample_signal(method.splits_[k].module, method.splits_[k].states, n, seed=k)
        for k, n in zip((0, 2), np.bincount(np.arange(method.config.mass_samples) % 2), strict=True)])
    counts, _ = np.histogram(method.coordinate_.inverse(draws[:, 0]), bins=method.mass_edges_)
    np.testing.assert_allclose(method.log_mass_sig_, np.log((counts + 1.0) / (counts + 1.0).sum()
                                                            / np.diff(method.mass_edges_)), rtol=1e-12)
    assert not np.allclose(method.log_mass_sig_, everything.log_mass_sig_)


def test_same_seed_same_scores_and_labels_never_read(small_split, fitted):
    data = small_split.data
    relabelled = Events(data.m, data.x, np.zeros(len(data), np.int8), data.features)
    again = Ranode(seed=0, settings=TINY).fit(relabelled, WINDOW)
    test = small_split.test_in(WINDOW)
    np.testing.assert_array_equal(fitted.score(test, WINDOW), again.score(test, WINDOW))
    assert again.info()["fitted_w"] == fitted.info()["fitted_w"]


def test_non_finite_scores_are_a_method_failure(small_split, fitted, monkeypatch):
    test = small_split.test_in(WINDOW)

    def broken(x, m, physical=True):
        out = np.zeros(len(x))
        out[:2] = np.nan
        return out

    monkeypatch.setattr(fitted.background_flow_, "log_prob", broken)
    with pytest.raises(MethodFailure, match="2 of .* NaN/inf .*2 non-finite background densities"):
        fitted.score(test, WINDOW)


def test_needs_a_window_and_sr_data(small_split):
    data = small_split.data
    with pytest.raises(MethodFailure, match="per window"):
        Ranode(settings=TINY).fit(data, None)
    with pytest.raises(MethodFailure, match="SR data events"):
        Ranode(settings=TINY).fit(data.select(~WINDOW.in_sr(data.m)), WINDOW)


@pytest.mark.slow
def test_variants_of_one_run_train_their_common_background_flow_once(tmp_path):
    """R-ANODE profiles that differ after the background flow (here w_init, and a second background
    flow) train that flow once per window, N_sig and seed in a run: the later tasks read it back from
    the run's shared trainings, count its training seconds in their fit time and say so in their
    record; the flow is the one they would have trained."""
    from adbench.evaluate import ClassifierConfig
    from adbench.harness import MethodSpec, RunConfig, run_benchmark
    from adbench.methods.presets import Preset, merge_tables
    from adbench.results import ResultStore

    fast = load_preset("ranode", "fast")
    variants = {"tiny-a": TINY, "tiny-b": {**TINY, "w_init": 0.01}, "tiny-c": {**TINY, "background_flows": 2},
                "tiny-d": {**TINY, "signal_splits": 2, "signal_split_selection": "likelihood"}}
    specs = [MethodSpec("ranode", Preset("ranode", name, merge_tables(fast.params, params), fast.template))
             for name, params in variants.items()]
    dataset = synthetic_dataset(20_000, 2_000, 5_000, seed=data_seed(1))
    config = RunConfig(methods=specs, windows=[WINDOW], n_sigs=[500], seeds=[0], output=tmp_path,
                       classifier=ClassifierConfig(n_models=1, max_iter=20))
    assert run_benchmark(dataset, config).finished == 4
    by = {r.profile: r for r in ResultStore(tmp_path).load()}
    assert "trainings_from_other_tasks" not in by["tiny-a"].method_info
    flow = by["tiny-a"].method_info["background_flow"]
    # b: the flow (its signal fit starts at another w); c: the first flow and the signal fit (its p_bkg
    # differs: no); d: the flow and split 0's signal fit, the same as a's
    for name, taken in (("tiny-b", 1), ("tiny-c", 1), ("tiny-d", 2)):
        info = by[name].method_info
        assert info["trainings_from_other_tasks"] == taken, name
        assert info["background_flow"].get("best_val_loss_members", [info["background_flow"]["best_val_loss"]])[0] \
            == flow["best_val_loss"]
        assert by[name].time_fit_window_s > flow["train_seconds"]
    assert by["tiny-b"].method_info["fitted_w"] != by["tiny-a"].method_info["fitted_w"]
    assert by["tiny-d"].method_info["fitted_w_splits"][0] == round(by["tiny-a"].method_info["fitted_w"], 6)
    alone = RunConfig(methods=specs[1:2], windows=[WINDOW], n_sigs=[500], seeds=[0], output=tmp_path / "alone",
                      classifier=config.classifier)
    assert run_benchmark(dataset, alone).finished == 1
    (by_itself,) = ResultStore(tmp_path / "alone").load()
    assert "trainings_from_other_tasks" not in by_itself.method_info
    for key in ("fitted_w", "heldout_w", "heldout_llr"):
        assert by_itself.method_info[key] == by["tiny-b"].method_info[key], key
    assert by_itself.curve == by["tiny-b"].curve
    assert not (tmp_path / "resume").exists()  # the shared trainings go with the run's progress
    from adbench.report import build_report

    markdown = build_report(list(by.values()), tmp_path, figures=False).write_markdown(tmp_path / "r.md")
    assert "3 tasks (ranode:tiny-b, ranode:tiny-c, ranode:tiny-d) read back 4 trainings that another task" \
        in markdown.read_text()


@pytest.mark.slow
def test_anode_reads_back_the_background_flow_ranode_trained_in_the_same_run(tmp_path):
    """ANODE and R-ANODE of one profile train the same sideband background flow (the same scaler,
    data, settings and seed): run together, the later one reads it back instead of training it again,
    and its scores are those it gets when run alone."""
    from adbench.evaluate import ClassifierConfig
    from adbench.harness import MethodSpec, RunConfig, run_benchmark
    from adbench.methods.presets import Preset, merge_tables
    from adbench.results import ResultStore

    def tiny(name: str, params: dict) -> MethodSpec:
        fast = load_preset(name, "fast")
        return MethodSpec(name, Preset(name, "tiny", merge_tables(fast.params, params), fast.template))

    background = {key: TINY[key] for key in ("flow", "train")}
    specs = [tiny("ranode", TINY), tiny("anode", background)]
    dataset = synthetic_dataset(20_000, 2_000, 5_000, seed=data_seed(1))
    classifier = ClassifierConfig(n_models=1, max_iter=20)
    together = RunConfig(methods=specs, windows=[WINDOW], n_sigs=[500], seeds=[0], output=tmp_path / "both",
                         classifier=classifier)
    assert run_benchmark(dataset, together).finished == 2
    by = {r.method: r for r in ResultStore(tmp_path / "both").load()}
    assert "trainings_from_other_tasks" not in by["ranode"].method_info
    assert by["anode"].method_info["trainings_from_other_tasks"] == 1
    assert by["anode"].method_info["background_flow"]["best_val_loss"] \
        == by["ranode"].method_info["background_flow"]["best_val_loss"]
    alone = RunConfig(methods=specs[1:], windows=[WINDOW], n_sigs=[500], seeds=[0], output=tmp_path / "alone",
                      classifier=classifier)
    assert run_benchmark(dataset, alone).finished == 1
    (by_itself,) = ResultStore(tmp_path / "alone").load()
    assert "trainings_from_other_tasks" not in by_itself.method_info
    assert by_itself.curve == by["anode"].curve
