"""The four flow-matching methods: registration, presets, shared fits, sidebands, template quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.methods.presets import load_preset, merge_tables  # noqa: E402
from adbench.methods.registry import canonical_name, get_method_class  # noqa: E402
from adbench.methods.sigma import VCR, SigmaContext, SigmaLinear, VData  # noqa: E402
from adbench.windows import Window  # noqa: E402
from tests.conftest import assert_distinguishable, assert_faithful, data_seed  # noqa: E402

NAMES = ("vdata", "vcr", "sigma-linear", "sigma-context")
MODES = {"vdata": "direct", "sigma-linear": "linear", "sigma-context": "context"}
TINY = {
    "network": {"width": 16, "blocks": 1, "dropout": 0.0},
    "train": {"epochs": 2, "batch_size": 256, "keep_best": 2},
    "solver": {"method": "rk4", "steps": 4},
}


def tiny(**changes: dict) -> dict:
    """TINY with some tables changed, e.g. ``tiny(train={"epochs": 3})``."""
    return merge_tables(TINY, changes)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_split():
    from adbench.data.synthetic import synthetic_dataset

    return synthetic_dataset(n_background=8000, n_signal=2000, n_reference=4000, seed=data_seed(2)).split(200, 0)



@pytest.fixture(scope="module")
def tiny_vdata(tiny_split):
    torch.set_num_threads(1)
    return VData(settings=TINY).fit(tiny_split.data, None)


def test_registered_with_alias_and_flags():
    assert canonical_name("sigma") == "sigma-context"
    assert get_method_class("sigma") is SigmaContext
    assert {get_method_class(n) for n in NAMES} == {VData, VCR, SigmaLinear, SigmaContext}
    assert VCR.per_window and not any(c.per_window for c in (VData, SigmaLinear, SigmaContext))
    assert all(get_method_class(n).produces == "template" for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("profile", ["fast", "paper"])
def test_presets_construct(name, profile):
    preset = load_preset(name, profile)
    assert preset.template.mass_sampler == "histogram"
    model = get_method_class(name)(device="cpu", seed=0, settings=preset.params)
    config = model.config  # every key of the preset lands in a settings dataclass (ConfigError otherwise)
    assert config.network.width == preset.params["network"]["width"]
    assert config.solver.method == preset.params["solver"]["method"]


def test_paper_profile_is_the_published_setup():
    config = SigmaContext(settings=load_preset("sigma-context", "paper").params).config
    network, train = config.network, config.train
    assert (network.architecture, network.width, network.blocks, network.dropout) == ("sigma", 256, 4, 0.2)
    assert (network.mass_frequencies, network.time_frequencies, network.sigma) == (9, 3, 1e-3)
    assert (train.optimizer, train.lr, train.weight_decay, train.batch_size) == ("adamw", 3e-4, 0.01, 4096)
    assert (train.schedule, train.plateau_factor, train.plateau_patience) == ("plateau", 0.3, 10)
    assert train.keep_best == 10 and train.epochs == 2000 and train.val_fraction == 0.15
    assert config.selection.metric == "nll" and config.solver.method == "dopri5"
    # The three all-data methods share one fit in both profiles.
    for profile in ("fast", "paper"):
        signatures = {
            get_method_class(n)(settings=load_preset(n, profile).params).fit_signature()
            for n in ("vdata", "sigma-linear", "sigma-context")
        }
        assert len(signatures) == 1


def test_every_profile_uses_the_published_network_and_mass_frequencies():
    """k = 0..8 everywhere: with fewer the finest mass period is wider than the SR, and the mechanism
    SIGMA rests on (context features that resolve the SR) is gone."""
    from adbench.methods.presets import available_profiles, read_preset_file
    from adbench.resources import resource_dir

    profiles = available_profiles(read_preset_file(resource_dir("methods") / "sigma-context.toml"))
    assert {"fast", "paper"} <= set(profiles)
    for profile in profiles:
        network = SigmaContext(settings=load_preset("sigma-context", profile).params).config.network
        assert (network.architecture, network.mass_frequencies) == ("sigma", 9), profile
    assert SigmaContext().config.network.architecture == "sigma"


def test_fit_signature_ignores_sampling_but_not_training():
    base = VData(settings=TINY).fit_signature()
    assert SigmaContext(settings=tiny(solver={"method": "dopri5", "atol": 1e-3})).fit_signature() == base
    assert SigmaLinear(settings=tiny(train={"epochs": 3})).fit_signature() != base
    assert SigmaLinear(settings=TINY, seed=1).fit_signature() != base
    assert json.loads(base)["train"]["epochs"] == 2


def test_fit_signature_comes_from_the_settings_not_the_file(tmp_path, monkeypatch):
    """A preset written out in full (no inherits) with the family's values gives the same shared-fit
    key as the inheriting one; changing one training value changes it."""
    from adbench.methods.presets import read_preset_file
    from adbench.resources import resource_dir

    merged = read_preset_file(resource_dir("methods") / "sigma-context.toml")
    (tmp_path / "methods").mkdir()
    lines = []

    def write(table: dict, name: str) -> None:
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in table.items() if not isinstance(value, dict))
        for key, value in table.items():
            if isinstance(value, dict):
                write(value, f"{name}.{key}")

    write(merged["fast"], "fast")
    (tmp_path / "methods" / "sigma-context.toml").write_text("\n".join(lines) + "\n")
    inherited = SigmaContext(settings=load_preset("sigma-context", "fast").params).fit_signature()
    monkeypatch.setenv("ADBENCH_PRESETS", str(tmp_path))
    assert SigmaContext(settings=load_preset("sigma-context", "fast").params).fit_signature() == inherited
    assert VData(settings=load_preset("sigma-context", "fast").params).fit_signature() == inherited
    changed = merge_tables(load_preset("sigma-context", "fast").params, {"train": {"lr": 1e-4}})
    assert SigmaContext(settings=changed).fit_signature() != inherited


def test_unknown_settings_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"unknown settings \['widht'\]"):
        VCR(settings={"network": {"widht": 3}}).check_ready()
    with pytest.raises(ConfigError, match=r"vcr settings: unknown settings \['epochs'\]"):
        _ = VCR(settings={"epochs": 3}).config


def test_mass_trend_names_features_and_leaves_the_default_hash_alone(tiny_split):
    from adbench.harness import MethodSpec, check_methods
    from adbench.methods.presets import Preset
    from adbench.settings import hashed_settings

    with pytest.raises(ConfigError, match="delta_r"):
        VData(settings=tiny(mass_trend=["delta_r"])).fit(tiny_split.data, None)
    # The harness refuses it before the first task, from the dataset's feature names.
    spec = MethodSpec("sigma-context", Preset("sigma-context", "fast", tiny(mass_trend=["delta_r"])))
    with pytest.raises(ConfigError, match=r"mass_trend names \['delta_r'\]"):
        check_methods([spec], "cpu", tiny_split.data.features)
    with pytest.raises(ConfigError, match="mass_trend must be a list"):
        _ = VData(settings=tiny(mass_trend=None)).config
    with pytest.raises(ConfigError, match="unknown mass_trend_kind 'rank'"):
        _ = VData(settings=tiny(mass_trend_kind="rank")).config
    with pytest.raises(ConfigError, match="list of feature names"):
        _ = VData(settings=tiny(mass_trend=[3])).config
    plain, trended = VData(settings=TINY), VData(settings=tiny(mass_trend=["delta_R"]))
    assert plain.fit_signature() != trended.fit_signature()
    # The option's default leaves the task hash of results stored before it existed unchanged.
    assert "mass_trend" not in hashed_settings(plain.config)
    assert hashed_settings(trended.config)["mass_trend"] == ("delta_R",)
    fitted = trended.fit(tiny_split.data, None)
    assert fitted.info()["mass_trend_columns"] == [tiny_split.data.features.index("delta_R")]
    assert "mass_trend_kind" not in hashed_settings(plain.config)
    quantile = VData(settings=tiny(mass_trend=["delta_R"], mass_trend_kind="quantile")).fit(tiny_split.data, None)
    assert quantile.info()["mass_trend_kind"] == "quantile"
    assert quantile.sample(np.full(50, 3.5), Window()).shape == (50, 5)
    settings = tiny(mass_trend=["delta_R"], mass_trend_kind="quantile")
    context = SigmaContext(settings=settings).share_fit_from(quantile).sample(np.full(50, 3.5), Window())
    assert context.shape == (50, 5) and np.isfinite(context).all()
    with pytest.raises(ConfigError, match="'dijet-edge' applies to delta_R only, not to tau21_j1"):
        _ = VData(settings=tiny(mass_trend=["delta_R", "tau21_j1"], mass_trend_kind="dijet-edge")).config
    for kind in ("dijet-edge", "dijet-stretch"):  # known kinematics: read at the SR masses
        edge_settings = tiny(mass_trend=["delta_R"], mass_trend_kind=kind)
        edge = VData(settings=edge_settings).fit(tiny_split.data, None)
        assert edge.info()["mass_trend_kind"] == kind
        context = SigmaContext(settings=edge_settings).share_fit_from(edge).sample(np.full(50, 3.5), Window())
        assert context.shape == (50, 5) and np.isfinite(context).all()


def test_shared_fit_and_templates(tiny_split, tiny_vdata):
    window = Window()
    masses = np.random.default_rng(0).uniform(window.low, window.high, 300)
    templates = {}
    for cls in (VData, SigmaLinear, SigmaContext):
        model = tiny_vdata if cls is VData else cls(settings=TINY).share_fit_from(tiny_vdata)
        assert model.model_ is tiny_vdata.model_
        template = model.sample(masses, window)
        assert template.shape == (300, 5) and template.dtype == np.float32 and np.isfinite(template).all()
        assert np.array_equal(template, model.sample(masses, window))  # seeded per window
        templates[cls.name] = template
        info = model.info()
        json.dumps(info)
        assert info["ode_solver"] == "rk4" and info["nfe_mean"] == 16
        assert info["epochs_run"] == 2 and np.isfinite(info["best_val_loss"])
        assert info["velocity_mode"] == MODES[cls.name]
    assert not np.array_equal(templates["vdata"], templates["sigma-context"])
    other_window = tiny_vdata.sample(masses, Window(3.3, 3.7, anchor_offset=0.5))
    assert other_window.shape == (300, 5)


def test_share_fit_requires_same_settings(tiny_vdata):
    with pytest.raises(MethodFailure):
        SigmaContext(settings=tiny(train={"epochs": 5})).share_fit_from(tiny_vdata)
    with pytest.raises(MethodFailure):
        SigmaContext(settings=TINY).share_fit_from(VData(settings=TINY))  # not fitted
    with pytest.raises(MethodFailure):
        SigmaContext(settings=TINY).sample(np.array([3.5]), Window())


def test_anchors_outside_the_training_range_fail(tiny_vdata):
    low, high = tiny_vdata.model_.mass_range_
    window = Window(high - 0.1, high - 0.01)  # upper anchor at high + 0.0125
    with pytest.raises(MethodFailure, match="anchors"):
        SigmaContext(settings=TINY).share_fit_from(tiny_vdata).sample(np.array([high - 0.05]), window)
    assert VData(settings=TINY).share_fit_from(tiny_vdata).sample(np.array([high - 0.05]), window).shape == (1, 5)


@pytest.mark.parametrize("cls", [SigmaContext, SigmaLinear])
def test_the_anchor_offset_setting_moves_only_the_anchors_and_shares_the_fit(tiny_vdata, cls):
    masses = np.linspace(3.31, 3.69, 64)
    moved = cls(settings=tiny(anchor_offset=0.0)).share_fit_from(tiny_vdata)  # the fit stays shared
    published = cls(settings=TINY).share_fit_from(tiny_vdata)
    # the same draws as the window's own anchors moved, and unlike the published anchors'
    np.testing.assert_array_equal(moved.sample(masses, Window()), published.sample(masses, Window(anchor_offset=0.0)))
    assert not np.allclose(moved.sample(masses, Window()), published.sample(masses, Window()))
    np.testing.assert_array_equal(cls(settings=tiny(anchor_offset=0.25)).share_fit_from(tiny_vdata)
                                  .sample(masses, Window()), published.sample(masses, Window()))


def test_anchor_offset_is_refused_where_it_means_nothing_or_enters_the_sr():
    with pytest.raises(ConfigError, match="anchor_offset applies to sigma-linear and sigma-context"):
        VData(settings=tiny(anchor_offset=0.0)).check_ready()
    with pytest.raises(ConfigError, match="anchor_offset must be a number >= 0"):
        SigmaContext(settings=tiny(anchor_offset=-0.1)).check_ready()


def test_vcr_trains_on_the_sidebands_only(tiny_split):
    window = Window()
    data = tiny_split.data
    vcr = VCR(settings=TINY).fit(data, window)
    record = vcr.model_.record_
    assert record.n_train + record.n_val == int(window.in_sidebands(data.m).sum())
    narrow = VCR(settings={**TINY, "sideband_width": 0.3}).fit(data, window)
    n_narrow = int(window.in_sidebands(data.m, 0.3).sum())
    assert narrow.model_.record_.n_train + narrow.model_.record_.n_val == n_narrow
    low, high = narrow.model_.mass_range_
    assert low >= window.low - 0.3 and high < window.high + 0.3
    template = narrow.sample(np.linspace(3.31, 3.69, 50), window)
    assert template.shape == (50, 5)
    with pytest.raises(MethodFailure):
        VCR(settings=TINY).fit(data, None)
    with pytest.raises(MethodFailure, match="both sides"):
        VCR(settings=TINY).fit(data.select(data.m < 3.5), window)
    for bad in (0, -0.3, True, "0.3"):
        with pytest.raises(ConfigError, match="sideband_width must be a positive width in TeV"):
            VCR.Settings(sideband_width=bad)


def test_same_seed_same_template(tiny_split):
    window = Window()
    masses = np.linspace(3.3, 3.69, 64)
    a = SigmaContext(settings=TINY, seed=4).fit(tiny_split.data, None).sample(masses, window)
    b = SigmaContext(settings=TINY, seed=4).fit(tiny_split.data, None).sample(masses, window)
    assert np.array_equal(a, b)


# ----------------------------------------------------------------------------- template quality

#: The quality tests train with the ``fast`` profile itself (the CPU demo's settings; v_CR with its own).
QUALITY = load_preset("sigma-context", "fast").params


def _sr_template(model, split, window, seed=0):
    from adbench.masses import histogram_masses

    sr = split.data.in_range(window.low, window.high)
    masses = histogram_masses(sr.m, window, 3 * len(sr), np.random.default_rng(seed))
    return sr, model.sample(masses, window)


@pytest.fixture(scope="module")
def quality_dataset():
    from adbench.data.synthetic import synthetic_dataset

    return synthetic_dataset(n_background=60_000, n_signal=6000, n_reference=60_000, seed=data_seed(0))


#: Fidelity limit in standard deviations of the calibrated null (``auc_null``: the AUC of two samples of
#: one distribution at the test's sizes, sigma about 0.007 here). The fast templates are not perfect:
#: over generator seeds 0-3 the shared model's (vdata, sigma-linear, sigma-context) sit 3.1-7.4 sigma
#: above the null, v_CR's 5.3-9.4 (its own fast profile: 32 epochs); the lower sideband's events,
#: taken as a template without any interpolation, sit at 13.7-15.6 sigma.
FIDELITY_SIGMAS = 12.0


@pytest.mark.slow
def test_no_signal_templates_match_the_background(quality_dataset):
    torch.set_num_threads(1)
    split, window = quality_dataset.split(0, 0), Window()
    true_background = split.test_in(window).background().x
    shared = VData(settings=QUALITY).fit(split.data, None)
    models = [shared, SigmaLinear(settings=QUALITY).share_fit_from(shared),
              SigmaContext(settings=QUALITY).share_fit_from(shared)]
    models.append(VCR(settings=load_preset("vcr", "fast").params).fit(split.data, window))
    for model in models:
        _, template = _sr_template(model, split, window)
        assert_faithful(template, true_background, FIDELITY_SIGMAS, f"{model.name} template (N_sig 0)")
    # the same check fails a template that does not interpolate: the lower sideband as it is
    assert_distinguishable(split.data.in_range(3.1, 3.3).x, true_background, FIDELITY_SIGMAS, "lower sideband")


@pytest.mark.slow
def test_strong_signal_vdata_learns_it_and_sigma_does_not(quality_dataset):
    """The mechanism of the SIGMA paper: with a large signal (S/B about 30% in the SR) the all-data
    model evaluated at the SR masses (v_data) reproduces the signal, while interpolating from the
    sideband anchors does not. Measured with a truth classifier (signal versus background, trained on
    held-out truth): the share of template events above its 1%-background-efficiency cut. A pure
    background template has 1%; every count is binomial, so the gap is tested in its own errors."""
    from adbench.evaluate import ClassifierConfig, ClassifierEnsemble

    torch.set_num_threads(1)
    split, window = quality_dataset.split(3000, 0), Window()
    truth, test = split.truth_in(window), split.test_in(window)
    signal_like = ClassifierEnsemble(ClassifierConfig(n_models=1), seed=0).fit(truth.signal.x, truth.background.x)
    cut = np.quantile(signal_like.predict(test.background().x), 0.99)
    vdata = VData(settings=QUALITY).fit(split.data, None)
    context = SigmaContext(settings=QUALITY).share_fit_from(vdata)
    share, error = {}, {}
    for model in (vdata, context):
        _, template = _sr_template(model, split, window)
        passing = signal_like.predict(template) > cut
        share[model.name] = float(passing.mean())
        error[model.name] = float(np.sqrt(passing.mean() * (1 - passing.mean()) / len(passing)))
    n_sigma = (share["vdata"] - share["sigma-context"]) / np.hypot(error["vdata"], error["sigma-context"])
    print(f"signal-like share of the template: {share} (errors {error}); v_data above SIGMA by {n_sigma:.1f} sigma")
    assert n_sigma > 5, share



def test_a_variant_suffix_names_each_method_of_a_family(tmp_path, monkeypatch):
    """A family base declares ``[variants] fast = "+quantile"`` once; every method inheriting it reports
    under its own name with the suffix."""
    import shutil

    from adbench.resources import resource_dir

    shutil.copytree(resource_dir("methods"), tmp_path / "methods")
    base = tmp_path / "methods" / "_flow-matching.toml"
    text = base.read_text()
    assert "[variants]\n" in text  # the family's own named profiles
    base.write_text(text.replace("[variants]\n", '[variants]\nfast = "+quantile"\n'))
    monkeypatch.setenv("ADBENCH_PRESETS", str(tmp_path))
    assert load_preset("sigma-context", "fast").variant == "sigma-context+quantile"
    assert load_preset("vcr", "fast").variant == "vcr+quantile"
    assert load_preset("vcr", "paper").variant == ""


def test_a_profile_extends_another(tmp_path, monkeypatch):
    """``extends = "cpu"`` in a profile starts from the cpu profile's tables and changes only what it
    names; a cycle or an unknown base is a ConfigError naming the file."""
    import shutil

    from adbench.resources import resource_dir

    shutil.copytree(resource_dir("methods"), tmp_path / "methods")
    base = tmp_path / "methods" / "_flow-matching.toml"
    text = base.read_text()
    base.write_text(text + '\n[cpu-x]\nextends = "cpu"\nmass_trend = ["delta_R"]\n[cpu-x.train]\nepochs = 3\n')
    monkeypatch.setenv("ADBENCH_PRESETS", str(tmp_path))
    cpu, extended = load_preset("vdata", "cpu").params, load_preset("vdata", "cpu-x").params
    assert extended["train"]["epochs"] == 3 and extended["mass_trend"] == ["delta_R"]
    assert extended["network"] == cpu["network"] and extended["train"]["lr"] == cpu["train"]["lr"]
    base.write_text(text + '\n[a]\nextends = "b"\n[b]\nextends = "a"\n[c]\nextends = "nope"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_preset("vdata", "a")
    with pytest.raises(ConfigError, match="_flow-matching.toml|vdata.toml"):
        load_preset("vdata", "c")
