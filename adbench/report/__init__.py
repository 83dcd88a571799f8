"""Reports: tables and figures from a run directory's stored results (no training here)."""

from __future__ import annotations

from pathlib import Path

from adbench.errors import DataError
from adbench.report.build import build_report
from adbench.results import ResultStore, latest_records


def write_report(directory: str | Path) -> dict[str, Path]:
    """Write ``report.md`` (figures in ``report_files/``) and a self-contained ``report.html``."""
    directory = Path(directory)
    store = ResultStore(directory)
    if not store.path.is_file():
        raise DataError(f"{store.path}: no results file (run 'adbench run ... --output {directory}' first)")
    records = latest_records(store.load())
    if not records:
        raise DataError(f"{store.path}: holds no readable records")
    document = build_report(records, directory)
    return {
        "markdown": document.write_markdown(directory / "report.md"),
        "html": document.write_html(directory / "report.html"),
    }


__all__ = ["write_report", "build_report"]
