"""The report's figures from stored results: one dataset and SR per panel, SIC and rejection curves,
max SIC against N_sig, data against template, timing and amortisation, the fidelity AUC."""

import math
import re
from dataclasses import replace

import pytest

from adbench.report.fig_samples import feature_histograms, sample_record, signal_window
from adbench.report.fig_sensitivity import fidelity, metrics_vs_nsig, sic_and_rejection
from adbench.report.fig_timing import amortisation_plot, crossovers, timing_bars, training_groups
from adbench.report.tables import TimingRow, crossover, performance_rows, timing_rows
from tests.report.conftest import RAW_FIELD_NAMES, texts_of


def test_every_table_and_figure_is_one_dataset_and_one_sr(written, new):
    directory, markdown, _ = written
    assert "### synthetic-small: SR 3.30-3.70 TeV" in markdown and "### synthetic-small: SR 3.50-3.90 TeV" in markdown
    for window in ("3.30-3.70", "3.50-3.90"):
        fig = sic_and_rejection(new, "synthetic-small", window)
        assert fig.get_suptitle() == f"adbench: synthetic-small, SR {window} TeV"
    fig = metrics_vs_nsig(new, "synthetic-small")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sorted(set(titles)) == ["synthetic-small: SR 3.30-3.70 TeV", "synthetic-small: SR 3.50-3.90 TeV"]

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
