"""Dataset cards: the loader registry, hold-out settings and extra samples with their mass coverage."""

import re
import shutil

import numpy as np
import pytest

from adbench.data.cards import LOADERS, load_dataset
from adbench.errors import ConfigError
from adbench.resources import resource_dir
from adbench.windows import Window
from tests.conftest import lhco_columns, write_lhco_file


@pytest.fixture()
def card_dir(tmp_path, monkeypatch):
    """A presets folder (methods copied, datasets empty) that ADBENCH_PRESETS points at."""
    shutil.copytree(resource_dir("methods"), tmp_path / "presets" / "methods")
    (tmp_path / "presets" / "datasets").mkdir()
    monkeypatch.setenv("ADBENCH_PRESETS", str(tmp_path / "presets"))
    return tmp_path


def test_loaders_are_registered_by_name():
    assert {"lhco", "synthetic"} <= set(LOADERS)


def test_an_extra_file_cut_to_one_mass_range_serves_only_its_windows(card_dir):
    """LHCO's layout: a main file over 2-6 TeV and an extra background file cut to 3.3-3.7 TeV. A scan
    over three windows uses the extra file where it covers the SR and main-file background elsewhere."""
    rng = np.random.default_rng(0)
    write_lhco_file(card_dir / "main.h5", lhco_columns(30_000, rng))
    extra = lhco_columns(6_000, rng, mjj_range=(3.3, 3.7))
    extra[:, -1] = 0
    write_lhco_file(card_dir / "extra.h5", extra)
    (card_dir / "presets" / "datasets" / "toy.toml").write_text(
        'loader = "lhco"\nholdout = "sr"\n[files.features]\nfilename = "main.h5"\n'
        '[files.extra_background]\nfilename = "extra.h5"\ncoverage = [3.3, 3.7]\n'
    )
    dataset = load_dataset("toy", card_dir)
    (sample,) = dataset.held_out
    assert sample.coverage == (3.3, 3.7) and len(sample.events) == 6_000 and sample.source == "extra.h5"
    windows = [Window(3.1, 3.5), Window(3.3, 3.7), Window(3.5, 3.9)]
    split = dataset.split(100, 0, windows)
    assert split.sources == {"3.10-3.50": "main", "3.30-3.70": 0, "3.50-3.90": "main"}
    extra_masses = set(np.round(sample.events.m, 9))
    for window in windows:
        test = split.test_in(window).background()
        assert len(test) > 100 and window.in_sr(test.m).all()
        from_extra = np.isin(np.round(test.m, 9), list(extra_masses))
        assert from_extra.all() if window.name == "3.30-3.70" else not from_extra.any()


def test_a_card_without_fallback_refuses_uncovered_windows(card_dir):
    rng = np.random.default_rng(1)
    write_lhco_file(card_dir / "main.h5", lhco_columns(5_000, rng))
    extra = lhco_columns(1_000, rng, mjj_range=(3.3, 3.7))
    write_lhco_file(card_dir / "extra.h5", extra)
    (card_dir / "presets" / "datasets" / "strict.toml").write_text(
        'loader = "lhco"\nholdout = "none"\n[files.features]\nfilename = "main.h5"\n'
        '[files.extra_background]\nfilename = "extra.h5"\n'
    )
    dataset = load_dataset("strict", card_dir)
    dataset.check_covered(Window(3.35, 3.65))
    with pytest.raises(ConfigError, match="no held-out background covers it"):
        dataset.check_covered(Window(3.7, 4.1))


def test_unknown_loader_is_named(card_dir):
    (card_dir / "presets" / "datasets" / "odd.toml").write_text('loader = "parquet"\n')
    with pytest.raises(ConfigError, match="unknown loader 'parquet'"):
        load_dataset("odd")


def test_a_point_mass_in_a_feature_is_named_when_the_data_are_loaded(tmp_path, caplog):
    """Continuous jet observables with 2% of the events at one value (tau21 = 0: tau2 set to 0, as a
    default for a missing subjet would): the loader names the feature, value and share."""
    rng = np.random.default_rng(0)
    columns = lhco_columns(20_000, rng)
    write_lhco_file(tmp_path / "clean.h5", columns)
    columns[rng.random(len(columns)) < 0.02, 5] = 0.0  # jet 1's tau2
    write_lhco_file(tmp_path / "spiked.h5", columns)
    with caplog.at_level("WARNING", logger="adbench.data.cards"):
        load_dataset(str(tmp_path / "clean.h5"))
        assert "tau21_j1" not in caplog.text  # (the toy's delta_R is pi exactly where d_eta was clipped)
        load_dataset(str(tmp_path / "spiked.h5"))
    print(caplog.text)
    # the jets are ordered by mass, so the 2% split between the two jets' tau21
    for jet in ("j1", "j2"):
        assert re.search(rf"spiked.h5: \d\.\d\d% of the events have tau21_{jet} = 0 exactly, a point mass", caplog.text)
