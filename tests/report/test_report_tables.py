"""Reports from stored results (tests/fixtures/README.md): uncertainties, the configuration kept, the
summary of who wins, the per-SR tables and the paired fractions of idealized."""

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from adbench.report import build_report
from adbench.report.fig_sensitivity import sic_and_rejection
from adbench.report.stats import Estimate
from adbench.report.summary import summary_table
from adbench.report.tables import performance_rows
from adbench.results import latest_records
from tests.report.conftest import OLD, json_records, table_after


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
    table = table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
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
    table = table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
    metric_cells = [cell for row in table[1:] for cell in row[6:11] if cell != "-"]
    assert metric_cells and not any("[" in cell for cell in metric_cells)
    assert all("{" in cell and "±" not in cell for cell in metric_cells)
    # the SIC curves then draw each seed, no 16-84% band
    fig = sic_and_rejection(old, "synthetic-small", "3.30-3.70")
    assert not any(ax.collections for ax in fig.axes)

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

def test_the_seed_count_says_when_max_sic_rests_on_fewer_seeds(tmp_path, new):
    first = next(r for r in new if r.method == "sigma-context" and r.n_sig == 1000 and r.window == "3.30-3.70")
    records = [replace(r, max_sic=float("nan")) if r is first else r for r in new]
    markdown = build_report(records, tmp_path, figures=False).write_markdown(tmp_path / "report.md").read_text()
    table = table_after(markdown, "### synthetic-small: SR 3.30-3.70 TeV")
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
