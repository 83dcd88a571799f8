"""Reports: tables and figures from a run directory's stored results (no training here).

Modules, one job each: ``stats`` (a number's uncertainties), ``tables`` (records -> rows),
``summary`` (who wins), ``comparison`` + ``published`` (published values, like for like),
``style`` and ``fig_*`` (matplotlib figures), ``document`` (Markdown / HTML), ``build`` (the order).
"""

from __future__ import annotations

from pathlib import Path

from adbench.errors import DataError
from adbench.report.build import build_report
from adbench.results import ResultStore, latest_records


def write_report(directory: str | Path) -> dict[str, Path]:
    """Write ``report.md`` (figures as PNG and PDF in ``report_files/``) and a self-contained
    ``report.html`` from ``directory/results.jsonl``."""
    directory = Path(directory)
    store = ResultStore(directory)
    if directory.exists() and not directory.is_dir():
        raise DataError(f"{directory}: is a file; 'adbench report' takes the run directory")
    if not store.path.is_file():
        raise DataError(f"{store.path}: no results file (run 'adbench run ... --output {directory}' first)")
    records = latest_records(store.load())
    if not records:
        raise DataError(f"{store.path}: holds no readable records")
    document = build_report(records, directory, store.skipped_lines)
    return {
        "markdown": document.write_markdown(directory / "report.md"),
        "html": document.write_html(directory / "report.html"),
    }


__all__ = ["write_report", "build_report"]
