"""The flow-matching family in the SIGMA paper's order, seed by seed (adbench/report/ordering.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adbench.report import build_report
from adbench.report.ordering import compare_ordering
from tests.report.conftest import labelled

COLUMN = (3.3, "3.30-3.70", 1000)


def family(raw, factors: dict[str, dict[int, float]], profile: str = "fast") -> list:
    """The fixture's sigma-context records copied as each method of ``factors``, its max SIC at each
    seed sigma-context's times ``factors[method][seed]``."""
    context = [r for r in raw if r.method == "sigma-context"]
    return [replace(r, method=method, profile=profile, max_sic=r.max_sic * by_seed[r.seed])
            for method, by_seed in factors.items() for r in context]


def ordered(records) -> dict:
    return compare_ordering(*labelled(records), "synthetic-small")


def test_neighbours_in_the_paper_order_among_those_that_ran(raw):
    """sigma-linear did not run: sigma-context is paired with v_data; v_CR with sigma-context."""
    records = raw + family(raw, {"vdata": {0: 0.5, 1: 2.0, 2: 0.25}, "vcr": {0: 1.5, 1: 1.5, 2: 0.8}})
    comparisons = ordered(records)
    assert list(comparisons) == [("sigma-context", "vdata"), ("vcr", "sigma-context")]
    above_vdata = comparisons[("sigma-context", "vdata")][COLUMN]
    assert (above_vdata.seeds, above_vdata.higher, above_vdata.lower) == (3, 2, 1)
    assert above_vdata.ratios == pytest.approx((2.0, 0.5, 4.0))
    vcr = comparisons[("vcr", "sigma-context")][COLUMN]
    assert (vcr.higher, vcr.lower) == (2, 1) and vcr.ratios == pytest.approx((1.5, 1.5, 0.8))


def test_all_four_give_three_pairs(raw):
    records = raw + family(raw, {"vdata": {s: 0.5 for s in range(3)}, "sigma-linear": {s: 0.8 for s in range(3)},
                                 "vcr": {s: 1.2 for s in range(3)}})
    assert list(ordered(records)) == [("sigma-linear", "vdata"), ("sigma-context", "sigma-linear"),
                                      ("vcr", "sigma-context")]
    assert all(c.higher == 3 for by_column in ordered(records).values() for c in by_column.values())


def test_other_profiles_variants_and_settings_are_not_paired(raw):
    assert ordered(raw + family(raw, {"vdata": {0: 0.5, 1: 0.5, 2: 0.5}}, profile="cpu")) == {}
    near = [replace(r, variant="vdata+near") for r in family(raw, {"vdata": {0: 0.5, 1: 0.5, 2: 0.5}})]
    assert ordered(raw + near) == {}
    other = [replace(r, template_size=8.0) if r.seed == 2 else r
             for r in family(raw, {"vdata": {0: 0.5, 1: 0.5, 2: 0.5}})]
    assert ordered(raw + other)[("sigma-context", "vdata")][COLUMN].seeds == 2


def test_the_report_shows_the_order_table_only_with_a_pair(raw, tmp_path):
    def markdown(records):
        return build_report(records, figures=False).write_markdown(tmp_path / "report.md").read_text()

    assert "The SIGMA paper's order" not in markdown(raw)
    text = markdown(raw + family(raw, {"vdata": {0: 0.5, 1: 0.5, 2: 2.0}}))
    assert "| method | against (below it in the paper) |" in text
    row = next(line for line in text.splitlines() if line.startswith("| sigma-context | vdata |"))
    assert row.count("higher at 2, lower at 1 of 3 seeds (p 1); ratio 2.00 (0.50-2.00)") == 4
