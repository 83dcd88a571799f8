"""Reports from stored results files (tests/fixtures/README.md says how each was made): tables,
uncertainties, figures and the self-contained HTML. Stored on purpose: the report code is tested on
fixed records, not on a fresh run.

- ``results_small.jsonl``: schema 1 (before statistical errors were stored), 2 seeds.
- ``results_schema2.jsonl``: schema 2 (statistical errors, template sizes, RAD-OT's variant), 3 seeds.
"""

import base64
import json
import math
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from adbench.report import build_report, write_report
from adbench.report.comparison import compare
from adbench.report.fig_samples import feature_histograms, sample_record, signal_window
from adbench.report.fig_sensitivity import fidelity, metrics_vs_nsig, sic_and_rejection
from adbench.report.fig_timing import amortisation_plot, crossovers, timing_bars, training_groups
from adbench.report.stats import Estimate, format_percent
from adbench.report.summary import summary_table
from adbench.report.tables import (
    TimingRow,
    crossover,
    infer_variants,
    label_profiles,
    performance_rows,
    timing_rows,
)
from adbench.results import ResultStore, latest_records

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "results_small.jsonl"
NEW = FIXTURES / "results_schema2.jsonl"
RAW_FIELD_NAMES = ("max_sic", "sic_1e3", "n_sig", "fidelity_auc", "time_", "_s ")


def load(path: Path, tmp_path: Path) -> list:
    shutil.copy(path, tmp_path / "results.jsonl")
    return latest_records(ResultStore(tmp_path).load())


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    return label_profiles(infer_variants(load(OLD, tmp_path_factory.mktemp("old"))))


@pytest.fixture(scope="module")
def new(tmp_path_factory):
    return label_profiles(load(NEW, tmp_path_factory.mktemp("new")))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The full report of the schema-2 fixture, written once."""
    directory = tmp_path_factory.mktemp("report")
    shutil.copy(NEW, directory / "results.jsonl")
    (directory / "report_files").mkdir()
    (directory / "report_files" / "sic_curves.png").write_bytes(b"a figure of an older report layout")
    paths = write_report(directory)
    return directory, paths["markdown"].read_text(), paths["html"].read_text()


def texts_of(fig) -> list[str]:
    """Every piece of text a figure shows (titles, labels, tick labels, legends, annotations)."""
    import matplotlib.text

    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


# --------------------------------------------------------------------------- 12.3: uncertainties
def test_an_estimate_keeps_statistical_error_and_seed_spread_apart():
    three = Estimate.of([1.0, 2.0, 4.0], [0.1, 0.3, 0.2])
    assert three.median == 2.0 and three.stat == pytest.approx(0.2)
    assert three.low == pytest.approx(np.quantile([1, 2, 4], 0.16)) and three.has_band
    assert three.total == pytest.approx(math.hypot(0.2, np.std([1, 2, 4], ddof=1)))
    assert three.text() == f"2.00 ±0.20 [{three.low:.2f}, {three.high:.2f}]"
    two = Estimate.of([1.0, 3.0], [0.1, 0.3])
    assert not two.has_band and math.isnan(two.low) and math.isnan(two.high)
    assert two.text() == "2.00 ±0.20 {1.00, 3.00}" and "[" not in two.text()
    one = Estimate.of([1.5], [0.25])
    assert one.text() == "1.50 ±0.25" and one.total == pytest.approx(0.25)
    schema1 = Estimate.of([1.0, 3.0], [None, None])
    assert math.isnan(schema1.stat) and schema1.text() == "2.00 {1.00, 3.00}"
    assert Estimate.of([float("nan")]).text() == "-"


def test_the_median_is_known_better_than_one_run():
    """Its error: the one-run uncertainty over sqrt(n), times sqrt(pi/2) (a median's efficiency) from
    three seeds on; one seed has none (how far another training would move it is unknown)."""
    five = Estimate.of([1.0, 2.0, 4.0, 3.0, 2.5], [0.2] * 5)
    assert five.median_error == pytest.approx(math.sqrt(math.pi / 2) * five.total / math.sqrt(5))
    two = Estimate.of([1.0, 3.0], [0.1, 0.3])
    assert two.median_error == pytest.approx(two.total / math.sqrt(2))
    assert math.isnan(Estimate.of([1.5], [0.25]).median_error) and math.isnan(Estimate.of([]).median_error)
    # calibrated: over many draws of three or five normal seeds, the median strays by its stated error
    rng = np.random.default_rng(0)
    for n in (3, 5):
        draws = rng.normal(10.0, 1.0, (4000, n))
        stated = np.mean([Estimate.of(row).median_error for row in draws])
        actual = np.std(np.median(draws, axis=1))
        print(f"{n} seeds: median error stated {stated:.3f}, actual {actual:.3f}, limit 10%")
        assert abs(stated / actual - 1) < 0.1


def _row_of(new, values, errors=()):
    return replace(performance_rows(new)[0], estimates={"max_sic": Estimate.of(values, errors)})


def test_best_and_others_are_compared_through_the_errors_of_their_medians(new):
    from adbench.report.summary import Leader, resolved

    best = _row_of(new, [10.0, 10.5, 11.0, 9.5, 10.2], [0.5] * 5)
    lower = [8.6, 9.1, 9.6, 8.1, 8.8]
    one_run = math.hypot(best["max_sic"].total, _row_of(new, lower, [0.5] * 5)["max_sic"].total)
    # 0.8 below the best in every seed: within one run's uncertainty (about 1.06), not within the medians'
    shifted = [v + 0.6 for v in lower]
    assert 0.8 == pytest.approx(best["max_sic"].median - np.median(shifted)) and 0.8 < one_run
    assert resolved(best, _row_of(new, shifted, [0.5] * 5)) is True
    assert resolved(best, _row_of(new, [v + 1.3 for v in lower], [0.5] * 5)) is False
    # one seed, or no stored error on either side: no verdict
    assert resolved(best, _row_of(new, [9.5], [0.1])) is None
    assert resolved(_row_of(new, [8.40]), _row_of(new, [8.39])) is None
    assert resolved(best, _row_of(new, [9.0, 9.2, 9.4])) is not None  # three seeds: their spread is an error
    leader = Leader("SR 3.30-3.70 · N_sig 1000", "a", "8.40", close=["b"], unknown=["c"], compared=2)
    assert "not resolved from it (medians within 1σ of their difference): b" in leader.text()
    assert "no uncertainty to compare with (one seed or no stored errors): c" in leader.text()
    clear = Leader("SR", "a", "8.40", close=[], compared=3).text()
    assert clear.endswith("ahead of the others by more than 1σ of the difference of medians")
    assert Leader("SR", "a", "8.40", close=[]).text().endswith("the only method under test here")


def test_the_summary_lists_each_method_by_its_verdict(new):
    from adbench.report.summary import resolved

    summary = summary_table(new, "synthetic-small")
    rows = {(r.method, r.window, r.n_sig): r for r in performance_rows(new)}
    for leader, (window, n_sig) in zip(summary.leaders, summary.columns, strict=True):
        others = [m for m in ("radot-projection", "sigma-context") if m != leader.best]
        verdicts = {m: resolved(rows[(leader.best, window, n_sig)], rows[(m, window, n_sig)]) for m in others}
        assert leader.close == [m for m, v in verdicts.items() if v is False]
        assert leader.unknown == [m for m, v in verdicts.items() if v is None]
        assert leader.compared == len(others)


def test_records_of_an_earlier_configuration_are_set_aside_not_pooled(tmp_path, new):
    """A rerun into the same directory under another configuration must not double the seeds."""
    from adbench.report.tables import one_configuration

    rerun = [replace(r, config_hash="another", timestamp="2099-01-01T00:00:00+0000") for r in new
             if r.method == "sigma-context" and r.n_sig == 1000]
    kept, aside = one_configuration(new + rerun)
    assert aside == {"sigma-context": len(rerun)}
    context = [r for r in kept if r.method == "sigma-context" and r.n_sig == 1000]
    assert context and all(r.config_hash == "another" for r in context)
    assert len(kept) == len(new)
    rows = {(r.method, r.window, r.n_sig): r for r in performance_rows(kept)}
    assert all(row.seeds <= 3 for row in rows.values())
    doc = build_report(new + rerun, tmp_path, figures=False)
    markdown = doc.write_markdown(tmp_path / "report.md").read_text()
    assert "Records of an earlier configuration" in markdown and f"sigma-context {len(rerun)} records" in markdown
    assert one_configuration(new) == (new, {})


def test_a_newer_configuration_that_only_failed_does_not_hide_finished_results(new):
    from adbench.report.tables import one_configuration

    point = [r for r in new if r.method == "sigma-context" and r.n_sig == 1000 and r.window == "3.30-3.70"]
    failed = replace(point[0], config_hash="another", status="failed", error="boom",
                     timestamp="2099-01-01T00:00:00+0000")
    kept, aside = one_configuration(new + [failed])
    assert failed not in kept and aside == {"sigma-context": 1} and all(r in kept for r in point)


def test_timestamps_are_compared_as_times_not_as_text(new):
    """01:30 UTC written at +0200 is earlier than 02:45 UTC, though its text sorts later."""
    from adbench.report.tables import one_configuration

    point = [r for r in new if r.method == "sigma-context" and r.n_sig == 1000 and r.window == "3.30-3.70"]
    early = [replace(r, config_hash="early", timestamp="2026-03-29T03:30:00+0200") for r in point]
    late = [replace(r, config_hash="late", timestamp="2026-03-29T02:45:00+0000") for r in point]
    for order in (early + late, late + early):
        kept, _ = one_configuration(order)
        assert {r.config_hash for r in kept} == {"late"}


def test_a_run_without_the_bootstrap_says_so_though_templates_keep_their_null_errors(tmp_path, new):
    stripped = [replace(r, stat_errors={k: v for k, v in r.stat_errors.items() if "fidelity" in k or "template" in k})
                for r in new]
    assert any(r.stat_errors for r in stripped)  # the templates' null errors stay
    doc = build_report(stripped, tmp_path, figures=False)
    markdown = doc.write_markdown(tmp_path / "report.md").read_text()
    assert ("These records store no test-set errors of max SIC, SIC and AUC (written without the test-set "
            "bootstrap)") in markdown
    assert not any(row.has_stat_errors for row in performance_rows(stripped))


def test_rows_combine_seeds_with_the_stored_statistical_errors(new):
    rows = performance_rows(new)
    row = next(r for r in rows if (r.method, r.window, r.n_sig) == ("radot-projection", "3.30-3.70", 1000))
    rs = [r for r in new if (r.method, r.window, r.n_sig) == ("radot-projection", "3.30-3.70", 1000)]
    assert row.seeds == len(rs) == 3 and row.has_stat_errors
    values = [r.max_sic for r in rs]
    assert row["max_sic"].median == pytest.approx(np.median(values))
    assert row["max_sic"].low == pytest.approx(np.quantile(values, 0.16))
    assert row["max_sic"].stat == pytest.approx(np.median([r.stat_errors["max_sic"] for r in rs]))
    assert row["fidelity_auc"].stat == pytest.approx(np.median([r.stat_errors["fidelity_auc"] for r in rs]))
    # S/B and S/sqrt(B) of the SR data
    assert row.s_over_b == pytest.approx(np.median([r.n_sig_sr / (r.n_sr_data - r.n_sig_sr) for r in rs]))
    assert row.s_over_sqrt_b == pytest.approx(np.median([r.n_sig_sr / math.sqrt(r.n_sr_data - r.n_sig_sr) for r in rs]))
    # RAD-OT reuses sideband pairs: fewer distinct source events than template events
    assert row.distinct_ratio < row.template_ratio == pytest.approx(4.0, rel=0.01)


def test_schema_1_records_load_without_statistical_errors(old, tmp_path):
    raw = latest_records(json_records(OLD))
    assert all(r.schema == 1 and r.stat_errors == {} for r in raw)
    assert all(r.variant == "" for r in raw if not r.method.startswith("radot"))
    assert all(not math.isnan(r.sic_1e3) for r in raw if r.ok)  # renamed from sic_at_1e-3
    # RAD-OT's fast profile of the time was the projection variant: named so from the preset
    assert {r.method for r in old} == {"radot-projection", "sigma-context", "idealized", "supervised"}
    assert all(r.method_info["variant_inferred"] for r in old if r.method == "radot-projection")
    rows = performance_rows(old)
    assert len(rows) == 2 * 4 * 2  # windows x methods x N_sig
    assert all(not row.has_stat_errors and math.isnan(row["max_sic"].stat) for row in rows)
    assert all(row.seeds == 2 and not row["max_sic"].has_band for row in rows)


def test_report_says_which_uncertainty_is_which(written):
    _, markdown, _ = written
    assert "±stat is the statistical error of one seed's value" in markdown
    assert "the 16% and 84% quantiles over seeds, given only from 3 seeds on" in markdown
    assert "statistical error and the seeds' standard deviation added in quadrature" in markdown
    table = _table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
    header, rows = table[0], table[1:]
    assert header[:6] == ["method", "N_sig", "S in SR", "S/B", "S/√B", "seeds"]
    radot = next(r for r in rows if r[0] == "radot-projection" and r[1] == "1000")
    assert re.fullmatch(r"\d+\.\d\d ±\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]", radot[6]), radot[6]
    assert radot[3].endswith("%") and float(radot[4]) > 0


def test_fewer_than_three_seeds_are_never_called_a_band(tmp_path, old):
    doc = build_report(old, tmp_path, figures=False)
    markdown = doc.write_markdown(tmp_path / "report.md").read_text()
    assert "store no statistical errors (schema 1" in markdown
    assert "2 seeds per point: below 3 seeds no 16-84% band is given" in markdown
    table = _table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
    metric_cells = [cell for row in table[1:] for cell in row[6:11] if cell != "-"]
    assert metric_cells and not any("[" in cell for cell in metric_cells)
    assert all("{" in cell and "±" not in cell for cell in metric_cells)
    # the SIC curves then draw each seed, no 16-84% band
    fig = sic_and_rejection(old, "synthetic-small", "3.30-3.70")
    assert not any(ax.collections for ax in fig.axes)


# --------------------------------------------------------------------------- item 1: who wins, first
def test_summary_puts_methods_against_sr_and_nsig_with_the_best_in_bold(new):
    summary = summary_table(new, "synthetic-small")
    header, rows = summary.header, {row[0]: row for row in summary.body}
    assert set(rows) == {"radot-projection", "sigma-context", "idealized", "supervised"}
    assert header[0] == "method" and header[-1] == "time of a 10-SR scan"
    assert summary.columns == [(w, n) for w in ("3.30-3.70", "3.50-3.90") for n in (1000, 2000)]
    assert header[1].startswith("SR 3.30-3.70 · N_sig 1000 (S/B ") and header[1].endswith("%)")
    perf = {(r.method, r.window, r.n_sig): r for r in performance_rows(new)}
    for j, (window, n_sig) in enumerate(summary.columns, 1):
        tested = {m: perf[(m, window, n_sig)]["max_sic"] for m in ("radot-projection", "sigma-context")}
        best = max(tested, key=lambda m: tested[m].median)
        assert summary.leaders[j - 1].best == best
        assert sum(row[j].startswith("**") for row in summary.body) == 1 and rows[best][j].startswith("**")
        assert rows[best][j].startswith(f"**{tested[best].median:.2f} ± {tested[best].total:.2f}**")
        fraction = tested[best].median / perf[("idealized", window, n_sig)]["max_sic"].median
        assert rows[best][j].endswith(f"({fraction:.0%})")
        assert not rows["idealized"][j].endswith("%)")  # idealized is the 100%
    assert re.fullmatch(r".+ \(.+ \+ 10 × .+\)", rows["sigma-context"][-1])  # training once + 10 x per SR
    assert re.fullmatch(r".+ \(10 × .+\)", rows["radot-projection"][-1])


def test_summary_comes_first(written):
    _, markdown, _ = written
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Summary: who wins"
    assert headings.index("## Summary: who wins") < headings.index("## Performance per signal region")


# --------------------------------------------------------------------------- item 2: one SR per panel
def test_every_table_and_figure_is_one_dataset_and_one_sr(written, new):
    directory, markdown, _ = written
    assert "### synthetic-small: SR 3.30-3.70 TeV" in markdown and "### synthetic-small: SR 3.50-3.90 TeV" in markdown
    for window in ("3.30-3.70", "3.50-3.90"):
        fig = sic_and_rejection(new, "synthetic-small", window)
        assert fig.get_suptitle() == f"adbench: synthetic-small, SR {window} TeV"
    fig = metrics_vs_nsig(new, "synthetic-small")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sorted(set(titles)) == ["synthetic-small: SR 3.30-3.70 TeV", "synthetic-small: SR 3.50-3.90 TeV"]


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


# --------------------------------------------------------------------------- item 3: the field's plots
def test_sic_and_rejection_curves_per_nsig_with_words_on_the_axes(new):
    fig = sic_and_rejection(new, "synthetic-small", "3.30-3.70")
    n_sigs = sorted({r.n_sig for r in new if r.n_sig > 0})
    assert len(fig.axes) == 2 * len(n_sigs)
    top, bottom = fig.axes[0], fig.axes[len(n_sigs)]
    assert "SIC" in top.get_ylabel() and bottom.get_yscale() == "log"
    assert "rejection" in bottom.get_ylabel() and "Signal efficiency" in bottom.get_xlabel()
    assert any(ax.collections for ax in fig.axes)  # 3 seeds: 16-84% bands
    texts = " ".join(texts_of(fig))
    assert not any(raw in texts for raw in RAW_FIELD_NAMES)
    # the references are dashed
    styles = {line.get_label(): line.get_linestyle() for line in bottom.get_lines()}
    assert styles["idealized"] == "--" and styles["supervised"] == "--" and styles["sigma-context"] == "-"


def test_max_sic_versus_nsig_has_an_s_over_b_axis_error_bars_and_marks_thin_tests(new, old):
    fig = metrics_vs_nsig(new, "synthetic-small")
    texts = texts_of(fig)
    assert "S/B in the SR [%]" in texts and "Maximum SIC" in texts
    assert any("Injected signal events" in t for t in texts)
    assert not any(raw in " ".join(texts) for raw in RAW_FIELD_NAMES)
    main = [ax for ax in fig.axes if ax.get_ylabel() == "Maximum SIC"]
    assert main and all(ax.containers for ax in main)  # error bars
    # the schema-1 fixture's test set is small: SIC at FPR 1e-3 rests on < 25 events -> open markers
    fig = metrics_vs_nsig(old, "synthetic-small")
    assert any("fewer than 25 test bkg events" in t for t in texts_of(fig))
    open_markers = [line for ax in fig.axes for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert open_markers


def test_figures_are_saved_as_png_and_pdf(written):
    directory, markdown, _ = written
    images = re.findall(r"\]\((report_files/[^)]+)\.png\)", markdown)
    assert len(images) >= 8
    assert not (directory / "report_files" / "sic_curves.png").exists()  # an older layout's figure is gone
    assert len(list((directory / "report_files").iterdir())) == 2 * len(images)
    for image in images:
        assert (directory / f"{image}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (directory / f"{image}.pdf").read_bytes()[:5] == b"%PDF-"
        assert f"({image}.pdf)" in markdown


# --------------------------------------------------------------------------- item 4: data versus template
def test_data_versus_template_histograms(new):
    window = signal_window(new, "synthetic-small")
    assert window == "3.30-3.70"  # the SR holding the signal
    record = sample_record(new, "synthetic-small", window, "sigma-context", 1000)
    fig = feature_histograms(record)
    n = len(record.histograms)
    tops, ratios = fig.axes[:n], fig.axes[n:]
    assert all(ax.get_yscale() == "log" for ax in tops)
    assert all(ax.get_ylim() == (0.5, 1.5) for ax in ratios) and "template" in ratios[0].get_ylabel()
    assert ratios[0].get_xlabel() == "Lighter jet mass $m_{J1}$ [TeV]"
    assert "[TeV]" in ratios[1].get_xlabel()
    legend = [t.get_text() for t in tops[0].get_legend().get_texts()]
    assert legend == ["true background", "template", "SR data", "data - true bkg (signal)"]
    assert f"SR {window} TeV" in fig.get_suptitle() and "S/B" in fig.get_suptitle()
    # a record that stores the signal's own histogram gets it overlaid instead of the excess
    hists = {name: {**h, "signal": h["background"]} for name, h in record.histograms.items()}
    fig = feature_histograms(replace(record, histograms=hists))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "signal" in legend and "data - true bkg (signal)" not in legend


# --------------------------------------------------------------------------- item 5: timing
def test_timing_bars_are_linear_and_draw_a_shared_training_once(new):
    rows = [row for row in timing_rows(new) if row.dataset == "synthetic-small"]
    assert training_groups(rows) == [(["sigma-context"], rows[[r.method for r in rows].index("sigma-context")]
                                      .shared_fit_s)]
    fig = timing_bars(new, "synthetic-small")
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels.count("training once (sigma-context)") == 1
    assert "sigma-context: per SR" in labels and "Wall-clock time" in ax.get_xlabel()


def test_shared_training_of_several_methods_is_one_bar(new):
    """v_data and the SIGMA variants share one training: one bar names them all."""
    sigma = [r for r in new if r.method == "sigma-context"]
    linear = [replace(r, method="sigma-linear", shared_fit_from="sigma-context") for r in sigma]
    rows = [row for row in timing_rows(new + linear) if row.dataset == "synthetic-small"]
    groups = training_groups(rows)
    assert [methods for methods, _ in groups] == [["sigma-context", "sigma-linear"]]


def _row(method: str, per_window: bool, once: float, per_sr: float) -> TimingRow:
    return TimingRow("d", method, "", per_window, math.nan if per_window else once, [] if per_window else [method],
                     per_sr, per_sr, 0.0, 1.0, ["CPU"], 1, 1)


def test_amortisation_extrapolates_with_integer_windows_and_the_crossover():
    once, retrained = _row("sigma-context", False, 100.0, 1.0), _row("cathode", True, 0.0, 30.0)
    assert crossover(once, retrained) == pytest.approx(100 / 29)
    assert crossover(retrained, once) is None and crossover(once, _row("idealized", True, 0.0, 0.5)) is None
    assert crossovers([once, retrained]) == [("sigma-context", "cathode", pytest.approx(100 / 29))]
    assert once.scan_seconds(10) == 110 and retrained.scan_seconds(10) == 300


def test_amortisation_figure(new):
    fig = amortisation_plot(new, "synthetic-small")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0, 20)
    ticks = [t for t in ax.get_xticks() if 0 <= t <= 20]
    assert all(float(t).is_integer() for t in ticks)
    assert ax.get_xlabel() == "Number of signal regions K" and ax.get_yscale() == "linear"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    expected = [f"{a} cheaper than {b} from K = {math.floor(k) + 1}" for a, b, k in
                crossovers([row for row in timing_rows(new) if row.method in ("sigma-context", "radot-projection")])]
    assert all(label in labels for label in expected)


# --------------------------------------------------------------------------- item 6: published, like for like
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


# --------------------------------------------------------------------------- item 7: interactive HTML
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


# --------------------------------------------------------------------------- variants and template sizes
def test_variant_and_template_size_are_shown(written):
    _, markdown, _ = written
    methods = _table_after(markdown, "## Methods")
    radot = next(row for row in methods[1:] if row[0] == "radot-projection")
    assert "variant `radot-projection` (an adbench addition, not the published method)" in radot[1]
    assert radot[6].startswith("4; distinct source events:")
    table = _table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
    cell = next(row for row in table[1:] if row[0] == "radot-projection")[11]
    assert re.fullmatch(r"4\.0 \(\d\.\d\)", cell), cell


def test_several_profiles_of_one_method_get_their_own_rows(new):
    raw = latest_records(json_records(NEW))
    doubled = raw + [replace(r, profile="paper", variant="") for r in raw if r.method == "radot"]
    labelled = label_profiles(doubled)
    assert {"radot-projection", "radot", "sigma-context"} <= {r.method for r in labelled}


def json_records(path: Path) -> list:
    from adbench.results import Record

    return [Record.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def test_fidelity_figure_has_one_panel_per_sr_and_the_null_band(new):
    from adbench.report.fig_sensitivity import null_sigmas

    # Behind each method its own null's +-2 sigma (schema 2 stores it): RAD-OT's, of fewer distinct
    # template events (one fifth here), is wider than a flow's.
    records = [replace(r, stat_errors={**r.stat_errors, "fidelity_auc": r.stat_errors["fidelity_auc"] * 5**0.5})
               if r.method == "radot-projection" and "fidelity_auc" in r.stat_errors else r for r in new]
    fig = fidelity(records, "synthetic-small")
    assert len(fig.axes) == 2
    rows = [row for row in performance_rows(records) if row.window == "3.30-3.70" and row["fidelity_auc"].n]
    sigmas = null_sigmas(rows)
    assert sigmas["radot-projection"] == pytest.approx(5**0.5 * sigmas["sigma-context"])
    ax = fig.axes[0]
    heights = sorted(round(patch.get_height(), 9) for patch in ax.patches)
    assert heights == sorted(round(4 * s, 9) for s in sigmas.values())


def _table_after(markdown: str, heading: str) -> list[list[str]]:
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


def test_two_sample_chi2_is_calibrated_and_sees_a_shifted_feature():
    """Two samples of one distribution read chi2 / ndf = 1 on average (200 pairs: the mean's standard
    error is sqrt(2 / ndf / 200)); a 0.15-sigma shift reads far above it."""
    from adbench.report.feature_fidelity import two_sample_chi2

    rng = np.random.default_rng(0)
    edges = np.linspace(-3, 3, 41)

    def histogram(n, shift=0.0):
        return np.histogram(rng.normal(shift, 1.0, n), edges)[0]

    values = []
    for _ in range(200):
        chi2, ndf = two_sample_chi2(histogram(40_000), histogram(10_000))
        values.append(chi2 / ndf)
    error = math.sqrt(2 / ndf / len(values))
    pull = (np.mean(values) - 1.0) / error
    print(f"null chi2/ndf mean {np.mean(values):.3f}, {pull:+.2f} standard errors from 1 (limit 5)")
    assert abs(pull) < 5
    chi2, ndf = two_sample_chi2(histogram(40_000, 0.15), histogram(10_000))
    print(f"shifted: chi2/ndf {chi2 / ndf:.2f} (must exceed 1 + 5 sqrt(2/ndf) = {1 + 5 * math.sqrt(2 / ndf):.2f})")
    assert chi2 / ndf > 1 + 5 * math.sqrt(2 / ndf)
    assert math.isnan(two_sample_chi2([0, 0, 5], [0, 0, 0])[0])  # an empty histogram has no shape


def test_the_report_says_in_which_feature_each_template_is_wrong(written, new):
    from adbench.report.feature_fidelity import feature_chi2_per_ndf, format_shortfall, median_shortfall

    _, markdown, _ = written
    assert "## Template mismodelling per feature" in markdown
    heading = next(line for line in markdown.splitlines() if line.startswith("### ") and "N_sig = " in line
                   and markdown.index(line) > markdown.index("## Template mismodelling per feature"))
    rows = _table_after(markdown, heading)
    header, body = rows[0], rows[1:]
    templates = {r.method for r in new if r.ok and r.histograms}
    assert header[:2] == ["method", "seeds"] and len(header) > 2
    assert {row[0].rstrip(" §") for row in body} <= templates and body
    assert not {"supervised", "anode", "ranode"} & {row[0] for row in body}  # score methods have no template
    method = body[0][0].rstrip(" §")
    window, n_sig = heading.split("SR ")[1].split(" TeV")[0], int(heading.split("N_sig = ")[1])
    values = [feature_chi2_per_ndf(r.histograms) for r in new
              if (r.method, r.window, r.n_sig) == (method, window, n_sig) and r.histograms]
    expected = np.median([v[header[2]] for v in values])
    assert body[0][2] == f"{expected:.2f}"
    chosen = [r for r in new if r.ok and (r.method, r.window, r.n_sig) == (method, window, n_sig)]
    assert header[-1] == "largest shortfall" and body[0][-1] == format_shortfall(median_shortfall(chosen))
    assert "pull" in body[0][-1]


def test_the_largest_shortfall_finds_where_a_template_misses_background_and_how_much_signal_is_there():
    """A template missing 30% of the background in x > 1 (where the signal is not) against one
    drawn from the background: the first's shortfall is exactly that range, the second's a noise run."""
    from adbench.report.feature_fidelity import format_shortfall, largest_shortfall

    rng = np.random.default_rng(1)
    edges = np.linspace(-4, 4, 41)
    background = rng.normal(0, 1, 200_000)
    signal = rng.normal(-1.0, 0.3, 5_000)
    faithful = rng.normal(0, 1, 400_000)
    missing = faithful[(faithful < 1.0) | (rng.random(len(faithful)) > 0.3)]
    found = largest_shortfall("x", shortfall_histogram(edges, missing, background, signal))
    tail = 0.1587  # the background's share above x = 1; the template keeps 70% of it, then renormalised
    expected = tail - 0.7 * tail / (1 - 0.3 * tail)
    print(format_shortfall(found), f"expected deficit {100 * expected:.1f}% from 1 to 4")
    assert found is not None and (found.low, found.high) == (pytest.approx(1.0), pytest.approx(4.0))
    assert found.deficit == pytest.approx(expected, rel=0.15)
    assert found.relative == pytest.approx(expected / tail, rel=0.15)
    assert found.signal < 0.05  # the signal sits at x = -1
    noise = largest_shortfall("x", shortfall_histogram(edges, faithful, background, signal))
    print(format_shortfall(noise))
    assert noise is None or (noise.deficit < found.deficit / 5 and noise.pull < found.pull / 5)
    reused = largest_shortfall("x", shortfall_histogram(edges, missing, background, signal), len(missing) / 4)
    assert reused.pull < found.pull and reused.deficit == found.deficit  # fewer independent events
    assert largest_shortfall("x", {"edges": edges.tolist(), "template": [0] * 40, "background": [1] * 40}) is None


def shortfall_histogram(edges, template, background, signal) -> dict:
    return {"edges": edges.tolist(), "template": np.histogram(template, edges)[0].tolist(),
            "background": np.histogram(background, edges)[0].tolist(),
            "signal": np.histogram(signal, edges)[0].tolist()}


def test_the_shortfall_over_seeds_is_one_seeds_and_says_how_many_agree(new):
    """Seeds whose templates fall short in different places: the row shows the median seed's own
    range and numbers, and counts the seeds that found the same range."""
    from adbench.report.feature_fidelity import median_shortfall

    rng = np.random.default_rng(2)
    edges = np.linspace(-4, 4, 41)
    background = rng.normal(0, 1, 200_000)

    def seed(low, high, keep):
        template = rng.normal(0, 1, 400_000)
        inside = (template > low) & (template < high)
        kept = template[~inside | (rng.random(len(template)) < keep)]
        return replace(new[0], histograms={"x": shortfall_histogram(edges, kept, background, background)},
                       n_template=len(kept), n_template_sources=len(kept))

    records = [seed(1.0, 4.0, 0.7), seed(1.0, 4.0, 0.8), seed(-4.0, -1.0, 0.75)]
    median = median_shortfall(records)
    print(median)
    assert median.feature == "x" and median.low <= -3.0 and median.high == pytest.approx(-1.0)
    assert (median.seeds, median.of) == (1, 3)  # the median deficit is the third seed's; no other shares its range
    assert median_shortfall([]) is None


def test_a_fitted_signal_fraction_is_set_against_the_injected_one(new, tmp_path):
    """R-ANODE-like records (method_info with fitted_w, heldout_w and its error): the table gives the true
    fraction, the fitted one as a median with its band, the per-seed ratio's median and how many seeds
    lie within a factor 2 of the truth (the bounds included)."""
    base = [r for r in new if r.ok][0]
    records = []
    for seed, (fitted, heldout, llr) in enumerate([(0.010, 0.020, 0.5), (0.020, 0.030, 8.0), (0.040, 0.050, 18.0)]):
        records.append(replace(base, method="ranode", seed=seed, n_sig=1000, n_sr_data=10_000, n_sig_sr=200,
                               method_info={"fitted_w": fitted, "heldout_w": heldout, "heldout_w_error": 0.005,
                                            "heldout_llr": llr},
                               histograms=None))
    markdown = build_report(records, figures=False).write_markdown(tmp_path / "a.md").read_text()
    rows = _table_after(markdown, "## Fitted signal fraction")
    assert rows[0] == ["method", "SR", "N_sig", "seeds", "true w", "fitted w", "fitted / true", "held-out w",
                       "held-out / true", "held-out Z", "signal splits"]
    (row,) = rows[1:]
    assert row[:5] == ["ranode", base.window, "1000", "3", "2.0%"]
    assert row[5].startswith("2.0% [") and row[6] == "1.00 (3 of 3 within 2 x)"  # ratios 0.5, 1, 2
    assert row[7].startswith("3.0% [") and row[7].endswith("(± 0.50%)")
    assert row[8] == "1.50 (2 of 3 within 2 x)"  # ratios 1, 1.5, 2.5
    assert row[9] == "4.0"  # sqrt(2 llr): 1, 4, 6 (their mean is 3.7, sqrt(2 x mean llr) 4.3)
    assert row[10] == "1"  # records without signal splits rest on one fit

    def without_llr(r):
        return replace(r, method_info={k: v for k, v in r.method_info.items() if k != "heldout_llr"})

    for mixed, expected in [([without_llr(r) for r in records], "-"),  # records from before it was kept
                            ([without_llr(records[0]), *records[1:]], "5.0 (2 of 3 seeds)")]:
        rows = _table_after(build_report(mixed, figures=False).write_markdown(tmp_path / "c.md").read_text(),
                            "## Fitted signal fraction")
        assert rows[1][9] == expected
    without = build_report(new, figures=False).write_markdown(tmp_path / "b.md").read_text()
    assert "## Fitted signal fraction" not in without

    def with_splits(r, chosen):
        return replace(r, method_info={**r.method_info, "signal_splits": 5,
                                       **({} if chosen is None else {"chosen_splits": chosen})})

    for splits, expected in [([None, None, None], "5"),  # the paper's: every split
                             ([[0, 1, 2, 3, 4]] * 3, "5"),  # a selection that kept them all
                             ([[2], [0, 3], [1]], "1-2 of 5")]:
        rows = _table_after(build_report([with_splits(r, c) for r, c in zip(records, splits, strict=True)],
                                         figures=False).write_markdown(tmp_path / "d.md").read_text(),
                            "## Fitted signal fraction")
        assert rows[1][10] == expected


def test_the_seed_count_says_when_max_sic_rests_on_fewer_seeds(tmp_path, new):
    first = next(r for r in new if r.method == "sigma-context" and r.n_sig == 1000 and r.window == "3.30-3.70")
    records = [replace(r, max_sic=float("nan")) if r is first else r for r in new]
    markdown = build_report(records, tmp_path, figures=False).write_markdown(tmp_path / "report.md").read_text()
    table = _table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
    row = next(r for r in table[1:] if r[0] == "sigma-context" and r[1] == "1000")
    assert row[5] == "3 (max SIC defined in 2)"
    assert all(r[5] == "3" for r in table[1:] if r is not row)


def test_the_fraction_of_idealized_pairs_each_seed_with_idealized_at_the_same_seed(new):
    """Paired fractions: a seed's max SIC over idealized's at that seed, not the ratio of medians."""
    from adbench.report.summary import paired_fractions

    fractions = paired_fractions(new, "synthetic-small")
    ideal = {(r.window, r.n_sig, r.seed): r.max_sic for r in new if r.method == "idealized" and r.ok}
    context = sorted((r for r in new if r.method == "sigma-context" and r.ok and r.n_sig > 0), key=lambda r: r.seed)
    assert context
    expected: dict = {}
    for r in context:
        if math.isfinite(r.max_sic) and ideal.get((r.window, r.n_sig, r.seed), 0) > 0:
            expected.setdefault((r.window, r.n_sig), []).append(r.max_sic / ideal[(r.window, r.n_sig, r.seed)])
    got = {(window, n_sig): v for (method, (_, window, n_sig)), v in fractions.items() if method == "sigma-context"}
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(expected[k]) for k in expected)
    assert not any(method == "idealized" for method, _ in fractions)

    # A seed idealized lacks is left out rather than compared with another seed's idealized.
    without = [r for r in new if not (r.method == "idealized" and r.seed == context[0].seed)]
    fewer = paired_fractions(without, "synthetic-small")
    assert sum(map(len, fewer.values())) < sum(map(len, fractions.values()))

    summary = summary_table(new, "synthetic-small")
    row = next(row for row in summary.paired if row[0] == "sigma-context")
    assert len(row) == 1 + len(summary.columns)
    assert all(re.fullmatch(r"-?\d+% \(-?\d+%--?\d+%, \d seeds\)|-", cell) for cell in row[1:]), row
