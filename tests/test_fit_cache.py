"""The benchmark scripts' fit cache (tests/benchmarks/_fit_cache.py) reuses a fit only for what it was made from."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "benchmarks" / "_fit_cache.py"
_spec = importlib.util.spec_from_file_location("_fit_cache", SCRIPT)
fit_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_cache)

KEY = fit_cache.cache_key("synthetic", 3000, 0, '{"network": "a"}')


def test_fits_once_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "fit.pkl"
    calls = []

    def fit() -> dict:
        calls.append(1)
        return {"weights": [1.0, 2.0]}

    first, fitted_first = fit_cache.cached_fit(path, KEY, fit)
    second, fitted_second = fit_cache.cached_fit(path, KEY, fit)
    assert (fitted_first, fitted_second) == (True, False)
    assert second == first and len(calls) == 1
    assert not path.with_name(path.name + ".partial").exists()


def test_without_a_path_always_fits() -> None:
    model, fitted = fit_cache.cached_fit(None, KEY, lambda: "model")
    assert (model, fitted) == ("model", True)


@pytest.mark.parametrize("field,value", [("dataset", "lhcolike"), ("n_sig", 1000), ("seed", 1),
                                         ("fit_signature", '{"network": "b"}')])
def test_refuses_a_fit_made_for_something_else(tmp_path: Path, field: str, value) -> None:
    path = tmp_path / "fit.pkl"
    fit_cache.save_fit(path, KEY, "model")
    with pytest.raises(SystemExit, match=f"{path.name}.*{field}"):
        fit_cache.load_fit(path, {**KEY, field: value})


def test_refuses_a_pickle_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps("a bare model"))
    with pytest.raises(SystemExit, match="not a fit cache"):
        fit_cache.load_fit(path, KEY)
