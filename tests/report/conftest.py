"""Stored results for the report tests (tests/fixtures/README.md says how each was made) and the helpers
they share. Stored on purpose: the report code is tested on fixed records, not on a fresh run.

- ``results_small.jsonl``: schema 1 (before statistical errors were stored), 2 seeds.
- ``results_schema2.jsonl``: schema 2 (statistical errors, template sizes, RAD-OT's variant), 3 seeds.
"""

import json
import shutil
from pathlib import Path

import pytest

from adbench.report import write_report
from adbench.report.tables import infer_variants, label_profiles, registered_names
from adbench.results import Record, ResultStore, latest_records

FIXTURES = Path(__file__).parent.parent / "fixtures"
OLD = FIXTURES / "results_small.jsonl"
NEW = FIXTURES / "results_schema2.jsonl"
#: Record field names that must never appear as axis labels or legends.
RAW_FIELD_NAMES = ("max_sic", "sic_1e3", "n_sig", "fidelity_auc", "time_", "_s ")


def load(path: Path, directory: Path) -> list[Record]:
    shutil.copy(path, directory / "results.jsonl")
    return latest_records(ResultStore(directory).load())


def json_records(path: Path) -> list[Record]:
    return [Record.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def labelled(records: list[Record]) -> tuple[list[Record], dict[str, str]]:
    """The records labelled as the report labels them, and each label's registered method name."""
    labels = label_profiles(records)
    return labels, registered_names(records, labels)


def texts_of(fig) -> list[str]:
    """Every piece of text a figure shows (titles, labels, tick labels, legends, annotations)."""
    import matplotlib.text

    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def table_after(markdown: str, heading: str) -> list[list[str]]:
    """The first Markdown table after ``heading``, as rows of cells (header first)."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            if set(line) <= {"|", "-"}:
                continue
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows


@pytest.fixture(scope="session")
def old(tmp_path_factory):
    return label_profiles(infer_variants(load(OLD, tmp_path_factory.mktemp("old"))))


@pytest.fixture(scope="session")
def raw(tmp_path_factory):
    """The schema-2 fixture's records as stored, before labelling."""
    return load(NEW, tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="session")
def new(tmp_path_factory):
    return label_profiles(load(NEW, tmp_path_factory.mktemp("new")))


@pytest.fixture(scope="session")
def written(tmp_path_factory):
    """The full report of the schema-2 fixture, written once: (directory, Markdown, HTML)."""
    directory = tmp_path_factory.mktemp("report")
    shutil.copy(NEW, directory / "results.jsonl")
    (directory / "report_files").mkdir()
    (directory / "report_files" / "sic_curves.png").write_bytes(b"a figure of an older report layout")
    paths = write_report(directory)
    return directory, paths["markdown"].read_text(), paths["html"].read_text()
