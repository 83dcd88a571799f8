"""Per-feature template mismodelling (adbench/report/feature_fidelity.py) and the fitted signal
fraction table (adbench/report/signal_fraction.py)."""

import math
from dataclasses import replace

import numpy as np
import pytest

from adbench.report import build_report
from tests.report.conftest import table_after


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
    rows = table_after(markdown, heading)
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
    rows = table_after(markdown, "## Fitted signal fraction")
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
        rows = table_after(build_report(mixed, figures=False).write_markdown(tmp_path / "c.md").read_text(),
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
        rows = table_after(build_report([with_splits(r, c) for r, c in zip(records, splits, strict=True)],
                                         figures=False).write_markdown(tmp_path / "d.md").read_text(),
                            "## Fitted signal fraction")
        assert rows[1][10] == expected
