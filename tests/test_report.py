"""Reports from a small stored results file (tests/fixtures/results_small.jsonl, made by
`adbench run --methods idealized,supervised,radot,sigma-context --dataset synthetic-small
--scan 3.3,3.9,0.4,0.2 --n-sig 0,1000 --seeds 0,1`, when synthetic-small held out 250k background
events, half of them the idealized template: 0.5 x the SR data): tables, figures and a self-contained
HTML. Stored on purpose: the report code is tested on fixed records, not on a fresh run."""

import base64
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from adbench.report import figures, write_report
from adbench.report.tables import amortisation, label_profiles, performance_rows, timing_rows
from adbench.results import ResultStore, latest_records

FIXTURE = Path(__file__).parent / "fixtures" / "results_small.jsonl"
METHODS = ["idealized", "supervised", "radot", "sigma-context"]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fixture")
    shutil.copy(FIXTURE, directory / "results.jsonl")
    return latest_records(ResultStore(directory).load())


def test_performance_rows_are_medians_and_quantiles_over_seeds(records):
    rows = performance_rows(records)
    assert len(rows) == 2 * 4 * 2  # windows x methods x N_sig
    row = next(r for r in rows if (r["method"], r["window"], r["n_sig"]) == ("radot", "3.30-3.70", 1000))
    values = [r.max_sic for r in records if (r.method, r.window, r.n_sig) == ("radot", "3.30-3.70", 1000)]
    assert row["seeds"] == 2 and row["max_sic"].median == pytest.approx(np.median(values))
    assert row["max_sic"].low == pytest.approx(np.quantile(values, 0.16))
    assert row["max_sic"].high == pytest.approx(np.quantile(values, 0.84))
    # synthetic-small is a quarter of LHCO: an N_sig there is not the papers' N_sig
    assert row["published_sic_1e3"] is None
    lhco_size = performance_rows([replace(r, dataset="lhco") for r in records])
    radot = next(r for r in lhco_size if (r["method"], r["window"], r["n_sig"]) == ("radot", "3.30-3.70", 1000))
    assert radot["published_sic_1e3"] == 3.8
    # template sizes per SR data event: RAD-OT oversamples 4x; the fixture's idealized template (half
    # of 250k held-out events) is half the SR data; supervised has no template
    assert row["template_ratio"].median == pytest.approx(4.0, rel=0.01)
    ratio = {r["method"]: r["template_ratio"] for r in rows if (r["window"], r["n_sig"]) == ("3.30-3.70", 1000)}
    assert ratio["idealized"].median == pytest.approx(0.5, abs=0.05)
    assert ratio["supervised"].n == 0


def test_timing_rows_separate_training_once_from_per_sr_work(records):
    rows = {r["method"]: r for r in timing_rows(records)}
    assert list(rows) == METHODS
    sigma = rows["sigma-context"]
    assert not sigma["per_window"] and sigma["shared_fit_s"].median > 0
    assert sigma["fit_window_s"].median == 0 and sigma["sample_s"].median > 0
    assert rows["radot"]["per_window"] and rows["radot"]["shared_fit_s"] is None
    assert rows["radot"]["published"] == "10 min per SR"


def test_amortisation_is_cumulative_over_the_measured_scan(records):
    curves = amortisation(records)
    sigma, radot = curves["sigma-context"], curves["radot"]
    assert [k for k, _ in sigma] == [0, 1, 2]
    assert sigma[0][1] > 0 and radot[0][1] == 0  # SIGMA pays its training before the first SR
    assert all(b[1] >= a[1] for a, b in zip(sigma, sigma[1:], strict=False))


def test_several_profiles_of_one_method_get_their_own_rows(records):
    doubled = records + [replace(r, profile="paper") for r in records if r.method == "radot"]
    labelled = label_profiles(doubled)
    assert {"radot:fast", "radot:paper", "sigma-context"} <= {r.method for r in labelled}


@pytest.mark.parametrize("make", [
    lambda rs: figures.sic_curves(rs, 1000), lambda rs: figures.max_sic_vs_nsig(rs),
    lambda rs: figures.timing_bars(rs), lambda rs: figures.fidelity(rs),
    lambda rs: figures.feature_histograms(rs, "sigma-context", 1000), lambda rs: figures.amortisation_plot(rs),
])
def test_figures_come_from_stored_records(records, make):
    fig = make(records)
    assert fig.axes and all(ax.has_data() for ax in fig.axes if ax.get_visible() and ax.axison)


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_report_markdown_and_self_contained_html(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "results.jsonl")
    paths = write_report(tmp_path)
    markdown = paths["markdown"].read_text()
    for heading in ("## Performance", "## Timing", "## Figures", "## Amortisation", "## Environment"):
        assert heading in markdown
    assert "| synthetic-small | 3.30-3.70 | radot | 1000 (724) | 2 |" in markdown
    assert "19.5 s (training once) + 1.6 s per SR" in markdown
    assert "Made on CPU only (no GPU was used)" in markdown
    idealized_row = next(line for line in markdown.splitlines() if "| 3.30-3.70 | idealized | 1000 (724)" in line)
    assert "‡" in idealized_row and idealized_row.endswith("| 0.5 [0.5, 0.5] |")
    assert "‡ the template has fewer events than the SR data" in markdown
    images = re.findall(r"\]\((report_files/[^)]+\.png)\)", markdown)
    assert len(images) >= 8 and all((tmp_path / image).is_file() for image in images)

    parser = _Images()
    parser.feed(paths["html"].read_text())
    assert len(parser.sources) == len(images)
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_variant_profile_carries_its_own_name(records):
    """RAD-OT's fast profile (projection-ordered batches, an adbench addition) is not the published
    method: its rows are named by the variant and get no published value beside them."""
    renamed = [replace(r, variant="radot-projection", dataset="lhco") if r.method == "radot" else r for r in records]
    labelled = label_profiles(renamed)
    assert "radot-projection" in {r.method for r in labelled} and "radot" not in {r.method for r in labelled}
    rows = [row for row in performance_rows(labelled) if row["method"] == "radot-projection"]
    assert rows and all(row["published_sic_1e3"] is None for row in rows)
