"""The benchmark scripts' fit cache (tests/benchmarks/_fit_cache.py) hands a fit back only for what it was made from."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).parent / "benchmarks" / "_fit_cache.py"
_spec = importlib.util.spec_from_file_location("_fit_cache", SCRIPT)
fit_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_cache)

DATASET = SimpleNamespace(name="synthetic", version="synthetic/3", source_digest="")
KEY = fit_cache.cache_key(DATASET, 3000, 0, '{"network": "a"}')


def counting_fit(calls: list, model: object):
    def fit() -> object:
        calls.append(1)
        return model
    return fit


def test_fits_once_then_reuses(tmp_path: Path) -> None:
    path, calls = tmp_path / "fit.pkl", []
    first, seconds_first = fit_cache.cached_fit(path, KEY, counting_fit(calls, {"weights": [1.0, 2.0]}))
    second, seconds_second = fit_cache.cached_fit(path, KEY, counting_fit(calls, "another"))
    assert seconds_first is not None and seconds_first >= 0 and seconds_second is None
    assert second == first == {"weights": [1.0, 2.0]} and len(calls) == 1
    assert not path.with_name(path.name + ".partial").exists()


def test_without_a_path_always_fits() -> None:
    model, seconds = fit_cache.cached_fit(None, KEY, lambda: "model")
    assert model == "model" and seconds is not None


@pytest.mark.parametrize("field,value", [("dataset", "lhcolike"), ("dataset_version", "synthetic/2"),
                                         ("source_digest", "abc"), ("n_sig", 1000), ("seed", 1),
                                         ("fit_signature", '{"network": "b"}')])
def test_a_fit_made_for_something_else_is_not_reused(tmp_path: Path, field: str, value) -> None:
    path, calls = tmp_path / "fit.pkl", []
    fit_cache.save_fit(path, KEY, "model a")
    other = {**KEY, field: value}
    assert fit_cache.load_fit(path, other) is None
    model, _ = fit_cache.cached_fit(path, other, counting_fit(calls, "model b"))
    assert model == "model b" and len(calls) == 1
    # both are kept: one file holds several fits
    assert fit_cache.load_fit(path, KEY) == "model a" and fit_cache.load_fit(path, other) == "model b"


def test_a_key_with_extra_fields_does_not_match(tmp_path: Path) -> None:
    path = tmp_path / "fit.pkl"
    fit_cache.save_fit(path, {**KEY, "profile": "cpu"}, "model")
    assert fit_cache.load_fit(path, KEY) is None


def test_refuses_a_pickle_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"key": KEY, "model": "a bare model"}))
    with pytest.raises(SystemExit, match="raw.pkl: not a fit cache"):
        fit_cache.load_fit(path, KEY)
