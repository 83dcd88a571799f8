"""Result records: one JSON object per line in ``<output>/results.jsonl``, appended atomically.

``Record`` is the one place that names the fields of a result (schema ``SCHEMA_VERSION``). A record
is keyed by (dataset, window, method, n_sig, seed, config_hash); a re-run skips keys that already
have a successful record; failed tasks are tried again and the newest record of a key wins.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
SCHEMA_VERSION = 2
KEY_FIELDS = ("dataset", "window", "method", "n_sig", "seed", "config_hash")
#: Field names of schema 1 (before ``Record``), renamed since.
RENAMED = {"sic_at_1e-3": "sic_1e3", "sic_at_1e-4": "sic_1e4"}
NAN = float("nan")


@dataclass
class Record:
    """The result of one task: a method on one (dataset, window, N_sig, seed).

    Metrics are NaN when they do not apply (a score method has no fidelity AUC) and on failed tasks.
    ``stat_errors`` holds the statistical error of each metric from the finite test set (bootstrap);
    the spread over seeds is the report's business.
    """

    # the key
    dataset: str
    window: str
    method: str
    n_sig: int
    seed: int
    config_hash: str
    # the task
    dataset_version: str = ""  # Dataset.version: the generator's version ("" for files)
    dataset_digest: str = ""  # Dataset.source_digest: the data files' sha256 ("" generated, or before 2026-11-25)
    profile: str = ""
    variant: str = ""  # the name of a profile that changes the method itself ("" for the published method)
    family: str = ""
    per_window: bool = True
    window_low: float = NAN
    window_high: float = NAN
    status: str = "ok"  # ok | failed
    error: str | None = None
    features: list[str] = field(default_factory=list)
    classifier: dict[str, Any] = field(default_factory=dict)
    # the signal region and its test set
    n_sr_data: int = 0
    n_sig_sr: int = 0
    n_test_signal: int = 0
    n_test_background: int = 0
    # the template
    n_template: int = 0
    n_template_sources: int = 0  # distinct source events behind the template (its effective size)
    template_size: float = NAN  # requested template events per SR data event
    mass_sampler: str | None = None
    fidelity_auc: float = NAN
    template_data_auc: float = NAN
    histograms: dict[str, Any] | None = None
    # sensitivity on the test set
    max_sic: float = NAN
    sic_1e3: float = NAN
    sic_1e4: float = NAN
    auc: float = NAN
    stat_errors: dict[str, float] = field(default_factory=dict)
    min_bkg: int = 25
    curve: dict[str, list[float]] | None = None
    # wall-clock seconds
    time_fit_shared_s: float = 0.0
    time_fit_window_s: float = 0.0
    time_sample_s: float = 0.0
    time_classify_s: float = 0.0
    shared_fit_from: str | None = None
    # what the method reports about itself (solver, epochs, losses...)
    method_info: dict[str, Any] = field(default_factory=dict)
    # the environment
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    git_revision: str | None = None
    command: str = ""
    timestamp: str = ""
    schema: int = SCHEMA_VERSION

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in KEY_FIELDS)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Record:
        """A record from its JSON object; schema-1 names are renamed and unknown fields (a newer
        schema's) are kept in ``method_info['unknown_fields']`` rather than dropped silently."""
        known = {f.name for f in fields(cls)}
        values, unknown = {}, {}
        for name, value in raw.items():
            name = RENAMED.get(name, name)
            (values if name in known else unknown)[name] = value
        values.setdefault("schema", 1)
        for name in ("fidelity_auc", "template_data_auc", "max_sic", "sic_1e3", "sic_1e4", "auc"):
            if values.get(name) is None:
                values[name] = NAN
        missing = [name for name in KEY_FIELDS if name not in values]
        if missing:
            raise ValueError(f"record without its key fields {missing}")
        record = cls(**values)
        if unknown:
            record.method_info = {**record.method_info, "unknown_fields": sorted(unknown)}
        if record.schema == 1 and record.method == "radot" and record.method_info.get("batch_order") == "projection":
            # schema 1 had no variants; its fast RAD-OT ran this one
            record.variant = "radot-projection"
            record.method_info = {**record.method_info, "variant_inferred": True}
        return record

    @property
    def n_background_sr(self) -> int:
        """Background events in the SR data."""
        return self.n_sr_data - self.n_sig_sr

    @property
    def s_over_b(self) -> float:
        """Injected signal over background in the SR data."""
        return self.n_sig_sr / self.n_background_sr if self.n_background_sr > 0 else NAN

    @property
    def s_over_sqrt_b(self) -> float:
        """Injected signal over the square root of the background in the SR data."""
        return self.n_sig_sr / math.sqrt(self.n_background_sr) if self.n_background_sr > 0 else NAN

    def metric(self, name: str) -> float:
        """A metric by field name, NaN when absent or not finite."""
        value = getattr(self, name, NAN)
        return float(value) if value is not None and math.isfinite(value) else NAN


def record_key(record: Record | dict[str, Any]) -> tuple:
    if isinstance(record, Record):
        return record.key
    return tuple(record.get(name) for name in KEY_FIELDS)


class ResultStore:
    """Append-only JSONL store in a run directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RESULTS_FILE
        #: Lines of the file that could not be read by the last ``load`` (torn or malformed).
        self.skipped_lines: list[int] = []

    def append(self, record: Record) -> None:
        """Write one record as one line with a single ``write`` on an O_APPEND descriptor, then
        fsync: a crash leaves either the whole line or (at worst) a torn last line, which ``load``
        skips."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record.to_dict(), allow_nan=True, default=_jsonable) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size > 0 and not _ends_with_newline(self.path):
                line = b"\n" + line  # a torn line from a crash must not swallow this record
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> list[Record]:
        """Every readable record, in file order; unreadable lines are skipped with a warning and
        their numbers kept in ``skipped_lines``."""
        self.skipped_lines = []
        if not self.path.is_file():
            return []
        records = []
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(Record.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError, ValueError):
                    self.skipped_lines.append(number)
                    log.warning("%s:%d: skipping a malformed line (interrupted write?)", self.path, number)
        return records

    def finished_keys(self) -> set[tuple]:
        return {r.key for r in self.load() if r.ok}


def latest_records(records: Iterable[Record]) -> list[Record]:
    """The newest record of each key (file order), keeping a success over a later failure."""
    latest: dict[tuple, Record] = {}
    for record in records:
        previous = latest.get(record.key)
        if previous is None or record.ok or not previous.ok:
            latest[record.key] = record
    return list(latest.values())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
