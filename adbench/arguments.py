"""The arguments of ``adbench run``, checked before anything heavy is imported or any data is read.

``validate_run`` turns the parsed command line into a ``RunRequest`` or raises ``ConfigError`` /
``DataError`` with one line naming the option and the value. The plain arguments (numbers, windows,
device, output) are checked with the standard library alone; then the dataset card and the method
presets, which import numpy and the method registry but no torch, scikit-learn, h5py or matplotlib.
So a mistake is reported in a fraction of a second, never after a data load or a training.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adbench.errors import ConfigError, DataError

#: numpy's seeds are unsigned 32-bit integers at most.
MAX_SEED = 2**32 - 1
DEVICES = "cpu, cuda, cuda:N or auto"


@dataclass
class RunRequest:
    """A checked ``adbench run`` command line.

    Attributes:
        windows: the checked ``--sr`` or ``--scan`` (``parse_windows``), or None for the dataset's default.
        methods: the ``MethodSpec`` of each ``--methods`` entry (presets parsed, settings unchecked).
    """

    methods: list[Any]
    dataset: str
    data_dir: str | None
    windows: tuple[str, tuple[float, ...]] | None
    n_sigs: list[int]
    seeds: list[int]
    device: str
    features: str | None
    template_size: float
    output: Path


def int_list(text: str, option: str, minimum: int = 0, maximum: int | None = None) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` -> [0, 1, 2]: integers (and inclusive ranges) within bounds, none twice."""
    values: list[int] = []
    try:
        for item in (v.strip() for v in text.split(",")):
            first, dash, last = item.partition("-")
            if dash and first.strip():
                if int(last) < int(first):
                    raise ConfigError(f"{option}: the range {item!r} runs backwards")
                values += range(int(first), int(last) + 1)
            elif item:
                values.append(int(item))
    except ValueError:
        raise ConfigError(f"{option} expects comma-separated integers or ranges (0-9), got {text!r}") from None
    if not values:
        raise ConfigError(f"{option} is empty")
    for value in values:
        if value < minimum:
            raise ConfigError(f"{option} {value}: must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{option} {value}: must be <= {maximum}")
    repeated = sorted(v for v, n in Counter(values).items() if n > 1)
    if repeated:
        raise ConfigError(f"{option} lists {', '.join(map(str, repeated))} twice")
    return values


def _numbers(text: str, option: str, form: str, counts: tuple[int, ...]) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{option} expects {form} in TeV, got {text!r}")
    return values


def parse_windows(sr: str | None, scan: str | None) -> tuple[str, tuple[float, ...]] | None:
    """``("sr", (low, high))`` for ``--sr LOW,HIGH``, ``("scan", (start, stop, width, step))`` for
    ``--scan START,STOP,WIDTH[,STEP]``, None for the dataset's default; every value checked."""
    if sr is not None:
        low, high = _numbers(sr, "--sr", "LOW,HIGH (e.g. 3.3,3.7)", (2,))
        if not low < high:
            raise ConfigError(f"--sr {sr}: LOW must be below HIGH (low < high), got {low:g} >= {high:g} TeV")
        if low <= 0:
            raise ConfigError(f"--sr {sr}: the signal region must lie at positive mjj")
        return "sr", (low, high)
    if scan is not None:
        values = _numbers(scan, "--scan", "START,STOP,WIDTH[,STEP] (e.g. 3.0,4.2,0.4,0.2)", (3, 4))
        start, stop, width = values[:3]
        step = values[3] if len(values) == 4 else width
        if not start < stop:
            raise ConfigError(f"--scan {scan}: START ({start:g}) must be below STOP ({stop:g})")
        if start <= 0:
            raise ConfigError(f"--scan {scan}: START must be a positive mass")
        if not (width > 0 and step > 0):
            raise ConfigError(f"--scan {scan}: WIDTH and STEP must be positive")
        if stop - start < width - 1e-9:
            raise ConfigError(f"--scan {scan}: the range {start:g}-{stop:g} TeV is narrower than one window "
                              f"({width:g} TeV)")
        return "scan", (start, stop, width, step)
    return None


def make_windows(spec: tuple[str, tuple[float, ...]] | None) -> list[Any] | None:
    """The ``Window`` objects of a ``parse_windows`` result (None: the dataset's default)."""
    if spec is None:
        return None
    from adbench.windows import Window, scan_windows

    kind, values = spec
    return [Window(*values)] if kind == "sr" else scan_windows(*values)


def check_device(text: str) -> str:
    """``cpu``, ``auto``, ``cuda`` or ``cuda:N`` (whether a GPU is there is asked of torch later)."""
    if text in ("cpu", "auto", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ConfigError(f"--device {text!r}: use {DEVICES}")


def check_output(text: str) -> Path:
    """The run directory: not an existing file, and a place where this user can create files (tried
    with a temporary file that is removed at once, so a refused run leaves nothing behind)."""
    output = Path(text).expanduser()
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {text}: is an existing file; give a directory for results.jsonl and the report")
    results = output / "results.jsonl"
    if results.exists() and (not results.is_file() or not os.access(results, os.R_OK | os.W_OK)):
        raise ConfigError(f"--output {text}: {results} cannot be read and appended to")
    existing = output
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--output {text}: {existing} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"--output {text}: cannot write in {existing} ({error.strerror or error})") from None
    return output


def check_dataset(name: str, data_dir: str | None) -> None:
    """The dataset is a card whose files are where they should be, or one readable .h5 file."""
    from adbench.data.cards import card_names, is_file_name, load_card

    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            problem = "is a file, not a folder" if folder.exists() else "no such folder"
            raise DataError(f"--data-dir {data_dir}: {problem}")
    path = Path(name).expanduser()
    if name not in card_names() and path.is_dir():
        raise DataError(f"--dataset {name}: is a folder; give a card name (adbench data list) or one .h5 features "
                        f"file; for the LHCO files in a folder use --dataset lhco --data-dir {name}")
    if is_file_name(name):
        if not path.exists():
            raise DataError(f"{path}: file not found")
        return
    card = load_card(name)
    missing = missing_files(card, data_dir)
    if missing:
        raise DataError(missing)


#: How to get the public LHCO data instead of a card kept only in a development folder.
PUBLIC_DATA_HINT = "the public LHCO data: adbench data fetch lhco --dir DIR, then --dataset lhco --data-dir DIR"


def missing_files(card: Any, data_dir: str | None) -> str | None:
    """One line saying which file of a card is missing and how to get it, or None when all are there
    (the optional extra background may be absent)."""
    spec = card.files.get("features")
    if card.loader != "lhco" or spec is None:
        return None
    if data_dir is None and card.default_dir is None:
        return f"dataset {card.name!r} needs --data-dir (the folder holding {spec['filename']})"
    directory = card.data_dir(data_dir)
    path = directory / spec["filename"]
    if path.is_file():
        return None
    if "url" in spec:
        return f"{path}: file not found; download it with: adbench data fetch {card.name} --dir {directory}"
    return (f"{path}: file not found; dataset {card.name!r} has no download: it is kept in a development folder "
            f"({card.default_dir or 'none'}); elsewhere pass --data-dir with a folder holding {spec['filename']}, or "
            f"use {PUBLIC_DATA_HINT}")


def validate_run(args: argparse.Namespace) -> RunRequest:
    """Every ``adbench run`` argument checked: the plain ones first (standard library only), then the
    dataset card and the method presets."""
    names = [name for name in args.methods.split(",") if name.strip()]
    if not names:
        raise ConfigError("--methods is empty")
    windows = parse_windows(args.sr, args.scan)
    n_sigs = int_list(args.n_sig, "--n-sig")
    seeds = int_list(args.seeds, "--seeds", maximum=MAX_SEED)
    device = check_device(args.device)
    if not (math.isfinite(args.template_size) and args.template_size > 0):
        raise ConfigError(f"--template-size {args.template_size:g}: must be a positive number of template events "
                          "per SR data event")
    output = check_output(args.output)
    check_dataset(args.dataset, args.data_dir)

    from adbench.runconfig import MethodSpec, repeated_method

    methods = [MethodSpec.parse(name, args.profile) for name in names]
    twice = repeated_method(methods)
    if twice is not None:
        raise ConfigError(f"--methods lists {twice.name!r} with profile {twice.preset.profile!r} twice")
    return RunRequest(methods, args.dataset, args.data_dir, windows, n_sigs, seeds, device, args.features,
                      float(args.template_size), output)
