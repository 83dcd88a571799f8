"""How the last ``adbench run`` into a directory ended: complete, stopped by ``--max-time`` with tasks
left, or interrupted. Kept beside ``results.jsonl`` so that the report of an unfinished scan says that
it is unfinished and which command continues it (a committed partial reference report included)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

STATUS_FILE = "run-status.json"
STATES = ("complete", "time-boxed", "interrupted", "superseded")


@dataclass(frozen=True)
class RunStatus:
    """The end of one ``adbench run``.

    Attributes:
        state: ``complete`` (every planned task has a record, failed ones included), ``time-boxed``
            (``--max-time`` left ``left`` of ``total`` window tasks unstarted) or ``interrupted``
            (Ctrl-C; how many tasks are left is not known); ``superseded``: a scan that will not be
            continued (its data or methods changed since), ``reason`` says why.
        command: the command line, to rerun as it is to continue (for ``superseded``: the one that
            made the records).
        total: window tasks of the whole scan (None when interrupted).
        left: window tasks not run yet (None when interrupted).
        ended: UTC time of the end, ISO 8601.
        reason: why a ``superseded`` scan is not continued, and what replaces it.
    """

    state: str
    command: str
    total: int | None = None
    left: int | None = None
    ended: str = ""
    reason: str = ""

    def incomplete_note(self) -> str | None:
        """One sentence for the report when the scan is unfinished, else None."""
        if self.state == "complete":
            return None
        when = self.ended[:10]
        if self.state == "superseded":
            left = f" with {self.left} of its {self.total} planned tasks never run" if self.left else ""
            return (f"Superseded scan, not to be continued (marked on {when}){left}: {self.reason} "
                    f"The records were made by `{self.command}`.")
        if self.state == "time-boxed":
            what = f"stopped by `--max-time` on {when} with {self.left} of {self.total} planned tasks not run yet"
        else:
            what = f"interrupted on {when}"
        return (f"Unfinished scan: the last `adbench run` into this directory was {what}; the tables below hold "
                f"only the finished tasks. `{self.command}` continues it.")


def write_status(directory: Path, state: str, command: str, total: int | None = None,
                 left: int | None = None, reason: str = "") -> Path | None:
    """Write ``directory/run-status.json`` (replacing the last run's), only where the run directory
    exists (a run that finished nothing leaves nothing behind). Returns its path or None."""
    if state not in STATES:
        raise ValueError(f"run state {state!r} is not one of {', '.join(STATES)}")
    directory = Path(directory)
    if not directory.is_dir():
        return None
    if (state == "superseded") != bool(reason):
        raise ValueError("a superseded run needs a reason, and only a superseded run has one")
    status = RunStatus(state, command, total, left, datetime.now(UTC).isoformat(timespec="seconds"), reason)
    path = directory / STATUS_FILE
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(status), indent=1) + "\n")
    os.replace(partial, path)  # a crash mid-write never leaves half a file
    return path


def read_status(directory: Path) -> RunStatus | None:
    """The status the last run left in ``directory``; None when there is none or it cannot be read
    (a report must not fail on it: the records are what counts)."""
    path = Path(directory) / STATUS_FILE
    try:
        raw = json.loads(path.read_text())
        status = RunStatus(raw["state"], raw["command"], raw.get("total"), raw.get("left"), str(raw.get("ended") or ""),
                           str(raw.get("reason") or ""))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if status.state not in STATES or not isinstance(status.command, str):
        return None
    return status
