"""Dataset cards: one TOML file per dataset in ``datasets/``, resolved by name.

Card layout::

    description = "..."
    loader = "lhco"             # lhco | synthetic
    features = "sigma"          # default feature set (adbench.data.features.FEATURE_SETS)
    sr = [3.3, 3.7]             # default signal region, TeV
    reference_fraction = 0.25   # background held out as truth/test when no extra sample is given
    default_dir = "..."         # optional, relative to the repository root
    [files.features]            # lhco: the main features file
    filename = "..."
    url = "..."                 # optional
    sha256 = "..."              # optional
    [files.extra_background]    # lhco: optional extra QCD (SR only)
    [synthetic]                 # synthetic: sizes and generator seed
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adbench.errors import ConfigError, DataError
from adbench.resources import load_toml, resource_dir
from adbench.windows import Window

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DatasetCard:
    name: str
    path: Path
    loader: str
    description: str = ""
    features: str = "sigma"
    sr: tuple[float, float] = (3.3, 3.7)
    reference_fraction: float = 0.25
    default_dir: str | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    synthetic: dict[str, int] = field(default_factory=dict)

    def remote_files(self, role: str | None = None) -> list:
        from adbench.data.fetch import RemoteFile

        out = []
        for file_role, spec in self.files.items():
            if role is not None and file_role != role:
                continue
            if "url" not in spec:
                raise ConfigError(f"{self.path}: file {spec.get('filename')!r} has no download url")
            out.append(RemoteFile(spec["filename"], spec["url"], spec.get("sha256"), spec.get("size")))
        return out

    def data_dir(self, data_dir: str | Path | None) -> Path:
        if data_dir is not None:
            return Path(data_dir).expanduser()
        if self.default_dir is None:
            raise ConfigError(f"dataset {self.name!r} needs --data-dir (the folder holding its files)")
        return (REPO_ROOT / self.default_dir).resolve()


def is_file_name(name: str) -> bool:
    """Whether a --dataset value names a file rather than a card."""
    return Path(name).suffix.lower() in (".h5", ".hdf5") or "/" in name


def card_names() -> list[str]:
    return sorted(path.stem for path in resource_dir("datasets").glob("*.toml"))


def load_card(name: str) -> DatasetCard:
    path = resource_dir("datasets") / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(card_names())}")
    raw = load_toml(path)
    try:
        return DatasetCard(
            name=name,
            path=path,
            loader=raw["loader"],
            description=raw.get("description", ""),
            features=raw.get("features", "sigma"),
            sr=tuple(raw.get("sr", (3.3, 3.7))),
            reference_fraction=float(raw.get("reference_fraction", 0.25)),
            default_dir=raw.get("default_dir"),
            files=dict(raw.get("files", {})),
            synthetic=dict(raw.get("synthetic", {})),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: bad dataset card ({error!r})") from None


def load_dataset(name: str, data_dir: str | Path | None = None, features: str | None = None):
    """The named dataset restricted to a feature set (the card's default when ``features`` is None).

    ``name`` is a card name (``adbench data list``) or the path of one labelled features file in
    the LHCO layout (``*.h5``/``*.hdf5``): then 25% of its background is held out as truth/test
    background and the SR is the default 3.3-3.7 TeV.
    """
    from adbench.data.dataset import Dataset
    from adbench.data.features import FEATURE_SETS

    if is_file_name(name):
        card = DatasetCard(
            name=Path(name).name, path=Path(name), loader="lhco",
            files={"features": {"filename": Path(name).name}},
        )
        data_dir = Path(name).expanduser().parent
    else:
        card = load_card(name)
    feature_set = features or card.features
    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {feature_set!r}; choose one of {', '.join(FEATURE_SETS)}")
    window = Window(*card.sr)
    if card.loader == "synthetic":
        from adbench.data.synthetic import synthetic_dataset

        dataset = synthetic_dataset(name=name, **card.synthetic)
        dataset = Dataset(dataset.name, dataset.events, dataset.extra_background, 0.0, window)
    elif card.loader == "lhco":
        dataset = _load_lhco(card, card.data_dir(data_dir), window)
    else:
        raise ConfigError(f"{card.path}: unknown loader {card.loader!r}")
    return dataset.with_features(FEATURE_SETS[feature_set])


def _load_lhco(card: DatasetCard, directory: Path, window: Window):
    from adbench.data.dataset import Dataset
    from adbench.data.lhco import load_lhco_events

    if "features" not in card.files:
        raise ConfigError(f"{card.path}: no [files.features] entry")
    main = directory / card.files["features"]["filename"]
    if not main.is_file():
        hint = f"; download it with: adbench data fetch {card.name} --dir {directory}" if "url" in card.files["features"] else ""
        raise DataError(f"{main}: file not found{hint}")
    events = load_lhco_events(main)
    if events.n_signal == 0:
        log.warning("%s holds no signal events (label 1): nothing can be injected", main)
    extra = None
    reference_fraction = card.reference_fraction
    if "extra_background" in card.files:
        extra_path = directory / card.files["extra_background"]["filename"]
        if extra_path.is_file():
            extra = load_lhco_events(extra_path, default_label=0).background()
            reference_fraction = 0.0
        else:
            log.warning(
                "%s not found: holding out %.0f%% of the main background as truth/test background instead",
                extra_path, 100 * reference_fraction,
            )
    return Dataset(card.name, events, extra, reference_fraction, window)
