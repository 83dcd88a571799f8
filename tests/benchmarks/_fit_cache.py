"""Fitted background models kept in a pickle between runs of a benchmark script.

Not a unit test. Scripts that only change how a fitted model is sampled (``ablation_solver.py``,
``template_signal.py``) keep their fits so that a rerun does not retrain. Each fit is stored with what
it was made from (dataset name, version and file digest, N_sig, seed and the model's
``fit_signature``, which holds its settings, seed and device) and is handed back only for exactly that;
one file holds as many fits as were asked of it (curtains4f4's base flow beside the flow-matching
fit, say).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = "adbench benchmark fit cache 1"
#: The ``--cache`` option's help, the same in every script that uses this module.
CACHE_HELP = ("pickle of the fits, each reused only for the same dataset, N_sig, seed and settings "
              "(tests/benchmarks/_fit_cache.py; default: none)")


def cache_key(dataset: Any, n_sig: int, seed: int, signature: str | None) -> dict[str, Any]:
    """What a cached fit must have been made from to be reused (``dataset``: an ``adbench`` Dataset)."""
    return {"dataset": dataset.name, "dataset_version": getattr(dataset, "version", ""),
            "source_digest": getattr(dataset, "source_digest", ""), "n_sig": int(n_sig), "seed": int(seed),
            "fit_signature": signature}


def _entries(path: Path) -> list[dict[str, Any]]:
    """The stored (key, model) entries; [] when there is no file. A file not written here raises a
    SystemExit that names it."""
    if not path.is_file():
        return []
    stored = pickle.loads(path.read_bytes())
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        raise SystemExit(f"{path}: not a fit cache of tests/benchmarks/_fit_cache.py; delete it or name "
                         f"another file")
    return stored["entries"]


def load_fit(path: Path, key: dict[str, Any]) -> Any | None:
    """The model cached in ``path`` for exactly ``key``, or None."""
    return next((entry["model"] for entry in _entries(path) if entry["key"] == key), None)


def save_fit(path: Path, key: dict[str, Any], model: Any) -> None:
    """Add ``model`` under ``key`` (replacing an entry with that key), through a partial file so that
    an interrupted write leaves the old file as it was."""
    entries = [entry for entry in _entries(path) if entry["key"] != key] + [{"key": key, "model": model}]
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(pickle.dumps({"format": FORMAT, "entries": entries}))
    partial.replace(path)


def cached_fit(path: Path | None, key: dict[str, Any], fit: Callable[[], Any]) -> tuple[Any, float | None]:
    """The model for ``key`` from ``path`` if cached there, else ``fit()`` (then cached when a path is
    given). Returns the model and the seconds ``fit()`` took (None when it came from the cache)."""
    if path is not None:
        model = load_fit(path, key)
        if model is not None:
            return model, None
    started = time.perf_counter()
    model = fit()
    seconds = time.perf_counter() - started
    if path is not None:
        save_fit(path, key, model)
    return model, seconds
