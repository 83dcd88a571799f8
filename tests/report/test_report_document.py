"""The report as a document: mixed datasets, dropped lines, published values like for like, the
self-contained HTML, variants and template sizes."""

import base64
import re
from dataclasses import replace
from html.parser import HTMLParser

from adbench.report import build_report
from adbench.report.comparison import compare
from adbench.report.stats import format_percent
from adbench.report.summary import summary_table
from adbench.report.tables import label_profiles
from adbench.results import ResultStore, latest_records
from tests.report.conftest import NEW, json_records, table_after


def test_a_directory_mixing_datasets_is_split_and_flagged(tmp_path, old, new):
    mixed = [replace(r, dataset="lhcolike") for r in old] + new
    doc = build_report(mixed, tmp_path, figures=False)
    markdown = doc.write_markdown(tmp_path / "report.md").read_text()
    notes = [line for line in markdown.splitlines() if "This directory mixes 2 datasets" in line]
    assert notes == ["> **Note:** This directory mixes 2 datasets (lhcolike, synthetic-small): every table and "
                     "figure is split by dataset; nothing is pooled over them."]
    assert "### lhcolike: SR 3.30-3.70 TeV" in markdown and "### synthetic-small: SR 3.30-3.70 TeV" in markdown
    assert "\n### lhcolike\n" in markdown and "\n### synthetic-small\n" in markdown  # one summary per dataset
    summary = summary_table(mixed, "lhcolike")
    assert {row[0] for row in summary.body} == {"radot-projection", "sigma-context", "idealized", "supervised"}

def test_dropped_lines_are_reported(tmp_path):
    lines = NEW.read_text().splitlines()
    lines[3] = lines[3][: len(lines[3]) // 2]  # a torn line
    lines.insert(10, "not json")
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    store = ResultStore(tmp_path)
    records = latest_records(store.load())
    assert store.skipped_lines == [4, 11]
    doc = build_report(records, tmp_path, store.skipped_lines, figures=False)
    markdown = doc.write_markdown(tmp_path / "report.md").read_text()
    assert "2 unreadable lines of `results.jsonl` (line 4, 11) were dropped" in markdown

def test_published_numbers_never_stand_beside_synthetic_data(written, new):
    _, markdown, _ = written
    comparison = compare(new)
    assert comparison.performance == [] and comparison.timing == []
    assert any("synthetic-small" in reason for reason in comparison.left_out)
    assert "| published |" not in markdown and "No published value is comparable with this run." in markdown

def test_published_comparison_is_like_for_like(new):
    lhco = [replace(r, dataset="lhco") for r in new]
    comparison = compare(lhco)
    methods = {(row[1], row[2], row[3]) for row in comparison.performance}
    # BDT, 5 features: the reference scores at N_sig 1000; CATHODE's MLP numbers are left out
    assert ("idealized", "SIC @ FPR 1e-3", "1000") in methods and ("supervised", "SIC @ FPR 1e-3", "1000") in methods
    assert all(row[1] != "radot-projection" for row in comparison.performance)  # a variant: not the paper's method
    assert any("an MLP on 4 features" in reason for reason in comparison.left_out)
    row = next(row for row in comparison.performance if row[1] == "idealized")
    assert row[6] == "10.7" and row[7] == f"≈{format_percent(0.75 * 1000 / 121_339)}" and row[11].startswith("LHCO")
    # CPU timings are not compared with the papers' GPU timings; GPU ones are
    assert comparison.timing == [] and any("CPU" in reason for reason in comparison.left_out)
    paper_radot = [replace(r, method="radot", variant="", device="NVIDIA H100 (CUDA 12.8)") for r in lhco
                   if r.method == "radot-projection"]
    comparison = compare(paper_radot)
    assert comparison.timing and comparison.timing[0][4] == "10 min per SR" and "H100" in comparison.timing[0][3]

class _Html(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.tables: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("script", "link", "img") and any(str(attrs.get(k, "")).startswith(("http", "//"))
                                                    for k in ("src", "href")):
            self.external.append(tag)
        if tag == "table":
            self.tables.append(attrs.get("class", ""))

def test_html_is_self_contained_with_sortable_tables(written):
    _, markdown, html = written
    parser = _Html()
    parser.feed(html)
    assert parser.external == []
    assert parser.tables and all(cls == "sortable" for cls in parser.tables)
    assert "<script>" in html and "addEventListener('click'" in html
    images = re.findall(r"\]\((report_files/[^)]+\.png)\)", markdown)
    assert len(parser.images) == len(images)
    for source in parser.images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<b>" in html  # the summary's best methods

def test_variant_and_template_size_are_shown(written):
    _, markdown, _ = written
    methods = table_after(markdown, "## Methods")
    radot = next(row for row in methods[1:] if row[0] == "radot-projection")
    assert "variant `radot-projection` (an adbench addition, not the published method)" in radot[1]
    assert radot[6].startswith("4; distinct source events:")
    table = table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
    cell = next(row for row in table[1:] if row[0] == "radot-projection")[11]
    assert re.fullmatch(r"4\.0 \(\d\.\d\)", cell), cell

def test_several_profiles_of_one_method_get_their_own_rows(new):
    raw = latest_records(json_records(NEW))
    doubled = raw + [replace(r, profile="paper", variant="") for r in raw if r.method == "radot"]
    labelled = label_profiles(doubled)
    assert {"radot-projection", "radot", "sigma-context"} <= {r.method for r in labelled}
