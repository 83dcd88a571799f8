"""Dataset cards: one TOML file per dataset in ``datasets/``, resolved by name.

Card layout::

    description = "..."
    loader = "lhco"             # a name registered with @loader: lhco | synthetic
    features = "sigma"          # default feature set (adbench.data.features.FEATURE_SETS)
    sr = [3.3, 3.7]             # default signal region, TeV
    holdout = "sr"              # sr | random | none: main-sample background held out for windows
    holdout_fraction = 0.667    #   that no extra sample covers (adbench.data.dataset)
    default_dir = "..."         # optional, relative to the repository root
    [files.features]            # lhco: the main features file
    filename = "..."
    url = "..."                 # optional
    sha256 = "..."              # optional
    [files.extra_background]    # lhco: optional extra QCD
    coverage = [3.3, 3.7]       # the mjj range it covers (default: the range of its masses)
    [synthetic]                 # synthetic: sizes, generator seed, calibration file
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adbench.errors import ConfigError, DataError
from adbench.resources import load_toml, resource_dir
from adbench.windows import Window

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]

#: loader name -> function(card, data_dir) -> Dataset (all features, before the feature set is chosen)
LOADERS: dict[str, Callable[..., Any]] = {}


def loader(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a dataset loader under ``name`` (the ``loader`` key of a card)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        LOADERS[name] = function
        return function

    return register


@dataclass(frozen=True)
class DatasetCard:
    name: str
    path: Path
    loader: str
    description: str = ""
    features: str = "sigma"
    sr: tuple[float, float] = (3.3, 3.7)
    holdout: str = "sr"
    holdout_fraction: float = 2.0 / 3.0
    default_dir: str | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    synthetic: dict[str, Any] = field(default_factory=dict)

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
            holdout=raw.get("holdout", "sr"),
            holdout_fraction=float(raw.get("holdout_fraction", 2.0 / 3.0)),
            default_dir=raw.get("default_dir"),
            files=dict(raw.get("files", {})),
            synthetic=dict(raw.get("synthetic", {})),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: bad dataset card ({error!r})") from None


def load_dataset(name: str, data_dir: str | Path | None = None, features: str | None = None):
    """The named dataset restricted to a feature set (the card's default when ``features`` is None).

    ``name`` is a card name (``adbench data list``) or the path of one labelled features file in
    the LHCO layout (``*.h5``/``*.hdf5``): then the ``sr`` hold-out applies and the SR is the default
    3.3-3.7 TeV.
    """
    from adbench.data.dataset import Dataset, HoldOut
    from adbench.data.features import FEATURE_SETS

    if is_file_name(name):
        path = Path(name).expanduser()
        if path.is_dir():
            raise DataError(f"{path}: is a folder; --dataset takes a card name or one .h5 features file")
        card = DatasetCard(name=path.name, path=path, loader="lhco", files={"features": {"filename": path.name}})
        data_dir = path.parent
    else:
        card = load_card(name)
    feature_set = features or card.features
    if feature_set not in FEATURE_SETS:
        raise ConfigError(f"unknown feature set {feature_set!r}; choose one of {', '.join(FEATURE_SETS)}")
    if card.loader not in LOADERS:
        raise ConfigError(f"{card.path}: unknown loader {card.loader!r}; known: {', '.join(sorted(LOADERS))}")
    dataset = LOADERS[card.loader](card, data_dir)
    holdout = HoldOut(card.holdout, card.holdout_fraction)
    dataset = Dataset(card.name, dataset.events, dataset.held_out, holdout, Window(*card.sr), dataset.version,
                      dataset.source_digest)
    dataset = dataset.with_features(FEATURE_SETS[feature_set])
    for feature, value, fraction in dataset.events.point_masses():
        log.warning("%s: %.2f%% of the events have %s = %g exactly, a point mass that generative templates "
                    "reproduce only in part and the data-versus-template classifier then finds "
                    "(tests/benchmarks/point_mass.py)", card.name, 100 * fraction, feature, value)
    return dataset


@loader("synthetic")
def _load_synthetic(card: DatasetCard, data_dir: str | Path | None):
    from adbench.data.synthetic import synthetic_dataset

    options = dict(card.synthetic)
    calibration = options.pop("calibration", None)
    if calibration is not None:
        calibration = (card.path.parent / calibration) if not Path(calibration).is_absolute() else Path(calibration)
    try:
        return synthetic_dataset(name=card.name, calibration=calibration, **options)
    except (TypeError, ConfigError) as error:
        raise ConfigError(f"{card.path}: bad [synthetic] table ({error})") from None


@loader("lhco")
def _load_lhco(card: DatasetCard, data_dir: str | Path | None):
    from adbench.data.dataset import Dataset, HeldOutSample
    from adbench.data.lhco import load_lhco_events

    directory = card.data_dir(data_dir)
    if "features" not in card.files:
        raise ConfigError(f"{card.path}: no [files.features] entry")
    main = directory / card.files["features"]["filename"]
    if not main.is_file():
        fetchable = "url" in card.files["features"]
        hint = f"; download it with: adbench data fetch {card.name} --dir {directory}" if fetchable else ""
        raise DataError(f"{main}: file not found{hint}")
    events = load_lhco_events(main)
    read = [main]
    if events.n_signal == 0:
        log.warning("%s holds no signal events (label 1): nothing can be injected", main)
    held_out = []
    if "extra_background" in card.files:
        spec = card.files["extra_background"]
        extra_path = directory / spec["filename"]
        if extra_path.is_file():
            extra = load_lhco_events(extra_path, default_label=0)
            held_out.append(HeldOutSample.of(extra, extra_path.name, spec.get("coverage")))
            read.append(extra_path)
        else:
            log.warning("%s not found: holding out main-file background instead (holdout = %r)",
                        extra_path, card.holdout)
    return Dataset(card.name, events, tuple(held_out), source_digest=files_digest(read))


def files_digest(paths: list[Path]) -> str:
    """The first 16 hex digits of each file's sha256, joined by ``+`` in order (compare them with a
    published checksum)."""
    from adbench.data.fetch import sha256sum

    return "+".join(sha256sum(path)[:16] for path in paths)
