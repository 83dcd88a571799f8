"""The four flow-matching methods: registration, presets, shared fits, sidebands, template quality."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.methods.presets import load_preset  # noqa: E402
from adbench.methods.registry import canonical_name, get_method_class  # noqa: E402
from adbench.methods.sigma import VCR, SigmaContext, SigmaLinear, VData  # noqa: E402
from adbench.windows import Window  # noqa: E402
from tests.conftest import assert_distinguishable, assert_faithful, data_seed  # noqa: E402

NAMES = ("vdata", "vcr", "sigma-linear", "sigma-context")
MODES = {"vdata": "direct", "sigma-linear": "linear", "sigma-context": "context"}
TINY = dict(width=16, blocks=1, dropout=0.0, epochs=2, batch_size=256, keep_best=2, solver="rk4", steps=4)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_split():
    from adbench.data.synthetic import synthetic_dataset

    return synthetic_dataset(n_background=8000, n_signal=2000, n_reference=4000, seed=data_seed(2)).split(200, 0)


@pytest.fixture(scope="module")
def tiny_vdata(tiny_split):
    torch.set_num_threads(1)
    return VData(**TINY).fit(tiny_split.data, None)


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
    assert preset.template.mass_sampler == "histogram" and preset.template.oversampling == 3.0
    cls = get_method_class(name)
    model = cls(device="cpu", seed=0, **preset.params)
    params = inspect.signature(cls.__init__).parameters
    assert all(key in params or name == "vcr" for key in preset.params)
    # The configurations are valid (raises ConfigError otherwise).
    model._configs(5)
    model._solver()


def test_paper_profile_is_the_published_architecture():
    params = load_preset("sigma-context", "paper").params
    assert (params["width"], params["blocks"], params["dropout"], params["keep_best"]) == (256, 4, 0.2, 10)
    assert params["batch_size"] >= 4096 and params["solver"] == "dopri5"
    # The three all-data methods share one fit in both profiles.
    for profile in ("fast", "paper"):
        signatures = {
            get_method_class(n)(**load_preset(n, profile).params).fit_signature()
            for n in ("vdata", "sigma-linear", "sigma-context")
        }
        assert len(signatures) == 1


def test_fit_signature_ignores_sampling_but_not_training():
    base = VData(**TINY).fit_signature()
    assert SigmaContext(**{**TINY, "solver": "dopri5", "atol": 1e-3}).fit_signature() == base
    assert SigmaLinear(**{**TINY, "epochs": 3}).fit_signature() != base
    assert SigmaLinear(**{**TINY, "seed": 1}).fit_signature() != base
    assert json.loads(base)["train"]["epochs"] == 2


def test_unknown_vcr_setting_is_a_config_error():
    with pytest.raises(ConfigError):
        VCR(widht=3)


def test_shared_fit_and_templates(tiny_split, tiny_vdata):
    window = Window()
    masses = np.random.default_rng(0).uniform(window.low, window.high, 300)
    templates = {}
    for cls in (VData, SigmaLinear, SigmaContext):
        model = tiny_vdata if cls is VData else cls(**TINY).share_fit_from(tiny_vdata)
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
        SigmaContext(**{**TINY, "epochs": 5}).share_fit_from(tiny_vdata)
    with pytest.raises(MethodFailure):
        SigmaContext(**TINY).share_fit_from(VData(**TINY))  # not fitted
    with pytest.raises(MethodFailure):
        SigmaContext(**TINY).sample(np.array([3.5]), Window())


def test_anchors_outside_the_training_range_fail(tiny_vdata):
    low, high = tiny_vdata.model_.mass_range_
    window = Window(high - 0.1, high - 0.01)  # upper anchor at high + 0.0125
    with pytest.raises(MethodFailure, match="anchors"):
        SigmaContext(**TINY).share_fit_from(tiny_vdata).sample(np.array([high - 0.05]), window)
    assert VData(**TINY).share_fit_from(tiny_vdata).sample(np.array([high - 0.05]), window).shape == (1, 5)


def test_vcr_trains_on_the_sidebands_only(tiny_split):
    window = Window()
    data = tiny_split.data
    vcr = VCR(**TINY).fit(data, window)
    record = vcr.model_.record_
    assert record.n_train + record.n_val == int(window.in_sidebands(data.m).sum())
    narrow = VCR(**TINY, sideband_width=0.3).fit(data, window)
    n_narrow = int(window.in_sidebands(data.m, 0.3).sum())
    assert narrow.model_.record_.n_train + narrow.model_.record_.n_val == n_narrow
    low, high = narrow.model_.mass_range_
    assert low >= window.low - 0.3 and high < window.high + 0.3
    template = narrow.sample(np.linspace(3.31, 3.69, 50), window)
    assert template.shape == (50, 5)
    with pytest.raises(MethodFailure):
        VCR(**TINY).fit(data, None)
    with pytest.raises(MethodFailure, match="both sides"):
        VCR(**TINY).fit(data.select(data.m < 3.5), window)


def test_same_seed_same_template(tiny_split):
    window = Window()
    masses = np.linspace(3.3, 3.69, 64)
    a = SigmaContext(**TINY, seed=4).fit(tiny_split.data, None).sample(masses, window)
    b = SigmaContext(**TINY, seed=4).fit(tiny_split.data, None).sample(masses, window)
    assert np.array_equal(a, b)


# ----------------------------------------------------------------------------- template quality

#: The quality tests train with the ``fast`` profile itself (the CPU demo's settings).
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
#: over training seeds 0-2 and generator seeds 0-2 they sit 4.7-9.2 sigma above the null (mean 7,
#: spread 1.2 between seeds, which is also what another CPU's rounding amounts to); the lower
#: sideband's events, taken as a template without any interpolation, sit at 15 sigma.
FIDELITY_SIGMAS = 12.0


@pytest.mark.slow
def test_no_signal_templates_match_the_background(quality_dataset):
    torch.set_num_threads(1)
    split, window = quality_dataset.split(0, 0), Window()
    true_background = split.test.in_range(window.low, window.high).background().x
    shared = VData(**QUALITY).fit(split.data, None)
    models = [shared, SigmaLinear(**QUALITY).share_fit_from(shared), SigmaContext(**QUALITY).share_fit_from(shared)]
    models.append(VCR(**QUALITY).fit(split.data, window))
    for model in models:
        _, template = _sr_template(model, split, window)
        assert_faithful(template, true_background, FIDELITY_SIGMAS, f"{model.name} template (N_sig 0)")
    # the same check fails a template that does not interpolate: the lower sideband as it is
    assert_distinguishable(split.data.in_range(3.1, 3.3).x, true_background, FIDELITY_SIGMAS, "lower sideband")


@pytest.mark.slow
def test_strong_signal_vdata_learns_it_and_sigma_does_not(quality_dataset):
    from adbench.evaluate import ClassifierConfig, ClassifierEnsemble, two_sample_auc
    from adbench.metrics import max_sic

    torch.set_num_threads(1)
    split, window = quality_dataset.split(3000, 0), Window()
    test = split.test.in_range(window.low, window.high)
    vdata = VData(**QUALITY).fit(split.data, None)
    context = SigmaContext(**QUALITY).share_fit_from(vdata)
    closeness, sic = {}, {}
    for model in (vdata, context):
        sr, template = _sr_template(model, split, window)
        closeness[model.name] = two_sample_auc(template, sr.x, seed=0)
        classifier = ClassifierEnsemble(ClassifierConfig(n_models=3, max_iter=200), seed=0).fit(sr.x, template)
        sic[model.name] = max_sic(test.label, classifier.predict(test.x))
    print("template vs SR data AUC", closeness, "max SIC", sic)
    # v_data learned the signal: its template is closer to the SR data than SIGMA's ...
    assert closeness["vdata"] < closeness["sigma-context"], closeness
    # ... so the classifier finds less of it.
    assert sic["sigma-context"] > sic["vdata"], sic
