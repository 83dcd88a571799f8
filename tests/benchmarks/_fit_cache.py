"""A fitted background model kept in a pickle between runs of a benchmark script.

Not a unit test. Scripts that only change how a fitted model is sampled (``ablation_solver.py``,
``template_signal.py``) keep the fit so that a rerun does not retrain. The pickle records what the
fit was made from (dataset, N_sig, seed and the model's ``fit_signature``, which holds its settings,
seed and device); loading it for anything else is refused, since it would silently sample another
dataset's or another profile's model.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_key(dataset: str, n_sig: int, seed: int, signature: str | None) -> dict[str, Any]:
    """What a cached fit must have been made from to be reused."""
    return {"dataset": dataset, "n_sig": int(n_sig), "seed": int(seed), "fit_signature": signature}


def load_fit(path: Path, key: dict[str, Any]) -> Any | None:
    """The model cached in ``path`` for ``key``; None when there is no file. A file written for another
    key, or not by this module, raises a SystemExit that names the file and what differs."""
    if not path.is_file():
        return None
    stored = pickle.loads(path.read_bytes())
    if not isinstance(stored, dict) or set(stored) != {"key", "model"}:
        raise SystemExit(f"{path}: not a fit cache of tests/benchmarks/_fit_cache.py; delete it or name "
                         f"another file")
    differ = sorted(name for name in key if stored["key"].get(name) != key[name])
    if differ:
        shown = ", ".join(f"{name}: cached {stored['key'].get(name)!r:.80}, asked {key[name]!r:.80}"
                          for name in differ)
        raise SystemExit(f"{path}: the cached fit was made for other settings ({shown}); delete it or "
                         f"name another file")
    return stored["model"]


def save_fit(path: Path, key: dict[str, Any], model: Any) -> None:
    """Write ``model`` with its ``key`` (through a partial file, so an interrupted write leaves none)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(pickle.dumps({"key": key, "model": model}))
    partial.replace(path)


def cached_fit(path: Path | None, key: dict[str, Any], fit: Callable[[], Any]) -> tuple[Any, bool]:
    """The model for ``key`` from ``path`` if cached there, else ``fit()`` (then cached when a path is
    given). Returns the model and whether it was fitted now."""
    if path is not None:
        model = load_fit(path, key)
        if model is not None:
            return model, False
    model = fit()
    if path is not None:
        save_fit(path, key, model)
    return model, True
