"""The report's paired comparison of each variant with its published method (adbench/report/variants.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adbench.report import build_report
from adbench.report.variants import VariantComparison, compare_variants
from tests.report.conftest import labelled

COLUMN = (3.3, "3.30-3.70", 1000)


def with_near(raw, factors: dict[int, float], profile: str = "fast-near") -> list:
    """The fixture plus a ``sigma-context+near`` copy of sigma-context's records, its max SIC at each
    seed the method's times ``factors[seed]``."""
    near = [replace(r, variant="sigma-context+near", profile=profile, max_sic=r.max_sic * factors[r.seed])
            for r in raw if r.method == "sigma-context"]
    return raw + near


def compared(records) -> dict:
    return compare_variants(*labelled(records), "synthetic-small")


def test_counts_seeds_higher_and_lower_and_the_ratio(raw):
    comparison = compared(with_near(raw, {0: 2.0, 1: 1.25, 2: 0.5}))["sigma-context+near"][COLUMN]
    assert comparison.method == "sigma-context"
    assert (comparison.higher, comparison.lower) == (2, 1)
    assert comparison.ratios == pytest.approx((2.0, 1.25, 0.5))
    assert "higher at 2, lower at 1 of 3 seeds" in comparison.cell()
    assert "ratio 1.25 (0.50-2.00)" in comparison.cell()


def test_ties_count_in_neither_direction(raw):
    comparison = compared(with_near(raw, {0: 1.0, 1: 1.0, 2: 3.0}))["sigma-context+near"][COLUMN]
    assert (comparison.higher, comparison.lower) == (1, 0)
    assert comparison.sign_test_p == 1.0


@pytest.mark.parametrize("higher,lower,p", [(5, 0, 0.0625), (0, 5, 0.0625), (3, 0, 0.25), (4, 1, 0.375),
                                            (3, 2, 1.0), (0, 0, 1.0), (10, 0, 2 / 1024)])
def test_the_sign_test_is_the_exact_two_sided_binomial(higher, lower, p):
    ratios = (2.0,) * higher + (0.5,) * lower
    assert VariantComparison("v", "m", higher + lower, higher, lower, ratios).sign_test_p == pytest.approx(p)


def test_pairs_with_the_profile_the_variant_extends(raw):
    records = with_near(raw, {0: 2.0, 1: 2.0, 2: 2.0})  # fast-near extends fast
    records += [replace(r, profile="cpu", max_sic=r.max_sic * 4) for r in raw if r.method == "sigma-context"]
    comparison = compared(records)["sigma-context+near"][COLUMN]
    assert comparison.method == "sigma-context:fast"
    assert comparison.ratios == pytest.approx((2.0, 2.0, 2.0))


def test_no_pair_when_the_extended_profile_did_not_run(raw):
    assert compared(with_near(raw, {0: 2.0, 1: 2.0, 2: 2.0}, profile="cpu-near")) == {}


def test_seeds_with_other_settings_or_another_dataset_are_left_out(raw):
    records = with_near(raw, {0: 2.0, 1: 2.0, 2: 0.5})
    records = [replace(r, template_size=8.0) if r.variant == "sigma-context+near" and r.seed == 2 else r
               for r in records]
    records += [replace(r, dataset="other", max_sic=r.max_sic * 0.1) for r in records if r.variant]
    comparison = compared(records)["sigma-context+near"][COLUMN]
    assert (comparison.seeds, comparison.higher, comparison.lower) == (2, 2, 0)


def test_a_method_at_zero_counts_but_gives_no_ratio(raw):
    records = with_near(raw, {0: 2.0, 1: 2.0, 2: 2.0})
    records = [replace(r, max_sic=0.0) if r.method == "sigma-context" and not r.variant and r.seed == 0 else r
               for r in records]
    comparison = compared(records)["sigma-context+near"][COLUMN]
    assert (comparison.seeds, comparison.higher, len(comparison.ratios)) == (3, 3, 2)


def test_missing_seeds_of_the_method_shrink_the_count(raw):
    records = [r for r in with_near(raw, {0: 2.0, 1: 2.0, 2: 2.0})
               if not (r.method == "sigma-context" and not r.variant and r.seed == 1)]
    assert compared(records)["sigma-context+near"][COLUMN].seeds == 2


def test_a_variant_without_its_method_is_not_compared(raw):
    assert compared(raw) == {}  # radot-projection ran without plain radot


def markdown(records, directory: Path) -> str:
    return build_report(records, figures=False).write_markdown(directory / "report.md").read_text()


def test_the_report_shows_the_table_only_when_there_is_a_pair(raw, tmp_path):
    assert "seed by seed" not in markdown(raw, tmp_path)
    text = markdown(with_near(raw, {0: 2.0, 1: 1.5, 2: 1.1}), tmp_path)
    assert "| variant | against |" in text
    row = next(line for line in text.splitlines() if line.startswith("| sigma-context+near | sigma-context |"))
    # the four (SR, N_sig) columns with signal (two SRs, N_sig 1000 and 2000), each the same three seeds
    assert row.count("higher at 3, lower at 0 of 3 seeds (p 0.25); ratio 1.50 (1.10-2.00)") == 4
    assert row.count("|") == 2 + 1 + 4


def test_the_fraction_of_idealized_leaves_out_seeds_with_another_setting(raw):
    """The summary's paired fractions apply the same settings check as the variants table: a seed at
    which idealized ran with another classifier is not a fraction of it."""
    from adbench.report.summary import paired_fractions

    before = paired_fractions(raw, "synthetic-small")[("sigma-context", COLUMN)]
    other = [replace(r, classifier={**r.classifier, "n_models": 7})
             if r.method == "idealized" and r.seed == 1 else r for r in raw]
    after = paired_fractions(other, "synthetic-small")[("sigma-context", COLUMN)]
    assert len(after) == len(before) - 1
    assert set(after) < set(before)
