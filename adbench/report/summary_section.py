"""The report's summary of one dataset ("Summary: who wins"): the table of max SIC with the best method
of each column, each method as a fraction of idealized at the same seed, each variant against its
published method and the flow-matching family in the SIGMA paper's order, seed by seed."""

from __future__ import annotations

from adbench.report.document import Document
from adbench.report.ordering import compare_ordering
from adbench.report.summary import SCAN_WINDOWS, summary_table
from adbench.report.variants import VariantComparison, compare_variants
from adbench.results import Record


def summary_section(doc: Document, records: list[Record], dataset: str, several: bool,
                    registered: dict[str, str]) -> None:
    """The summary of one dataset: who wins each (SR, N_sig) column, the fractions of idealized at the
    same seed, and the variants against their methods. ``registered`` maps each method label to its
    registered method name."""
    summary = summary_table(records, dataset)
    header, body, leaders = summary.header, summary.body, summary.leaders
    if several:
        doc.heading(dataset, level=3)
    if len(header) <= 2:
        doc.paragraph(f"No injected signal on `{dataset}` (N_sig = 0 only): nothing to find, see the fidelity below.")
        return
    doc.paragraph(
        f"Max SIC on `{dataset}` (median over seeds ± the uncertainty of one run's value: test-set statistics "
        "and seed spread in quadrature; in brackets as a fraction of idealized); bold: the best method under "
        "test in each column, compared below with the others through the errors of the medians (1.25 × the ± / "
        "√seeds from three seeds on, ± / √2 for two, none for one seed). Last column: the time of a "
        f"{SCAN_WINDOWS}-SR scan from the measured medians, training once + {SCAN_WINDOWS} × (fit + template per "
        "SR); the shared classifier, the same for every method, is left out."
    )
    doc.table(header, body)
    if any("‡" in cell for row in body for cell in row):
        doc.paragraph("‡ a template smaller than the SR data: where idealized is marked, its held-out background is "
                      "small, it is no upper bound and fractions above 100% are possible.")
    doc.bullets([leader.text() for leader in leaders])
    if summary.paired:
        doc.paragraph(
            "Max SIC as a fraction of idealized's **at the same seed** (the same SR data, test set and classifier "
            "settings): the median over seeds, in brackets the lowest and highest seed. Pairing takes out how "
            "easy each seed's signal is to find, which moves every method; the bracketed fraction in the table "
            "above is the ratio of the two medians instead. The bracket is a distribution-free interval for the "
            "median a method would reach over many seeds: with n seeds it holds it with probability 1 - 2^(1-n) "
            "(75% at 3 seeds, 94% at 5): a goal inside it is neither met nor missed at that confidence."
        )
        doc.table(["method", *header[1:-1]], summary.paired)
    _variants(doc, compare_variants(records, registered, dataset), header[1:-1], summary.columns)
    _ordering(doc, compare_ordering(records, registered, dataset), header[1:-1], summary.columns)


def _variants(doc: Document, comparisons: dict[str, dict[tuple, VariantComparison]], titles: list[str],
              columns: list[tuple[str, int]]) -> None:
    """The variants against their methods, seed by seed (nothing when the run has no such pair)."""
    if not comparisons:
        return
    doc.paragraph(
        "Each variant against its published method **seed by seed**, at the profile the variant's extends "
        "(the same SR data, test set and classifier; where the variant changes only the sampling, as `+near` "
        "does, also the same fitted model): "
        "at how many seeds its max SIC is higher and lower (ties in neither), the two-sided sign test on the "
        "untied seeds (the chance of a split at least this uneven if neither were better; with n seeds it "
        "cannot go below 2^(1-n), 0.0625 at 5), and the ratio of the two max SIC values, median (lowest-highest "
        "seed). The summary above compares the medians as if the runs were independent; paired, a consistent "
        "difference shows sooner."
    )
    rows = [_row(by_column, columns) for by_column in comparisons.values()]
    doc.table(["variant", "against", *titles], rows)


def _ordering(doc: Document, comparisons: dict[tuple[str, str], dict[tuple, VariantComparison]],
              titles: list[str], columns: list[tuple[str, int]]) -> None:
    """The flow-matching family in the SIGMA paper's order, seed by seed (nothing without a pair)."""
    if not comparisons:
        return
    doc.paragraph(
        "The SIGMA paper's order of the flow-matching family, v_data < sigma-linear < sigma-context <= v_CR, "
        "**seed by seed**: each method that ran against its neighbour below it in that order (at the same "
        "profile: the same SR data and test set, for v_data and the two SIGMA variants the same fitted model), "
        "counted and tested as the variants are. Higher at most seeds with a small p: the order holds here; "
        "a split near even: not resolved by these seeds."
    )
    doc.table(["method", "against (below it in the paper)", *titles],
              [_row(by_column, columns) for by_column in comparisons.values()])


def _row(by_column: dict[tuple, VariantComparison], columns: list[tuple[str, int]]) -> list[str]:
    """``[label, against, one cell per (window, N_sig) column]`` of one pair's comparisons."""
    cells = {column[1:]: comparison for column, comparison in by_column.items()}
    first = next(iter(by_column.values()))
    return [first.variant, first.method, *(cells[col].cell() if col in cells else "-" for col in columns)]
