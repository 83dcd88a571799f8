"""Result records: one JSON object per line in ``<output>/results.jsonl``, appended atomically.

A record is keyed by (dataset, window, method, n_sig, seed, config_hash). A re-run skips keys that
already have a successful record; failed tasks are tried again and the newest record of a key wins.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
KEY_FIELDS = ("dataset", "window", "method", "n_sig", "seed", "config_hash")


def record_key(record: dict[str, Any]) -> tuple:
    return tuple(record.get(field) for field in KEY_FIELDS)


class ResultStore:
    """Append-only JSONL store in a run directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RESULTS_FILE

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line with a single ``write`` on an O_APPEND descriptor, then
        fsync: a crash leaves either the whole line or (at worst) a torn last line, which ``load``
        skips."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, allow_nan=True, default=_jsonable) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size > 0 and not _ends_with_newline(self.path):
                line = b"\n" + line  # a torn line from a crash must not swallow this record
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> list[dict[str, Any]]:
        """Every readable record, in file order; malformed lines are skipped with a warning."""
        if not self.path.is_file():
            return []
        records = []
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s:%d: skipping a malformed line (interrupted write?)", self.path, number)
        return records

    def finished_keys(self) -> set[tuple]:
        return {record_key(r) for r in self.load() if r.get("status") == "ok"}


def latest_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest record of each key (file order), keeping a success over a later failure."""
    latest: dict[tuple, dict[str, Any]] = {}
    for record in records:
        key = record_key(record)
        previous = latest.get(key)
        if previous is None or record.get("status") == "ok" or previous.get("status") != "ok":
            latest[key] = record
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
