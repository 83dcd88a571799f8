"""What ``adbench run`` shows while it works.

On a terminal: a tqdm bar over the tasks, and below it a bar per inner loop (training epochs, ODE
solves, OT batches: whatever the library reports through ``adbench.progress``). Otherwise (a log
file, a batch job): one line per finished task, with its result, so a log reads as a record of the
run. ``--no-progress`` silences both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


def interactive(stream: TextIO | None = None) -> bool:
    """Whether bars make sense: stdout and the stream the bars are drawn on are terminals."""
    stream = stream or sys.stderr
    return sys.stdout.isatty() and stream.isatty()


def task_bar_factory(results: Path, bars: bool, stream: TextIO | None = None) -> Callable[[int], Any]:
    """The ``progress`` argument of ``run_benchmark``: total -> a bar (``update``, ``set_postfix_str``,
    ``close``). ``bars``: tqdm bars; else a ``TaskLines`` printing one line per finished task."""
    stream = stream or sys.stderr

    def make(total: int) -> Any:
        if bars:
            from tqdm import tqdm

            return tqdm(total=total, unit="task", desc="adbench", file=stream, position=0, dynamic_ncols=True)
        return TaskLines(total, results, stream)

    return make


def inner_bar_factory(stream: TextIO | None = None) -> Callable[[str, int], Any]:
    """A ``adbench.progress`` listener drawing a transient tqdm bar under the task bar."""
    stream = stream or sys.stderr

    def make(what: str, total: int) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=f"  {what}", leave=False, position=1, file=stream, dynamic_ncols=True)

    return make


class TaskLines:
    """A bar-shaped object that prints ``[k/n] <task>: <result> (<task time>, <run time> into the run)``
    per finished task.

    The finished task's record is the last line of ``results.jsonl`` (the harness appends it before
    it counts the task); when that line cannot be read, the harness's label of the task is used. The
    task's time is its own wall-clock time, as the harness hands it over (``task_seconds``); without
    it, the time since the previous line (which, with tasks running side by side, is not the task's).
    """

    def __init__(self, total: int, results: Path, stream: TextIO) -> None:
        self.total, self.results, self.stream = total, results, stream
        self.done = 0
        self.label = ""
        self.run_started = self.started = time.monotonic()
        self._task_seconds: float | None = None

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.label = text

    def task_seconds(self, seconds: float) -> None:
        """The wall-clock seconds of the task the next ``update`` counts."""
        self._task_seconds = seconds

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        line = describe(last_record(self.results)) or self.label or "task"
        took = self._task_seconds if self._task_seconds is not None else now - self.started
        print(f"adbench: [{self.done}/{self.total}] {line} ({_seconds(took)}, {_seconds(now - self.run_started)} "
              "into the run)", file=self.stream, flush=True)
        self.started, self._task_seconds = now, None

    def close(self) -> None:
        pass


def last_record(path: Path, chunk: int = 1 << 16) -> dict[str, Any] | None:
    """The last complete JSON line of ``path`` (read from the end; records can be large)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            data = b""
            while size > 0 and data.count(b"\n") < 2:
                step = min(chunk, size)
                size -= step
                handle.seek(size)
                data = handle.read(step) + data
    except OSError:
        return None
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        return None


def describe(record: dict[str, Any] | None) -> str:
    """``radot SR 3.30-3.70 N_sig 1000 seed 0: max SIC 5.27 ±0.21`` or ``...: failed: reason``."""
    if not record:
        return ""
    head = (f"{record.get('method')} SR {record.get('window')} N_sig {record.get('n_sig')} "
            f"seed {record.get('seed')}")
    if record.get("status") != "ok":
        return f"{head}: failed: {record.get('error')}"
    value = record.get("max_sic")
    error = (record.get("stat_errors") or {}).get("max_sic")
    if not isinstance(value, (int, float)):
        return f"{head}: done"
    text = f"{head}: max SIC {value:.2f}"
    if isinstance(error, (int, float)) and error == error:
        text += f" ±{error:.2f}"
    return text


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def count_records(path: Path) -> int:
    """Non-empty lines of a results file (0 when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0
