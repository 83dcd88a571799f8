"""Every registered method honours the contract of ../shared/DESIGN.md through the real harness.

A new method is picked up automatically; give it a tiny setting in TINY if its fast preset is slow.
"""

import importlib.util

import numpy as np
import pytest

from adbench.evaluate import ClassifierConfig
from adbench.harness import MethodSpec, RunConfig, run_benchmark
from adbench.methods.base import BackgroundModel
from adbench.methods.presets import Preset, available_profiles, load_preset, merge_tables, read_preset_file
from adbench.methods.registry import get_method_class, method_names
from adbench.resources import resource_dir
from adbench.results import ResultStore
from adbench.windows import Window
from tests.conftest import data_seed

#: Overrides of the fast preset that keep one run of each method to a few seconds.
_CFM = {"train": {"epochs": 2}, "network": {"width": 32}, "solver": {"steps": 2}}
_FLOW = {"train": {"epochs": 2, "keep_best": 1}, "flow": {"transforms": 2, "hidden": 16}}
TINY = {
    "vdata": _CFM, "vcr": _CFM, "sigma-linear": _CFM, "sigma-context": _CFM,
    "cathode": _FLOW, "anode": _FLOW,
    "radot": {"batch_size": 500},
    "curtains4f4": {**_FLOW, "transport": {"flow": {"layers": 2, "hidden": 16},
                                           "train": {"epochs": 2, "keep_best": 1}}},
    "ranode": {**_FLOW, "signal": {"flow": {"kind": "maf", "transforms": 1, "hidden": 8},
                                   "train": {"epochs": 2, "keep_best": 1, "min_steps": 4}},
               "mass_samples": 2000},
}


def tiny_spec(name: str) -> MethodSpec:
    """The method at its fast preset with its TINY overrides."""
    fast = load_preset(name, "fast")
    return MethodSpec(name, Preset(name, "fast", merge_tables(fast.params, TINY.get(name, {})), fast.template))


@pytest.fixture(scope="module")
def tiny_dataset():
    from adbench.data.synthetic import synthetic_dataset

    return synthetic_dataset(n_background=60_000, n_signal=6_000, n_reference=60_000, seed=data_seed(3))


@pytest.mark.parametrize("name", method_names())
def test_class_attributes_and_every_preset_profile_are_valid(name):
    cls = get_method_class(name)
    assert cls.name == name and cls.family
    assert cls.produces in ("template", "score") and isinstance(cls.per_window, bool)
    path = resource_dir("methods") / f"{name}.toml"
    profiles = available_profiles(read_preset_file(path)) if path.is_file() else ["fast", "paper"]
    assert {"fast", "paper"} <= set(profiles)
    for profile in profiles:
        # __init__ only stores its keyword arguments; every profile's settings fill the Settings dataclass
        params = load_preset(name, profile).params
        model = cls(device="cpu", seed=0, settings=params)
        assert (model.device, model.seed, model.settings) == ("cpu", 0, params), profile
        assert isinstance(model.config, cls.Settings)
        if params.get("flow", {}).get("backend") != "nflows" or importlib.util.find_spec("nflows"):
            model.check_ready()  # every setting valid, every library it needs installed
    implemented = cls.sample if cls.produces == "template" else cls.score
    assert implemented is not getattr(BackgroundModel, "sample" if cls.produces == "template" else "score")


@pytest.mark.slow
@pytest.mark.parametrize("name", method_names())
def test_runs_through_the_harness(name, tiny_dataset, tmp_path):
    spec = tiny_spec(name)
    config = RunConfig(methods=[spec], windows=[Window(3.3, 3.7)], n_sigs=[1000], seeds=[0], output=tmp_path,
                       classifier=ClassifierConfig(n_models=1, max_iter=40))
    summary = run_benchmark(tiny_dataset, config)
    (record,) = ResultStore(tmp_path).load()
    assert summary.finished == 1, record.error
    assert (record.method, record.profile, record.dataset, record.status) == (name, "fast", tiny_dataset.name, "ok")
    for key in ("max_sic", "sic_1e3", "auc"):
        assert np.isfinite(getattr(record, key)), key
        assert np.isfinite(record.stat_errors[key]) and record.stat_errors[key] > 0, key
    assert 0.0 <= record.auc <= 1.0 and record.curve and record.versions and record.config_hash
    cls = get_method_class(name)
    if cls.produces == "template":
        assert 0.0 <= record.fidelity_auc <= 1.0
        assert set(record.histograms) == set(tiny_dataset.features)
        assert 0 < record.n_template_sources <= record.n_template
    if not cls.per_window:
        assert record.time_fit_shared_s > 0


def test_check_ready_refuses_bad_settings_and_missing_libraries(monkeypatch):
    import importlib.util as util

    from adbench.errors import ConfigError
    from adbench.harness import MethodSpec, check_methods

    with pytest.raises(ConfigError, match="unknown solver 'simplex'"):
        get_method_class("radot")(settings={"solver": "simplex"}).check_ready()
    real_find_spec = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "ot" else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"ot is not installed: pip install 'adbench\[ot\]'"):
        check_methods([MethodSpec.parse("idealized", "fast"), MethodSpec.parse("radot", "fast")])


@pytest.mark.slow
@pytest.mark.parametrize("name", method_names())
def test_a_second_fit_reads_back_every_training(name, tiny_dataset, tmp_path, monkeypatch):
    """A method's trainings get the same data each time it is fitted on the same split, so a task run
    again after an interruption reads its finished trainings back (their progress is taken over only
    for equal data values): the second fit in the same progress folder trains nothing."""
    from adbench.harness import make_model
    from adbench.models import resume

    spec = tiny_spec(name)
    window = Window(3.3, 3.7)
    split = tiny_dataset.split(1000, 0, [window])
    classifier = ClassifierConfig(n_models=1, max_iter=40)
    loaded = []
    original = resume.ProgressFile.load
    monkeypatch.setattr(resume.ProgressFile, "load",
                        lambda self, device: loaded.append(original(self, device)) or loaded[-1])
    for attempt in range(2):
        with resume.resumable(tmp_path):
            truth = split.truth_in(window) if spec.cls.needs_truth else None
            make_model(spec, "cpu", 0, classifier).fit(split.data, window if spec.cls.per_window else None, truth)
        if attempt == 0:
            trainings, loaded[:] = len(loaded), []
    if not trainings:
        pytest.skip(f"{name} trains nothing through the shared training loop")
    assert len(loaded) == trainings and all(saved is not None and saved["done"] for saved in loaded), \
        f"{sum(s is None for s in loaded)} of {trainings} trainings started afresh"
