"""Where the declarative presets (``methods/``) and dataset cards (``datasets/``) live.

In a checkout they are the top-level folders next to the package; an installed wheel carries a copy
under ``adbench/_presets``. ``ADBENCH_PRESETS`` (a folder holding ``methods/`` and ``datasets/``)
overrides both.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from adbench.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(kind: Literal["methods", "datasets"]) -> Path:
    candidates = []
    if os.environ.get("ADBENCH_PRESETS"):
        candidates.append(Path(os.environ["ADBENCH_PRESETS"]) / kind)
    candidates += [_PACKAGE.parent / kind, _PACKAGE / "_presets" / kind]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no '{kind}/' folder found (looked in {', '.join(map(str, candidates))})")


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
