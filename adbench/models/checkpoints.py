"""Trained models on disk: ``save_checkpoint`` / ``load_checkpoint`` write and read JSON metadata plus
plain ``state_dict`` tensors (loadable with ``weights_only=True``), never pickled modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adbench.errors import ConfigError


def save_checkpoint(directory: str | Path, kind: str, meta: dict[str, Any], states: list[dict[str, Any]]) -> Path:
    """Write ``<kind>.json`` (``meta`` plus a format tag) and ``states.pt`` (a list of plain
    state_dicts on the CPU) into ``directory`` (created). Returns the directory."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{kind}.json").write_text(json.dumps({"format": f"adbench-{kind}/1", **meta}, indent=1))
    plain = [{key: value.detach().cpu() for key, value in state.items()} for state in states]
    torch.save(plain, directory / "states.pt")
    return directory


def load_checkpoint(
    directory: str | Path, kind: str, device: str = "cpu"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Inverse of ``save_checkpoint``: (meta, states), the tensors loaded with ``weights_only=True``."""
    import torch

    directory = Path(directory)
    meta_path = directory / f"{kind}.json"
    if not meta_path.is_file() or not (directory / "states.pt").is_file():
        raise ConfigError(f"{directory}: not an adbench {kind} checkpoint (needs {kind}.json and states.pt)")
    meta = json.loads(meta_path.read_text())
    states = torch.load(directory / "states.pt", map_location=torch.device(device), weights_only=True)
    return meta, states
